//! Actor-role tagging: fine-tunes a trained entity model so that the same
//! encoder pass also says, for every token, whether it names the actor of a
//! threat, an accusation or a proposal in its sentence.
//!
//! The entity head keeps its behaviour by learning from its own predictions
//! on the same text (self-distillation), so entities and roles come from one
//! encoder, one pass. Roles are learned only on tokens that can be actors
//! (inside a mention), and statements marked ambiguous are left out.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{Device, Tensor, D};

use super::checkpoint::{Checkpoint, TokenClassifier};
use super::encoder::Mode;
use super::inputs::{TextEncoder, Tokens};
use super::ops::SplitMix64;
use super::optim::{schedule, AdamW, AdamWConfig};
use super::tagger::{InferenceOptions, ModelTagger};
use super::threads;
use super::train::{epoch_batches, progress_bar, Base, LabelledTokens, Trainable, Window, IGNORE};
use super::ModelError;
use crate::span::Span;

/// A training text and its statements' actors (byte spans, label index 0..3, ambiguous).
#[derive(Debug, Clone)]
pub struct RoleExample {
    pub text: String,
    pub actors: Vec<(Span, usize, bool)>,
}

#[derive(Debug, Clone)]
pub struct RoleOptions {
    /// The trained entity model to start from.
    pub model: PathBuf,
    pub out: PathBuf,
    pub epochs: usize,
    pub lr: f64,
    pub batch_size: usize,
    pub seed: u64,
    pub threads: usize,
    /// Share of documents held back to choose the epoch.
    pub holdout: f64,
    pub positive_weight: f64,
    /// Weight of the entity (self-distillation) loss.
    pub ner_weight: f64,
    pub progress: bool,
}

/// A document as tokens with teacher entity labels and role targets.
struct RoleDoc {
    lt: LabelledTokens,
    roles: Vec<[f32; 3]>,
    /// 1 where the role loss applies (a candidate token, not ambiguous).
    mask: Vec<[f32; 3]>,
}

fn prepare(
    ex: &RoleExample,
    encoder: &TextEncoder,
    teacher: &ModelTagger,
) -> Result<RoleDoc, ModelError> {
    let whole = Span::new(0, ex.text.len());
    let tokens: Tokens = encoder.encode(&ex.text, whole)?;
    let probs = teacher
        .probabilities(&ex.text, &[whole])?
        .pop()
        .unwrap_or_default();
    let labels: Vec<i64> = probs
        .iter()
        .map(|t| {
            t.probs
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &p)| if p > b.1 { (i, p) } else { b })
                .0 as i64
        })
        .collect();
    let mut roles = vec![[0f32; 3]; tokens.len()];
    let mut mask = vec![[0f32; 3]; tokens.len()];
    let mut ambiguous = vec![[false; 3]; tokens.len()];
    for (t, span) in tokens.spans.iter().enumerate() {
        // Candidate tokens: inside a predicted entity, or inside a gold actor.
        let in_entity = labels.get(t).is_some_and(|&l| l != 0);
        let in_actor = ex.actors.iter().any(|(a, _, _)| a.overlaps(span));
        if in_entity || in_actor {
            mask[t] = [1.0; 3];
        }
        for (a, k, amb) in &ex.actors {
            if a.overlaps(span) {
                if *amb {
                    ambiguous[t][*k] = true;
                } else {
                    roles[t][*k] = 1.0;
                }
            }
        }
        for k in 0..3 {
            if ambiguous[t][k] && roles[t][k] == 0.0 {
                mask[t][k] = 0.0;
            }
        }
    }
    Ok(RoleDoc {
        lt: LabelledTokens { tokens, labels },
        roles,
        mask,
    })
}

