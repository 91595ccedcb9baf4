//! `stance train stance`: fits the stance heads of [`super::model`] on gold
//! documents, over a trained entity model whose encoder states they read.
//!
//! Every gold document is run through the entity model (as at inference, so
//! the heads learn from the mentions they will see), its mentions become
//! candidate actors, and a candidate is positive for a label when a gold
//! statement's actor overlaps it. Statements marked ambiguous are left out of
//! the loss. A share of the training documents is held back to pick the
//! epoch and the decision thresholds; the dev data is never looked at here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};

use super::model::{
    file_sha256, Analysis, StanceConfig, StanceHeads, EXTRA_FEATURES, TARGET_EXTRA,
};
use super::rules::RuleClassifier;
use super::StanceLabel;
use crate::actors::link;
use crate::doc::Doc;
use crate::error::{Result, StanceError};
use crate::eval::stance::GoldDoc;
use crate::model::ops::SplitMix64;
use crate::model::optim::{AdamW, AdamWConfig};
use crate::model::tagger::ModelTagger;
use crate::ner::EntityTagger;
use crate::span::{CharMap, CharSpan};

#[derive(Debug, Clone)]
pub struct StanceTrainOptions {
    /// Directory of the entity model whose encoder the heads read.
    pub ner_model: PathBuf,
    pub out: PathBuf,
    pub epochs: usize,
    pub lr: f64,
    pub hidden: usize,
    pub seed: u64,
    /// Share of training documents held back for choosing epoch and thresholds.
    pub holdout: f64,
    /// Weight of positive examples in the loss (positives are rare).
    pub positive_weight: f64,
}

impl Default for StanceTrainOptions {
    fn default() -> Self {
        StanceTrainOptions {
            ner_model: PathBuf::from("models/ner"),
            out: PathBuf::from("models/stance"),
            epochs: 40,
            lr: 1e-3,
            hidden: 256,
            seed: 42,
            holdout: 0.15,
            positive_weight: 2.0,
        }
    }
}

/// One candidate actor with its features and labels.
struct ActorExample {
    doc: usize,
    x: Vec<f32>,
    y: [f32; 3],
    /// 0 where the label is ambiguous for this candidate (left out of the loss).
    mask: [f32; 3],
}

/// One gold statement: the candidate targets' features and the right one.
struct TargetExample {
    doc: usize,
    rows: Vec<Vec<f32>>,
    gold: usize,
}

/// The indices, in the rule-feature block of actor features, zeroed for the pure model.
fn rule_block() -> std::ops::Range<usize> {
    0..9
}

fn overlaps(a: CharSpan, b: (usize, usize)) -> bool {
    a.start < b.1 && b.0 < a.end
}

