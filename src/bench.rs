//! `stance bench`: the encoder's throughput over a sweep of configurations, and the
//! whole `classify` path timed per stage.
//!
//! candle fixes its thread pools at first use, so each encoder configuration must run
//! in a fresh process: [`sweep`] takes the measuring function, and the `stance` binary
//! gives it one that runs `stance bench --single` (which calls [`measure_encoder`]).

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StanceError};
use crate::input::{self, InputFormat, ReadOptions, Source};
use crate::model::tagger::{InferenceOptions, Precision};
use crate::model::threads::Parallelism;
use crate::pipeline::{BackendChoice, ModelChoice, Pipeline, StageTimes};
use crate::span::Span;

/// Special tokens around each sentence: [CLS] and [SEP].
pub const SPECIAL_TOKENS_PER_SEQUENCE: usize = 2;

/// Sentences that warm the model up before the clock starts.
const WARM_UP_SENTENCES: usize = 16;

/// One point of the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchConfig {
    pub threads: usize,
    pub batch_size: usize,
    pub parallelism: Parallelism,
    /// Number format of the dense layers (`--precision`).
    pub precision: Precision,
}

impl BenchConfig {
    /// Inference options for this configuration, the rest at their defaults.
    pub fn options(&self) -> InferenceOptions {
        InferenceOptions {
            batch_size: self.batch_size,
            threads: self.threads,
            parallelism: self.parallelism,
            precision: self.precision,
            ..Default::default()
        }
    }
}

/// Every combination, parallelism outermost, then threads, then batch size.
pub fn configurations(
    parallelism: &[Parallelism],
    threads: &[usize],
    batch_sizes: &[usize],
) -> Vec<BenchConfig> {
    let mut out = Vec::new();
    for &parallelism in parallelism {
        for &threads in threads {
            for &batch_size in batch_sizes {
                out.push(BenchConfig {
                    threads,
                    batch_size,
                    parallelism,
                    precision: Precision::default(),
                });
            }
        }
    }
    out
}

/// One measured configuration of `stance bench`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRow {
    pub threads: usize,
    /// Dense layers ran in int8 (`--precision int8`, or `auto` on a VNNI CPU).
    #[serde(default)]
    pub int8: bool,
    /// The number format the dense layers ran in: "f32" or "int8".
    #[serde(default)]
    pub precision: String,
    pub batch_size: usize,
    pub parallelism: String,
    pub sentences: usize,
    pub words: usize,
    pub wordpieces: usize,
    pub seconds: f64,
    pub wordpieces_per_second: f64,
    pub words_per_second: f64,
    /// Word pieces plus [CLS] and [SEP] of every sentence: what the encoder reads, and
    /// what Python peers count.
    #[serde(default)]
    pub tokens: usize,
    /// `tokens` over `seconds` (tokenization and forward pass).
    #[serde(default)]
    pub tokens_per_second: f64,
    /// Tokenizing the workload alone (part of `seconds`).
    #[serde(default)]
    pub tokenize_seconds: f64,
    /// `tokens` over the forward pass alone (`seconds` less `tokenize_seconds`).
    #[serde(default)]
    pub forward_tokens_per_second: f64,
    /// Loading the model (config, tokenizer, weights).
    #[serde(default)]
    pub load_seconds: f64,
    /// Peak resident memory of the measuring process, where the OS says it (Linux).
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
    /// Median time to answer one request of `batch_size` sentences (tokenizing
    /// included), the workload's sentences taken in file order, one request at a time.
    #[serde(default)]
    pub batch_latency_ms_p50: Option<f64>,
    /// The 95th percentile of the same.
    #[serde(default)]
    pub batch_latency_ms_p95: Option<f64>,
}

