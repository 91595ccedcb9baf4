//! `stance train stance`: trains the learned stance model of [`super::model`]
//! over a trained entity model.
//!
//! 1. Every training document is run through the entity model (as at
//!    inference, so training sees the mentions the model will see); each
//!    mention of a sentence is a candidate actor, positive for a label when a
//!    gold statement's actor overlaps it. Ambiguous statements are left out.
//! 2. The actor classifier ([`super::markers`]) is fine-tuned on the candidates
//!    of most documents; a fixed share of documents is held back.
//! 3. On the held-back documents, which the actor classifier never saw, its
//!    decision thresholds are chosen (per label, for the best F1).
//! 4. The target head learns, over the entity encoder's states, which mention
//!    of the sentence a gold statement is aimed at (or none).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};

use super::markers::{
    best_thresholds, f1_of, train_markers, tune_thresholds, Example, MarkerConfig, MarkerModel,
    MarkerTrainOptions,
};
use super::model::{file_sha256, Analysis, StanceConfig, TargetHead, TARGET_EXTRA};
use super::rules::RuleClassifier;
use super::StanceLabel;
use crate::actors::link;
use crate::doc::Doc;
use crate::error::{During, Result, StanceError};
use crate::eval::stance::GoldDoc;
use crate::model::ops::SplitMix64;
use crate::model::optim::{AdamW, AdamWConfig};
use crate::model::tagger::ModelTagger;
use crate::ner::EntityTagger;
use crate::span::{CharMap, CharSpan};

/// Where `stance train stance` writes unless told: beside, never over, the shipped model.
pub const DEFAULT_STANCE_OUT: &str = "runs/stance";
/// Width of the target head's hidden layer.
pub const TARGET_HIDDEN: usize = 128;
/// How a `trained_on` entry names a tuning file: it chose, it was not learned from.
pub const TUNE_SOURCE: &str = "tune: ";
/// How a `trained_on` entry names a file that the classifier a run continued was trained on.
pub const CONTINUED_SOURCE: &str = "continued from: ";

