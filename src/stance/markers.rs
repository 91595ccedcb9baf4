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

use super::resume::ActorRunState;
use crate::error::{During, Result, StanceError};
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

/// Vocabulary entries that mark where a rule cue of each label (threat, accusation,
/// proposal) begins, for models trained with cue markers; unused in pretraining.
const CUE_MARKERS: [&str; 3] = ["[unused2]", "[unused3]", "[unused4]"];

/// Name of the pair head's weights (the target scorer trained with the sentence layout).
const PAIR: &str = "pair_head";

/// Pair features besides the three state blocks: the label (one-hot), "no target",
/// the option standing after the actor, and their distance.
pub const PAIR_EXTRA: usize = 6;

/// Hidden width of the pair head.
const PAIR_HIDDEN: usize = 128;

/// Scores (actor, option) pairs from the actor classifier's own marker states: the
/// encoder that decides who acts also reads whom at, in the same pass.
#[derive(Debug, Clone)]
pub struct PairHead {
    /// The state that stands for "no target".
    none: Tensor,
    hidden: Dense,
    out: Dense,
}

impl PairHead {
    pub fn build(h: usize, vb: VarBuilder) -> candle_core::Result<PairHead> {
        Ok(PairHead {
            none: vb.get(h, "none")?,
            hidden: dense(3 * h + PAIR_EXTRA, PAIR_HIDDEN, vb.pp("hidden"))?,
            out: dense(PAIR_HIDDEN, 1, vb.pp("out"))?,
        })
    }

    /// One score per query, given the marker states `[n, h]` of `cands`.
    pub fn scores(
        &self,
        cands: &[Candidate],
        states: &Tensor,
        queries: &[PairQuery],
    ) -> candle_core::Result<Tensor> {
        let dev = Device::Cpu;
        let n = states.dim(0)?;
        let all = Tensor::cat(&[states, &self.none.unsqueeze(0)?], 0)?;
        let index = |f: &dyn Fn(&PairQuery) -> usize| {
            Tensor::from_vec(
                queries.iter().map(|q| f(q) as u32).collect::<Vec<_>>(),
                queries.len(),
                &dev,
            )
        };
        let a = all.index_select(&index(&|q| q.actor)?, 0)?;
        let o = all.index_select(&index(&|q| q.option.unwrap_or(n))?, 0)?;
        let mut extra = Vec::with_capacity(queries.len() * PAIR_EXTRA);
        for q in queries {
            let mut onehot = [0f32; 3];
            onehot[q.label] = 1.0;
            extra.extend(onehot);
            match q.option {
                None => extra.extend([1.0, 0.0, 0.0]),
                Some(k) => {
                    let (at, to) = (cands[q.actor].mention.start, cands[k].mention.start);
                    extra.push(0.0);
                    extra.push(if to > at { 1.0 } else { 0.0 });
                    extra.push(((to as f32 - at as f32).abs() / 32.0).min(4.0));
                }
            }
        }
        let extra = Tensor::from_vec(extra, (queries.len(), PAIR_EXTRA), &dev)?;
        let x = Tensor::cat(&[&a, &o, &(&a * &o)?, &extra], 1)?;
        self.out
            .forward(&self.hidden.forward(&x)?.gelu_erf()?)?
            .squeeze(D::Minus1)
    }

    /// The best option of each choice (index into its options).
    pub fn choose(
        &self,
        cands: &[Candidate],
        states: &Tensor,
        choices: &[TargetChoice],
    ) -> candle_core::Result<Vec<usize>> {
        let queries: Vec<PairQuery> = choices.iter().flat_map(|c| c.queries()).collect();
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let scores = self.scores(cands, states, &queries)?.to_vec1::<f32>()?;
        let mut out = Vec::with_capacity(choices.len());
        let mut at = 0;
        for c in choices {
            let s = &scores[at..at + c.options.len()];
            at += c.options.len();
            let best = s
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.partial_cmp(y.1).unwrap_or(std::cmp::Ordering::Equal))
                .map_or(0, |(i, _)| i);
            out.push(best);
        }
        Ok(out)
    }
}

/// One (actor, option) pair to score: candidate indices and a label index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairQuery {
    pub actor: usize,
    /// A candidate, or `None` for "no target".
    pub option: Option<usize>,
    pub label: usize,
}

/// A statement's target to choose: its actor and label, the options (candidate
/// indices, `None` for no target) and, in training, the gold option.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetChoice {
    pub actor: usize,
    pub label: usize,
    pub options: Vec<Option<usize>>,
    pub gold: usize,
}

impl TargetChoice {
    fn queries(&self) -> impl Iterator<Item = PairQuery> + '_ {
        self.options.iter().map(move |&option| PairQuery {
            actor: self.actor,
            option,
            label: self.label,
        })
    }
}

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
    /// How candidates are read: alone, or every candidate of a sentence in one pass.
    #[serde(default)]
    pub layout: MarkerLayout,
    /// Whether `pair_head.*` scores targets from the classifier's own states.
    #[serde(default)]
    pub pair_targets: bool,
    /// Held-out accuracy of the pair head's targets (over gold statements).
    #[serde(default)]
    pub heldout_target_accuracy: f64,
    /// Sentences before a candidate's own that are read with it (unmarked), as context.
    #[serde(default)]
    pub context: usize,
    /// Longest input in word pieces (a longer one is cut around each mention).
    #[serde(default = "default_max_piece")]
    pub max_piece: usize,
    /// Whether the rules' cues are marked in the input (a marker token before each),
    /// so the classifier reads them as features instead of voting with them after.
    #[serde(default)]
    pub cue_markers: bool,
}

fn default_max_piece() -> usize {
    MAX_PIECE
}

