//! The learned actor classifier: for each candidate actor (an entity mention)
//! its sentence is read by a fine-tuned encoder with the mention wrapped in
//! marker tokens (`[unused0] Kerry [unused1] warned ...`), and a head over the
//! `[CLS]` and opening-marker states scores threat, accusation and proposal.
//!
//! Marking the mention tells the encoder whose act to judge, which a shared
//! per-token pass cannot: role tagging inside the entity encoder reached a token
//! F1 of 0.20, and statement F1 0.58 on dev where this classifier reaches 0.66
//! (see `models/MODEL_CARD.md`). The price is one encoder pass per candidate over
//! its sentence: about three times the time of the entity pass (docs/results.md).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StanceError};
use crate::model::checkpoint::{load_tokenizer, Checkpoint, TokenClassifier};
use crate::model::encoder::{dense, Dense, Mode};
use crate::model::inputs::{TextEncoder, Tokens, SHAPE_OTHER};
use crate::model::ops::SplitMix64;
use crate::model::optim::{schedule, AdamW, AdamWConfig};
use crate::model::threads;
use crate::model::train::{sharded_gradients, Base, Trainable};
use crate::model::ModelError;
use crate::span::Span;

/// Longest sentence piece read around a mention, in word pieces.
pub const MAX_PIECE: usize = 126;

/// Name of the head's weights.
const HEAD: &str = "actor_head";

/// What `stance_markers.json` records next to the weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MarkerConfig {
    /// Decision threshold per label (threat, accusation, proposal), chosen on held-out documents.
    pub thresholds: [f32; 3],
    /// Held-out micro F1 (candidate level) at those thresholds.
    pub heldout_f1: f64,
    pub epochs: usize,
    #[serde(default)]
    pub trained_on: Vec<String>,
}

/// The encoder plus the actor head.
pub struct MarkerModel {
    pub model: TokenClassifier,
    pub head: Dense,
    pub text: TextEncoder,
    open: u32,
    close: u32,
    pub config: MarkerConfig,
}

/// One candidate: the tokens of its sentence and the mention's token range in them.
pub struct Candidate<'a> {
    pub tokens: &'a Tokens,
    pub mention: Range<usize>,
}

fn marker_ids(text: &TextEncoder, path: &Path) -> std::result::Result<(u32, u32), ModelError> {
    let get = |t: &str| {
        text.tokenizer
            .token_to_id(t)
            .ok_or_else(|| ModelError::Tokenizer {
                path: path.into(),
                message: format!("no {t} token to mark mentions with"),
            })
    };
    Ok((get("[unused0]")?, get("[unused1]")?))
}

fn err(e: candle_core::Error) -> StanceError {
    StanceError::ModelUnavailable(format!("actor classifier: {e}"))
}

impl MarkerModel {
    /// Loads `dir` (a token-classification checkpoint with `actor_head.*` and `stance_markers.json`).
    pub fn load(dir: &Path) -> Result<MarkerModel> {
        let ck = Checkpoint::open(dir)?;
        let bad = |m: String| StanceError::ModelUnavailable(format!("{}: {m}", dir.display()));
        let text = std::fs::read_to_string(dir.join("stance_markers.json"))
            .map_err(|e| bad(format!("stance_markers.json: {e}")))?;
        let config: MarkerConfig =
            serde_json::from_str(&text).map_err(|e| bad(format!("stance_markers.json: {e}")))?;
        let (_, vb) =
            crate::model::checkpoint::open_weights(&ck.weights, DType::F32, &Device::Cpu)?;
        let model = TokenClassifier::build(
            &ck.config,
            ck.arch,
            ck.labels.clone(),
            ck.arch.prefix(),
            vb.clone(),
        )
        .map_err(|e| bad(e.to_string()))?;
        let head = dense(2 * ck.config.hidden_size, 3, vb.pp(HEAD))
            .map_err(|e| bad(format!("{HEAD}: {e}")))?;
        let tokenizer = load_tokenizer(&ck.tokenizer, ck.config.vocab_size)?;
        let text = TextEncoder::new(tokenizer, ck.config.pad_token_id as u32)?;
        let (open, close) = marker_ids(&text, &ck.tokenizer)?;
        Ok(MarkerModel {
            model,
            head,
            text,
            open,
            close,
            config,
        })
    }