/// Options of `stance train stance` (besides its data); each flag's default is the
/// field's [`Default`].
#[derive(Debug, Clone)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct StanceTrainOptions {
    /// The trained entity model: it finds the candidate actors, its encoder
    /// states feed the target head, and the actor classifier starts from its weights.
    #[cfg_attr(feature = "cli", arg(long, default_value = "models/ner"))]
    pub ner_model: PathBuf,
    /// Output directory (actors/, targets.safetensors, stance.json).
    #[cfg_attr(feature = "cli", arg(long, default_value = DEFAULT_STANCE_OUT))]
    pub out: PathBuf,
    /// Epochs of the actor classifier.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 7, value_parser = crate::cli::at_least(1)))]
    pub epochs: usize,
    /// Peak learning rate of the actor classifier's encoder.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 5e-5))]
    pub lr: f64,
    /// Epochs of the target head.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 30, value_parser = crate::cli::at_least(1)))]
    pub target_epochs: usize,
    /// Width of the target head's hidden layer.
    #[cfg_attr(feature = "cli", arg(skip = TARGET_HIDDEN))]
    pub hidden: usize,
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 42))]
    pub seed: u64,
    /// Share of training documents held back to choose thresholds and fit the hybrid
    /// (only without --tune).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.15))]
    pub holdout: f64,
    /// Training target of a statement marked ambiguous (its label's probability); the
    /// annotators could go either way, so neither 0 nor 1 is the truth.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.5))]
    pub ambiguous_target: f32,
    /// How the actor classifier reads candidates: one encoder pass per candidate, or one per
    /// sentence with every candidate marked (several times cheaper).
    #[cfg_attr(feature = "cli", arg(long, value_enum, default_value_t = super::markers::MarkerLayout::default()))]
    pub layout: super::markers::MarkerLayout,
    /// Score targets with a pair head on the actor classifier's states (sentence layout;
    /// `--no-pair-targets` leaves them to the separate head over the entity model's states).
    #[cfg_attr(feature = "cli", arg(long = "no-pair-targets", action = clap::ArgAction::SetFalse, help = "With the sentence layout, do not train the actor classifier's own target scorer (targets then come from the separate head over the entity model's states)"))]
    pub pair_targets: bool,
    /// Weight of the target scorer's loss beside the labels' loss.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 1.0))]
    pub target_weight: f64,
    /// Sentences before each candidate's sentence that the actor classifier also reads.
    #[cfg_attr(
        feature = "cli",
        arg(long = "context-sentences", value_name = "N", default_value_t = 0)
    )]
    pub context: usize,
    /// Mark the rules' cues in the actor classifier's input.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "cue-markers",
            help = "Mark the rules' cue words in the actor classifier's input (a marker token of the cue's label before each), so the model reads them as features instead of the hybrid voting with them afterwards"
        )
    )]
    pub cue_markers: bool,
    /// Loss weight of positive examples.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 2.0))]
    pub positive_weight: f64,
    /// Share of negative candidates (mentions that are no actor) seen per epoch.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 0.4))]
    pub negatives: f64,
    /// Keep the actor classifier already in OUT/actors; refit thresholds and the target head.
    #[cfg_attr(feature = "cli", arg(long))]
    pub reuse_actors: bool,
    /// With --reuse-actors: keep OUT/targets.safetensors too, so only the thresholds are refit.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "keep-targets",
            requires_all = ["reuse_actors", "tune"],
            help = "With --reuse-actors, keep the target head in OUT/targets.safetensors as well, so that only the thresholds are refit on --tune; stance.json keeps the training data OUT/stance.json lists (the --train files are then read only to fit on)"
        )
    )]
    pub keep_targets: bool,
    /// Start the actor classifier from a trained one instead of the entity model.
    #[cfg_attr(
        feature = "cli",
        arg(
            long = "continue-from",
            value_name = "ACTORS_DIR",
            help = "Start the actor classifier from a trained one (a model's actors/ directory) instead of the entity model, keeping its heads: a run over new data continues it rather than starting over, and lists what that one was trained on as `continued from: FILE`. Its layout, context and marker options must be given again"
        )
    )]
    pub continue_from: Option<PathBuf>,
    /// Candidates per step.
    #[cfg_attr(feature = "cli", arg(long, default_value_t = 16, value_parser = crate::cli::at_least(1)))]
    pub batch_size: usize,
    /// Worker threads (one per core by default).
    #[cfg_attr(feature = "cli", arg(long, default_value_t = crate::model::threads::available(), hide_default_value = true, value_parser = crate::cli::at_least(1)))]
    pub threads: usize,
    /// Stop the actor classifier after this many minutes in all, saving the run in OUT/resume.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            value_name = "MINUTES",
            help = "Stop the actor classifier's training after this many minutes in all (a resumed run counts the minutes before it), saving the run in OUT/resume; the same command with --resume goes on from there and ends where an uninterrupted run would"
        )
    )]
    pub max_minutes: Option<f64>,
    /// Continue the run saved in OUT/resume.
    #[cfg_attr(
        feature = "cli",
        arg(
            long,
            conflicts_with = "reuse_actors",
            help = "Continue the actor classifier's run saved in OUT/resume (by --max-minutes, or every --checkpoint-minutes of a run that was killed); give the same data and options"
        )
    )]
    pub resume: bool,
    /// Minutes between two saves of the resumable state in OUT/resume.
    #[cfg_attr(
        feature = "cli",
        arg(long, value_name = "MINUTES", default_value_t = 10.0)
    )]
    pub checkpoint_minutes: f64,
    /// Report progress: a bar when stderr is a terminal, otherwise a line every
    /// [`crate::model::train::PROGRESS_LINE_EVERY`] of an epoch (`--quiet` turns it off).
    #[cfg_attr(feature = "cli", arg(skip))]
    pub progress: bool,
}

