//! The learned stance classifier: small heads over the entity model's encoder
//! states, so one encoder pass serves entities and stance.
//!
//! For every entity mention of a sentence (a candidate actor) the actor head
//! scores threat, accusation and proposal independently (multi-label); for a
//! statement it keeps, the target head picks one of the sentence's other
//! mentions or none. Inputs are the mean encoder state of the mention and of
//! its sentence, plus a few surface features; the hybrid variant also reads
//! the rules' decisions and the cue lexicon, and learns when to trust them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::rules::RuleClassifier;
use super::{StanceClassifier, StanceLabel, Statement};
use crate::actors::Actors;
use crate::doc::Doc;
use crate::error::{Result, StanceError};
use crate::model::encoder::{dense, Dense};
use crate::model::tagger::{ModelTagger, TokenStates};
use crate::ner::{Entity, EntityLabel};
use crate::span::Span;
use crate::Backend;

/// Surface and rule features after the pooled states (see [`actor_features`]).
pub const EXTRA_FEATURES: usize = 19;
/// Features of a (actor, candidate target) pair besides the three state blocks.
pub const TARGET_EXTRA: usize = 11;

/// `config.json` of a stance head directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StanceConfig {
    /// Width of the encoder states the heads read.
    pub state_dim: usize,
    pub hidden: usize,
    /// True for the hybrid: rule decisions and lexicon cues are inputs.
    pub rule_features: bool,
    /// Decision threshold per label, in `StanceLabel::ALL` order.
    pub thresholds: [f32; 3],
    /// SHA-256 of the entity model weights the heads were trained over.
    pub encoder_sha256: String,
    /// What the heads were trained on, for the model card.
    #[serde(default)]
    pub trained_on: Vec<String>,
}

/// The two heads.
#[derive(Debug, Clone)]
pub struct StanceHeads {
    actor_in: Dense,
    actor_out: Dense,
    target_in: Dense,
    target_out: Dense,
}

impl StanceHeads {
    pub fn build(
        state_dim: usize,
        hidden: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<StanceHeads> {
        let actor_dim = 2 * state_dim + EXTRA_FEATURES;
        let target_dim = 3 * state_dim + TARGET_EXTRA;
        Ok(StanceHeads {
            actor_in: dense(actor_dim, hidden, vb.pp("actor.0"))?,
            actor_out: dense(hidden, 3, vb.pp("actor.2"))?,
            target_in: dense(target_dim, hidden / 2, vb.pp("target.0"))?,
            target_out: dense(hidden / 2, 1, vb.pp("target.2"))?,
        })
    }

    /// Label logits `[n, 3]` for actor features `[n, actor_dim]`.
    pub fn actor_logits(
        &self,
        x: &Tensor,
        dropout: Option<(f32, u64)>,
    ) -> candle_core::Result<Tensor> {
        let h = self.actor_in.forward(x)?.gelu_erf()?;
        let h = match dropout {
            Some((p, seed)) => crate::model::ops::dropout(&h, p, seed)?,
            None => h,
        };
        self.actor_out.forward(&h)
    }

    /// One score per (actor, candidate) pair `[n]`.
    pub fn target_scores(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.target_in.forward(x)?.gelu_erf()?;
        self.target_out.forward(&h)?.squeeze(D::Minus1)
    }
}

/// Everything features are computed from, for one document.
pub struct Analysis<'a> {
    pub doc: &'a Doc,
    pub entities: &'a [Entity],
    pub actors: &'a Actors,
    pub states: &'a TokenStates,
    /// The rules' statements on the same entities.
    pub rules: Vec<Statement>,
    /// Lexicon cues per sentence: label, span, prior.
    pub cues: Vec<Vec<(StanceLabel, Span, f32)>>,
    /// Entities of each sentence, in order.
    pub by_sentence: Vec<Vec<usize>>,
    dim: usize,
}

fn label_index(l: StanceLabel) -> usize {
    StanceLabel::ALL
        .iter()
        .position(|x| *x == l)
        .expect("a label")
}

fn type_onehot(l: EntityLabel) -> [f32; 4] {
    let mut v = [0.0; 4];
    v[match l {
        EntityLabel::Per => 0,
        EntityLabel::Org => 1,
        EntityLabel::Loc => 2,
        EntityLabel::Misc => 3,
    }] = 1.0;
    v
}