impl BenchRow {
    /// One line of the human-readable report.
    pub fn line(&self) -> String {
        format!(
            "{:<8}{} threads {}  batch {:>3}: {:>7.0} tokens/s with [CLS]/[SEP] ({:>7.0} forward only)  {:>7.0} words/s  ({:.2} s, tokenizing {:.2} s; batch latency p50 {} p95 {} ms; load {:.2} s; peak RSS {} MB)",
            self.parallelism,
            if self.int8 { " int8" } else { "" },
            self.threads,
            self.batch_size,
            self.tokens_per_second,
            self.forward_tokens_per_second,
            self.words_per_second,
            self.seconds,
            self.tokenize_seconds,
            ms(self.batch_latency_ms_p50),
            ms(self.batch_latency_ms_p95),
            self.load_seconds,
            self.peak_rss_mb.map_or("?".into(), |m| format!("{m:.0}"))
        )
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("?".into(), |v| format!("{v:.1}"))
}

/// The `q` quantile (0..=1) of `values` by the nearest rank; `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Runs `measure` on every configuration in order and hands each row to `on_row`.
/// The first failure stops the sweep, naming its configuration. A workload smaller
/// than asked for is measured as it is, with a warning passed to `warn` once.
pub fn sweep(
    configs: &[BenchConfig],
    data: &Path,
    sentences: usize,
    mut measure: impl FnMut(&BenchConfig) -> Result<BenchRow>,
    mut on_row: impl FnMut(&BenchRow),
    mut warn: impl FnMut(String),
) -> Result<Vec<BenchRow>> {
    let mut rows: Vec<BenchRow> = Vec::with_capacity(configs.len());
    for config in configs {
        let row = measure(config).map_err(|e| {
            StanceError::Config(format!(
                "{e} ({}, {} threads, batch {})",
                config.parallelism.as_str(),
                config.threads,
                config.batch_size
            ))
        })?;
        if rows.is_empty() && row.sentences < sentences {
            warn(format!(
                "{} holds {} sentences, fewer than --sentences {sentences}: measuring those",
                data.display(),
                row.sentences,
            ));
        }
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// Measures one configuration in this process: the first `sentences` sentences of a
/// CoNLL file, words joined by spaces, each sentence one input, length-sorted into
/// batches. Call it in a fresh process whose candle thread count was set for `config`
/// (see [`crate::model::threads::product_threads`]).
pub fn measure_encoder(
    data: &Path,
    sentences: usize,
    model: Option<&str>,
    config: &BenchConfig,
) -> Result<BenchRow> {
    let loading = Instant::now();
    let tagger = crate::model::load_tagger(model, config.options())?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let docs = crate::conll::read(data)?;
    let chosen: Vec<&crate::conll::Sentence> = docs
        .iter()
        .flat_map(|d| &d.sentences)
        .take(sentences)
        .collect();
    let mut text = String::new();
    let mut units = Vec::with_capacity(chosen.len());
    for s in &chosen {
        let start = text.len();
        text.push_str(&s.words.join(" "));
        units.push(Span::new(start, text.len()));
        text.push('\n');
    }
    let tokenizing = Instant::now();
    let mut wordpieces = 0;
    for unit in &units {
        wordpieces += tagger.text_encoder().encode(&text, *unit)?.len();
    }
    let tokenize_seconds = tokenizing.elapsed().as_secs_f64();
    tagger.probabilities(&text, &units[..units.len().min(WARM_UP_SENTENCES)])?;
    let started = Instant::now();
    tagger.probabilities(&text, &units)?;
    let seconds = started.elapsed().as_secs_f64();
    // Latency: requests of `batch_size` sentences in file order, one at a time.
    let mut latencies = Vec::with_capacity(units.len().div_ceil(config.batch_size.max(1)));
    for request in units.chunks(config.batch_size.max(1)) {
        let asked = Instant::now();
        tagger.probabilities(&text, request)?;
        latencies.push(asked.elapsed().as_secs_f64() * 1e3);
    }
    let rounded = |v: Option<f64>| v.map(|v| (v * 100.0).round() / 100.0);
    let words = chosen.iter().map(|s| s.words.len()).sum::<usize>();
    let tokens = wordpieces + SPECIAL_TOKENS_PER_SEQUENCE * units.len();
    let per_second = |n: usize, s: f64| (n as f64 / s.max(1e-9)).round();
    Ok(BenchRow {
        threads: config.threads,
        int8: config.precision.resolve() == Precision::Int8,
        precision: config.precision.resolve().as_str().to_string(),
        batch_size: config.batch_size,
        parallelism: config.parallelism.as_str().to_string(),
        sentences: chosen.len(),
        words,
        wordpieces,
        seconds,
        wordpieces_per_second: per_second(wordpieces, seconds),
        words_per_second: per_second(words, seconds),
        tokens,
        tokens_per_second: per_second(tokens, seconds),
        tokenize_seconds,
        forward_tokens_per_second: per_second(tokens, seconds - tokenize_seconds),
        load_seconds,
        peak_rss_mb: peak_rss_mb(),
        batch_latency_ms_p50: rounded(quantile(&latencies, 0.50)),
        batch_latency_ms_p95: rounded(quantile(&latencies, 0.95)),
    })
}

/// `stance bench --pipeline`: the default `classify` path over a JSON Lines corpus.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineReport {
    pub corpus: String,
    pub backend: String,
    pub threads: usize,
    pub batch_size: usize,
    pub parallelism: String,
    pub documents: usize,
    pub words: usize,
    pub seconds: f64,
    pub words_per_second: f64,
    pub load_seconds: f64,
    pub stages: StageTimes,
    pub peak_rss_mb: Option<f64>,
}

impl PipelineReport {
    /// The human-readable report: the rate, then each stage's seconds and share.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} documents, {} words in {:.2} s: {:.0} words/s (backend {}, {} threads, batch {}; load {:.2} s)\n",
            self.documents,
            self.words,
            self.seconds,
            self.words_per_second,
            self.backend,
            self.threads,
            self.batch_size,
            self.load_seconds
        );
        for (stage, s) in self.stages.rows() {
            out.push_str(&format!(
                "  {stage:<9} {s:>9.3} s  {:>5.1}%\n",
                100.0 * s / self.seconds.max(1e-9)
            ));
        }
        out
    }
}

