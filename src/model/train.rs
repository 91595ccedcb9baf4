//! `stance train ner`: fine-tunes a BERT-family encoder with a token
//! classification head on CoNLL data, in Rust with candle.
//!
//! - Inputs are made by the same code as inference ([`super::inputs`]): whole
//!   documents as running text, cut into windows of `context` tokens, so the
//!   model learns from the document around each sentence.
//! - Every wordpiece is labelled (continuations of a `B-` word take `I-`), so
//!   any aggregation strategy reads the model's output consistently.
//! - A step splits its batch over single-threaded workers, one per core, and
//!   sums their gradients (see [`super::threads`]).
//! - The run is a pure function of `--seed`: window order, dropout masks and
//!   head initialisation all come from it, and a resumed run continues the
//!   same sequence of batches.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::checkpoint::{encoder_prefix, load_tokenizer, open_weights, TokenClassifier};
use super::config::{Architecture, ModelConfig};
use super::encoder::Mode;
use super::inputs::{TextEncoder, Tokens};
use super::ops::SplitMix64;
use super::optim::{schedule, AdamW, AdamWConfig};
use super::tagger::{InferenceOptions, ModelTagger, Precision};
use super::threads;
use super::ModelError;
use crate::conll::{self, Document};
use crate::eval::ner::{evaluate, NerReport};
use crate::span::Span;

/// Label id that the loss ignores.
pub(crate) const IGNORE: i64 = -100;

/// The tag set of the head, in IOB2.
pub const NER_LABELS: [&str; 9] = [
    "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
];

/// Where `stance train ner` writes unless told: beside, never over, the shipped model.
pub const DEFAULT_NER_OUT: &str = "runs/ner";

/// Options of `stance train ner`; each flag's default is the field's [`Default`].
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct TrainOptions {
    /// Base encoder directory (config.json, tokenizer.json, model.safetensors).
    #[cfg_attr(feature = "cli", arg(long, default_value = "models/base"))]
    pub base: PathBuf,
    /// Training file(s) in CoNLL format; repeat to train on several.
    #[cfg_attr(feature = "cli", arg(long, required = true))]
    pub train: Vec<PathBuf>,
    /// Development file, scored after each epoch; the best epoch is kept.
    #[cfg_attr(feature = "cli", arg(long))]
    pub dev: Option<PathBuf>,
    /// Output directory for the trained model.
    #[cfg_attr(feature = "cli", arg(long, default_value = DEFAULT_NER_OUT))]
    pub out: PathBuf,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 3, value_parser = crate::cli::at_least(1)))]
    pub epochs: usize,
    /// Peak learning rate (after warm-up; decays linearly to 0).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5e-5))]
    pub lr: f64,
    /// Windows per step.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 16, value_parser = crate::cli::at_least(1)))]
    pub batch_size: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 42))]
    pub seed: u64,
    /// Stop after this many minutes, saving a checkpoint to resume from.
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_minutes: Option<f64>,
    /// Continue the run saved in OUT/resume.
    #[cfg_attr(feature = "cli", arg(long))]
    pub resume: bool,
    /// Share of steps for the learning-rate warm-up.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.1))]
    pub warmup: f64,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.01))]
    pub weight_decay: f64,
    /// Largest global gradient norm (0: no clipping).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1.0))]
    pub clip: f64,
    /// Window length in wordpieces (without [CLS]/[SEP]): the document context each token sees.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 256))]
    pub context: usize,
    /// Add the word-shape (casing) embedding to the input (`--no-casing` leaves it out).
    #[cfg_attr(feature = "cli", arg(long = "no-casing", action = clap::ArgAction::SetFalse, help = "Leave out the word-shape (casing) embedding"))]
    pub casing: bool,
    /// Worker threads (one per core by default).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = threads::available(), hide_default_value = true, value_parser = crate::cli::at_least(1)))]
    pub threads: usize,
    /// Train on the first N documents only (quick trials).
    #[cfg_attr(feature = "cli", arg(long))]
    pub limit_docs: Option<usize>,
    /// Minutes between resumable checkpoints.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 10.0))]
    pub checkpoint_minutes: f64,
    /// Store the released weights in half precision (f16).
    #[cfg_attr(feature = "cli", arg(long))]
    pub half: bool,
    /// Report progress: a bar when stderr is a terminal, otherwise a line every
    /// [`PROGRESS_LINE_EVERY`] of an epoch (the command line's `--quiet` turns it off).
    #[cfg_attr(feature = "cli", arg(skip))]
    pub progress: bool,
}