impl<'a> Analysis<'a> {
    pub fn new(
        doc: &'a Doc,
        entities: &'a [Entity],
        actors: &'a Actors,
        states: &'a TokenStates,
        rules: &RuleClassifier,
    ) -> Result<Analysis<'a>> {
        let rule_statements = rules.classify(doc, entities, actors)?;
        let cues = (0..doc.sentences.len())
            .map(|s| rules.cues(doc, s))
            .collect();
        let mut by_sentence = vec![Vec::new(); doc.sentences.len()];
        for (e, ent) in entities.iter().enumerate() {
            if let Some(s) = doc.sentence_of(ent.span.start) {
                by_sentence[s].push(e);
            }
        }
        let dim = states.vectors.first().map_or(0, |v| v.len());
        Ok(Analysis {
            doc,
            entities,
            actors,
            states,
            rules: rule_statements,
            cues,
            by_sentence,
            dim,
        })
    }

    /// Mean state of the tokens overlapping `span` (zeros when none do).
    fn pool(&self, span: Span) -> Vec<f32> {
        let mut sum = vec![0f32; self.dim];
        let first = self.states.spans.partition_point(|t| t.end <= span.start);
        let mut n = 0;
        for (t, v) in self.states.spans[first..]
            .iter()
            .zip(&self.states.vectors[first..])
        {
            if t.start >= span.end {
                break;
            }
            for (a, b) in sum.iter_mut().zip(v) {
                *a += b;
            }
            n += 1;
        }
        if n > 0 {
            sum.iter_mut().for_each(|a| *a /= n as f32);
        }
        sum
    }

    /// Highest actor-role probability per label over the tokens of `span`
    /// (zeros when the entity model has no role head).
    pub fn role_probs(&self, span: Span) -> [f32; 3] {
        let mut best = [0f32; 3];
        if self.states.roles.is_empty() {
            return best;
        }
        let first = self.states.spans.partition_point(|t| t.end <= span.start);
        for (t, r) in self.states.spans[first..]
            .iter()
            .zip(&self.states.roles[first..])
        {
            if t.start >= span.end {
                break;
            }
            for k in 0..3 {
                best[k] = best[k].max(1.0 / (1.0 + (-r[k]).exp()));
            }
        }
        best
    }

    /// Actor features of entity `m` in sentence `s`: mention state, sentence
    /// state, then [`EXTRA_FEATURES`] surface and rule features (rule ones zero
    /// unless `rules`).
    pub fn actor_features(&self, m: usize, s: usize, rules: bool) -> Vec<f32> {
        let mut x = self.pool(self.entities[m].span);
        x.extend(self.pool(self.doc.sentences[s].span));
        let mut rule_score = [0f32; 3];
        let mut rule_any = [0f32; 3];
        for st in self.rules.iter().filter(|st| st.sentence == s) {
            let l = label_index(st.label);
            rule_any[l] = 1.0;
            if st.actor == m {
                rule_score[l] = rule_score[l].max(st.score);
            }
        }
        let mut cue = [0f32; 3];
        for (l, _, score) in &self.cues[s] {
            let k = label_index(*l);
            cue[k] = cue[k].max(*score);
        }
        if rules {
            x.extend(rule_score);
            x.extend(rule_any);
            x.extend(cue);
        } else {
            x.extend([0f32; 9]);
        }
        x.extend(type_onehot(self.entities[m].label));
        let members = &self.by_sentence[s];
        let sent = self.doc.sentences[s].span;
        let pos = (self.entities[m].span.start - sent.start) as f32 / sent.len().max(1) as f32;
        x.push(pos);
        x.push(if members.first() == Some(&m) {
            1.0
        } else {
            0.0
        });
        x.push(if self.actors.of_entity(m).reporter {
            1.0
        } else {
            0.0
        });
        x.extend(self.role_probs(self.entities[m].span));
        debug_assert_eq!(x.len(), 2 * self.dim + EXTRA_FEATURES);
        x
    }

    /// Features of actor `m` with candidate target `c` (`None`: no target) for `label`.
    pub fn target_features(
        &self,
        m: usize,
        c: Option<usize>,
        s: usize,
        label: StanceLabel,
        rules: bool,
    ) -> Vec<f32> {
        let a = self.pool(self.entities[m].span);
        let t = c.map_or_else(
            || vec![0f32; self.dim],
            |c| self.pool(self.entities[c].span),
        );
        let prod: Vec<f32> = a.iter().zip(&t).map(|(x, y)| x * y).collect();
        let mut x = a;
        x.extend(t);
        x.extend(prod);
        let mut onehot = [0f32; 3];
        onehot[label_index(label)] = 1.0;
        x.extend(onehot);
        x.push(if c.is_none() { 1.0 } else { 0.0 });
        let rule_pick = self.rules.iter().any(|st| {
            rules && st.sentence == s && st.actor == m && st.label == label && st.target == c
        });
        x.push(if rule_pick { 1.0 } else { 0.0 });
        match c {
            Some(c) => {
                let (ms, cs) = (self.entities[m].span.start, self.entities[c].span.start);
                x.push(if cs > ms { 1.0 } else { 0.0 });
                x.push(((cs as f32 - ms as f32).abs() / 200.0).min(2.0));
                x.extend(type_onehot(self.entities[c].label));
            }
            None => x.extend([0f32; 6]),
        }
        debug_assert_eq!(x.len(), 3 * self.dim + TARGET_EXTRA);
        x
    }

    /// The best lexicon cue of `label` in sentence `s`, nearest to `m` among the strongest.
    pub fn cue_for(&self, m: usize, s: usize, label: StanceLabel) -> Option<Span> {
        if let Some(st) = self
            .rules
            .iter()
            .find(|st| st.sentence == s && st.actor == m && st.label == label)
        {
            if st.cue.is_some() {
                return st.cue;
            }
        }
        let at = self.entities[m].span.start as i64;
        self.cues[s]
            .iter()
            .filter(|(l, _, _)| *l == label)
            .max_by(|a, b| {
                a.2.partial_cmp(&b.2)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| {
                        (b.1.start as i64 - at)
                            .abs()
                            .cmp(&(a.1.start as i64 - at).abs())
                    })
            })
            .map(|(_, span, _)| *span)
    }
}