/// Positions of the encoder (BERT-style models read at most 512 word pieces).
const MAX_POSITIONS: usize = 512;

/// Tokens an input adds around its pieces: [CLS], [SEP] and one pair of markers (more
/// markers only go in where the pieces leave room; see [`MarkerModel::groups`]).
const INPUT_OVERHEAD: usize = 4;

/// The longest input for `context` sentences of context: room for each sentence.
pub fn max_piece_for(context: usize) -> usize {
    (MAX_PIECE * (1 + context)).min(MAX_POSITIONS - INPUT_OVERHEAD)
}

/// How the actor classifier reads its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum MarkerLayout {
    /// One encoder pass per candidate, its mention alone marked.
    #[default]
    Candidate,
    /// One encoder pass per sentence, every candidate mention marked; each is
    /// classified from its own opening marker.
    Sentence,
}

impl MarkerLayout {
    /// The name users write (`--layout candidate|sentence`).
    pub fn as_str(&self) -> &'static str {
        match self {
            MarkerLayout::Candidate => "candidate",
            MarkerLayout::Sentence => "sentence",
        }
    }
}

/// The encoder plus the actor head.
pub struct MarkerModel {
    pub model: TokenClassifier,
    pub head: Dense,
    /// The target scorer, when the model was trained with one.
    pub pair: Option<PairHead>,
    pub text: TextEncoder,
    open: u32,
    close: u32,
    /// Marker ids per cue label, when the model marks cues.
    cues: Option<[u32; 3]>,
    pub config: MarkerConfig,
}

/// One candidate: the tokens of its sentence, the mention's token range in them and
/// the rules' cues of the sentence.
pub struct Candidate<'a> {
    pub tokens: &'a Tokens,
    pub mention: Range<usize>,
    pub cues: &'a [CueMark],
}

/// Where a rule cue begins in a unit's tokens, and its label (index into
/// `StanceLabel::ALL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CueMark {
    pub token: usize,
    pub label: usize,
}

/// What the actor classifier reads for one sentence: its tokens (after any context
/// sentences) and where the rules' cues begin in them.
#[derive(Debug, Clone, Default)]
pub struct Unit {
    pub tokens: Tokens,
    pub cues: Vec<CueMark>,
}

impl Unit {
    /// A candidate of this unit: the mention at `mention`.
    pub fn candidate(&self, mention: Range<usize>) -> Candidate<'_> {
        Candidate {
            tokens: &self.tokens,
            mention,
            cues: &self.cues,
        }
    }
}

/// The id of vocabulary entry `token`, which marks `what` in the classifier's input.
fn token_id(
    text: &TextEncoder,
    path: &Path,
    token: &str,
    what: &str,
) -> std::result::Result<u32, ModelError> {
    text.tokenizer
        .token_to_id(token)
        .ok_or_else(|| ModelError::Tokenizer {
            path: path.into(),
            message: format!("no {token} token to mark {what} with"),
        })
}

fn marker_ids(text: &TextEncoder, path: &Path) -> std::result::Result<(u32, u32), ModelError> {
    Ok((
        token_id(text, path, "[unused0]", "mentions")?,
        token_id(text, path, "[unused1]", "mentions")?,
    ))
}

/// The cue marker ids, when `config` asks for cue markers.
fn cue_marker_ids(
    text: &TextEncoder,
    path: &Path,
    config: &MarkerConfig,
) -> std::result::Result<Option<[u32; 3]>, ModelError> {
    if !config.cue_markers {
        return Ok(None);
    }
    let mut ids = [0u32; 3];
    for (id, token) in ids.iter_mut().zip(CUE_MARKERS) {
        *id = token_id(text, path, token, "cues")?;
    }
    Ok(Some(ids))
}

impl MarkerConfig {
    /// Reads `stance_markers.json` of a trained actor classifier's directory.
    pub fn read(dir: &Path) -> Result<MarkerConfig> {
        super::read_config(&dir.join("stance_markers.json"))
    }

    /// Writes `stance_markers.json` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join("stance_markers.json");
        let text = serde_json::to_string_pretty(self).expect("config serialises");
        std::fs::write(&path, text + "\n").map_err(|source| StanceError::Write { path, source })
    }
}

impl MarkerModel {
    /// Loads `dir` (a token-classification checkpoint with `actor_head.*` and `stance_markers.json`).
    pub fn load(dir: &Path) -> Result<MarkerModel> {
        let ck = Checkpoint::open(dir)?;
        let bad = |file: &str, message: String| {
            StanceError::Model(ModelError::Config {
                path: dir.join(file),
                message,
            })
        };
        let config = MarkerConfig::read(dir)?;
        let (_, vb) =
            crate::model::checkpoint::open_weights(&ck.weights, DType::F32, &Device::Cpu)?;
        let mut model = TokenClassifier::build(
            &ck.config,
            ck.arch,
            ck.labels.clone(),
            ck.arch.prefix(),
            vb.clone(),
        )
        .map_err(|e| bad("model.safetensors", e.to_string()))?;
        model
            .encoder
            .prepare_inference()
            .map_err(|e| bad("model.safetensors", e.to_string()))?;
        let head = dense(2 * ck.config.hidden_size, 3, vb.pp(HEAD))
            .map_err(|e| bad("model.safetensors", format!("{HEAD}: {e}")))?;
        let pair = if config.pair_targets {
            Some(
                PairHead::build(ck.config.hidden_size, vb.pp(PAIR))
                    .map_err(|e| bad("model.safetensors", format!("{PAIR}: {e}")))?,
            )
        } else {
            None
        };
        let tokenizer = load_tokenizer(&ck.tokenizer, ck.config.vocab_size)?;
        let text = TextEncoder::new(tokenizer, ck.config.pad_token_id as u32)?;
        let (open, close) = marker_ids(&text, &ck.tokenizer)?;
        let cues = cue_marker_ids(&text, &ck.tokenizer, &config)?;
        Ok(MarkerModel {
            model,
            head,
            pair,
            text,
            open,
            close,
            cues,
            config,
        })
    }