impl Default for TrainOptions {
    /// The command line's defaults: a test parses an empty command line and compares.
    fn default() -> Self {
        TrainOptions {
            base: PathBuf::from("models/base"),
            train: Vec::new(),
            dev: None,
            out: PathBuf::from(DEFAULT_NER_OUT),
            epochs: 3,
            lr: 5e-5,
            batch_size: 16,
            seed: 42,
            max_minutes: None,
            resume: false,
            warmup: 0.1,
            weight_decay: 0.01,
            clip: 1.0,
            context: 256,
            casing: true,
            threads: threads::available(),
            limit_docs: None,
            checkpoint_minutes: 10.0,
            half: false,
            progress: false,
        }
    }
}

/// One epoch's record in `training.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub steps: usize,
    pub train_loss: f64,
    pub dev_f1: Option<f64>,
    pub minutes: f64,
}

/// What a resumable checkpoint records besides the weights and moments.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    epoch: usize,
    /// Batches of `epoch` already taken.
    batch_in_epoch: usize,
    step: usize,
    best_f1: Option<f64>,
    history: Vec<EpochRecord>,
    loss_sum: f64,
    loss_batches: usize,
    minutes: f64,
    seed: u64,
    train_files: Vec<String>,
}

/// A document as model tokens with one label per token.
pub(crate) struct LabelledTokens {
    pub(crate) tokens: Tokens,
    pub(crate) labels: Vec<i64>,
}

/// A training window: a range of one document's tokens.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    pub(crate) doc: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Labels every token of `doc` from its words' IOB tags.
fn label_document(
    doc: &Document,
    encoder: &TextEncoder,
    label_ids: &HashMap<&str, i64>,
) -> Result<LabelledTokens, ModelError> {
    let dt = doc.text();
    let tokens = encoder.encode(&dt.text, Span::new(0, dt.text.len()))?;
    let mut words: Vec<(Span, String)> = Vec::new();
    for (sent, spans) in doc.sentences.iter().zip(&dt.words) {
        for (tag, span) in conll::to_iob2(&sent.tags).into_iter().zip(spans) {
            words.push((*span, tag));
        }
    }
    let mut labels = Vec::with_capacity(tokens.len());
    let mut last_word = usize::MAX;
    for span in &tokens.spans {
        let w = words.partition_point(|(s, _)| s.end <= span.start);
        let label = match words.get(w) {
            Some((s, tag)) if s.start <= span.start => {
                let tag = if w == last_word {
                    // A continuation of the word: B-X becomes I-X.
                    tag.replacen("B-", "I-", 1)
                } else {
                    tag.clone()
                };
                last_word = w;
                *label_ids.get(tag.as_str()).unwrap_or(&IGNORE)
            }
            _ => IGNORE,
        };
        labels.push(label);
    }
    Ok(LabelledTokens { tokens, labels })
}

