//! The model [`EntityTagger`]: tokenize with offsets, window long texts, run
//! length-sorted batches through the classifier, aggregate sub-words to entities.

use std::ops::Range;

use candle_core::{DType, Device, Tensor};

use super::aggregate::{aggregate, Aggregation, TokenScores};
use super::checkpoint::{load_tokenizer, Checkpoint, TokenClassifier};
use super::encoder::Mode;
use super::inputs::{TextEncoder, Tokens};
use super::int8;
use super::threads::{self, Parallelism};
use super::window;
use super::ModelError;
use crate::doc::Doc;
use crate::error::Result;
use crate::ner::{Entity, EntityLabel, EntityTagger};
use crate::span::Span;
use crate::Backend;

/// Windows per batch unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 32;
/// Word pieces shared by consecutive windows of a long text unless told otherwise.
pub const DEFAULT_STRIDE: usize = 64;

/// How the transformer runs (the `classify`, `eval` and `bench` flags of the same names).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct InferenceOptions {
    /// Windows per batch (length-sorted).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_BATCH_SIZE, value_parser = crate::cli::at_least(1)))]
    pub batch_size: usize,
    /// Longest window in word pieces, at least 16 and at most the model's limit
    /// (default: the context the model was trained with).
    // Without [CLS]/[SEP]; `None` takes the model's own: the context it was trained
    // with, else its maximum positions.
    #[cfg_attr(feature = "cli", arg(long, value_parser = crate::cli::at_least(16)))]
    pub context: Option<usize>,
    /// Word pieces shared by consecutive windows of a long text; each token is read from
    /// the window where it sits most central.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = DEFAULT_STRIDE))]
    pub stride: usize,
    /// How word-piece predictions become words, as the Hugging Face pipeline's aggregation_strategy.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Aggregation::default()))]
    pub aggregation: Aggregation,
    /// CPU threads (default: every core).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = threads::available(), hide_default_value = true, value_parser = crate::cli::at_least(1)))]
    pub threads: usize,
    /// workers: one single-threaded worker per thread, each on its own batches;
    /// intra: one batch at a time, each matrix product split over the threads.
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Parallelism::default()))]
    pub parallelism: Parallelism,
    /// Number format of the encoders' dense layers: auto (int8 where the CPU has
    /// AVX-512 VNNI, else f32), f32 (the reference: scores agree across CPUs to about
    /// 1e-6), int8 (about twice as fast; scores move slightly, see models/MODEL_CARD.md).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = Precision::default()))]
    pub precision: Precision,
}

/// Number format of the encoders' dense layers.
///
/// int8 is the default where the CPU runs it fast because it passed the quality
/// gates (CoNLL dev entity F1 within 0.3 points, real-news stance F1 within 0.5);
/// f32 stays available for results that must not depend on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Precision {
    /// int8 where the CPU has AVX-512 VNNI, f32 elsewhere.
    #[default]
    Auto,
    /// 32-bit floats throughout.
    F32,
    /// Dense products in 8-bit integers (dynamic quantisation); needs AVX-512 VNNI.
    Int8,
}

impl Precision {
    /// What `Auto` means on this CPU; the others unchanged.
    pub fn resolve(self) -> Precision {
        match self {
            Precision::Auto if int8::available() => Precision::Int8,
            Precision::Auto => Precision::F32,
            p => p,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        }
    }
}

impl Default for InferenceOptions {
    fn default() -> Self {
        InferenceOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            context: None,
            stride: DEFAULT_STRIDE,
            aggregation: Aggregation::default(),
            threads: threads::available(),
            parallelism: Parallelism::default(),
            precision: Precision::default(),
        }
    }
}

/// Encoder states of a text's tokens, for heads that share the tagger's pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenStates {
    /// Byte span of each token in the text.
    pub spans: Vec<Span>,
    /// One vector per token.
    pub vectors: Vec<Vec<f32>>,
}

/// Per-sequence rows of one batch.
/// One vector per token of a sequence.
type Rows = Vec<Vec<f32>>;

struct BatchRows {
    probs: Vec<Rows>,
    states: Vec<Rows>,
}

/// One model input: a window of a unit's tokens.
struct Sequence {
    unit: usize,
    range: Range<usize>,
}

pub struct ModelTagger {
    model: TokenClassifier,
    encoder: TextEncoder,
    device: Device,
    /// Context the model was trained with (`stance_context` in its config).
    trained_context: Option<usize>,
    pub options: InferenceOptions,
    /// Where the model came from, for messages.
    pub source: String,
    /// The weights file, when loaded from disk (stance heads are tied to it).
    pub weights: Option<std::path::PathBuf>,
}