impl Default for StanceTrainOptions {
    /// The command line's defaults: a test parses an empty command line and compares.
    fn default() -> Self {
        StanceTrainOptions {
            ner_model: PathBuf::from("models/ner"),
            out: PathBuf::from(DEFAULT_STANCE_OUT),
            epochs: 7,
            lr: 5e-5,
            target_epochs: 30,
            hidden: TARGET_HIDDEN,
            seed: 42,
            holdout: 0.15,
            ambiguous_target: 0.5,
            layout: super::markers::MarkerLayout::default(),
            pair_targets: true,
            target_weight: 1.0,
            context: 0,
            cue_markers: false,
            positive_weight: 2.0,
            negatives: 0.4,
            reuse_actors: false,
            keep_targets: false,
            continue_from: None,
            batch_size: 16,
            threads: crate::model::threads::available(),
            max_minutes: None,
            resume: false,
            checkpoint_minutes: 10.0,
            progress: false,
        }
    }
}

/// One gold statement: the candidate targets' features and the right one.
struct TargetExample {
    rows: Vec<Vec<f32>>,
    gold: usize,
    doc: usize,
}

fn overlaps(a: CharSpan, b: (usize, usize)) -> bool {
    a.start < b.1 && b.0 < a.end
}

/// Everything collected from the training documents.
struct Collected {
    sentences: Vec<super::markers::Unit>,
    examples: Vec<Example>,
    /// Per example: whether the rules give it each label (for the hybrid's thresholds).
    rules_fired: Vec<[bool; 3]>,
    targets: Vec<TargetExample>,
    state_dim: usize,
}