/// Windows of one epoch: each document cut at a random offset into pieces of
/// at most `context` tokens; shuffled, then batched by similar length.
pub(crate) fn epoch_batches(
    docs: &[LabelledTokens],
    context: usize,
    batch: usize,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<Window>> {
    let mut rng = SplitMix64(seed ^ (epoch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut windows = Vec::new();
    for (d, doc) in docs.iter().enumerate() {
        let n = doc.tokens.len();
        if n == 0 {
            continue;
        }
        let mut start = 0;
        if n > context {
            let first = (rng.next_u64() % context as u64) as usize;
            if first > 0 {
                windows.push(Window {
                    doc: d,
                    start: 0,
                    end: first,
                });
                start = first;
            }
        }
        while start < n {
            let end = (start + context).min(n);
            windows.push(Window { doc: d, start, end });
            start = end;
        }
    }
    rng.shuffle(&mut windows);
    // Sort within pools of 50 batches so a batch holds windows of similar length.
    let pool = batch.max(1) * 50;
    for chunk in windows.chunks_mut(pool) {
        chunk.sort_by_key(|w| w.end - w.start);
    }
    let mut batches: Vec<Vec<Window>> = windows.chunks(batch.max(1)).map(|c| c.to_vec()).collect();
    rng.shuffle(&mut batches);
    batches
}

/// The base encoder: its config (as read and as raw JSON), tokenizer and weights.
pub struct Base {
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub raw_config: Value,
    pub arch: Architecture,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

impl Base {
    pub fn open(dir: &Path) -> Result<Base, ModelError> {
        let config_path = dir.join("config.json");
        let missing = |file: &'static str| ModelError::MissingFile {
            dir: dir.into(),
            file,
        };
        if !config_path.is_file() {
            return Err(missing("config.json"));
        }
        let text = std::fs::read_to_string(&config_path).map_err(|e| ModelError::Config {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        let bad = |e: serde_json::Error| ModelError::Config {
            path: config_path.clone(),
            message: format!("not a model config: {e}"),
        };
        let raw_config: Value = serde_json::from_str(&text).map_err(bad)?;
        let config: ModelConfig = serde_json::from_value(raw_config.clone()).map_err(bad)?;
        let arch = config
            .architecture()
            .ok_or_else(|| ModelError::UnsupportedArchitecture {
                path: config_path.clone(),
                found: config.model_type.clone().unwrap_or_else(|| "(none)".into()),
            })?;
        let tokenizer = dir.join("tokenizer.json");
        if !tokenizer.is_file() {
            return Err(missing("tokenizer.json"));
        }
        let weights = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| ModelError::NoWeights { dir: dir.into() })?;
        Ok(Base {
            dir: dir.into(),
            config,
            raw_config,
            arch,
            weights,
            tokenizer,
        })
    }
}

/// A token classifier whose every weight is a trainable variable.
pub struct Trainable {
    pub model: TokenClassifier,
    pub varmap: VarMap,
    pub config: ModelConfig,
    pub raw_config: Value,
    pub encoder: TextEncoder,
    pub tokenizer_path: PathBuf,
}

impl Trainable {
    /// Builds the model from the base encoder: known weights are copied from
    /// it, the head is drawn from N(0, 0.02) and the casing embedding starts at zero.
    pub fn from_base(
        base: &Base,
        labels: &[&str],
        casing: bool,
        seed: u64,
    ) -> Result<Trainable, ModelError> {
        Trainable::from_weights(base, labels, casing, false, seed)
    }

    /// Builds the model from `base`'s weights. With `keep_heads`, the head found
    /// in the file (an already trained checkpoint) is kept, else drawn afresh.
    pub fn from_weights(
        base: &Base,
        labels: &[&str],
        casing: bool,
        keep_heads: bool,
        seed: u64,
    ) -> Result<Trainable, ModelError> {
        let device = Device::Cpu;
        let mut config = base.config.clone();
        config.stance_casing = casing;
        let labels: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let prefix = base.arch.prefix();
        let model = TokenClassifier::build(&config, base.arch, labels.clone(), prefix, vb)
            .map_err(ModelError::from)?;
        let (names, source) = open_weights(&base.weights, DType::F32, &device)?;
        let base_prefix = encoder_prefix(&names, base.arch).ok_or_else(|| ModelError::Weights {
            path: base.weights.clone(),
            message: "no encoder weights (embeddings.word_embeddings.weight)".into(),
        })?;
        let mut rng = SplitMix64(seed ^ 0x5EED);
        let vars = varmap.data().lock().expect("varmap lock");
        let mut sorted: Vec<(&String, &Var)> = vars.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (name, var) in sorted {
            let bare = name.strip_prefix(&format!("{prefix}.")).unwrap_or(name);
            let in_base = if base_prefix.is_empty() {
                bare.to_string()
            } else {
                format!("{base_prefix}.{bare}")
            };
            let is_head = name.starts_with("classifier");
            let value = if names.contains(name.as_str()) && (keep_heads || !is_head) {
                source
                    .get(var.shape(), name)
                    .map_err(|e| ModelError::Weights {
                        path: base.weights.clone(),
                        message: format!("{name}: {e}"),
                    })?
            } else if names.contains(&in_base) && !is_head {
                source
                    .get(var.shape(), &in_base)
                    .map_err(|e| ModelError::Weights {
                        path: base.weights.clone(),
                        message: format!("{in_base}: {e}"),
                    })?
            } else if name.ends_with("classifier.weight") {
                let n = var.elem_count();
                Tensor::from_vec(
                    (0..n)
                        .map(|_| rng.next_normal() * 0.02)
                        .collect::<Vec<f32>>(),
                    var.shape(),
                    &device,
                )?
            } else if name.contains("casing") || name.ends_with(".bias") {
                var.zeros_like()?
            } else {
                return Err(ModelError::Weights {
                    path: base.weights.clone(),
                    message: format!("the base has no {in_base}"),
                });
            };
            var.set(&value)?;
        }
        drop(vars);
        let tokenizer = load_tokenizer(&base.tokenizer, config.vocab_size)?;
        let encoder = TextEncoder::new(tokenizer, config.pad_token_id as u32)?;
        Ok(Trainable {
            model,
            varmap,
            config,
            raw_config: base.raw_config.clone(),
            encoder,
            tokenizer_path: base.tokenizer.clone(),
        })
    }

    /// Variables in a fixed (name) order.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let vars = self.varmap.data().lock().expect("varmap lock");
        let mut out: Vec<(String, Var)> =
            vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// A tagger over the current weights (they keep training underneath it), in f32
    /// whatever `options.precision` says: weights still changing cannot be quantised once.
    pub fn tagger(&self, options: InferenceOptions) -> ModelTagger {
        let options = InferenceOptions {
            precision: Precision::F32,
            ..options
        };
        ModelTagger::from_parts(self.model.clone(), self.encoder.clone(), options)
    }

    /// Writes a Hugging Face token-classification checkpoint: `config.json`
    /// with `id2label`, `tokenizer.json`, `model.safetensors` (f16 if `half`).
    pub fn save(&self, dir: &Path, context: usize, half: bool) -> Result<(), ModelError> {
        let io = |e: std::io::Error| ModelError::Weights {
            path: dir.into(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut config = self.raw_config.clone();
        let labels = &self.model.labels;
        let id2label: serde_json::Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), Value::from(l.clone())))
            .collect();
        let label2id: serde_json::Map<String, Value> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), Value::from(i)))
            .collect();
        let arch = match self.model.encoder.arch() {
            Architecture::DistilBert => "DistilBertForTokenClassification",
            Architecture::Roberta => "RobertaForTokenClassification",
            Architecture::Bert => "BertForTokenClassification",
        };
        config["architectures"] = serde_json::json!([arch]);
        config["id2label"] = Value::Object(id2label);
        config["label2id"] = Value::Object(label2id);
        config["stance_casing"] = Value::from(self.config.stance_casing);
        config["stance_context"] = Value::from(context);
        if let Some(obj) = config.as_object_mut() {
            obj.remove("_name_or_path");
        }
        let text = serde_json::to_string_pretty(&config).expect("a JSON value serialises");
        std::fs::write(dir.join("config.json"), text + "\n").map_err(io)?;
        std::fs::copy(&self.tokenizer_path, dir.join("tokenizer.json")).map_err(io)?;
        let dtype = if half { DType::F16 } else { DType::F32 };
        let tensors: HashMap<String, Tensor> = self
            .named_vars()
            .into_iter()
            .map(|(k, v)| Ok((k, v.as_tensor().to_dtype(dtype)?)))
            .collect::<candle_core::Result<_>>()?;
        crate::model::checkpoint::save_weights(&tensors, dir)?;
        Ok(())
    }
}