    /// The ids, shapes and opening-marker position of one candidate's input.
    fn input(&self, c: &Candidate) -> (Vec<u32>, Vec<u32>, usize) {
        let n = c.tokens.len();
        // A window of at most MAX_PIECE tokens that keeps the mention near its middle.
        let (start, end) = if n <= MAX_PIECE {
            (0, n)
        } else {
            let centre = (c.mention.start + c.mention.end) / 2;
            let start = centre.saturating_sub(MAX_PIECE / 2).min(n - MAX_PIECE);
            (start, start + MAX_PIECE)
        };
        let mut ids = vec![self.text.cls];
        let mut shapes = vec![SHAPE_OTHER];
        let mut marker = 0;
        for t in start..end {
            if t == c.mention.start {
                marker = ids.len();
                ids.push(self.open);
                shapes.push(SHAPE_OTHER);
            }
            ids.push(c.tokens.ids[t]);
            shapes.push(c.tokens.shapes[t]);
            if t + 1 == c.mention.end {
                ids.push(self.close);
                shapes.push(SHAPE_OTHER);
            }
        }
        ids.push(self.text.sep);
        shapes.push(SHAPE_OTHER);
        (ids, shapes, marker)
    }

    /// Label logits `[n, 3]` of a batch of candidates.
    pub fn logits(&self, cands: &[Candidate], mode: &mut Mode) -> candle_core::Result<Tensor> {
        let inputs: Vec<(Vec<u32>, Vec<u32>, usize)> =
            cands.iter().map(|c| self.input(c)).collect();
        let len = inputs.iter().map(|i| i.0.len()).max().unwrap_or(2);
        let (mut ids, mut mask, mut shapes, mut pos) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (r, (i, s, m)) in inputs.iter().enumerate() {
            ids.extend_from_slice(i);
            ids.extend(std::iter::repeat_n(self.text.pad, len - i.len()));
            mask.extend(std::iter::repeat_n(1u32, i.len()));
            mask.extend(std::iter::repeat_n(0u32, len - i.len()));
            shapes.extend_from_slice(s);
            shapes.extend(std::iter::repeat_n(SHAPE_OTHER, len - i.len()));
            pos.push((r * len) as u32);
            pos.push((r * len + m) as u32);
        }
        let b = cands.len();
        let dev = Device::Cpu;
        let ids = Tensor::from_vec(ids, (b, len), &dev)?;
        let mask = Tensor::from_vec(mask, (b, len), &dev)?;
        let shapes = Tensor::from_vec(shapes, (b, len), &dev)?;
        let hidden =
            self.model
                .encoder
                .forward(&ids, &mask, self.model.casing.then_some(&shapes), mode)?;
        let h = hidden.dim(D::Minus1)?;
        let picked = hidden
            .reshape((b * len, h))?
            .index_select(&Tensor::from_vec(pos, 2 * b, &dev)?, 0)?;
        self.head.forward(&picked.reshape((b, 2 * h))?)
    }

    /// Probabilities `[threat, accusation, proposal]` of each candidate, in batches over worker threads.
    pub fn probabilities(
        &self,
        cands: &[Candidate],
        batch: usize,
        workers: usize,
    ) -> Result<Vec<[f32; 3]>> {
        let lengths: Vec<usize> = cands.iter().map(|c| c.tokens.len()).collect();
        threads::map_batches(&lengths, batch, workers, |b| {
            let cs: Vec<Candidate> = b
                .iter()
                .map(|&i| Candidate {
                    tokens: cands[i].tokens,
                    mention: cands[i].mention.clone(),
                })
                .collect();
            let probs =
                candle_nn::ops::sigmoid(&self.logits(&cs, &mut Mode::Infer)?)?.to_vec2::<f32>()?;
            Ok(probs.into_iter().map(|p| [p[0], p[1], p[2]]).collect())
        })
        .map_err(err)
    }
}

/// Token range of `span` within `tokens` (tokens that overlap it).
pub fn mention_range(tokens: &Tokens, span: Span) -> Option<Range<usize>> {
    let start = tokens.spans.iter().position(|t| t.overlaps(&span))?;
    let end = tokens.spans.iter().rposition(|t| t.overlaps(&span))? + 1;
    Some(start..end)
}

/// A training candidate: its sentence's tokens (by index), mention range and labels.
pub struct Example {
    pub sentence: usize,
    pub mention: Range<usize>,
    pub y: [f32; 3],
    pub mask: [f32; 3],
    pub doc: usize,
}

#[derive(Debug, Clone)]
pub struct MarkerTrainOptions {
    pub start: PathBuf,
    pub out: PathBuf,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    /// Share of negative candidates used per epoch (each epoch draws its own).
    pub negatives: f64,
    pub positive_weight: f64,
    pub seed: u64,
    pub threads: usize,
    pub progress: bool,
}

fn softplus(z: &Tensor) -> candle_core::Result<Tensor> {
    z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// F1 from counts, `2tp / (2tp + fp + fn)` (0 without a true positive).
pub fn f1_of(tp: usize, fp: usize, fn_: usize) -> f64 {
    if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    }
}