/// Summed entity cross-entropy and weighted role cross-entropy of one shard.
fn shard_loss(
    model: &TokenClassifier,
    encoder: &TextEncoder,
    docs: &[RoleDoc],
    windows: &[Window],
    seed: u64,
    positive_weight: f64,
) -> candle_core::Result<(Tensor, Tensor)> {
    let device = Device::Cpu;
    let rows: Vec<(&Tokens, std::ops::Range<usize>)> = windows
        .iter()
        .map(|w| (&docs[w.doc].lt.tokens, w.start..w.end))
        .collect();
    let (ids, mask, shapes) = encoder.batch(&rows, &device)?;
    let (b, len) = ids.dims2()?;
    let mut targets = vec![IGNORE; b * len];
    let mut roles = vec![0f32; b * len * 3];
    let mut role_mask = vec![0f32; b * len * 3];
    for (r, w) in windows.iter().enumerate() {
        let d = &docs[w.doc];
        for (k, t) in (w.start..w.end).enumerate() {
            let row = r * len + 1 + k;
            targets[row] = d.lt.labels[t];
            roles[row * 3..row * 3 + 3].copy_from_slice(&d.roles[t]);
            role_mask[row * 3..row * 3 + 3].copy_from_slice(&d.mask[t]);
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
    let out = model.forward_outputs(
        &ids,
        &mask,
        model.casing.then_some(&shapes),
        false,
        &mut mode,
    )?;
    let labels = out.logits.dim(D::Minus1)?;
    let flat = out.logits.reshape((b * len, labels))?;
    let picked = flat.index_select(&Tensor::from_vec(positions, n, &device)?, 0)?;
    let logp = candle_nn::ops::log_softmax(&picked, D::Minus1)?;
    let ner = logp
        .gather(&Tensor::from_vec(gold, (n, 1), &device)?, 1)?
        .sum_all()?
        .neg()?;
    let z = out.roles.expect("the role head").reshape((b * len, 3))?;
    let y = Tensor::from_vec(roles, (b * len, 3), &device)?;
    let m = Tensor::from_vec(role_mask, (b * len, 3), &device)?;
    let softplus = |z: &Tensor| -> candle_core::Result<Tensor> {
        z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?
    };
    let pos = ((&y * positive_weight)? * softplus(&z.neg()?)?)?;
    let neg = ((1.0 - &y)? * softplus(&z)?)?;
    let role = ((pos + neg)? * m)?.sum_all()?;
    Ok((ner, role))
}

/// Token-level role F1 (logit > 0) on documents, over candidate tokens.
fn role_f1(
    tagger: &ModelTagger,
    texts: &[&RoleExample],
    docs: &[&RoleDoc],
) -> Result<f64, ModelError> {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (ex, d) in texts.iter().zip(docs) {
        let (_, mut states) = tagger.run(&ex.text, &[Span::new(0, ex.text.len())], true)?;
        let st = states.pop().unwrap_or_default();
        for (t, r) in st.roles.iter().enumerate() {
            for (k, logit) in r.iter().enumerate() {
                if d.mask[t][k] == 0.0 {
                    continue;
                }
                match (*logit > 0.0, d.roles[t][k] > 0.5) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    _ => {}
                }
            }
        }
    }
    Ok(if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    })
}