/// Loss of one shard: summed cross-entropy over its labelled tokens.
fn shard_loss(
    model: &TokenClassifier,
    encoder: &TextEncoder,
    docs: &[LabelledTokens],
    windows: &[Window],
    seed: u64,
) -> candle_core::Result<(Tensor, usize)> {
    let device = Device::Cpu;
    let rows: Vec<(&Tokens, std::ops::Range<usize>)> = windows
        .iter()
        .map(|w| (&docs[w.doc].tokens, w.start..w.end))
        .collect();
    let (ids, mask, shapes) = encoder.batch(&rows, &device)?;
    let (b, len) = ids.dims2()?;
    let mut targets = vec![IGNORE; b * len];
    for (r, w) in windows.iter().enumerate() {
        for (k, t) in (w.start..w.end).enumerate() {
            targets[r * len + 1 + k] = docs[w.doc].labels[t];
        }
    }
    let positions: Vec<u32> = targets
        .iter()
        .enumerate()
        .filter(|(_, t)| **t != IGNORE)
        .map(|(i, _)| i as u32)
        .collect();
    let gold: Vec<u32> = targets
        .iter()
        .filter(|t| **t != IGNORE)
        .map(|t| *t as u32)
        .collect();
    let n = positions.len();
    let mut mode = Mode::Train { seed };
    let logits = model.forward(&ids, &mask, model.casing.then_some(&shapes), &mut mode)?;
    let labels = logits.dim(D::Minus1)?;
    let flat = logits.reshape((b * len, labels))?;
    let picked = flat.index_select(&Tensor::from_vec(positions, n, &device)?, 0)?;
    let logp = candle_nn::ops::log_softmax(&picked, D::Minus1)?;
    let gold = Tensor::from_vec(gold, (n, 1), &device)?;
    let loss = logp.gather(&gold, 1)?.sum_all()?.neg()?;
    Ok((loss, n))
}