    /// The ids, shapes and opening-marker positions of one input: a sentence's
    /// tokens with markers around each of `mentions` (ranges in order, not
    /// overlapping). One mention in a long sentence reads a window of at most
    /// [`MAX_PIECE`] tokens that keeps it near the middle; several mentions read the
    /// whole sentence (see [`MarkerModel::groups`]). With cue markers, a marker of
    /// its label stands before each of `cues`.
    fn input(
        &self,
        tokens: &Tokens,
        mentions: &[Range<usize>],
        cues: &[CueMark],
    ) -> (Vec<u32>, Vec<u32>, Vec<usize>) {
        let n = tokens.len();
        let cue_ids = self.cues.filter(|_| !cues.is_empty());
        // Room for the cue markers comes out of the window.
        let max = self
            .config
            .max_piece
            .saturating_sub(cue_ids.map_or(0, |_| cues.len()))
            .max(1);
        let (start, end) = match mentions {
            [m] if n > max => {
                let centre = (m.start + m.end) / 2;
                let start = centre.saturating_sub(max / 2).min(n - max);
                (start, start + max)
            }
            _ => (0, n),
        };
        let mut ids = vec![self.text.cls];
        let mut shapes = vec![SHAPE_OTHER];
        let mut markers = vec![0; mentions.len()];
        for t in start..end {
            if let Some(cue_ids) = cue_ids {
                for c in cues.iter().filter(|c| c.token == t) {
                    ids.push(cue_ids[c.label]);
                    shapes.push(SHAPE_OTHER);
                }
            }
            for (k, m) in mentions.iter().enumerate() {
                if t == m.start {
                    markers[k] = ids.len();
                    ids.push(self.open);
                    shapes.push(SHAPE_OTHER);
                }
            }
            ids.push(tokens.ids[t]);
            shapes.push(tokens.shapes[t]);
            if mentions.iter().any(|m| t + 1 == m.end) {
                ids.push(self.close);
                shapes.push(SHAPE_OTHER);
            }
        }
        ids.push(self.text.sep);
        shapes.push(SHAPE_OTHER);
        (ids, shapes, markers)
    }