impl ModelTagger {
    /// Loads a checkpoint directory on the CPU.
    pub fn load(ck: &Checkpoint, options: InferenceOptions) -> Result<ModelTagger, ModelError> {
        let device = Device::Cpu;
        let tokenizer = load_tokenizer(&ck.tokenizer, ck.config.vocab_size)?;
        let mut model = TokenClassifier::load(ck, &device)?;
        if options.precision.resolve() == Precision::Int8 {
            model
                .encoder
                .quantize_int8()
                .map_err(|e| ModelError::Weights {
                    path: ck.weights.clone(),
                    message: e.to_string(),
                })?;
        }
        let encoder = TextEncoder::new(tokenizer, ck.config.pad_token_id as u32)?;
        let limit = model.encoder.max_len().saturating_sub(2);
        if let Some(context) = options.context.filter(|&c| c > limit) {
            return Err(ModelError::Config {
                path: ck.dir.join("config.json"),
                message: format!(
                    "--context {context} is longer than this model reads ({limit} word pieces)"
                ),
            });
        }
        let mut tagger = ModelTagger::from_parts(model, encoder, options);
        tagger.trained_context = ck.config.stance_context;

        tagger.source = ck.dir.display().to_string();
        tagger.weights = Some(ck.weights.clone());
        Ok(tagger)
    }

    /// A tagger from a model and tokenizer already in memory (tests, training).
    pub fn from_parts(
        model: TokenClassifier,
        encoder: TextEncoder,
        options: InferenceOptions,
    ) -> ModelTagger {
        ModelTagger {
            model,
            encoder,
            device: Device::Cpu,
            trained_context: None,
            options,
            source: String::from("(in memory)"),
            weights: None,
        }
    }

    pub fn with_trained_context(mut self, context: Option<usize>) -> Self {
        self.trained_context = context;
        self
    }

    pub fn labels(&self) -> &[String] {
        &self.model.labels
    }

    pub fn text_encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    /// Longest window, in tokens, without the two special tokens.
    pub fn max_tokens(&self) -> usize {
        let limit = self.model.encoder.max_len().saturating_sub(2).max(1);
        self.options
            .context
            .or(self.trained_context)
            .unwrap_or(limit)
            .clamp(1, limit)
    }

    /// Label probabilities of every token of every unit (windowed, batched).
    pub fn probabilities(
        &self,
        text: &str,
        units: &[Span],
    ) -> Result<Vec<Vec<TokenScores>>, ModelError> {
        Ok(self.run(text, units, false)?.0)
    }

    /// Probabilities and, with `states`, each token's encoder state (see
    /// [`crate::model::checkpoint::Outputs`]), per unit.
    pub fn run(
        &self,
        text: &str,
        units: &[Span],
        states: bool,
    ) -> Result<(Vec<Vec<TokenScores>>, Vec<TokenStates>), ModelError> {
        let encoded = self.word_pieces(text, units)?;
        self.run_encoded(text, &encoded, states)
    }

    /// The word pieces of each unit of `text` (the pipeline's tokenize stage).
    pub fn word_pieces(&self, text: &str, units: &[Span]) -> Result<Vec<Tokens>, ModelError> {
        units
            .iter()
            .map(|&u| self.encoder.encode(text, u))
            .collect()
    }

    /// [`ModelTagger::run`] on units already cut into word pieces.
    pub fn run_encoded(
        &self,
        text: &str,
        encoded: &[Tokens],
        states: bool,
    ) -> Result<(Vec<Vec<TokenScores>>, Vec<TokenStates>), ModelError> {
        let units = encoded;
        let max = self.max_tokens();
        let mut seqs: Vec<Sequence> = Vec::new();
        let mut plans: Vec<Vec<Range<usize>>> = Vec::new();
        for (u, enc) in encoded.iter().enumerate() {
            let plan = if enc.is_empty() {
                Vec::new()
            } else {
                window::plan(enc.len(), max, self.options.stride)
            };
            seqs.extend(plan.iter().map(|r| Sequence {
                unit: u,
                range: r.clone(),
            }));
            plans.push(plan);
        }
        let workers = match self.options.parallelism {
            Parallelism::Workers => self.options.threads.max(1),
            Parallelism::Intra => 1,
        };
        let lengths: Vec<usize> = seqs.iter().map(|s| s.range.len()).collect();
        let per_seq = threads::map_batches(&lengths, self.options.batch_size, workers, |b| {
            let out = self.run_batch(b, &seqs, encoded, states)?;
            let mut states = out.states.into_iter();
            Ok::<_, ModelError>(
                out.probs
                    .into_iter()
                    .map(|p| (p, states.next().unwrap_or_default()))
                    .collect(),
            )
        })?;
        let (rows, mut state_rows): (Vec<Rows>, Vec<Rows>) = per_seq.into_iter().unzip();
        // Each token from the window where it is most central.
        let mut seq_of_unit: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
        for (i, s) in seqs.iter().enumerate() {
            seq_of_unit[s.unit].push(i);
        }
        let mut out = Vec::with_capacity(units.len());
        let mut out_states = Vec::new();
        for (u, enc) in encoded.iter().enumerate() {
            let owners = window::owners(enc.len(), &plans[u]);
            let source = |t: usize| {
                let s = seq_of_unit[u][owners[t]];
                (s, t - seqs[s].range.start)
            };
            let tokens = (0..enc.len())
                .map(|t| {
                    let (s, k) = source(t);
                    TokenScores {
                        span: enc.spans[t],
                        probs: rows[s][k].clone(),
                        is_subword: enc.subword[t],
                        line_start: t == 0
                            || text[enc.spans[t - 1].end..enc.spans[t].start].contains('\n'),
                    }
                })
                .collect();
            out.push(tokens);
            if states {
                out_states.push(TokenStates {
                    spans: enc.spans.clone(),
                    vectors: (0..enc.len())
                        .map(|t| {
                            let (s, k) = source(t);
                            std::mem::take(&mut state_rows[s][k])
                        })
                        .collect(),
                });
            }
        }
        Ok((out, out_states))
    }