fn state_dir(out: &Path) -> PathBuf {
    out.join("resume")
}

/// The files of a resumable checkpoint: where a run stands, and the optimizer's state.
const STATE_FILE: &str = "state.json";
const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Saves a resumable run into `dir`: the optimizer (weights and moments), then `state`,
/// each through a temporary file renamed into place, so a run killed while saving
/// leaves a checkpoint that reads back.
pub(crate) fn save_resumable(
    dir: &Path,
    state: &impl Serialize,
    optimizer: &AdamW,
) -> Result<(), ModelError> {
    let io = |e: std::io::Error| ModelError::Weights {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let partial = dir.join(format!("{OPTIMIZER_FILE}.partial"));
    optimizer.save(&partial)?;
    std::fs::rename(&partial, dir.join(OPTIMIZER_FILE)).map_err(io)?;
    let partial = dir.join(format!("{STATE_FILE}.partial"));
    let text = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(&partial, text).map_err(io)?;
    std::fs::rename(&partial, dir.join(STATE_FILE)).map_err(io)
}

/// Reads the state [`save_resumable`] wrote into `dir`; `check` refuses a run that is not
/// the one asked for (another seed, other data) before the optimizer is restored at the
/// state's step.
pub(crate) fn resume_from<S: serde::de::DeserializeOwned>(
    dir: &Path,
    optimizer: &mut AdamW,
    step_of: impl Fn(&S) -> usize,
    check: impl Fn(&S) -> Result<(), String>,
) -> Result<S, ModelError> {
    let path = dir.join(STATE_FILE);
    let cannot = |message: String| ModelError::Config {
        path: path.clone(),
        message: format!("cannot resume: {message}"),
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        cannot(format!(
            "{e} (no stopped run here; start one with --max-minutes)"
        ))
    })?;
    let state: S = serde_json::from_str(&text).map_err(|e| cannot(e.to_string()))?;
    check(&state).map_err(cannot)?;
    optimizer.load(&dir.join(OPTIMIZER_FILE), step_of(&state))?;
    Ok(state)
}