/// Per label, the threshold among `tenths` (in tenths) that maximises the F1 of
/// "`fired(candidate, label)`, or the probability reaches the threshold", over
/// candidates whose label is not masked; with the micro F1 and the counts
/// (tp, fp, fn) at those thresholds.
pub fn best_thresholds(
    probs: &[[f32; 3]],
    ex: &[&Example],
    fired: &dyn Fn(usize, usize) -> bool,
    tenths: std::ops::RangeInclusive<u32>,
) -> ([f32; 3], f64, [(usize, usize, usize); 3]) {
    let mut thresholds = [0.5f32; 3];
    let mut counts = [(0, 0, 0); 3];
    for k in 0..3 {
        let mut best = (f64::MIN, 0.5f32, (0, 0, 0));
        for t in tenths.clone().map(|i| i as f32 / 10.0) {
            let (mut tp, mut fp, mut fn_) = (0, 0, 0);
            for (i, (p, e)) in probs.iter().zip(ex).enumerate() {
                // Masked labels, and soft targets of ambiguous gold, are optional: never counted.
                if e.mask[k] == 0.0 || (e.y[k] > 0.0 && e.y[k] < 1.0) {
                    continue;
                }
                match (fired(i, k) || p[k] >= t, e.y[k] > 0.5) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    _ => {}
                }
            }
            let f = f1_of(tp, fp, fn_);
            if f > best.0 {
                best = (f, t, (tp, fp, fn_));
            }
        }
        thresholds[k] = best.1;
        counts[k] = best.2;
    }
    let (tp, fp, fn_) = counts
        .iter()
        .fold((0, 0, 0), |a, c| (a.0 + c.0, a.1 + c.1, a.2 + c.2));
    (thresholds, f1_of(tp, fp, fn_), counts)
}

/// Best threshold per label (0.1 to 0.9) for the classifier alone.
pub fn tune_thresholds(
    probs: &[[f32; 3]],
    ex: &[&Example],
) -> ([f32; 3], f64, [(usize, usize, usize); 3]) {
    best_thresholds(probs, ex, &|_, _| false, 1..=9)
}