    /// Probabilities (and states) for one batch: one row per token,
    /// special tokens dropped.
    fn run_batch(
        &self,
        batch: &[usize],
        seqs: &[Sequence],
        encoded: &[Tokens],
        states: bool,
    ) -> Result<BatchRows, ModelError> {
        let rows: Vec<(&Tokens, Range<usize>)> = batch
            .iter()
            .map(|&i| (&encoded[seqs[i].unit], seqs[i].range.clone()))
            .collect();
        let (ids, mask, shapes) = self.encoder.batch(&rows, &self.device)?;
        let shapes = self.model.casing.then_some(&shapes);
        let out = self
            .model
            .forward_outputs(&ids, &mask, shapes, states, &mut Mode::Infer)?;
        let trim = |i: usize, rows: Vec<Vec<f32>>| rows[1..seqs[i].range.len() + 1].to_vec();
        let rows_of = |t: Option<Tensor>| -> Result<Vec<Rows>, ModelError> {
            Ok(match t {
                Some(t) => batch
                    .iter()
                    .zip(t.to_dtype(DType::F32)?.to_vec3::<f32>()?)
                    .map(|(&i, p)| trim(i, p))
                    .collect(),
                None => Vec::new(),
            })
        };
        let probs = candle_nn::ops::softmax_last_dim(&out.logits.to_dtype(DType::F32)?)?;
        Ok(BatchRows {
            probs: rows_of(Some(probs))?,
            states: rows_of(out.states)?,
        })
    }

    /// Entities of the given text units (whole texts, or sentences).
    pub fn tag_units(&self, text: &str, units: &[Span]) -> Result<Vec<Entity>, ModelError> {
        Ok(self.entities_of(text, self.probabilities(text, units)?))
    }

    fn entities_of(&self, text: &str, probs: Vec<Vec<TokenScores>>) -> Vec<Entity> {
        let mut out = Vec::new();
        for tokens in probs {
            for g in aggregate(&tokens, &self.model.labels, self.options.aggregation) {
                out.push(Entity {
                    span: g.span,
                    label: map_label(&g.label),
                    score: g.score,
                    backend: Backend::Model,
                });
            }
        }
        out.sort_by_key(|e| e.span.start);
        merge_glued(text, out)
    }
}

/// Joins entities that touch with no character between them ("U." + "S" + "." from
/// a word the word-piece pre-tokenizer split at its full stops): a name never ends
/// inside a word. The type is the gazetteer's for the joined text when it knows it,
/// else that of the longest piece.
pub fn merge_glued(text: &str, entities: Vec<Entity>) -> Vec<Entity> {
    let mut out: Vec<Entity> = Vec::with_capacity(entities.len());
    let mut run: Vec<Entity> = Vec::new();
    let flush = |run: &mut Vec<Entity>, out: &mut Vec<Entity>| {
        if run.len() <= 1 {
            out.append(run);
            return;
        }
        let span = Span::new(run[0].span.start, run[run.len() - 1].span.end);
        let longest = run
            .iter()
            .max_by(|a, b| {
                a.span.len().cmp(&b.span.len()).then(
                    a.score
                        .partial_cmp(&b.score)
                        .unwrap_or(std::cmp::Ordering::Equal),
                )
            })
            .expect("a run has pieces");
        let label = crate::ner::gazetteer_label(span.text(text)).unwrap_or(longest.label);
        let chars: usize = run.iter().map(|e| e.span.len()).sum();
        let score = run
            .iter()
            .map(|e| e.score * e.span.len() as f32)
            .sum::<f32>()
            / chars as f32;
        out.push(Entity {
            span,
            label,
            score,
            backend: run[0].backend,
        });
        run.clear();
    };
    for e in entities {
        if run.last().is_some_and(|p| p.span.end != e.span.start) {
            flush(&mut run, &mut out);
        }
        run.push(e);
    }
    flush(&mut run, &mut out);
    out
}