/// Fine-tunes the base encoder; returns the per-epoch history.
pub fn train_ner(
    opts: &TrainOptions,
    log: &mut dyn FnMut(&str),
) -> Result<TrainOutcome, ModelError> {
    let started = Instant::now();
    let base = Base::open(&opts.base)?;
    let mut train_docs: Vec<Document> = Vec::new();
    for f in &opts.train {
        train_docs.extend(conll::read(f).map_err(|e| ModelError::Config {
            path: f.clone(),
            message: e.to_string(),
        })?);
    }
    if let Some(n) = opts.limit_docs {
        train_docs.truncate(n);
    }
    let dev_docs = match &opts.dev {
        Some(p) => Some(conll::read(p).map_err(|e| ModelError::Config {
            path: p.clone(),
            message: e.to_string(),
        })?),
        None => None,
    };
    let trainable = Trainable::from_base(&base, &NER_LABELS, opts.casing, opts.seed)?;
    let label_ids: HashMap<&str, i64> = NER_LABELS
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, i as i64))
        .collect();
    let docs: Vec<LabelledTokens> = train_docs
        .iter()
        .map(|d| label_document(d, &trainable.encoder, &label_ids))
        .collect::<Result<_, _>>()?;
    let tokens: usize = docs.iter().map(|d| d.tokens.len()).sum();
    let context = opts.context.min(trainable.model.encoder.max_len() - 2);
    let steps_per_epoch = epoch_batches(&docs, context, opts.batch_size, opts.seed, 0).len();
    let total_steps = steps_per_epoch * opts.epochs;
    let warmup = (total_steps as f64 * opts.warmup).round() as usize;
    log(&format!(
        "training on {} documents ({} tokens), {} steps per epoch, {} epochs, context {}, batch {}, {} threads",
        docs.len(),
        tokens,
        steps_per_epoch,
        opts.epochs,
        context,
        opts.batch_size,
        opts.threads
    ));
    let config = AdamWConfig {
        lr: opts.lr,
        weight_decay: opts.weight_decay,
        clip: opts.clip,
        ..Default::default()
    };
    let vars = trainable.named_vars();
    let mut optimizer = AdamW::new(vars.clone(), config)?;
    let mut state = TrainState {
        epoch: 0,
        batch_in_epoch: 0,
        step: 0,
        best_f1: None,
        history: Vec::new(),
        loss_sum: 0.0,
        loss_batches: 0,
        minutes: 0.0,
        seed: opts.seed,
        train_files: opts.train.iter().map(|p| p.display().to_string()).collect(),
    };
    let resume_dir = state_dir(&opts.out);
    if opts.resume {
        state = resume_from(
            &resume_dir,
            &mut optimizer,
            |s: &TrainState| s.step,
            |s| {
                if s.seed == opts.seed {
                    Ok(())
                } else {
                    Err(format!(
                        "the run was started with --seed {}; resume it with the same seed",
                        s.seed
                    ))
                }
            },
        )?;
        log(&format!(
            "resumed at epoch {}, batch {} (step {})",
            state.epoch + 1,
            state.batch_in_epoch,
            state.step
        ));
    }
    let minutes_before = state.minutes;
    let elapsed = |started: &Instant| minutes_before + started.elapsed().as_secs_f64() / 60.0;
    let mut last_checkpoint = Instant::now();
    // Evaluated as trained: f32, the same figures on every CPU.
    let infer = InferenceOptions {
        threads: opts.threads,
        context: Some(context),
        precision: Precision::F32,
        ..Default::default()
    };
    while state.epoch < opts.epochs {
        let batches = epoch_batches(&docs, context, opts.batch_size, opts.seed, state.epoch);
        let mut bar = EpochProgress::new(
            opts.progress,
            "",
            batches.len() as u64,
            state.batch_in_epoch as u64,
            (state.epoch + 1, opts.epochs),
        );
        let epoch_start = Instant::now();
        let mut epoch_tokens = 0usize;
        while state.batch_in_epoch < batches.len() {
            let batch = &batches[state.batch_in_epoch];
            let step_seed = opts.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ state.step as u64;
            let shards: Vec<Vec<&[Window]>> = batch
                .chunks(batch.len().div_ceil(opts.threads.max(1)))
                .map(|shard| vec![shard])
                .collect();
            let labelled: usize = batch
                .iter()
                .map(|w| {
                    docs[w.doc].labels[w.start..w.end]
                        .iter()
                        .filter(|l| **l != IGNORE)
                        .count()
                })
                .sum();
            let (model, encoder) = (&trainable.model, &trainable.encoder);
            let (loss, grads) = sharded_gradients(&shards, &vars, |shard| {
                let seed = step_seed ^ (shard[0].doc as u64) << 20 ^ shard[0].start as u64;
                let (loss, _) = shard_loss(model, encoder, &docs, shard, seed)?;
                loss / labelled.max(1) as f64
            })?;
            let factor = schedule(state.step, warmup, total_steps);
            optimizer.step(&grads, factor, opts.threads)?;
            state.step += 1;
            state.batch_in_epoch += 1;
            state.loss_sum += loss;
            state.loss_batches += 1;
            epoch_tokens += batch.iter().map(|w| w.end - w.start).sum::<usize>();
            let rate = epoch_tokens as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.4} · {:.0} tokens/s",
                state.loss_sum / state.loss_batches as f64,
                rate
            ));
            bar.inc(log);
            let out_of_time = opts.max_minutes.is_some_and(|m| elapsed(&started) >= m);
            if out_of_time
                || last_checkpoint.elapsed().as_secs_f64() >= opts.checkpoint_minutes * 60.0
            {
                state.minutes = elapsed(&started);
                save_resumable(&resume_dir, &state, &optimizer)?;
                last_checkpoint = Instant::now();
            }
            if out_of_time {
                bar.abandon();
                log(&format!(
                    "stopped after {:.1} minutes (--max-minutes) at epoch {}, batch {}; continue with --resume",
                    elapsed(&started),
                    state.epoch + 1,
                    state.batch_in_epoch
                ));
                return Ok(TrainOutcome {
                    history: state.history,
                    finished: false,
                    model: trainable,
                });
            }
        }
        bar.finish();
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let train_loss = state.loss_sum / state.loss_batches.max(1) as f64;
        let dev_f1 = match &dev_docs {
            Some(dev) => {
                let tagger = trainable.tagger(infer);
                let t = Instant::now();
                let counts =
                    evaluate(dev, &tagger).map_err(|e| ModelError::Evaluation(Box::new(e)))?;
                let report = NerReport::new(
                    &counts,
                    dev.iter().map(|d| d.sentences.len()).sum(),
                    "model",
                    Some(t.elapsed().as_secs_f64()),
                );
                log(&report.table());
                Some(report.micro.f1)
            }
            None => None,
        };
        let record = EpochRecord {
            epoch: state.epoch + 1,
            steps: state.step,
            train_loss,
            dev_f1,
            minutes: elapsed(&started),
        };
        log(&format!(
            "epoch {}: train loss {:.4}, dev F1 {}, {:.1} minutes, {:.0} training tokens/s",
            record.epoch,
            train_loss,
            dev_f1.map_or("-".into(), |f| format!("{f:.4}")),
            record.minutes,
            epoch_tokens as f64 / train_seconds.max(1e-9)
        ));
        state.history.push(record);
        let better = match (dev_f1, state.best_f1) {
            (Some(f), Some(b)) => f > b,
            (Some(_), None) | (None, _) => true,
        };
        if better {
            state.best_f1 = dev_f1.or(state.best_f1);
            trainable.save(&opts.out, context, opts.half)?;
            log(&format!("saved the model to {}", opts.out.display()));
        }
        std::fs::write(
            opts.out.join("training.json"),
            serde_json::to_string_pretty(&state.history).expect("history serialises"),
        )
        .map_err(|e| ModelError::Weights {
            path: opts.out.clone(),
            message: e.to_string(),
        })?;
        state.epoch += 1;
        state.batch_in_epoch = 0;
        state.loss_sum = 0.0;
        state.loss_batches = 0;
        state.minutes = elapsed(&started);
        save_resumable(&resume_dir, &state, &optimizer)?;
        last_checkpoint = Instant::now();
    }
    Ok(TrainOutcome {
        history: state.history,
        finished: true,
        model: trainable,
    })
}