fn collect(
    docs: &[GoldDoc],
    tagger: &ModelTagger,
    ambiguous_target: f32,
    context: usize,
    progress: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Collected> {
    let rules = RuleClassifier::default();
    let mut c = Collected {
        sentences: Vec::new(),
        examples: Vec::new(),
        rules_fired: Vec::new(),
        targets: Vec::new(),
        state_dim: 0,
    };
    let (mut gold_n, mut found_n) = (0usize, 0usize);
    // The entity model reads every document first: minutes on a large training set.
    let mut bar = crate::model::train::EpochProgress::items(
        progress,
        "reading the documents",
        docs.len() as u64,
    );
    for (d, g) in docs.iter().enumerate() {
        let mut doc = Doc::new(g.text.clone());
        doc.keep_states = true;
        tagger.tag(&mut doc)?;
        let (entities, states) = (
            std::mem::take(&mut doc.entities),
            doc.states.take().unwrap_or_default(),
        );
        let actors = link(&doc, &entities);
        let a = Analysis::new(&doc, &entities, &actors, &states, &rules)?;
        c.state_dim = a.state_dim();
        let map = CharMap::new(&doc.text);
        let chars: Vec<CharSpan> = entities.iter().map(|e| map.to_chars(e.span)).collect();
        gold_n += g.stances.iter().filter(|s| !s.ambiguous).count();
        let mut matched = vec![false; g.stances.len()];
        let (sentences, cands) = a.candidates(tagger.text_encoder(), context)?;
        let offset = c.sentences.len();
        c.sentences.extend(sentences);
        // Each candidate's position among its sentence's candidates, by entity.
        let mut slot_of = std::collections::HashMap::new();
        let mut per_sentence = std::collections::HashMap::new();
        for slot in &cands {
            let next = per_sentence.entry(slot.sentence).or_insert(0usize);
            slot_of.insert(slot.entity, (slot.sentence, *next));
            *next += 1;
        }
        for slot in cands {
            let (m, s, k, range) = (slot.entity, slot.sentence, slot.tokens, slot.mention);
            let mut y = [0f32; 3];
            let mut mask = [1f32; 3];
            let mut pair_targets = Vec::new();
            for (l, label) in StanceLabel::ALL.iter().enumerate() {
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
                    y[l] = 1.0;
                } else if !hits.is_empty() {
                    // A soft target: learned from, but left out when thresholds are chosen.
                    y[l] = ambiguous_target;
                    mask[l] = if ambiguous_target > 0.0 { 1.0 } else { 0.0 };
                }
                for &i in &hits {
                    if std::mem::replace(&mut matched[i], true) {
                        continue;
                    }
                    let st = &g.stances[i];
                    let options = a.target_options(m, s);
                    let gold = match &st.target {
                        None => Some(0),
                        Some(t) => options
                            .iter()
                            .position(|o| o.is_some_and(|c| overlaps(chars[c], (t.start, t.end)))),
                    };
                    if let Some(gold) = gold.filter(|_| !st.ambiguous) {
                        let slots: Vec<Option<usize>> = options
                            .iter()
                            .map(|o| o.and_then(|e| slot_of.get(&e).map(|&(_, k)| k)))
                            .collect();
                        // Options that are no candidate cannot be read; drop them.
                        let (mut kept, mut kept_gold) = (Vec::new(), None);
                        for (j, (o, sl)) in options.iter().zip(&slots).enumerate() {
                            if o.is_none() || sl.is_some() {
                                if j == gold {
                                    kept_gold = Some(kept.len());
                                }
                                kept.push(*sl);
                            }
                        }
                        if let Some(kg) = kept_gold {
                            pair_targets.push((l, kept, kg));
                        }
                    }
                    if let (Some(gold), true) = (gold, options.len() > 1) {
                        c.targets.push(TargetExample {
                            rows: options
                                .iter()
                                .map(|&o| a.target_features(m, o, s, *label))
                                .collect(),
                            gold,
                            doc: d,
                        });
                    }
                }
            }
            let mut fired = [false; 3];
            for st in a
                .rules
                .iter()
                .filter(|st| st.actor == m && st.sentence == s)
            {
                fired[super::model::label_index(st.label)] = true;
            }
            c.rules_fired.push(fired);
            c.examples.push(Example {
                sentence: offset + k,
                slot: slot_of[&m].1,
                targets: pair_targets,
                mention: range,
                y,
                mask,
                doc: d,
            });
        }
        found_n += g
            .stances
            .iter()
            .zip(&matched)
            .filter(|(s, m)| **m && !s.ambiguous)
            .count();
        bar.inc(log);
    }
    bar.finish();
    log(&format!(
        "{} documents: {} candidate actors, {} target choices; the entity model finds the actor of {} of {} gold statements",
        docs.len(),
        c.examples.len(),
        c.targets.len(),
        found_n,
        gold_n
    ));
    Ok(c)
}

/// Model probabilities a rules statement may need to be kept in the hybrid; 0 is the
/// plain union, above 1 drops the rules' own statements.
const RULES_FLOORS: [f32; 8] = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.1];

/// The hybrid's decision rule, per label: keep a candidate when the model's
/// probability passes a threshold (0.1 to 1.0), or when the rules fired and the
/// model gives at least a floor (a vote: the rules propose, the model can veto).
/// Returns the thresholds and floors with the best F1 per label (ties go to the
/// lower floor, i.e. to the plain union), and the micro F1 at those choices.
fn tune_vote(
    probs: &[[f32; 3]],
    fired: &[[bool; 3]],
    ex: &[&Example],
) -> ([f32; 3], [f32; 3], f64) {
    let mut best = [(f64::MIN, 0.5f32, 0.0f32, (0, 0, 0)); 3];
    for floor in RULES_FLOORS {
        let (thresholds, _, counts) = best_thresholds(
            probs,
            ex,
            &|i, k| fired[i][k] && probs[i][k] >= floor,
            1..=10,
        );
        for k in 0..3 {
            let (tp, fp, fn_) = counts[k];
            let f = f1_of(tp, fp, fn_);
            if f > best[k].0 {
                best[k] = (f, thresholds[k], floor, counts[k]);
            }
        }
    }
    let (tp, fp, fn_) = best
        .iter()
        .fold((0, 0, 0), |a, b| (a.0 + b.3 .0, a.1 + b.3 .1, a.2 + b.3 .2));
    (best.map(|b| b.1), best.map(|b| b.2), f1_of(tp, fp, fn_))
}