/// Runs the entity model over the gold documents and collects examples.
fn collect(
    docs: &[GoldDoc],
    tagger: &ModelTagger,
    log: &mut dyn FnMut(&str),
) -> Result<(Vec<ActorExample>, Vec<TargetExample>, usize)> {
    let rules = RuleClassifier::default();
    let mut actors_out = Vec::new();
    let mut targets_out = Vec::new();
    let mut dim = 0;
    let (mut gold_n, mut found_n) = (0usize, 0usize);
    for (d, g) in docs.iter().enumerate() {
        let doc = Doc::new(g.text.clone());
        let (entities, states) = tagger.tag_with_states(&doc)?;
        let states = states.unwrap_or_default();
        let actors = link(&doc, &entities);
        let a = Analysis::new(&doc, &entities, &actors, &states, &rules)?;
        let map = CharMap::new(&doc.text);
        let chars: Vec<CharSpan> = entities.iter().map(|e| map.to_chars(e.span)).collect();
        gold_n += g.stances.iter().filter(|s| !s.ambiguous).count();
        let mut matched = vec![false; g.stances.len()];
        for (s, members) in a.by_sentence.iter().enumerate() {
            for &m in members {
                let x = a.actor_features(m, s, true);
                dim = x.len();
                let mut y = [0f32; 3];
                let mut mask = [1f32; 3];
                for (k, label) in StanceLabel::ALL.iter().enumerate() {
                    let hits: Vec<usize> = g
                        .stances
                        .iter()
                        .enumerate()
                        .filter(|(_, st)| {
                            st.label == *label && overlaps(chars[m], (st.actor.start, st.actor.end))
                        })
                        .map(|(i, _)| i)
                        .collect();
                    if hits.iter().any(|&i| !g.stances[i].ambiguous) {
                        y[k] = 1.0;
                    } else if !hits.is_empty() {
                        mask[k] = 0.0;
                    }
                    for &i in &hits {
                        if matched[i] {
                            continue;
                        }
                        matched[i] = true;
                        // A target example: the other mentions of the sentence, or none.
                        let st = &g.stances[i];
                        let mut options: Vec<Option<usize>> = vec![None];
                        options.extend(
                            members
                                .iter()
                                .filter(|&&c| c != m && actors.actor_of[c] != actors.actor_of[m])
                                .map(|&c| Some(c)),
                        );
                        let gold = match &st.target {
                            None => Some(0),
                            Some(t) => options.iter().position(|o| {
                                o.is_some_and(|c| overlaps(chars[c], (t.start, t.end)))
                            }),
                        };
                        if let (Some(gold), true) = (gold, options.len() > 1) {
                            targets_out.push(TargetExample {
                                doc: d,
                                rows: options
                                    .iter()
                                    .map(|&c| a.target_features(m, c, s, *label, true))
                                    .collect(),
                                gold,
                            });
                        }
                    }
                }
                actors_out.push(ActorExample { doc: d, x, y, mask });
            }
        }
        found_n += g
            .stances
            .iter()
            .zip(&matched)
            .filter(|(s, m)| **m && !s.ambiguous)
            .count();
    }
    log(&format!(
        "{} documents: {} candidate actors, {} target choices; {} of {} gold statements have an actor the entity model finds",
        docs.len(),
        actors_out.len(),
        targets_out.len(),
        found_n,
        gold_n
    ));
    Ok((actors_out, targets_out, dim))
}

/// Initialises every variable from the seed: weights N(0, 0.02), biases zero.
fn init(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = SplitMix64(seed);
    let vars = varmap.data().lock().expect("varmap lock");
    let mut names: Vec<(&String, &Var)> = vars.iter().collect();
    names.sort_by(|a, b| a.0.cmp(b.0));
    for (name, var) in names {
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with("bias") {
            vec![0.0; n]
        } else {
            (0..n).map(|_| rng.next_normal() * 0.02).collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).map_err(err)?)
            .map_err(err)?;
    }
    Ok(())
}

fn err(e: candle_core::Error) -> StanceError {
    StanceError::ModelUnavailable(format!("stance training: {e}"))
}

/// `log(1 + exp(z))`, stable for large |z|.
fn softplus(z: &Tensor) -> candle_core::Result<Tensor> {
    z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?
}

fn actor_batch(ex: &[&ActorExample], rules: bool) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let dim = ex[0].x.len();
    let mut x = Vec::with_capacity(ex.len() * dim);
    for e in ex {
        let start = x.len();
        x.extend_from_slice(&e.x);
        if !rules {
            let off = dim - EXTRA_FEATURES;
            for k in rule_block() {
                x[start + off + k] = 0.0;
            }
        }
    }
    let y: Vec<f32> = ex.iter().flat_map(|e| e.y).collect();
    let m: Vec<f32> = ex.iter().flat_map(|e| e.mask).collect();
    Ok((
        Tensor::from_vec(x, (ex.len(), dim), &Device::Cpu)?,
        Tensor::from_vec(y, (ex.len(), 3), &Device::Cpu)?,
        Tensor::from_vec(m, (ex.len(), 3), &Device::Cpu)?,
    ))
}