/// What a training run leaves: its history and the model in memory (the last
/// step's weights; the best epoch is what was saved).
pub struct TrainOutcome {
    pub history: Vec<EpochRecord>,
    /// False when `--max-minutes` stopped the run (resume it).
    pub finished: bool,
    pub model: Trainable,
}

/// One data-parallel step: each shard runs in its own worker, where its pieces'
/// losses are computed and differentiated one after another, and the gradients of
/// `vars` are summed over every piece. A worker holds one piece's graph at a time, so
/// cutting a large shard into pieces bounds the step's memory without changing the sum.
/// Returns the summed loss and the gradients in the order of `vars`.
pub fn sharded_gradients<P: Sync>(
    shards: &[Vec<P>],
    vars: &[(String, Var)],
    loss_of: impl Fn(&P) -> candle_core::Result<Tensor> + Sync,
) -> candle_core::Result<(f64, Vec<Option<Tensor>>)> {
    let results = threads::map_workers(shards.len(), shards, |pieces| {
        let mut value = 0.0;
        let mut per_var: Vec<Option<Tensor>> = vec![None; vars.len()];
        for piece in pieces {
            let loss = loss_of(piece)?;
            let grads = loss.backward()?;
            value += loss.to_scalar::<f32>()? as f64;
            let piece_grads = vars.iter().map(|(_, v)| grads.get(v).cloned());
            add_gradients(&mut per_var, piece_grads)?;
        }
        Ok::<_, candle_core::Error>((value, per_var))
    })?;
    let mut loss = 0.0;
    let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
    for (l, g) in results {
        loss += l;
        add_gradients(&mut grads, g)?;
    }
    Ok((loss, grads))
}

/// Adds `more` into `sum`, variable by variable (a variable without a gradient adds nothing).
fn add_gradients(
    sum: &mut [Option<Tensor>],
    more: impl IntoIterator<Item = Option<Tensor>>,
) -> candle_core::Result<()> {
    for (acc, g) in sum.iter_mut().zip(more) {
        *acc = match (acc.take(), g) {
            (Some(a), Some(b)) => Some((a + b)?),
            (a, b) => a.or(b),
        };
    }
    Ok(())
}

/// Share of an epoch between two progress lines when stderr is not a terminal.
pub const PROGRESS_LINE_EVERY: f64 = 0.05;

/// How far an epoch is: a bar when stderr is a terminal; anywhere else (a log file, a
/// batch job's output) a plain line every [`PROGRESS_LINE_EVERY`] of the epoch, because a
/// run of hours that says nothing until its end cannot be told from a hung one.
pub(crate) struct EpochProgress {
    bar: indicatif::ProgressBar,
    /// Write lines instead of drawing (progress wanted, no terminal to draw on).
    lines: bool,
    /// Put before "epoch", to tell the stages of one run apart.
    prefix: &'static str,
    epoch: usize,
    epochs: usize,
    /// Position at the start (a resumed epoch starts past 0), so the pace counts this run only.
    first: u64,
    /// Steps between two lines.
    every: u64,
    message: String,
    started: Instant,
}