    /// Candidates read together, by index. With [`MarkerLayout::Candidate`] each
    /// is read alone; with [`MarkerLayout::Sentence`] a run of consecutive
    /// candidates of one sentence is read in one pass with all of them marked,
    /// when the sentence fits and the mentions do not overlap.
    pub fn groups(&self, cands: &[Candidate]) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = Vec::new();
        let same = |a: &Candidate, b: &Candidate| std::ptr::eq(a.tokens, b.tokens);
        let mut i = 0;
        while i < cands.len() {
            let mut j = i + 1;
            if self.config.layout == MarkerLayout::Sentence {
                while j < cands.len() && same(&cands[i], &cands[j]) {
                    j += 1;
                }
            }
            let run: Vec<usize> = (i..j).collect();
            let cue_markers = self.cues.map_or(0, |_| cands[i].cues.len());
            let fits =
                cands[i].tokens.len() + 2 * run.len() + cue_markers <= self.config.max_piece + 2;
            let apart = run
                .windows(2)
                .all(|w| cands[w[0]].mention.end <= cands[w[1]].mention.start);
            if run.len() > 1 && fits && apart {
                out.push(run);
            } else {
                out.extend(run.into_iter().map(|k| vec![k]));
            }
            i = j;
        }
        out
    }

    /// The input of one group (candidates of one sentence, by index), all of them marked.
    fn group_input(
        &self,
        cands: &[Candidate],
        group: &[usize],
    ) -> (Vec<u32>, Vec<u32>, Vec<usize>) {
        let mentions: Vec<Range<usize>> = group.iter().map(|&k| cands[k].mention.clone()).collect();
        self.input(cands[group[0]].tokens, &mentions, cands[group[0]].cues)
    }

    /// Rows and width (in word pieces, before padding) of the encoder batch that
    /// reading `cands` takes; a training step's memory grows with their product.
    pub fn batch_shape(&self, cands: &[Candidate]) -> (usize, usize) {
        let groups = self.groups(cands);
        let width = groups
            .iter()
            .map(|g| self.group_input(cands, g).0.len())
            .max()
            .unwrap_or(0);
        (groups.len(), width)
    }

    /// Label logits `[n, 3]` of a batch of candidates, in their order.
    pub fn logits(&self, cands: &[Candidate], mode: &mut Mode) -> candle_core::Result<Tensor> {
        Ok(self.forward(cands, mode)?.0)
    }

    /// Label logits `[n, 3]` and opening-marker states `[n, h]` of a batch of
    /// candidates, in their order.
    pub fn forward(
        &self,
        cands: &[Candidate],
        mode: &mut Mode,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let groups = self.groups(cands);
        let (logits, states) = self.logits_of_groups(cands, &groups, mode)?;
        let order: Vec<usize> = groups.iter().flatten().copied().collect();
        if order.windows(2).all(|w| w[0] < w[1]) {
            return Ok((logits, states));
        }
        let mut inverse = vec![0u32; order.len()];
        for (row, &k) in order.iter().enumerate() {
            inverse[k] = row as u32;
        }
        let n = inverse.len();
        let inverse = Tensor::from_vec(inverse, n, &Device::Cpu)?;
        Ok((
            logits.index_select(&inverse, 0)?,
            states.index_select(&inverse, 0)?,
        ))
    }

    /// Logits and marker states of the candidates of `groups` (each group one
    /// encoder row), one row per candidate in the order the groups list them.
    fn logits_of_groups(
        &self,
        cands: &[Candidate],
        groups: &[Vec<usize>],
        mode: &mut Mode,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let inputs: Vec<(Vec<u32>, Vec<u32>, Vec<usize>)> =
            groups.iter().map(|g| self.group_input(cands, g)).collect();
        let len = inputs.iter().map(|i| i.0.len()).max().unwrap_or(2);
        let (mut ids, mut mask, mut shapes, mut pos) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (r, (i, s, markers)) in inputs.iter().enumerate() {
            ids.extend_from_slice(i);
            ids.extend(std::iter::repeat_n(self.text.pad, len - i.len()));
            mask.extend(std::iter::repeat_n(1u32, i.len()));
            mask.extend(std::iter::repeat_n(0u32, len - i.len()));
            shapes.extend_from_slice(s);
            shapes.extend(std::iter::repeat_n(SHAPE_OTHER, len - i.len()));
            for m in markers {
                pos.push((r * len) as u32);
                pos.push((r * len + m) as u32);
            }
        }
        let rows = groups.len();
        let n = pos.len() / 2;
        let dev = Device::Cpu;
        let ids = Tensor::from_vec(ids, (rows, len), &dev)?;
        let mask = Tensor::from_vec(mask, (rows, len), &dev)?;
        let shapes = Tensor::from_vec(shapes, (rows, len), &dev)?;
        let hidden =
            self.model
                .encoder
                .forward(&ids, &mask, self.model.casing.then_some(&shapes), mode)?;
        let h = hidden.dim(D::Minus1)?;
        let picked = hidden
            .reshape((rows * len, h))?
            .index_select(&Tensor::from_vec(pos, 2 * n, &dev)?, 0)?;
        let pairs = picked.reshape((n, 2 * h))?;
        let states = pairs.narrow(1, h, h)?;
        Ok((self.head.forward(&pairs)?, states))
    }

    /// Probabilities `[threat, accusation, proposal]` of each candidate, in batches
    /// (of encoder rows) over worker threads.
    pub fn probabilities(
        &self,
        cands: &[Candidate],
        batch: usize,
        workers: usize,
    ) -> Result<Vec<[f32; 3]>> {
        Ok(self.read(cands, batch, workers, false)?.0)
    }

    /// Probabilities of each candidate and, with `states`, its marker state `[n, h]`
    /// (for the pair head).
    pub fn read(
        &self,
        cands: &[Candidate],
        batch: usize,
        workers: usize,
        states: bool,
    ) -> Result<(Vec<[f32; 3]>, Option<Tensor>)> {
        let groups = self.groups(cands);
        let lengths: Vec<usize> = groups
            .iter()
            .map(|g| {
                let cues = self.cues.map_or(0, |_| cands[g[0]].cues.len());
                cands[g[0]].tokens.len() + 2 * g.len() + cues
            })
            .collect();
        type Read = (Vec<[f32; 3]>, Option<Tensor>);
        let per_group: Vec<Read> = threads::map_batches(&lengths, batch, workers, |b| {
            let chosen: Vec<Vec<usize>> = b.iter().map(|&g| groups[g].clone()).collect();
            let (z, st) = self.logits_of_groups(cands, &chosen, &mut Mode::Infer)?;
            let probs = candle_nn::ops::sigmoid(&z)?.to_vec2::<f32>()?;
            // Rows come in the order of `chosen`'s candidates; split them per group.
            let mut rows = probs.into_iter().map(|p| [p[0], p[1], p[2]]);
            let mut at = 0;
            chosen
                .iter()
                .map(|g| {
                    let p: Vec<[f32; 3]> = rows.by_ref().take(g.len()).collect();
                    let s = if states {
                        Some(st.narrow(0, at, g.len())?)
                    } else {
                        None
                    };
                    at += g.len();
                    Ok((p, s))
                })
                .collect::<candle_core::Result<Vec<Read>>>()
        })
        .during("actor classifier")?;
        let mut probs = vec![[0f32; 3]; cands.len()];
        let mut rows: Vec<Option<Tensor>> = vec![None; cands.len()];
        for (g, (p, st)) in groups.iter().zip(per_group) {
            for (k, (&c, pc)) in g.iter().zip(p).enumerate() {
                probs[c] = pc;
                if let Some(st) = &st {
                    rows[c] = Some(st.get(k).during("actor classifier")?);
                }
            }
        }
        let states = if states && !cands.is_empty() {
            let rows: Vec<Tensor> = rows.into_iter().flatten().collect();
            Some(Tensor::stack(&rows, 0).during("actor classifier")?)
        } else {
            None
        };
        Ok((probs, states))
    }
}

/// Token range of `span` within `tokens` (tokens that overlap it).
pub fn mention_range(tokens: &Tokens, span: Span) -> Option<Range<usize>> {
    // Token spans are in text order: binary search for the first that ends after the
    // mention starts, then walk the few it covers.
    let start = tokens.spans.partition_point(|t| t.end <= span.start);
    let end = start + tokens.spans[start..].partition_point(|t| t.start < span.end);
    (start < end && tokens.spans[start].overlaps(&span)).then_some(start..end)
}