/// Scores of target examples, padded per example: `[n, widest]` and the gold index.
fn target_batch(
    heads: &StanceHeads,
    ex: &[&TargetExample],
    rules: bool,
) -> candle_core::Result<(Tensor, Tensor)> {
    let dim = ex[0].rows[0].len();
    let widest = ex.iter().map(|e| e.rows.len()).max().unwrap_or(1);
    let mut rows = Vec::new();
    let mut index = Vec::with_capacity(ex.len() * widest);
    let mut pad = Vec::with_capacity(ex.len() * widest);
    // The rule-choice flag sits after the three state blocks, the label one-hot and the null flag.
    let rule_col = dim - TARGET_EXTRA + 4;
    for e in ex {
        for k in 0..widest {
            if k < e.rows.len() {
                index.push((rows.len() / dim) as u32);
                let start = rows.len();
                rows.extend_from_slice(&e.rows[k]);
                if !rules {
                    rows[start + rule_col] = 0.0;
                }
                pad.push(0f32);
            } else {
                index.push(0);
                pad.push(-1e9);
            }
        }
    }
    let x = Tensor::from_vec(
        rows,
        (index.len() - pad.iter().filter(|p| **p < 0.0).count(), dim),
        &Device::Cpu,
    )?;
    let scores = heads.target_scores(&x)?;
    let padded = scores
        .index_select(
            &Tensor::from_vec(index, ex.len() * widest, &Device::Cpu)?,
            0,
        )?
        .reshape((ex.len(), widest))?;
    let padded = (padded + Tensor::from_vec(pad, (ex.len(), widest), &Device::Cpu)?)?;
    let gold = Tensor::from_vec(
        ex.iter().map(|e| e.gold as u32).collect::<Vec<_>>(),
        (ex.len(), 1),
        &Device::Cpu,
    )?;
    Ok((padded, gold))
}