impl EpochProgress {
    pub(crate) fn new(
        show: bool,
        prefix: &'static str,
        len: u64,
        position: u64,
        (epoch, epochs): (usize, usize),
    ) -> EpochProgress {
        let bar = if show {
            let bar = indicatif::ProgressBar::new(len);
            let what = if epochs == 0 {
                format!("{prefix} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}}")
            } else {
                format!("{prefix}epoch {epoch}/{epochs} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} steps")
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!("{what} · eta {{eta}} · {{msg}}"))
                    .expect("a valid template"),
            );
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_position(position);
        EpochProgress {
            lines: show && bar.is_hidden(),
            bar,
            prefix,
            epoch,
            epochs,
            first: position,
            every: ((len as f64 * PROGRESS_LINE_EVERY).ceil() as u64).max(1),
            message: String::new(),
            started: Instant::now(),
        }
    }

    /// Progress over `len` items of one pass that is no epoch (reading the documents before
    /// training): lines read "{what}: 120 of 2400 (5%), ...".
    pub(crate) fn items(show: bool, what: &'static str, len: u64) -> EpochProgress {
        EpochProgress::new(show, what, len, 0, (0, 0))
    }

    /// Shown after the counts (the bar's `{msg}`, or the end of a line).
    pub(crate) fn set_message(&mut self, message: String) {
        if self.lines {
            self.message = message;
        } else {
            self.bar.set_message(message);
        }
    }

    /// One step done; `log` gets the line when one is due.
    pub(crate) fn inc(&mut self, log: &mut dyn FnMut(&str)) {
        self.bar.inc(1);
        let position = self.bar.position();
        if self.lines
            && (position.is_multiple_of(self.every) || Some(position) == self.bar.length())
        {
            log(&self.line(position));
        }
    }

    fn line(&self, position: u64) -> String {
        let len = self.bar.length().unwrap_or(position).max(1);
        let minutes = self.started.elapsed().as_secs_f64() / 60.0;
        let done = position.saturating_sub(self.first).max(1) as f64;
        let left = minutes / done * len.saturating_sub(position) as f64;
        let message = if self.message.is_empty() {
            String::new()
        } else {
            format!(" · {}", self.message)
        };
        let what = if self.epochs == 0 {
            format!("{}: {position} of {len}", self.prefix)
        } else {
            format!(
                "{}epoch {}/{}: step {position} of {len}",
                self.prefix, self.epoch, self.epochs
            )
        };
        format!(
            "{what} ({:.0}%), {minutes:.1} minutes, about {left:.0} minutes left{message}",
            100.0 * position as f64 / len as f64,
        )
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    pub(crate) fn abandon(&self) {
        self.bar.abandon();
    }
}

/// Index of the first wordpiece of each labelled token (for tests).
#[doc(hidden)]
pub fn debug_labels(
    doc: &Document,
    encoder: &TextEncoder,
) -> Result<Vec<(String, i64)>, ModelError> {
    let label_ids: HashMap<&str, i64> = NER_LABELS
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, i as i64))
        .collect();
    let lt = label_document(doc, encoder, &label_ids)?;
    let text = doc.text().text;
    Ok(lt
        .tokens
        .spans
        .iter()
        .zip(lt.labels)
        .map(|(s, l)| (s.text(&text).to_string(), l))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_a_shard_sum_to_the_gradient_of_the_whole() {
        let x = Var::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let vars = vec![("x".to_string(), x.clone())];
        // Loss of a piece: weight * sum(x^2), so its gradient is 2 * weight * x.
        let loss_of = |weights: &Vec<f64>| {
            let w: f64 = weights.iter().sum();
            x.as_tensor().sqr()?.sum_all()? * w
        };
        let whole = sharded_gradients(&[vec![vec![1.0, 2.0, 0.5]]], &vars, loss_of).unwrap();
        let cut = sharded_gradients(
            &[vec![vec![1.0], vec![2.0]], vec![vec![0.5]]],
            &vars,
            loss_of,
        )
        .unwrap();
        let grad = |g: &[Option<Tensor>]| g[0].as_ref().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(grad(&whole.1), vec![7.0, -14.0, 21.0]);
        assert_eq!(grad(&cut.1), grad(&whole.1));
        assert!((whole.0 - 49.0).abs() < 1e-9 && (cut.0 - 49.0).abs() < 1e-9);
    }
}