/// A training candidate: its sentence's tokens (by index), mention range and labels.
pub struct Example {
    pub sentence: usize,
    /// Position among the candidates of its sentence.
    pub slot: usize,
    /// Gold targets of this candidate's statements: (label index, the options as
    /// slots of the same sentence or `None` for no target, the gold option).
    pub targets: Vec<(usize, Vec<Option<usize>>, usize)>,
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
    pub layout: MarkerLayout,
    /// Train a pair head for targets on the classifier's states (sentence layout only).
    pub pair_targets: bool,
    /// Weight of the pair head's loss beside the labels' loss.
    pub target_weight: f64,
    /// Sentences of context read before each candidate's sentence.
    pub context: usize,
    /// Mark the rules' cues in the input.
    pub cue_markers: bool,
    /// A trained actor classifier (an `actors/` directory) to continue from instead of
    /// starting from `start` with new heads: new data need not repeat the whole run.
    pub init: Option<PathBuf>,
    /// Stop after this many minutes (at a step boundary), saving the run to resume.
    pub max_minutes: Option<f64>,
    /// Continue the run saved in `resume_dir`.
    pub resume: bool,
    /// Minutes between two saves of the resumable state (besides each epoch's end).
    pub checkpoint_minutes: f64,
    /// Where the resumable state is kept.
    pub resume_dir: PathBuf,
}

impl MarkerTrainOptions {
    /// Whether a pair head is trained: it reads the sentence layout's states only.
    fn trains_pair_head(&self) -> bool {
        self.pair_targets && self.layout == MarkerLayout::Sentence
    }
}

/// The target choices of `examples` (in their order) over candidate indices: each
/// example's options are looked up among the examples of its sentence.
fn choices_of(examples: &[&Example]) -> Vec<TargetChoice> {
    let mut at = std::collections::HashMap::new();
    for (i, e) in examples.iter().enumerate() {
        at.insert((e.sentence, e.slot), i);
    }
    let mut out = Vec::new();
    for (i, e) in examples.iter().enumerate() {
        for (label, options, gold) in &e.targets {
            let mapped: Option<Vec<Option<usize>>> = options
                .iter()
                .map(|o| match o {
                    None => Some(None),
                    Some(slot) => at.get(&(e.sentence, *slot)).map(|&k| Some(k)),
                })
                .collect();
            if let Some(options) = mapped {
                out.push(TargetChoice {
                    actor: i,
                    label: *label,
                    options,
                    gold: *gold,
                });
            }
        }
    }
    out
}