/// Times the default backend's `classify` path on every record of `corpus`, per
/// stage; `output` includes writing each document's JSON. Returns the report and the
/// pipeline's note when it fell back to another backend.
pub fn measure_pipeline(
    corpus: &Path,
    model: Option<&str>,
    config: &BenchConfig,
) -> Result<(PipelineReport, Option<String>)> {
    let choice = ModelChoice {
        spec: model.map(str::to_string),
        stance: None,
        options: config.options(),
    };
    let loading = Instant::now();
    let (pipeline, note) = Pipeline::for_backend(BackendChoice::Auto, &choice)?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let source = Source::File(corpus.to_path_buf());
    let opts = ReadOptions {
        format: InputFormat::Jsonl,
        lossy: false,
    };
    let mut stages = StageTimes::default();
    let (mut documents, mut words) = (0usize, 0usize);
    let started = Instant::now();
    for record in input::read(&source, opts) {
        let record = record?;
        let doc = pipeline.analyze_timed(&record.id, &record.text, &mut stages)?;
        let writing = Instant::now();
        let line = serde_json::to_string(&doc).map_err(|e| StanceError::Data(e.to_string()))?;
        std::hint::black_box(line);
        stages.output += writing.elapsed().as_secs_f64();
        documents += 1;
        words += record.text.split_whitespace().count();
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = PipelineReport {
        corpus: corpus.display().to_string(),
        backend: pipeline.backend().as_str().to_string(),
        threads: config.threads,
        batch_size: config.batch_size,
        parallelism: config.parallelism.as_str().to_string(),
        documents,
        words,
        seconds,
        words_per_second: (words as f64 / seconds.max(1e-9)).round(),
        load_seconds,
        stages,
        peak_rss_mb: peak_rss_mb(),
    };
    Ok((report, note))
}

/// Peak resident set size of this process in MB (`VmHWM` in /proc/self/status).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_cover_every_combination_in_order() {
        let c = configurations(
            &[Parallelism::Workers, Parallelism::Intra],
            &[1, 2],
            &[1, 8, 32],
        );
        assert_eq!(c.len(), 12);
        assert_eq!(
            c[0],
            BenchConfig {
                threads: 1,
                batch_size: 1,
                parallelism: Parallelism::Workers,
                precision: Precision::Auto,
            }
        );
        assert_eq!(c[5].threads, 2);
        assert_eq!(c[5].batch_size, 32);
        assert_eq!(c[6].parallelism, Parallelism::Intra);
    }

    fn row(sentences: usize) -> BenchRow {
        BenchRow {
            threads: 1,
            int8: false,
            precision: "f32".into(),
            batch_size: 1,
            parallelism: "workers".into(),
            sentences,
            words: 10,
            wordpieces: 12,
            seconds: 1.0,
            wordpieces_per_second: 12.0,
            words_per_second: 10.0,
            tokens: 14,
            tokens_per_second: 14.0,
            tokenize_seconds: 0.1,
            forward_tokens_per_second: 15.0,
            load_seconds: 0.2,
            peak_rss_mb: None,
            batch_latency_ms_p50: None,
            batch_latency_ms_p95: None,
        }
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(10.0));
        assert_eq!(quantile(&v, 0.95), Some(19.0));
        assert_eq!(quantile(&v, 1.0), Some(20.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn sweep_warns_once_of_a_short_workload_and_names_a_failing_configuration() {
        let configs = configurations(&[Parallelism::Workers], &[1], &[1, 8]);
        let mut warnings = Vec::new();
        let rows = sweep(
            &configs,
            Path::new("x.conll"),
            100,
            |_| Ok(row(40)),
            |_| {},
            |w| warnings.push(w),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("holds 40 sentences"), "{warnings:?}");

        let err = sweep(
            &configs,
            Path::new("x.conll"),
            100,
            |c| {
                if c.batch_size == 8 {
                    Err(StanceError::Config("out of memory".into()))
                } else {
                    Ok(row(100))
                }
            },
            |_| {},
            |_| {},
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "out of memory (workers, 1 threads, batch 8)"
        );
    }
}