/// Trains the target head: softmax over each statement's options.
fn train_targets(
    opts: &StanceTrainOptions,
    state_dim: usize,
    targets: &[&TargetExample],
    held: &[&TargetExample],
    log: &mut dyn FnMut(&str),
) -> Result<VarMap> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let head = TargetHead::build(state_dim, opts.hidden, vb).during("stance training")?;
    let mut rng = SplitMix64(opts.seed ^ 0x7A6E);
    let mut names: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .expect("varmap lock")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in &names {
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with("bias") {
            vec![0.0; n]
        } else {
            (0..n).map(|_| rng.next_normal() * 0.02).collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).during("stance training")?)
            .during("stance training")?;
    }
    let mut opt = AdamW::new(
        names.clone(),
        AdamWConfig {
            lr: 1e-3,
            clip: 5.0,
            ..Default::default()
        },
    )
    .during("stance training")?;
    let dim = 3 * state_dim + TARGET_EXTRA;
    for epoch in 0..opts.target_epochs {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        rng.shuffle(&mut order);
        let mut total = 0.0;
        let mut correct = 0;
        for chunk in order.chunks(64) {
            let widest = chunk
                .iter()
                .map(|&i| targets[i].rows.len())
                .max()
                .unwrap_or(1);
            let mut rows = Vec::new();
            let mut index = Vec::new();
            let mut pad = Vec::new();
            for &i in chunk {
                for k in 0..widest {
                    if let Some(r) = targets[i].rows.get(k) {
                        index.push((rows.len() / dim) as u32);
                        rows.extend_from_slice(r);
                        pad.push(0f32);
                    } else {
                        index.push(0);
                        pad.push(-1e9);
                    }
                }
            }
            let n_rows = rows.len() / dim;
            let x =
                Tensor::from_vec(rows, (n_rows, dim), &Device::Cpu).during("stance training")?;
            let scores = head.scores(&x).during("stance training")?;
            let idx = Tensor::from_vec(index, chunk.len() * widest, &Device::Cpu)
                .during("stance training")?;
            let padded = scores
                .index_select(&idx, 0)
                .and_then(|t| t.reshape((chunk.len(), widest)))
                .and_then(|t| t + Tensor::from_vec(pad, (chunk.len(), widest), &Device::Cpu)?)
                .during("stance training")?;
            let gold = Tensor::from_vec(
                chunk
                    .iter()
                    .map(|&i| targets[i].gold as u32)
                    .collect::<Vec<_>>(),
                (chunk.len(), 1),
                &Device::Cpu,
            )
            .during("stance training")?;
            let pred = padded
                .argmax(D::Minus1)
                .and_then(|t| t.to_vec1::<u32>())
                .during("stance training")?;
            correct += pred
                .iter()
                .zip(chunk)
                .filter(|(p, &i)| **p as usize == targets[i].gold)
                .count();
            let loss = candle_nn::ops::log_softmax(&padded, D::Minus1)
                .and_then(|l| l.gather(&gold, 1))
                .and_then(|l| l.mean_all())
                .and_then(|l| l.neg())
                .during("stance training")?;
            total += loss.to_scalar::<f32>().during("stance training")? as f64;
            let grads = loss.backward().during("stance training")?;
            let g: Vec<Option<Tensor>> = names.iter().map(|(_, v)| grads.get(v).cloned()).collect();
            opt.step(
                &g,
                1.0 - epoch as f64 / opts.target_epochs as f64,
                opts.threads,
            )
            .during("stance training")?;
        }
        if epoch + 1 == opts.target_epochs {
            log(&format!(
                "target head: {} statements, final loss {:.4}, training accuracy {:.3}",
                targets.len(),
                total / targets.len().div_ceil(64).max(1) as f64,
                correct as f64 / targets.len().max(1) as f64
            ));
        }
    }
    let mut right = 0;
    for t in held {
        let x = Tensor::from_vec(t.rows.concat(), (t.rows.len(), dim), &Device::Cpu)
            .during("stance training")?;
        let best = head
            .scores(&x)
            .and_then(|s| s.argmax(0))
            .and_then(|s| s.to_scalar::<u32>())
            .during("stance training")?;
        right += (best as usize == t.gold) as usize;
    }
    if !held.is_empty() {
        log(&format!(
            "target head: held-out accuracy {:.3} over {} statements (of those whose actor and target the entity model finds)",
            right as f64 / held.len() as f64,
            held.len()
        ));
    }
    Ok(varmap)
}