/// Share of `choices` whose best option is the gold one.
pub fn target_accuracy(
    pair: &PairHead,
    cands: &[Candidate],
    states: &Tensor,
    choices: &[TargetChoice],
) -> candle_core::Result<f64> {
    let best = pair.choose(cands, states, choices)?;
    let right = best
        .iter()
        .zip(choices)
        .filter(|(b, c)| **b == c.gold)
        .count();
    Ok(right as f64 / choices.len().max(1) as f64)
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
/// `sentences` are the tokenized sentences with their cues; `held` marks held-out
/// documents. Returns false when `--max-minutes` stopped the run before its last
/// epoch ended (its state is in `opts.resume_dir`); the best epoch so far is in `opts.out`.
pub fn train_markers(
    opts: &MarkerTrainOptions,
    sentences: &[Unit],
    examples: &[Example],
    held: &dyn Fn(usize) -> bool,
    sources: Vec<String>,
    log: &mut dyn FnMut(&str),
) -> Result<bool> {
    let started = Instant::now();
    let start = opts.init.as_deref().unwrap_or(&opts.start);
    if let Some(init) = &opts.init {
        check_continues(init, opts)?;
    }
    let base = Base::open(start)?;
    let ck = Checkpoint::open(start)?;
    let labels: Vec<&str> = ck.labels.iter().map(|s| s.as_str()).collect();
    let trainable =
        Trainable::from_weights(&base, &labels, ck.config.stance_casing, true, opts.seed)?;
    let vb = VarBuilder::from_varmap(&trainable.varmap, DType::F32, &Device::Cpu);
    let head = dense(2 * ck.config.hidden_size, 3, vb.pp(HEAD)).during("actor classifier")?;
    let pair_targets = opts.trains_pair_head();
    let pair = if pair_targets {
        Some(PairHead::build(ck.config.hidden_size, vb.pp(PAIR)).during("actor classifier")?)
    } else {
        None
    };
    let mut rng = SplitMix64(opts.seed ^ 0xAC70);
    if opts.init.is_some() {
        load_heads(&trainable, &ck.weights)?;
    } else {
        // New heads: weights from N(0, 0.02), biases at zero, in a fixed order.
        let vars = trainable.varmap.data().lock().expect("varmap lock");
        let mut names: Vec<&String> = vars
            .keys()
            .filter(|k| k.starts_with(HEAD) || k.starts_with(PAIR))
            .collect();
        names.sort();
        for name in names {
            let v = &vars[name];
            if name.ends_with("bias") {
                v.set(&v.zeros_like().during("actor classifier")?)
                    .during("actor classifier")?;
            } else {
                let values: Vec<f32> = (0..v.elem_count())
                    .map(|_| rng.next_normal() * 0.02)
                    .collect();
                v.set(
                    &Tensor::from_vec(values, v.shape(), &Device::Cpu)
                        .during("actor classifier")?,
                )
                .during("actor classifier")?;
            }
        }
    }
    let (open, close) = marker_ids(&trainable.encoder, &ck.tokenizer)?;
    let config = MarkerConfig {
        thresholds: [0.5; 3],
        heldout_f1: 0.0,
        epochs: opts.epochs,
        trained_on: sources,
        layout: opts.layout,
        pair_targets,
        heldout_target_accuracy: 0.0,
        context: opts.context,
        max_piece: max_piece_for(opts.context),
        cue_markers: opts.cue_markers,
    };
    let cues = cue_marker_ids(&trainable.encoder, &ck.tokenizer, &config)?;
    let mut model = MarkerModel {
        model: trainable.model.clone(),
        head,
        pair,
        text: trainable.encoder.clone(),
        open,
        close,
        cues,
        config,
    };
    let vars = trainable.named_vars();
    let mut optimizer = AdamW::new(
        vars.clone(),
        AdamWConfig {
            lr: opts.lr,
            ..Default::default()
        },
    )
    .during("actor classifier")?;
    optimizer.scale_lr(HEAD, 20.0);
    optimizer.scale_lr(PAIR, 20.0);
    let train: Vec<&Example> = examples.iter().filter(|e| !held(e.doc)).collect();
    let val: Vec<&Example> = examples.iter().filter(|e| held(e.doc)).collect();
    // The unit of sampling: a candidate, or with the sentence layout every candidate
    // of a sentence (read in one pass). A unit with any positive label is positive.
    let mut units: Vec<Vec<usize>> = Vec::new();
    for (i, e) in train.iter().enumerate() {
        match units.last_mut() {
            Some(u)
                if opts.layout == MarkerLayout::Sentence && train[u[0]].sentence == e.sentence =>
            {
                u.push(i)
            }
            _ => units.push(vec![i]),
        }
    }
    let positive = |u: &Vec<usize>| u.iter().any(|&i| train[i].y.iter().any(|v| *v > 0.0));
    let positives: Vec<usize> = (0..units.len()).filter(|&u| positive(&units[u])).collect();
    let negatives: Vec<usize> = (0..units.len()).filter(|&u| !positive(&units[u])).collect();
    let per_unit = train.len() as f64 / units.len().max(1) as f64;
    let per_epoch = positives.len() + (negatives.len() as f64 * opts.negatives) as usize;
    let unit_batch = ((opts.batch_size as f64 / per_unit).round() as usize).max(1);
    let steps = per_epoch.div_ceil(unit_batch) * opts.epochs;
    log(&format!(
        "actor classifier ({:?} layout): {} training candidates in {} units ({} positive), {} held out; {} steps",
        opts.layout,
        train.len(),
        units.len(),
        positives.len(),
        val.len(),
        steps
    ));
    let cand = |e: &Example| sentences[e.sentence].candidate(e.mention.clone());
    let mut state = ActorRunState::new(steps, opts.seed);
    if opts.resume {
        state = ActorRunState::resume(&opts.resume_dir, &state, &mut optimizer)?;
        log(&format!(
            "resumed the actor classifier at epoch {}, batch {} (step {} of {steps})",
            state.epoch + 1,
            state.batch_in_epoch,
            state.step
        ));
    }
    let minutes_before = state.minutes;
    let elapsed = || minutes_before + started.elapsed().as_secs_f64() / 60.0;
    let mut last_save = Instant::now();
    while state.epoch < opts.epochs {
        let epoch = state.epoch;
        // Each epoch draws from its own seed, so a resumed run sees the same batches.
        let mut rng = SplitMix64(epoch_seed(opts.seed, epoch));
        let mut chosen = positives.clone();
        chosen.extend(
            negatives
                .iter()
                .copied()
                .filter(|_| (rng.next_f32() as f64) < opts.negatives),
        );
        rng.shuffle(&mut chosen);
        let pool = unit_batch * 32;
        for chunk in chosen.chunks_mut(pool) {
            chunk.sort_by_key(|&u| sentences[train[units[u][0]].sentence].tokens.len());
        }
        let mut batches: Vec<Vec<usize>> = chosen.chunks(unit_batch).map(|c| c.to_vec()).collect();
        rng.shuffle(&mut batches);
        let mut bar = crate::model::train::EpochProgress::new(
            opts.progress,
            "actor ",
            batches.len() as u64,
            state.batch_in_epoch as u64,
            (epoch + 1, opts.epochs),
        );
        let mut cut_steps = 0usize;
        while state.batch_in_epoch < batches.len() {
            let b = &batches[state.batch_in_epoch];
            let step = state.step;
            // Shards of whole units, one per thread; each shard is a list of pieces read
            // in turn, and each piece a list of candidates.
            let shards: Vec<Vec<Vec<usize>>> = b
                .chunks(b.len().div_ceil(opts.threads.max(1)))
                .map(|us| {
                    let us: Vec<&[usize]> = us.iter().map(|&u| units[u].as_slice()).collect();
                    pieces_of(&us, PIECE_TOKENS, |u| {
                        let cs: Vec<Candidate> = u.iter().map(|&i| cand(train[i])).collect();
                        model.batch_shape(&cs)
                    })
                })
                .collect();
            if shards.iter().any(|pieces| pieces.len() > 1) {
                cut_steps += 1;
            }
            let denom: f32 = shards
                .iter()
                .flat_map(|s| s.iter().flat_map(|p| p.iter()))
                .map(|&i| train[i].mask.iter().sum::<f32>())
                .sum::<f32>()
                .max(1.0);
            let seed = opts.seed.wrapping_mul(0x9E37) ^ step as u64;
            let m = &model;
            let choices_in_batch: usize = shards
                .iter()
                .flat_map(|sh| sh.iter().flat_map(|p| p.iter()))
                .map(|&i| train[i].targets.len())
                .sum::<usize>()
                .max(1);
            let (loss, grads) = sharded_gradients(&shards, &vars, |piece| {
                let cs: Vec<Candidate> = piece.iter().map(|&i| cand(train[i])).collect();
                let mut mode = Mode::Train {
                    seed: seed ^ piece[0] as u64,
                };
                let (z, states) = m.forward(&cs, &mut mode)?;
                let n = piece.len();
                let y = Tensor::from_vec(
                    piece.iter().flat_map(|&i| train[i].y).collect::<Vec<f32>>(),
                    (n, 3),
                    &Device::Cpu,
                )?;
                let mk = Tensor::from_vec(
                    piece
                        .iter()
                        .flat_map(|&i| train[i].mask)
                        .collect::<Vec<f32>>(),
                    (n, 3),
                    &Device::Cpu,
                )?;
                let pos = ((&y * opts.positive_weight)? * softplus(&z.neg()?)?)?;
                let neg = ((1.0 - &y)? * softplus(&z)?)?;
                let labels = (((pos + neg)? * mk)?.sum_all()? / denom as f64)?;
                let Some(pair) = &m.pair else {
                    return Ok(labels);
                };
                let ex: Vec<&Example> = piece.iter().map(|&i| train[i]).collect();
                let choices = choices_of(&ex);
                if choices.is_empty() {
                    return Ok(labels);
                }
                // Softmax over each statement's options; padded options score -1e9.
                let queries: Vec<PairQuery> = choices.iter().flat_map(|c| c.queries()).collect();
                let scores = pair.scores(&cs, &states, &queries)?;
                let widest = choices.iter().map(|c| c.options.len()).max().unwrap_or(1);
                let (mut index, mut pad, mut gold) = (Vec::new(), Vec::new(), Vec::new());
                let mut at = 0u32;
                for c in &choices {
                    for k in 0..widest {
                        if k < c.options.len() {
                            index.push(at + k as u32);
                            pad.push(0f32);
                        } else {
                            index.push(0);
                            pad.push(-1e9);
                        }
                    }
                    at += c.options.len() as u32;
                    gold.push(c.gold as u32);
                }
                let rows = choices.len();
                let dev = Device::Cpu;
                let padded = (scores
                    .index_select(&Tensor::from_vec(index, rows * widest, &dev)?, 0)?
                    .reshape((rows, widest))?
                    + Tensor::from_vec(pad, (rows, widest), &dev)?)?;
                let nll = candle_nn::ops::log_softmax(&padded, D::Minus1)?
                    .gather(&Tensor::from_vec(gold, (rows, 1), &dev)?, 1)?
                    .sum_all()?
                    .neg()?;
                labels + (nll * (opts.target_weight / choices_in_batch as f64))?
            })
            .during("actor classifier")?;
            state.loss_sum += loss;
            optimizer
                .step(&grads, schedule(step, steps / 10, steps), opts.threads)
                .during("actor classifier")?;
            state.step += 1;
            state.batch_in_epoch += 1;
            bar.inc(log);
            let out_of_time = opts.max_minutes.is_some_and(|m| elapsed() >= m);
            if out_of_time || last_save.elapsed().as_secs_f64() >= opts.checkpoint_minutes * 60.0 {
                state.minutes = elapsed();
                state.save(&opts.resume_dir, &optimizer)?;
                last_save = Instant::now();
            }
            if out_of_time {
                bar.abandon();
                log(&format!(
                    "stopped after {:.1} minutes (--max-minutes) at actor epoch {}, batch {} of {}; continue with --resume (and a larger --max-minutes, or none: it counts the whole run)",
                    elapsed(),
                    epoch + 1,
                    state.batch_in_epoch,
                    batches.len()
                ));
                return Ok(false);
            }
        }
        bar.finish();
        if cut_steps > 0 {
            log(&format!(
                "{cut_steps} steps read a shard in pieces (over {PIECE_TOKENS} word pieces at once)"
            ));
        }
        let cs: Vec<Candidate> = val.iter().map(|e| cand(e)).collect();
        let (probs, states) = model.read(&cs, 32, opts.threads, model.pair.is_some())?;
        let (thresholds, micro, counts) = tune_thresholds(&probs, &val);
        let targets = match (&model.pair, &states) {
            (Some(pair), Some(states)) => {
                target_accuracy(pair, &cs, states, &choices_of(&val)).during("actor classifier")?
            }
            _ => 0.0,
        };
        log(&format!(
            "actor epoch {}: loss {:.4}, held-out micro F1 {:.4} (thresholds {:?}; tp/fp/fn {:?}){}, {:.1} minutes",
            epoch + 1,
            state.loss_sum / batches.len().max(1) as f64,
            micro,
            thresholds,
            counts,
            if model.pair.is_some() { format!(", target accuracy {targets:.4}") } else { String::new() },
            elapsed()
        ));
        if state.best.is_none_or(|best| micro > best) {
            state.best = Some(micro);
            model.config.thresholds = thresholds;
            model.config.heldout_f1 = micro;
            model.config.heldout_target_accuracy = targets;
            model.config.epochs = epoch + 1;
            save(&trainable, &model, &opts.out)?;
            log(&format!("saved {}", opts.out.display()));
        }
        state.epoch += 1;
        state.batch_in_epoch = 0;
        state.loss_sum = 0.0;
        state.minutes = elapsed();
        state.save(&opts.resume_dir, &optimizer)?;
        last_save = Instant::now();
    }
    Ok(true)
}

/// Most word pieces (rows times the widest row, padding included) one piece of a
/// training shard reads. Over all of train a shard usually reads about 120 (99% of them
/// under 300), but a sentence with a couple of hundred entities, each read alone, made
/// one of 25,740 that took 15 GB for its backward pass at once.
pub const PIECE_TOKENS: usize = 2048;

/// Cuts a shard's units into consecutive pieces whose encoder batch (`shape_of` gives a
/// list of candidates' rows and width) stays within `budget` word pieces. A unit above
/// the budget is halved until its parts fit (or are one candidate each); a target choice
/// whose options then fall in two parts is not trained on in that step, which happens
/// only in such outsized sentences.
fn pieces_of(
    units: &[&[usize]],
    budget: usize,
    shape_of: impl Fn(&[usize]) -> (usize, usize),
) -> Vec<Vec<usize>> {
    let mut parts = Vec::new();
    for unit in units {
        halve_to_budget(unit, budget, &shape_of, &mut parts);
    }
    let mut pieces: Vec<Vec<usize>> = Vec::new();
    let (mut rows, mut width) = (0, 0);
    for (part, (r, w)) in parts {
        match pieces.last_mut() {
            Some(piece) if (rows + r) * width.max(w) <= budget => {
                piece.extend_from_slice(part);
                (rows, width) = (rows + r, width.max(w));
            }
            _ => {
                pieces.push(part.to_vec());
                (rows, width) = (r, w);
            }
        }
    }
    pieces
}

/// Pushes `unit` with its shape onto `out`, or, when it is above `budget` and can be cut,
/// its two halves in turn, each cut the same way.
fn halve_to_budget<'a>(
    unit: &'a [usize],
    budget: usize,
    shape_of: &impl Fn(&[usize]) -> (usize, usize),
    out: &mut Vec<(&'a [usize], (usize, usize))>,
) {
    let (rows, width) = shape_of(unit);
    if rows * width <= budget || unit.len() == 1 {
        out.push((unit, (rows, width)));
        return;
    }
    let (first, second) = unit.split_at(unit.len() / 2);
    halve_to_budget(first, budget, shape_of, out);
    halve_to_budget(second, budget, shape_of, out);
}

/// The seed of one epoch's draw of negatives and order of batches.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    (seed ^ 0xE90C).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ epoch as u64
}