/// Fine-tunes `opts.model` into `opts.out` with the role head; returns the best held-out role F1.
pub fn train_roles(
    opts: &RoleOptions,
    examples: &[RoleExample],
    log: &mut dyn FnMut(&str),
) -> Result<f64, ModelError> {
    let started = Instant::now();
    let ck = Checkpoint::open(&opts.model)?;
    let base = Base::open(&opts.model)?;
    let labels: Vec<&str> = ck.labels.iter().map(|s| s.as_str()).collect();
    let trainable = Trainable::from_weights(
        &base,
        &labels,
        ck.config.stance_casing,
        true,
        true,
        opts.seed,
    )?;
    let context = ck
        .config
        .stance_context
        .unwrap_or(256)
        .min(trainable.model.encoder.max_len() - 2);
    let infer = InferenceOptions {
        threads: opts.threads,
        context: Some(context),
        ..Default::default()
    };
    let teacher = ModelTagger::load(&ck, infer)?;
    let docs: Vec<RoleDoc> = examples
        .iter()
        .map(|e| prepare(e, &trainable.encoder, &teacher))
        .collect::<Result<_, _>>()?;
    drop(teacher);
    let mut rng = SplitMix64(opts.seed ^ 0x401E);
    let held: Vec<bool> = (0..docs.len())
        .map(|_| (rng.next_f32() as f64) < opts.holdout)
        .collect();
    // Training windows come only from documents not held back.
    let train_docs: Vec<LabelledTokens> = docs
        .iter()
        .zip(&held)
        .map(|(d, h)| LabelledTokens {
            tokens: if *h {
                Tokens::default()
            } else {
                d.lt.tokens.clone()
            },
            labels: d.lt.labels.clone(),
        })
        .collect();
    let held_ex: Vec<&RoleExample> = examples
        .iter()
        .zip(&held)
        .filter(|(_, h)| **h)
        .map(|(e, _)| e)
        .collect();
    let held_docs: Vec<&RoleDoc> = docs
        .iter()
        .zip(&held)
        .filter(|(_, h)| **h)
        .map(|(d, _)| d)
        .collect();
    let steps_per_epoch = epoch_batches(&train_docs, context, opts.batch_size, opts.seed, 0).len();
    let total = steps_per_epoch * opts.epochs;
    let warmup = total / 10;
    let positives: usize = docs
        .iter()
        .flat_map(|d| &d.roles)
        .map(|r| r.iter().filter(|v| **v > 0.5).count())
        .sum();
    log(&format!(
        "role training: {} documents ({} held back), {} positive role tokens, {} steps per epoch",
        docs.len(),
        held_docs.len(),
        positives,
        steps_per_epoch
    ));
    let vars = trainable.named_vars();
    let mut optimizer = AdamW::new(
        vars.clone(),
        AdamWConfig {
            lr: opts.lr,
            ..Default::default()
        },
    )?;
    // The role head starts from scratch: it learns at a higher rate than the encoder.
    optimizer.scale_lr(super::checkpoint::ROLE_HEAD, 30.0);
    let mut best = f64::MIN;
    let mut step = 0usize;
    for epoch in 0..opts.epochs {
        let batches = epoch_batches(&train_docs, context, opts.batch_size, opts.seed, epoch);
        let bar = progress_bar(opts.progress, batches.len() as u64, epoch + 1, opts.epochs);
        let mut loss_sum = 0.0;
        for batch in &batches {
            let shards: Vec<&[Window]> = batch
                .chunks(batch.len().div_ceil(opts.threads.max(1)))
                .collect();
            let ner_n: usize = batch.iter().map(|w| w.end - w.start).sum();
            let role_n: f32 = batch
                .iter()
                .map(|w| {
                    docs[w.doc].mask[w.start..w.end]
                        .iter()
                        .map(|m| m.iter().sum::<f32>())
                        .sum::<f32>()
                })
                .sum();
            let step_seed = opts.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ step as u64;
            let (model, encoder, docs_ref, vars_ref) =
                (&trainable.model, &trainable.encoder, &docs, &vars);
            let results = threads::map_workers(
                shards.len(),
                &shards,
                |shard| -> candle_core::Result<(f64, Vec<Option<Tensor>>)> {
                    let seed = step_seed ^ ((shard[0].doc as u64) << 20) ^ shard[0].start as u64;
                    let (ner, role) =
                        shard_loss(model, encoder, docs_ref, shard, seed, opts.positive_weight)?;
                    let loss = ((ner * (opts.ner_weight / ner_n.max(1) as f64))?
                        + (role / role_n.max(1.0) as f64)?)?;
                    let grads = loss.backward()?;
                    Ok((
                        loss.to_scalar::<f32>()? as f64,
                        vars_ref
                            .iter()
                            .map(|(_, v)| grads.get(v).cloned())
                            .collect(),
                    ))
                },
            )?;
            let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
            for (l, g) in results {
                loss_sum += l;
                for (acc, gi) in grads.iter_mut().zip(g) {
                    *acc = match (acc.take(), gi) {
                        (Some(a), Some(b)) => Some((a + b)?),
                        (a, b) => a.or(b),
                    };
                }
            }
            optimizer.step(&grads, schedule(step, warmup, total), opts.threads)?;
            step += 1;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let f1 = if held_docs.is_empty() {
            0.0
        } else {
            role_f1(&trainable.tagger(infer), &held_ex, &held_docs)?
        };
        log(&format!(
            "role epoch {}: loss {:.4}, held-out role F1 (tokens) {:.4}, {:.1} minutes",
            epoch + 1,
            loss_sum / batches.len().max(1) as f64,
            f1,
            started.elapsed().as_secs_f64() / 60.0
        ));
        if f1 > best {
            best = f1;
            trainable.save(&opts.out, context, false)?;
            log(&format!("saved {}", opts.out.display()));
        }
    }
    Ok(best)
}