/// Hex SHA-256 of a file (to tie heads to the encoder they were trained over).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    std::io::copy(&mut f, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Learned stance over an entity model's encoder.
pub struct ModelClassifier {
    heads: StanceHeads,
    pub config: StanceConfig,
    rules: RuleClassifier,
    /// Computes states when the pipeline's tagger did not (entities from rules).
    encoder: Arc<ModelTagger>,
    pub dir: PathBuf,
}

impl ModelClassifier {
    /// Loads heads from `dir` (config.json, heads.safetensors) over `encoder`,
    /// whose weights file must be the one they were trained over.
    pub fn load(
        dir: &Path,
        encoder: Arc<ModelTagger>,
        encoder_weights: &Path,
    ) -> Result<ModelClassifier> {
        let bad = |m: String| StanceError::ModelUnavailable(format!("{}: {m}", dir.display()));
        let text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| bad(format!("config.json: {e}")))?;
        let config: StanceConfig =
            serde_json::from_str(&text).map_err(|e| bad(format!("config.json: {e}")))?;
        let sha = file_sha256(encoder_weights)
            .map_err(|e| bad(format!("{}: {e}", encoder_weights.display())))?;
        if sha != config.encoder_sha256 {
            return Err(bad(format!(
                "these stance heads were trained over another entity model than {} (retrain them with `stance train stance`)",
                encoder_weights.display()
            )));
        }
        let weights = dir.join("heads.safetensors");
        // SAFETY: read-only memory map of a file stance does not modify while running.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu) }
                .map_err(|e| bad(format!("heads.safetensors: {e}")))?;
        let heads = StanceHeads::build(config.state_dim, config.hidden, vb)
            .map_err(|e| bad(format!("heads.safetensors: {e}")))?;
        Ok(ModelClassifier {
            heads,
            config,
            rules: RuleClassifier::default(),
            encoder,
            dir: dir.into(),
        })
    }

    pub fn from_parts(
        heads: StanceHeads,
        config: StanceConfig,
        encoder: Arc<ModelTagger>,
    ) -> ModelClassifier {
        ModelClassifier {
            heads,
            config,
            rules: RuleClassifier::default(),
            encoder,
            dir: PathBuf::new(),
        }
    }

    /// Label probabilities of every candidate (entity, sentence) of a document.
    pub fn scores(&self, a: &Analysis) -> Result<Vec<(usize, usize, [f32; 3])>> {
        let cands: Vec<(usize, usize)> = a
            .by_sentence
            .iter()
            .enumerate()
            .flat_map(|(s, es)| es.iter().map(move |&e| (e, s)))
            .collect();
        if cands.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<f32> = cands
            .iter()
            .flat_map(|&(m, s)| a.actor_features(m, s, self.config.rule_features))
            .collect();
        let x = Tensor::from_vec(
            rows,
            (cands.len(), 2 * a.dim + EXTRA_FEATURES),
            &Device::Cpu,
        )
        .map_err(model_err)?;
        let p = candle_nn::ops::sigmoid(&self.heads.actor_logits(&x, None).map_err(model_err)?)
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(model_err)?;
        Ok(cands
            .into_iter()
            .zip(p)
            .map(|((m, s), p)| (m, s, [p[0], p[1], p[2]]))
            .collect())
    }

    /// The target of a statement: the best-scored mention of the sentence, or none.
    fn target(
        &self,
        a: &Analysis,
        m: usize,
        s: usize,
        label: StanceLabel,
    ) -> Result<Option<usize>> {
        let mut options: Vec<Option<usize>> = vec![None];
        options.extend(
            a.by_sentence[s]
                .iter()
                .filter(|&&c| c != m && a.actors.actor_of[c] != a.actors.actor_of[m])
                .map(|&c| Some(c)),
        );
        if options.len() == 1 {
            return Ok(None);
        }
        let rows: Vec<f32> = options
            .iter()
            .flat_map(|&c| a.target_features(m, c, s, label, self.config.rule_features))
            .collect();
        let x = Tensor::from_vec(
            rows,
            (options.len(), 3 * a.dim + TARGET_EXTRA),
            &Device::Cpu,
        )
        .map_err(model_err)?;
        let scores = self
            .heads
            .target_scores(&x)
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(model_err)?;
        let best = scores
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.partial_cmp(y.1).unwrap_or(std::cmp::Ordering::Equal))
            .map_or(0, |(i, _)| i);
        Ok(options[best])
    }

    fn backend_tag(&self) -> Backend {
        if self.config.rule_features {
            Backend::Hybrid
        } else {
            Backend::Model
        }
    }
}