/// Fine-tunes the encoder of `opts.start` (an entity model) as an actor classifier.
/// `sentences` are tokenized sentences; `held` marks held-out documents.
pub fn train_markers(
    opts: &MarkerTrainOptions,
    sentences: &[Tokens],
    examples: &[Example],
    held: &dyn Fn(usize) -> bool,
    sources: Vec<String>,
    log: &mut dyn FnMut(&str),
) -> Result<MarkerConfig> {
    let started = Instant::now();
    let base = Base::open(&opts.start)?;
    let ck = Checkpoint::open(&opts.start)?;
    let labels: Vec<&str> = ck.labels.iter().map(|s| s.as_str()).collect();
    let trainable =
        Trainable::from_weights(&base, &labels, ck.config.stance_casing, true, opts.seed)?;
    let vb = VarBuilder::from_varmap(&trainable.varmap, DType::F32, &Device::Cpu);
    let head = dense(2 * ck.config.hidden_size, 3, vb.pp(HEAD)).map_err(err)?;
    let mut rng = SplitMix64(opts.seed ^ 0xAC70);
    {
        let vars = trainable.varmap.data().lock().expect("varmap lock");
        let w = &vars[&format!("{HEAD}.weight")];
        let values: Vec<f32> = (0..w.elem_count())
            .map(|_| rng.next_normal() * 0.02)
            .collect();
        w.set(&Tensor::from_vec(values, w.shape(), &Device::Cpu).map_err(err)?)
            .map_err(err)?;
        let b = &vars[&format!("{HEAD}.bias")];
        b.set(&b.zeros_like().map_err(err)?).map_err(err)?;
    }
    let (open, close) = marker_ids(&trainable.encoder, &ck.tokenizer)?;
    let mut model = MarkerModel {
        model: trainable.model.clone(),
        head,
        text: trainable.encoder.clone(),
        open,
        close,
        config: MarkerConfig {
            thresholds: [0.5; 3],
            heldout_f1: 0.0,
            epochs: opts.epochs,
            trained_on: sources,
        },
    };
    let vars = trainable.named_vars();
    let mut optimizer = AdamW::new(
        vars.clone(),
        AdamWConfig {
            lr: opts.lr,
            ..Default::default()
        },
    )
    .map_err(err)?;
    optimizer.scale_lr(HEAD, 20.0);
    let train: Vec<&Example> = examples.iter().filter(|e| !held(e.doc)).collect();
    let val: Vec<&Example> = examples.iter().filter(|e| held(e.doc)).collect();
    let positives: Vec<usize> = (0..train.len())
        .filter(|&i| train[i].y.iter().any(|v| *v > 0.5))
        .collect();
    let negatives: Vec<usize> = (0..train.len())
        .filter(|&i| train[i].y.iter().all(|v| *v < 0.5))
        .collect();
    let per_epoch = positives.len() + (negatives.len() as f64 * opts.negatives) as usize;
    let steps = per_epoch.div_ceil(opts.batch_size) * opts.epochs;
    log(&format!(
        "actor classifier: {} training candidates ({} positive), {} held out; {} steps",
        train.len(),
        positives.len(),
        val.len(),
        steps
    ));
    let cand = |e: &Example| Candidate {
        tokens: &sentences[e.sentence],
        mention: e.mention.clone(),
    };
    let mut step = 0usize;
    let mut best = f64::MIN;
    for epoch in 0..opts.epochs {
        let mut chosen = positives.clone();
        chosen.extend(
            negatives
                .iter()
                .copied()
                .filter(|_| (rng.next_f32() as f64) < opts.negatives),
        );
        rng.shuffle(&mut chosen);
        let pool = opts.batch_size * 32;
        for chunk in chosen.chunks_mut(pool) {
            chunk.sort_by_key(|&i| sentences[train[i].sentence].len());
        }
        let mut batches: Vec<Vec<usize>> =
            chosen.chunks(opts.batch_size).map(|c| c.to_vec()).collect();
        rng.shuffle(&mut batches);
        let bar = crate::model::train::progress_bar(
            opts.progress,
            batches.len() as u64,
            epoch + 1,
            opts.epochs,
        );
        let mut loss_sum = 0.0;
        for b in &batches {
            let shards: Vec<&[usize]> = b.chunks(b.len().div_ceil(opts.threads.max(1))).collect();
            let denom: f32 = b
                .iter()
                .map(|&i| train[i].mask.iter().sum::<f32>())
                .sum::<f32>()
                .max(1.0);
            let seed = opts.seed.wrapping_mul(0x9E37) ^ step as u64;
            let m = &model;
            let (loss, grads) = sharded_gradients(&shards, &vars, |shard| {
                let cs: Vec<Candidate> = shard.iter().map(|&i| cand(train[i])).collect();
                let mut mode = Mode::Train {
                    seed: seed ^ shard[0] as u64,
                };
                let z = m.logits(&cs, &mut mode)?;
                let n = shard.len();
                let y = Tensor::from_vec(
                    shard.iter().flat_map(|&i| train[i].y).collect::<Vec<f32>>(),
                    (n, 3),
                    &Device::Cpu,
                )?;
                let mk = Tensor::from_vec(
                    shard
                        .iter()
                        .flat_map(|&i| train[i].mask)
                        .collect::<Vec<f32>>(),
                    (n, 3),
                    &Device::Cpu,
                )?;
                let pos = ((&y * opts.positive_weight)? * softplus(&z.neg()?)?)?;
                let neg = ((1.0 - &y)? * softplus(&z)?)?;
                ((pos + neg)? * mk)?.sum_all()? / denom as f64
            })
            .map_err(err)?;
            loss_sum += loss;
            optimizer
                .step(&grads, schedule(step, steps / 10, steps), opts.threads)
                .map_err(err)?;
            step += 1;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let cs: Vec<Candidate> = val.iter().map(|e| cand(e)).collect();
        let probs = model.probabilities(&cs, 32, opts.threads)?;
        let (thresholds, micro, counts) = tune_thresholds(&probs, &val);
        log(&format!(
            "actor epoch {}: loss {:.4}, held-out micro F1 {:.4} (thresholds {:?}; tp/fp/fn {:?}), {:.1} minutes",
            epoch + 1,
            loss_sum / batches.len().max(1) as f64,
            micro,
            thresholds,
            counts,
            started.elapsed().as_secs_f64() / 60.0
        ));
        if micro > best {
            best = micro;
            model.config.thresholds = thresholds;
            model.config.heldout_f1 = micro;
            model.config.epochs = epoch + 1;
            save(&trainable, &model, &opts.out)?;
            log(&format!("saved {}", opts.out.display()));
        }
    }
    Ok(model.config)
}

fn save(trainable: &Trainable, model: &MarkerModel, out: &Path) -> Result<()> {
    let context = MAX_PIECE;
    trainable.save(out, context, false)?;
    let text = serde_json::to_string_pretty(&model.config).expect("config serialises");
    std::fs::write(out.join("stance_markers.json"), text + "\n").map_err(|source| StanceError::Io {
        path: out.join("stance_markers.json"),
        source,
    })
}