/// CoNLL type of a model's entity type ("PER", "PERSON", "GPE", ...).
pub fn map_label(t: &str) -> EntityLabel {
    match t.to_uppercase().as_str() {
        "PER" | "PERSON" => EntityLabel::Per,
        "ORG" | "ORGANIZATION" | "ORGANISATION" => EntityLabel::Org,
        "LOC" | "LOCATION" | "GPE" | "FAC" => EntityLabel::Loc,
        _ => EntityLabel::Misc,
    }
}

impl EntityTagger for ModelTagger {
    /// The whole text is one unit, windowed when it is long: every token sees
    /// the document around it, as in the Hugging Face pipeline.
    /// Only prose is read ([`Doc::prose_runs`]): noise would cost encoder time and give
    /// nothing but false names. States are kept when `doc.keep_states` asks for them.
    fn tag(&self, doc: &mut Doc) -> Result<()> {
        let runs = doc.prose_runs();
        // Word pieces from the pipeline's tokenize stage when it ran for these runs.
        let encoded = match doc.pieces.take() {
            Some(pieces) if pieces.len() == runs.len() => pieces,
            _ => self.word_pieces(&doc.text, &runs)?,
        };
        let (probs, states) = self.run_encoded(&doc.text, &encoded, doc.keep_states)?;
        doc.entities = self.entities_of(&doc.text, probs);
        doc.states = doc.keep_states.then(|| {
            let mut all = TokenStates::default();
            for s in states {
                all.spans.extend(s.spans);
                all.vectors.extend(s.vectors);
            }
            all
        });
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Model
    }

    /// All texts in one pass, so windows of different texts share batches.
    fn tag_texts(&self, texts: &[&str]) -> Result<Vec<Vec<Entity>>> {
        let mut joined = String::new();
        let mut units = Vec::with_capacity(texts.len());
        for t in texts {
            units.push(Span::new(joined.len(), joined.len() + t.len()));
            joined.push_str(t);
            joined.push('\n');
        }
        let found = self.tag_units(&joined, &units)?;
        let mut out: Vec<Vec<Entity>> = vec![Vec::new(); texts.len()];
        for mut e in found {
            let k = units.partition_point(|u| u.end <= e.span.start);
            e.span = Span::new(e.span.start - units[k].start, e.span.end - units[k].start);
            out[k].push(e);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod glued_tests {
    use super::*;

    fn ent(start: usize, end: usize, label: EntityLabel, score: f32) -> Entity {
        Entity {
            span: Span::new(start, end),
            label,
            score,
            backend: Backend::Model,
        }
    }

    #[test]
    fn pieces_of_one_word_become_one_entity() {
        let text = "U.S. Threatens Russia";
        let pieces = vec![
            ent(0, 2, EntityLabel::Org, 0.6),
            ent(2, 3, EntityLabel::Loc, 0.9),
            ent(3, 4, EntityLabel::Org, 0.5),
            ent(15, 21, EntityLabel::Loc, 0.99),
        ];
        let merged = merge_glued(text, pieces);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].span.text(text), "U.S.");
        // The gazetteer knows "U.S." as a country.
        assert_eq!(merged[0].label, EntityLabel::Loc);
        assert!((merged[0].score - (0.6 * 2.0 + 0.9 + 0.5) / 4.0).abs() < 1e-6);
        assert_eq!(merged[1].span.text(text), "Russia");
    }

    #[test]
    fn entities_apart_stay_apart() {
        let text = "Kerry Lavrov";
        let two = vec![
            ent(0, 5, EntityLabel::Per, 0.9),
            ent(6, 12, EntityLabel::Per, 0.9),
        ];
        assert_eq!(merge_glued(text, two).len(), 2);
        // An unknown glued pair takes the longest piece's type.
        let text = "Xylo-Corp";
        let glued = vec![
            ent(0, 5, EntityLabel::Misc, 0.9),
            ent(5, 9, EntityLabel::Org, 0.9),
        ];
        let m = merge_glued(text, glued);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].label, EntityLabel::Misc);
    }
}