fn model_err(e: candle_core::Error) -> StanceError {
    StanceError::ModelUnavailable(format!("stance model: {e}"))
}

impl StanceClassifier for ModelClassifier {
    fn classify(&self, doc: &Doc, entities: &[Entity], actors: &Actors) -> Result<Vec<Statement>> {
        self.classify_with_states(doc, entities, actors, None)
    }

    fn backend(&self) -> Backend {
        self.backend_tag()
    }

    fn wants_states(&self) -> bool {
        true
    }

    fn classify_with_states(
        &self,
        doc: &Doc,
        entities: &[Entity],
        actors: &Actors,
        states: Option<&TokenStates>,
    ) -> Result<Vec<Statement>> {
        let own;
        let states = match states {
            Some(s) => s,
            None => {
                let (_, mut st) =
                    self.encoder
                        .run(&doc.text, &[Span::new(0, doc.text.len())], true)?;
                own = st.pop().unwrap_or_default();
                &own
            }
        };
        let a = Analysis::new(doc, entities, actors, states, &self.rules)?;
        let mut out = Vec::new();
        for (m, s, p) in self.scores(&a)? {
            for (k, label) in StanceLabel::ALL.iter().enumerate() {
                if p[k] < self.config.thresholds[k] {
                    continue;
                }
                out.push(Statement {
                    actor: m,
                    label: *label,
                    score: p[k],
                    target: self.target(&a, m, s, *label)?,
                    sentence: s,
                    cue: a.cue_for(m, s, *label),
                    backend: self.backend_tag(),
                });
            }
        }
        out.sort_by_key(|st| (st.sentence, entities[st.actor].span.start, st.label));
        Ok(out)
    }
}