/// Per-label F1 of thresholded probabilities against labels (masked entries skipped).
fn f1_at(probs: &[[f32; 3]], ex: &[&ActorExample], k: usize, t: f32) -> (f64, usize, usize, usize) {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (p, e) in probs.iter().zip(ex) {
        if e.mask[k] == 0.0 {
            continue;
        }
        match (p[k] >= t, e.y[k] > 0.5) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    let f = if tp == 0 {
        0.0
    } else {
        2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
    };
    (f, tp, fp, fn_)
}

/// Trains one variant (pure or hybrid); returns its heads' variables, config and held-out F1.
fn train_variant(
    opts: &StanceTrainOptions,
    state_dim: usize,
    actors: &[ActorExample],
    targets: &[TargetExample],
    held: &dyn Fn(usize) -> bool,
    rules: bool,
    log: &mut dyn FnMut(&str),
) -> Result<(VarMap, [f32; 3], f64)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let heads = StanceHeads::build(state_dim, opts.hidden, vb).map_err(err)?;
    init(&varmap, opts.seed ^ rules as u64)
        .map_err(|e| StanceError::ModelUnavailable(e.to_string()))?;
    let mut names: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let mut opt = AdamW::new(
        names.clone(),
        AdamWConfig {
            lr: opts.lr,
            weight_decay: 0.01,
            clip: 5.0,
            ..Default::default()
        },
    )
    .map_err(err)?;
    let train_a: Vec<&ActorExample> = actors.iter().filter(|e| !held(e.doc)).collect();
    let val_a: Vec<&ActorExample> = actors.iter().filter(|e| held(e.doc)).collect();
    let train_t: Vec<&TargetExample> = targets.iter().filter(|e| !held(e.doc)).collect();
    let val_t: Vec<&TargetExample> = targets.iter().filter(|e| held(e.doc)).collect();
    let mut rng = SplitMix64(opts.seed.wrapping_add(17 + rules as u64));
    let batch = 128;
    let mut best: Option<(f64, usize, Vec<Tensor>, [f32; 3])> = None;
    let pw = opts.positive_weight;
    for epoch in 0..opts.epochs {
        let mut order: Vec<usize> = (0..train_a.len()).collect();
        rng.shuffle(&mut order);
        let mut torder: Vec<usize> = (0..train_t.len()).collect();
        rng.shuffle(&mut torder);
        let steps = order.len().div_ceil(batch);
        let tbatch = train_t.len().div_ceil(steps.max(1)).max(1);
        let mut total = 0.0;
        for (step, chunk) in order.chunks(batch).enumerate() {
            let ex: Vec<&ActorExample> = chunk.iter().map(|&i| train_a[i]).collect();
            let (x, y, m) = actor_batch(&ex, rules).map_err(err)?;
            let seed = opts.seed ^ ((epoch * 100_000 + step) as u64);
            let z = heads.actor_logits(&x, Some((0.2, seed))).map_err(err)?;
            // Weighted binary cross-entropy: pw * y * softplus(-z) + (1 - y) * softplus(z).
            let pos = (y.clone() * pw)
                .and_then(|w| w * softplus(&z.neg()?)?)
                .map_err(err)?;
            let neg = ((1.0 - &y).and_then(|w| w * softplus(&z)?)).map_err(err)?;
            let actor_loss =
                ((pos + neg).and_then(|l| l * &m).and_then(|l| l.sum_all())).map_err(err)?;
            let denom = m
                .sum_all()
                .and_then(|t| t.to_scalar::<f32>())
                .map_err(err)?
                .max(1.0) as f64;
            let mut loss = (actor_loss / denom).map_err(err)?;
            let tchunk: Vec<&TargetExample> = torder
                .iter()
                .skip(step * tbatch)
                .take(tbatch)
                .map(|&i| train_t[i])
                .collect();
            if !tchunk.is_empty() {
                let (scores, gold) = target_batch(&heads, &tchunk, rules).map_err(err)?;
                let logp = candle_nn::ops::log_softmax(&scores, D::Minus1).map_err(err)?;
                let tl = logp
                    .gather(&gold, 1)
                    .and_then(|t| t.mean_all())
                    .and_then(|t| t.neg())
                    .map_err(err)?;
                loss = (loss + tl).map_err(err)?;
            }
            total += loss.to_scalar::<f32>().map_err(err)? as f64;
            let grads = loss.backward().map_err(err)?;
            let g: Vec<Option<Tensor>> = names.iter().map(|(_, v)| grads.get(v).cloned()).collect();
            let factor = 1.0 - epoch as f64 / opts.epochs as f64;
            opt.step(&g, factor, 2).map_err(err)?;
        }
        // Held-out: best threshold per label, and target accuracy.
        if val_a.is_empty() {
            continue;
        }
        let (x, _, _) = actor_batch(&val_a, rules).map_err(err)?;
        let p = candle_nn::ops::sigmoid(&heads.actor_logits(&x, None).map_err(err)?)
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(err)?;
        let probs: Vec<[f32; 3]> = p.into_iter().map(|r| [r[0], r[1], r[2]]).collect();
        let mut thresholds = [0.5f32; 3];
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for (k, threshold) in thresholds.iter_mut().enumerate() {
            let mut best_k = (f64::MIN, 0.5f32, (0, 0, 0));
            for t in (2..=8).map(|i| i as f32 / 10.0) {
                let (f, a, b, c) = f1_at(&probs, &val_a, k, t);
                if f > best_k.0 {
                    best_k = (f, t, (a, b, c));
                }
            }
            *threshold = best_k.1;
            tp += best_k.2 .0;
            fp += best_k.2 .1;
            fn_ += best_k.2 .2;
        }
        let micro = if tp == 0 {
            0.0
        } else {
            2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
        };
        let target_acc = if val_t.is_empty() {
            0.0
        } else {
            let (scores, gold) = target_batch(&heads, &val_t, rules).map_err(err)?;
            let pred = scores
                .argmax(D::Minus1)
                .and_then(|t| t.to_vec1::<u32>())
                .map_err(err)?;
            let gold = gold
                .flatten_all()
                .and_then(|t| t.to_vec1::<u32>())
                .map_err(err)?;
            pred.iter().zip(&gold).filter(|(a, b)| a == b).count() as f64 / gold.len() as f64
        };
        if epoch % 5 == 4 || epoch + 1 == opts.epochs {
            log(&format!(
                "{} epoch {:>3}: loss {:.4}, held-out micro F1 {:.4} (thresholds {:?}), target accuracy {:.3}",
                if rules { "hybrid" } else { "model " },
                epoch + 1,
                total / steps.max(1) as f64,
                micro,
                thresholds,
                target_acc
            ));
        }
        if best.as_ref().is_none_or(|b| micro > b.0) {
            let snapshot = names
                .iter()
                .map(|(_, v)| v.as_tensor().copy())
                .collect::<candle_core::Result<Vec<_>>>()
                .map_err(err)?;
            best = Some((micro, epoch + 1, snapshot, thresholds));
        }
    }
    let (f1, epoch, snapshot, thresholds) = match best {
        Some(b) => b,
        None => (0.0, opts.epochs, Vec::new(), [0.5; 3]),
    };
    for ((_, v), t) in names.iter().zip(snapshot) {
        v.set(&t).map_err(err)?;
    }
    log(&format!(
        "{}: best held-out micro F1 {f1:.4} at epoch {epoch}, thresholds {thresholds:?}",
        if rules { "hybrid" } else { "model" }
    ));
    Ok((varmap, thresholds, f1))
}