/// Refuses to continue from a classifier that reads its input differently: its weights
/// were fitted to that input, and the saved settings would contradict the options.
fn check_continues(init: &Path, opts: &MarkerTrainOptions) -> Result<()> {
    let saved = MarkerConfig::read(init)?;
    let pair_targets = opts.trains_pair_head();
    let differences: Vec<String> = [
        (
            "layout",
            format!("{:?}", saved.layout),
            format!("{:?}", opts.layout),
        ),
        (
            "pair targets",
            saved.pair_targets.to_string(),
            pair_targets.to_string(),
        ),
        (
            "context sentences",
            saved.context.to_string(),
            opts.context.to_string(),
        ),
        (
            "cue markers",
            saved.cue_markers.to_string(),
            opts.cue_markers.to_string(),
        ),
    ]
    .into_iter()
    .filter(|(_, was, now)| was != now)
    .map(|(name, was, now)| format!("{name} {was} (asked for {now})"))
    .collect();
    if differences.is_empty() {
        Ok(())
    } else {
        Err(StanceError::Config(format!(
            "cannot continue from {}: it was trained with {}; give the same options",
            init.display(),
            differences.join(", ")
        )))
    }
}

/// Sets the actor and pair heads to the values saved in `weights`.
fn load_heads(trainable: &Trainable, weights: &Path) -> Result<()> {
    let (names, source) =
        crate::model::checkpoint::open_weights(weights, DType::F32, &Device::Cpu)?;
    let vars = trainable.varmap.data().lock().expect("varmap lock");
    for (name, var) in vars
        .iter()
        .filter(|(k, _)| k.starts_with(HEAD) || k.starts_with(PAIR))
    {
        if !names.contains(name.as_str()) {
            return Err(StanceError::Model(ModelError::Weights {
                path: weights.into(),
                message: format!("{name} is missing: not an actor classifier"),
            }));
        }
        let value = source.get(var.shape(), name).map_err(|e| {
            StanceError::Model(ModelError::Weights {
                path: weights.into(),
                message: format!("{name}: {e}"),
            })
        })?;
        var.set(&value).during("actor classifier")?;
    }
    Ok(())
}