/// Trains the stance model into `opts.out` (`actors/`, `targets.safetensors`, `stance.json`).
/// The `tune` documents choose the epoch, thresholds and floors and are never trained
/// on; without them a random `opts.holdout` of the training documents is held back.
/// `None` when `opts.max_minutes` stopped the actor classifier: run again with `resume`.
pub fn train_stance(
    opts: &StanceTrainOptions,
    train: &[GoldDoc],
    tune: &[GoldDoc],
    sources: Vec<String>,
    tagger: &ModelTagger,
    log: &mut dyn FnMut(&str),
) -> Result<Option<StanceConfig>> {
    let weights = opts.ner_model.join("model.safetensors");
    let sha = file_sha256(&weights).map_err(|source| StanceError::Io {
        path: weights.clone(),
        source,
    })?;
    let sources = match &opts.continue_from {
        Some(init) => with_lineage(sources, &MarkerConfig::read(init)?.trained_on),
        None => sources,
    };
    let all: Vec<GoldDoc> = train.iter().chain(tune).cloned().collect();
    let c = collect(
        &all,
        tagger,
        opts.ambiguous_target,
        opts.context,
        opts.progress,
        log,
    )?;
    if c.examples.is_empty() {
        return Err(StanceError::Data(
            "no candidate actors in the training data".into(),
        ));
    }
    let mut rng = SplitMix64(opts.seed ^ 0xD0C5);
    let held_docs: Vec<bool> = if tune.is_empty() {
        (0..train.len())
            .map(|_| (rng.next_f32() as f64) < opts.holdout)
            .collect()
    } else {
        (0..all.len()).map(|d| d >= train.len()).collect()
    };
    let held = |d: usize| held_docs[d];
    let actors_dir = opts.out.join("actors");
    let marker_opts = MarkerTrainOptions {
        start: opts.ner_model.clone(),
        out: actors_dir.clone(),
        epochs: opts.epochs,
        lr: opts.lr,
        batch_size: opts.batch_size,
        negatives: opts.negatives,
        positive_weight: opts.positive_weight,
        seed: opts.seed,
        threads: opts.threads,
        progress: opts.progress,
        layout: opts.layout,
        pair_targets: opts.pair_targets,
        target_weight: opts.target_weight,
        context: opts.context,
        cue_markers: opts.cue_markers,
        init: opts.continue_from.clone(),
        max_minutes: opts.max_minutes,
        resume: opts.resume,
        checkpoint_minutes: opts.checkpoint_minutes,
        resume_dir: opts.out.join(super::resume::RESUME_DIR),
    };
    let reused = opts.reuse_actors && actors_dir.join("stance_markers.json").is_file();
    if reused {
        log(&format!(
            "reusing the actor classifier in {}",
            actors_dir.display()
        ));
    } else if !train_markers(
        &marker_opts,
        &c.sentences,
        &c.examples,
        &held,
        sources.clone(),
        log,
    )? {
        return Ok(None);
    }
    // The held-out documents: the thresholds were chosen on them during training.
    let actors = MarkerModel::load(&actors_dir)?;
    let val_ex: Vec<&Example> = c.examples.iter().filter(|e| held(e.doc)).collect();
    let cands: Vec<super::markers::Candidate> = val_ex
        .iter()
        .map(|e| c.sentences[e.sentence].candidate(e.mention.clone()))
        .collect();
    let probs = actors.probabilities(&cands, 32, opts.threads)?;
    let (thresholds, heldout_f1, counts) = tune_thresholds(&probs, &val_ex);
    log(&format!(
        "held-out candidates ({}): actor classifier micro F1 {heldout_f1:.4} at thresholds {thresholds:?} (tp/fp/fn {counts:?})",
        val_ex.len()
    ));
    if reused {
        // The classifier alone (`--backend model`) reads its thresholds from its own
        // directory: refit them there too, on the same held-out documents.
        let config = MarkerConfig {
            thresholds,
            heldout_f1,
            ..actors.config.clone()
        };
        config.write(&actors_dir)?;
    }
    // The hybrid keeps what the model finds above its own thresholds plus what
    // the rules find and the model does not veto: choose both with the rules'
    // decisions in place.
    let fired: Vec<[bool; 3]> = (0..c.examples.len())
        .filter(|&i| held(c.examples[i].doc))
        .map(|i| c.rules_fired[i])
        .collect();
    let (hybrid_thresholds, rules_floor, hybrid_f1) = tune_vote(&probs, &fired, &val_ex);
    log(&format!("hybrid (model, or rules not vetoed by the model): held-out micro F1 {hybrid_f1:.4} at model thresholds {hybrid_thresholds:?}, rules floors {rules_floor:?}"));
    let targets_file = opts.out.join("targets.safetensors");
    let kept = reused && opts.keep_targets && targets_file.is_file();
    let sources = if kept {
        log(&format!(
            "keeping the target head in {}",
            targets_file.display()
        ));
        kept_lineage(sources, &StanceConfig::read(&opts.out)?.trained_on)
    } else {
        let (held_targets, targets): (Vec<&TargetExample>, Vec<&TargetExample>) =
            c.targets.iter().partition(|t| held(t.doc));
        let varmap = train_targets(opts, c.state_dim, &targets, &held_targets, log)?;
        varmap.save(&targets_file).during("stance training")?;
        sources
    };
    let config = StanceConfig {
        state_dim: c.state_dim,
        hidden: opts.hidden,
        encoder_sha256: sha,
        heldout_f1,
        hybrid_thresholds,
        rules_floor,
        heldout_f1_hybrid: hybrid_f1,
        trained_on: sources,
    };
    let text = serde_json::to_string_pretty(&config).expect("config serialises");
    std::fs::write(opts.out.join("stance.json"), text + "\n").map_err(|source| {
        StanceError::Write {
            path: opts.out.join("stance.json"),
            source,
        }
    })?;
    log(&format!("saved {}", opts.out.display()));
    Ok(Some(config))
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

/// A continued classifier's `trained_on`: its own files, then the training files of the one it
/// continues (and of those before it), whose weights it carries, so that `stance models`
/// shows all it learned from. The earlier runs' tuning files are left out.
fn with_lineage(mut sources: Vec<String>, earlier: &[String]) -> Vec<String> {
    for entry in earlier.iter().filter(|e| !e.starts_with(TUNE_SOURCE)) {
        let file = entry.strip_prefix(CONTINUED_SOURCE).unwrap_or(entry);
        let listed = sources
            .iter()
            .any(|s| s.strip_prefix(CONTINUED_SOURCE).unwrap_or(s) == file);
        if !listed {
            sources.push(format!("{CONTINUED_SOURCE}{file}"));
        }
    }
    sources
}

/// What a refit model lists as its training data when its weights are all kept: the
/// kept model's own list, with the tune files of this fit in place of its tune files.
fn kept_lineage(this_fit: Vec<String>, kept: &[String]) -> Vec<String> {
    let tune = |e: &String| e.starts_with(TUNE_SOURCE);
    // An averaged model may list one file both as its own and as an earlier model's.
    let own = |e: &String| {
        e.strip_prefix(CONTINUED_SOURCE)
            .is_some_and(|file| kept.iter().any(|k| k == file))
    };
    let mut out: Vec<String> = kept
        .iter()
        .filter(|e| !tune(e) && !own(e))
        .cloned()
        .collect();
    out.extend(this_fit.into_iter().filter(tune));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refit_that_keeps_every_weight_keeps_the_training_data_and_takes_the_new_tune() {
        let fit = vec![
            "conll.jsonl:train".to_string(),
            format!("{TUNE_SOURCE}tune-new.jsonl"),
        ];
        let kept = [
            "news.jsonl".to_string(),
            format!("{TUNE_SOURCE}tune-old.jsonl"),
            format!("{CONTINUED_SOURCE}older.jsonl"),
            format!("{CONTINUED_SOURCE}news.jsonl"),
        ];
        assert_eq!(
            kept_lineage(fit, &kept),
            vec![
                "news.jsonl".to_string(),
                format!("{CONTINUED_SOURCE}older.jsonl"),
                format!("{TUNE_SOURCE}tune-new.jsonl"),
            ]
        );
    }

    #[test]
    fn a_continued_model_lists_what_the_earlier_ones_learned_from() {
        let own = vec![
            "new.jsonl".to_string(),
            "conll.jsonl:train".to_string(),
            format!("{TUNE_SOURCE}tune.jsonl"),
        ];
        let earlier = [
            "old.jsonl".to_string(),
            "conll.jsonl:train".to_string(),
            format!("{TUNE_SOURCE}old-tune.jsonl"),
            format!("{CONTINUED_SOURCE}oldest.jsonl"),
            format!("{CONTINUED_SOURCE}old.jsonl"),
        ];
        assert_eq!(
            with_lineage(own, &earlier),
            [
                "new.jsonl".to_string(),
                "conll.jsonl:train".to_string(),
                format!("{TUNE_SOURCE}tune.jsonl"),
                format!("{CONTINUED_SOURCE}old.jsonl"),
                format!("{CONTINUED_SOURCE}oldest.jsonl"),
            ]
        );
    }

    fn example(positive: bool) -> Example {
        Example {
            sentence: 0,
            slot: 0,
            targets: Vec::new(),
            mention: 0..1,
            y: [if positive { 1.0 } else { 0.0 }, 0.0, 0.0],
            mask: [1.0; 3],
            doc: 0,
        }
    }

    /// (threat probability, rules fired, gold) per candidate.
    fn tune(cases: &[(f32, bool, bool)]) -> ([f32; 3], [f32; 3], f64) {
        let ex: Vec<Example> = cases.iter().map(|c| example(c.2)).collect();
        let refs: Vec<&Example> = ex.iter().collect();
        let probs: Vec<[f32; 3]> = cases.iter().map(|c| [c.0, 0.0, 0.0]).collect();
        let fired: Vec<[bool; 3]> = cases.iter().map(|c| [c.1, false, false]).collect();
        tune_vote(&probs, &fired, &refs)
    }

    #[test]
    fn the_model_vetoes_rules_it_gives_no_chance() {
        let (thresholds, floors, micro) = tune(&[
            (0.95, false, true),  // the model alone finds it
            (0.30, true, true),   // the rules find it, the model half agrees
            (0.01, true, false),  // a rules false alarm the model does not believe
            (0.35, false, false), // a model doubt below the best threshold
        ]);
        assert_eq!(thresholds[0], 0.4);
        assert_eq!(floors[0], 0.02, "lowest floor that vetoes the false alarm");
        assert_eq!(micro, 1.0);
    }

    #[test]
    fn rules_the_model_misses_entirely_keep_the_plain_union() {
        let (_, floors, micro) = tune(&[(0.95, false, true), (0.0, true, true)]);
        assert_eq!(floors[0], 0.0);
        assert_eq!(micro, 1.0);
    }
}