/// Trains the pure and the hybrid heads and writes them to `out/model` and `out/hybrid`.
pub fn train_stance(
    opts: &StanceTrainOptions,
    train: &[GoldDoc],
    sources: Vec<String>,
    tagger: Arc<ModelTagger>,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let weights = opts.ner_model.join("model.safetensors");
    let sha = file_sha256(&weights).map_err(|e| StanceError::Io {
        path: weights.clone(),
        source: e,
    })?;
    let (actors, targets, dim) = collect(train, &tagger, log)?;
    if actors.is_empty() {
        return Err(StanceError::ModelUnavailable(
            "no candidate actors in the training data".into(),
        ));
    }
    let state_dim = (dim - EXTRA_FEATURES) / 2;
    // Held-out documents: a fixed pseudo-random share, by document.
    let mut rng = SplitMix64(opts.seed ^ 0xD0C5);
    let held_docs: HashMap<usize, bool> = (0..train.len())
        .map(|d| (d, (rng.next_f32() as f64) < opts.holdout))
        .collect();
    let held = |d: usize| held_docs[&d];
    for (rules, name) in [(false, "model"), (true, "hybrid")] {
        let (varmap, thresholds, _) =
            train_variant(opts, state_dim, &actors, &targets, &held, rules, log)?;
        let dir = opts.out.join(name);
        std::fs::create_dir_all(&dir).map_err(|source| StanceError::Io {
            path: dir.clone(),
            source,
        })?;
        varmap.save(dir.join("heads.safetensors")).map_err(err)?;
        let config = StanceConfig {
            state_dim,
            hidden: opts.hidden,
            rule_features: rules,
            thresholds,
            encoder_sha256: sha.clone(),
            trained_on: sources.clone(),
        };
        let text = serde_json::to_string_pretty(&config).expect("config serialises");
        std::fs::write(dir.join("config.json"), text + "\n").map_err(|source| StanceError::Io {
            path: dir.clone(),
            source,
        })?;
        log(&format!("saved {}", dir.display()));
    }
    Ok(())
}

/// Reads gold files given as `PATH` or `PATH:SPLIT` (stand-off records of one split).
pub fn load_sources(specs: &[String]) -> Result<Vec<GoldDoc>> {
    let mut out = Vec::new();
    for spec in specs {
        let (path, split) = match spec.rsplit_once(':') {
            Some((p, s)) if !Path::new(spec).exists() => (PathBuf::from(p), Some(s)),
            _ => (PathBuf::from(spec), None),
        };
        let splits: Vec<&str> = split.into_iter().collect();
        out.extend(super::data::load_any(&path, &splits)?);
    }
    Ok(out)
}