fn save(trainable: &Trainable, model: &MarkerModel, out: &Path) -> Result<()> {
    trainable.save(out, model.config.max_piece, false)?;
    model.config.write(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_config_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let config = MarkerConfig {
            thresholds: [0.8, 0.6, 0.4],
            heldout_f1: 0.59,
            epochs: 2,
            trained_on: vec!["a.jsonl".into()],
            layout: MarkerLayout::Sentence,
            pair_targets: true,
            heldout_target_accuracy: 0.7,
            context: 1,
            max_piece: max_piece_for(1),
            cue_markers: true,
        };
        config.write(dir.path()).unwrap();
        assert_eq!(MarkerConfig::read(dir.path()).unwrap(), config);
    }

    #[test]
    fn a_shard_is_cut_into_pieces_within_the_budget() {
        // Unit k is k + 1 candidates, each read alone in a row 10 pieces wide.
        let units: Vec<Vec<usize>> = (0..5).map(|k| vec![k; k + 1]).collect();
        let units: Vec<&[usize]> = units.iter().map(|u| u.as_slice()).collect();
        let shape = |u: &[usize]| (u.len(), 10);
        let one = pieces_of(&units, 1000, shape);
        assert_eq!(one, vec![units.concat()], "under the budget: one piece");
        let pieces = pieces_of(&units, 40, shape);
        let rows: Vec<usize> = pieces.iter().map(|p| p.len()).collect();
        // Units 0+1, 2 and 3 whole; unit 4 (5 rows, over 4) halved into 2 and 3.
        assert_eq!(rows, vec![3, 3, 4, 2, 3]);
        assert_eq!(
            pieces.concat(),
            units.concat(),
            "every candidate once, in order"
        );
        // A single candidate above the budget is a piece alone, not dropped.
        let each = pieces_of(&units, 5, shape);
        assert_eq!(each.len(), 15);
        assert_eq!(each.concat(), units.concat());
    }

    #[test]
    fn inputs_with_any_context_fit_the_encoders_positions() {
        assert_eq!(max_piece_for(0), MAX_PIECE);
        assert_eq!(max_piece_for(1), 2 * MAX_PIECE);
        for context in 0..10 {
            assert!(max_piece_for(context) + INPUT_OVERHEAD <= MAX_POSITIONS);
        }
    }
}
