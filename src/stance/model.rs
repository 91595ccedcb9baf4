//! The learned stance classifier.
//!
//! - Who acts: the actor classifier of [`super::markers`] scores every entity
//!   mention of a sentence for threat, accusation and proposal.
//! - Against whom: a small target head over the entity model's encoder states
//!   (shared with the entity pass) picks one of the sentence's other mentions,
//!   or none.
//! - A label is kept when its probability passes the threshold chosen on
//!   held-out documents.
//! - [`Hybrid`] (the `auto` backend) keeps these statements and the rules'
//!   that the model does not veto (the model must give the rules' actor and
//!   label a small probability, per label, chosen on held-out documents): it
//!   recalls more than the model and keeps the rules' false alarms out; each
//!   statement says which backend found it (`hybrid` when both did).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::markers::{mention_range, Candidate, CueMark, MarkerModel, Unit};
use super::rules::RuleClassifier;
use super::{StanceClassifier, StanceLabel, Statement};
use crate::actors::Actors;
use crate::doc::Doc;
use crate::error::{During, Result, StanceError};
use crate::model::encoder::{dense, Dense};
use crate::model::inputs::Tokens;
use crate::model::tagger::{ModelTagger, Precision, TokenStates};
use crate::ner::{Entity, EntityLabel};
use crate::span::Span;
use crate::Backend;

/// Features of a (actor, candidate target) pair besides the three state blocks.
pub const TARGET_EXTRA: usize = 11;

/// `stance.json` of a stance model directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StanceConfig {
    /// Width of the entity encoder states the target head reads.
    pub state_dim: usize,
    pub hidden: usize,
    /// SHA-256 of the entity model weights the target head was trained over.
    pub encoder_sha256: String,
    /// Held-out micro F1 of the actor classifier (candidate level).
    pub heldout_f1: f64,
    /// The model's thresholds inside the hybrid (where the rules' statements are kept too);
    /// 1.0 keeps only what the model is sure of.
    #[serde(default = "default_hybrid_thresholds")]
    pub hybrid_thresholds: [f32; 3],
    /// Inside the hybrid, a rules statement is kept only when the model gives its
    /// actor and label at least this probability (per label; 0 keeps every rules
    /// statement, as a plain union). Chosen with `hybrid_thresholds` on held-out documents.
    #[serde(default)]
    pub rules_floor: [f32; 3],
    #[serde(default)]
    pub heldout_f1_hybrid: f64,
    #[serde(default)]
    pub trained_on: Vec<String>,
}

fn default_hybrid_thresholds() -> [f32; 3] {
    [0.5; 3]
}

/// Scores (actor, candidate target) pairs.
#[derive(Debug, Clone)]
pub struct TargetHead {
    input: Dense,
    output: Dense,
}

impl TargetHead {
    pub fn build(
        state_dim: usize,
        hidden: usize,
        vb: VarBuilder,
    ) -> candle_core::Result<TargetHead> {
        Ok(TargetHead {
            input: dense(3 * state_dim + TARGET_EXTRA, hidden, vb.pp("target.0"))?,
            output: dense(hidden, 1, vb.pp("target.2"))?,
        })
    }

    /// One score per row `[n]`.
    pub fn scores(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.input.forward(x)?.gelu_erf()?;
        self.output.forward(&h)?.squeeze(D::Minus1)
    }
}

/// What the features of one document are computed from.
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

pub fn label_index(l: StanceLabel) -> usize {
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
        let rule_statements = rules.statements(doc, entities, actors);
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

    pub fn state_dim(&self) -> usize {
        self.dim
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

    /// Features of actor `m` with candidate target `c` (`None`: no target) for `label`.
    pub fn target_features(
        &self,
        m: usize,
        c: Option<usize>,
        s: usize,
        label: StanceLabel,
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
        let rule_pick = self
            .rules
            .iter()
            .any(|st| st.sentence == s && st.actor == m && st.label == label && st.target == c);
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

    /// The candidate targets of actor `m` in sentence `s`: none, then the other actors' mentions.
    pub fn target_options(&self, m: usize, s: usize) -> Vec<Option<usize>> {
        let mut options: Vec<Option<usize>> = vec![None];
        options.extend(
            self.by_sentence[s]
                .iter()
                .filter(|&&c| c != m && self.actors.actor_of[c] != self.actors.actor_of[m])
                .map(|&c| Some(c)),
        );
        options
    }

    /// The best lexicon cue of `label` in sentence `s`: the rules' own, else the strongest nearest `m`.
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

    /// Every (entity, sentence) candidate with its sentence's unit under `text`: the
    /// tokens begin `context` sentences earlier (read, never marked), and the cues
    /// are the sentence's own.
    pub fn candidates(
        &self,
        text: &crate::model::inputs::TextEncoder,
        context: usize,
    ) -> Result<(Vec<Unit>, Vec<CandidateSlot>)> {
        let mut sentences = Vec::new();
        let mut out = Vec::new();
        for (s, members) in self.by_sentence.iter().enumerate() {
            if members.is_empty() {
                continue;
            }
            let from = self.doc.sentences[s.saturating_sub(context)].span.start;
            let unit = Span::new(from, self.doc.sentences[s].span.end);
            let tokens = text.encode(&self.doc.text, unit)?;
            let cues = self.cues[s]
                .iter()
                .filter_map(|(label, span, _)| {
                    mention_range(&tokens, *span).map(|r| CueMark {
                        token: r.start,
                        label: label_index(*label),
                    })
                })
                .collect();
            for &m in members {
                if let Some(r) = mention_range(&tokens, self.entities[m].span) {
                    out.push(CandidateSlot {
                        entity: m,
                        sentence: s,
                        tokens: sentences.len(),
                        mention: r,
                    });
                }
            }
            sentences.push(Unit { tokens, cues });
        }
        Ok((sentences, out))
    }
}

/// One actor candidate: an entity in its sentence, located in that sentence's tokens.
#[derive(Debug, Clone)]
pub struct CandidateSlot {
    /// Index into the analysis' entities.
    pub entity: usize,
    /// Index into the document's sentences.
    pub sentence: usize,
    /// Index into the tokenised sentences returned beside the slots.
    pub tokens: usize,
    /// The mention's token range within those tokens.
    pub mention: std::ops::Range<usize>,
}

/// Hex SHA-256 of a file (to tie heads to the encoder they were trained over).
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut f = std::fs::File::open(path)?;
    std::io::copy(&mut f, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Learned stance: the actor classifier and the target head.
pub struct ModelClassifier {
    actors: MarkerModel,
    targets: TargetHead,
    pub config: StanceConfig,
    rules: RuleClassifier,
    /// The entity model, to compute states when the pipeline's tagger did not.
    encoder: Arc<ModelTagger>,
    pub dir: PathBuf,
}

impl StanceConfig {
    /// Reads `stance.json` from the stance model directory `dir`.
    pub fn read(dir: &Path) -> Result<StanceConfig> {
        super::read_config(&dir.join("stance.json"))
    }
}

impl ModelClassifier {
    /// Loads `dir` (`actors/`, `targets.safetensors`, `stance.json`) over the entity
    /// model `encoder`, whose weights must be the ones the target head was trained over.
    pub fn load(dir: &Path, encoder: Arc<ModelTagger>) -> Result<ModelClassifier> {
        let bad = |file: &str, message: String| {
            StanceError::Model(crate::model::ModelError::Config {
                path: dir.join(file),
                message,
            })
        };
        let config = StanceConfig::read(dir)?;
        // Heads over another encoder are unavailable for this one (not broken): with
        // an entity model of the user's own, `auto` then takes its stance from the rules.
        let unavailable = || {
            StanceError::ModelUnavailable(format!(
                "{}: trained over another entity model than {} (retrain with `stance train stance`)",
                dir.display(),
                encoder.source
            ))
        };
        let weights = encoder.weights.clone().ok_or_else(unavailable)?;
        let sha = file_sha256(&weights).map_err(|source| StanceError::Io {
            path: weights.clone(),
            source,
        })?;
        if sha != config.encoder_sha256 {
            return Err(unavailable());
        }
        let targets_path = dir.join("targets.safetensors");
        // SAFETY: read-only memory map of a file stance does not modify while running.
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[&targets_path], DType::F32, &Device::Cpu)
        }
        .map_err(|e| bad("targets.safetensors", e.to_string()))?;
        let targets = TargetHead::build(config.state_dim, config.hidden, vb)
            .map_err(|e| bad("targets.safetensors", e.to_string()))?;
        let mut actors = MarkerModel::load(&dir.join("actors"))?;
        if encoder.options.precision.resolve() == Precision::Int8 {
            actors
                .model
                .encoder
                .quantize_int8()
                .map_err(|e| bad("actors/model.safetensors", e.to_string()))?;
        }
        Ok(ModelClassifier {
            actors,
            targets,
            config,
            rules: RuleClassifier::default(),
            encoder,
            dir: dir.into(),
        })
    }

    /// What the actor classifier reads of a document: per candidate `(entity,
    /// sentence)` its probabilities, and the states its pair head scores targets from.
    pub fn read_actors(&self, a: &Analysis) -> Result<ActorReading> {
        let (sentences, mut cands) = a.candidates(&self.actors.text, self.actors.config.context)?;
        // News agencies and datelines report; they never act, so they are not read.
        cands.retain(|c| {
            !a.actors.of_entity(c.entity).reporter
                && !crate::segment::is_dateline(&a.doc.text, a.entities[c.entity].span)
        });
        let cs: Vec<Candidate> = cands
            .iter()
            .map(|c| sentences[c.tokens].candidate(c.mention.clone()))
            .collect();
        let opts = self.encoder.options;
        let (probs, states) = self.actors.read(
            &cs,
            opts.batch_size,
            opts.threads,
            self.actors.pair.is_some(),
        )?;
        let probabilities = cands
            .iter()
            .zip(probs)
            .map(|(c, p)| (c.entity, c.sentence, p))
            .collect();
        Ok(ActorReading {
            probabilities,
            states,
            mentions: cands.iter().map(|c| c.mention.clone()).collect(),
        })
    }

    /// Per candidate `(entity, sentence)`: the actor classifier's probabilities.
    pub fn actor_probabilities(&self, a: &Analysis) -> Result<Vec<(usize, usize, [f32; 3])>> {
        Ok(self.read_actors(a)?.probabilities)
    }

    /// Whether targets need the entity model's states (the separate target head);
    /// a model with a pair head reads targets from its own pass, so the entity
    /// pass keeps no per-token states (memory that grows with the document).
    pub fn needs_entity_states(&self) -> bool {
        self.actors.pair.is_none()
    }

    /// The target of a statement by the candidate at `k` of `reading`: from the
    /// classifier's pair head when it has one, else from the target head.
    fn target_of(
        &self,
        a: &Analysis,
        reading: &ActorReading,
        k: usize,
        label: StanceLabel,
    ) -> Result<Option<usize>> {
        let (m, s, _) = reading.probabilities[k];
        let (Some(pair), Some(states)) = (&self.actors.pair, &reading.states) else {
            return self.target(a, m, s, label);
        };
        let index_of = |e: usize| {
            reading
                .probabilities
                .iter()
                .position(|(x, xs, _)| *x == e && *xs == s)
        };
        let options: Vec<Option<usize>> = a.target_options(m, s);
        let readable: Vec<(Option<usize>, Option<usize>)> = options
            .iter()
            .filter_map(|o| match o {
                None => Some((None, None)),
                Some(e) => index_of(*e).map(|i| (Some(*e), Some(i))),
            })
            .collect();
        if readable.len() == 1 {
            return Ok(None);
        }
        // The pair head reads candidates through their token positions only.
        let empty = Tokens::default();
        let cands: Vec<Candidate> = reading
            .mentions
            .iter()
            .map(|r| Candidate {
                tokens: &empty,
                mention: r.clone(),
                cues: &[],
            })
            .collect();
        let choice = super::markers::TargetChoice {
            actor: k,
            label: label_index(label),
            options: readable.iter().map(|r| r.1).collect(),
            gold: 0,
        };
        let best = pair
            .choose(&cands, states, std::slice::from_ref(&choice))
            .during("stance model")?;
        Ok(best.first().and_then(|&b| readable[b].0))
    }

    /// The target of a statement: the best-scored option, or none.
    fn target(
        &self,
        a: &Analysis,
        m: usize,
        s: usize,
        label: StanceLabel,
    ) -> Result<Option<usize>> {
        let options = a.target_options(m, s);
        if options.len() == 1 {
            return Ok(None);
        }
        let rows: Vec<f32> = options
            .iter()
            .flat_map(|&c| a.target_features(m, c, s, label))
            .collect();
        let x = Tensor::from_vec(
            rows,
            (options.len(), 3 * a.state_dim() + TARGET_EXTRA),
            &Device::Cpu,
        )
        .during("stance model")?;
        let scores = self
            .targets
            .scores(&x)
            .and_then(|t| t.to_vec1::<f32>())
            .during("stance model")?;
        let best = scores
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.partial_cmp(y.1).unwrap_or(std::cmp::Ordering::Equal))
            .map_or(0, |(i, _)| i);
        Ok(options[best])
    }
}

impl StanceClassifier for ModelClassifier {
    fn classify(&self, doc: &mut Doc) -> Result<()> {
        doc.statements = self.statements(
            doc,
            &doc.entities,
            &doc.actors,
            doc.states.as_ref(),
            &self.actors.config.thresholds,
        )?;
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Model
    }

    fn reads_states(&self) -> bool {
        self.needs_entity_states()
    }
}

impl ModelClassifier {
    /// Statements whose probability passes `thresholds`.
    pub fn statements(
        &self,
        doc: &Doc,
        entities: &[Entity],
        actors: &Actors,
        states: Option<&TokenStates>,
        thresholds: &[f32; 3],
    ) -> Result<Vec<Statement>> {
        Ok(self
            .statements_and_rules(doc, entities, actors, states, thresholds)?
            .statements)
    }

    /// [`ModelClassifier::statements`], the rules' statements on the same
    /// entities (the features were computed with them; the hybrid reuses them),
    /// and the model's probabilities of every candidate.
    fn statements_and_rules(
        &self,
        doc: &Doc,
        entities: &[Entity],
        actors: &Actors,
        states: Option<&TokenStates>,
        thresholds: &[f32; 3],
    ) -> Result<ModelReading> {
        let own;
        let states = match states {
            Some(s) => s,
            None if !self.needs_entity_states() => {
                own = TokenStates::default();
                &own
            }
            None => {
                let (_, mut st) =
                    self.encoder
                        .run(&doc.text, &[Span::new(0, doc.text.len())], true)?;
                own = st.pop().unwrap_or_default();
                &own
            }
        };
        let mut a = Analysis::new(doc, entities, actors, states, &self.rules)?;
        let mut out = Vec::new();
        let reading = self.read_actors(&a)?;
        for (i, &(m, s, p)) in reading.probabilities.iter().enumerate() {
            if super::only_expected(&doc.text, entities[m].span) {
                continue;
            }
            for (k, label) in StanceLabel::ALL.iter().enumerate() {
                if p[k] < thresholds[k] {
                    continue;
                }
                out.push(Statement {
                    actor: m,
                    label: *label,
                    score: p[k],
                    target: self.target_of(&a, &reading, i, *label)?,
                    sentence: s,
                    cue: a.cue_for(m, s, *label),
                    backend: self.backend(),
                });
            }
        }
        let rules = std::mem::take(&mut a.rules);
        Ok(ModelReading {
            statements: super::listeners::drop_listeners(
                doc,
                entities,
                super::to_title_holders(doc, entities, out),
            ),
            rules,
            probabilities: reading.probabilities,
            pair_targets: self.actors.pair.is_some(),
        })
    }
}

/// What the actor classifier read of one document.
pub struct ActorReading {
    /// `(entity, sentence, [threat, accusation, proposal])` per candidate.
    pub probabilities: Vec<(usize, usize, [f32; 3])>,
    /// The candidates' marker states `[n, h]`, when a pair head will read them.
    pub states: Option<Tensor>,
    /// Each candidate's mention, as token positions in its sentence.
    pub mentions: Vec<std::ops::Range<usize>>,
}

/// What the model read in one document (see [`ModelClassifier::statements_and_rules`]).
struct ModelReading {
    /// Whether the model's targets come from its pair head (then they win over the rules').
    pair_targets: bool,
    statements: Vec<Statement>,
    rules: Vec<Statement>,
    /// `(entity, sentence, [threat, accusation, proposal])` per candidate.
    probabilities: Vec<(usize, usize, [f32; 3])>,
}

/// The `auto` backend's stance: the learned statements, and the rules' where the
/// model gives their actor and label at least `rules_floor`. A statement both find
/// is the model's, with the rules' target and cue when they have one, and is
/// marked `hybrid`; the others keep their own backend.
pub struct Hybrid {
    /// The learned model; its rule classifier gives the rules' statements.
    pub model: ModelClassifier,
}

impl StanceClassifier for Hybrid {
    fn classify(&self, doc: &mut Doc) -> Result<()> {
        doc.statements = self.statements(doc, &doc.entities, &doc.actors, doc.states.as_ref())?;
        Ok(())
    }

    fn backend(&self) -> Backend {
        Backend::Hybrid
    }

    fn reads_states(&self) -> bool {
        self.model.needs_entity_states()
    }
}

impl Hybrid {
    /// The model's statements and the rules' statements it does not veto.
    fn statements(
        &self,
        doc: &Doc,
        entities: &[Entity],
        actors: &Actors,
        states: Option<&TokenStates>,
    ) -> Result<Vec<Statement>> {
        let ModelReading {
            statements: out,
            rules,
            probabilities,
            pair_targets,
        } = self.model.statements_and_rules(
            doc,
            entities,
            actors,
            states,
            &self.model.config.hybrid_thresholds,
        )?;
        let model_probability = |r: &Statement| {
            probabilities
                .iter()
                .find(|(m, s, _)| *m == r.actor && *s == r.sentence)
                .map_or(0.0, |(_, _, p)| p[label_index(r.label)])
        };
        let out = vote(
            out,
            rules,
            &model_probability,
            self.model.config.rules_floor,
            pair_targets,
        );
        Ok(super::listeners::drop_listeners(
            doc,
            entities,
            super::to_title_holders(doc, entities, out),
        ))
    }
}

/// The hybrid's vote: the model's statements (`out`), and each rules statement the model
/// does not veto — its actor and label get at least `floor` from the model, or the model
/// itself finds the same act in that sentence for another actor. The second case is a
/// speaker and the side he speaks for, who both act (guidelines §3.2), where the model
/// tends to give the act to the speaker alone. A statement both find is the model's, with
/// the rules' cue (and target, unless the model has its own target scorer).
fn vote(
    mut out: Vec<Statement>,
    rules: Vec<Statement>,
    model_probability: &dyn Fn(&Statement) -> f32,
    floor: [f32; 3],
    pair_targets: bool,
) -> Vec<Statement> {
    let model_acts: Vec<(usize, StanceLabel)> = out.iter().map(|m| (m.sentence, m.label)).collect();
    for r in rules {
        match out
            .iter_mut()
            .find(|m| m.actor == r.actor && m.label == r.label && m.sentence == r.sentence)
        {
            Some(m) => {
                m.backend = Backend::Hybrid;
                if !pair_targets {
                    m.target = r.target.or(m.target);
                }
                m.cue = r.cue.or(m.cue);
                m.score = m.score.max(r.score);
            }
            None if model_probability(&r) >= floor[label_index(r.label)]
                || model_acts.contains(&(r.sentence, r.label)) =>
            {
                out.push(r)
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(actor: usize, label: StanceLabel, sentence: usize, backend: Backend) -> Statement {
        Statement {
            actor,
            label,
            score: 0.9,
            target: None,
            sentence,
            cue: None,
            backend,
        }
    }

    /// The actors the vote keeps, given the model's statements, the rules' and a model
    /// probability of 0.1 for every rules statement against a floor of 0.5.
    fn kept(model: Vec<Statement>, rules: Vec<Statement>) -> Vec<(usize, Backend)> {
        vote(model, rules, &|_| 0.1, [0.5; 3], true)
            .iter()
            .map(|s| (s.actor, s.backend))
            .collect()
    }

    #[test]
    fn the_model_vetoes_a_rules_statement_it_gives_little_chance() {
        let rules = vec![statement(1, StanceLabel::Accusation, 0, Backend::Rules)];
        assert_eq!(kept(Vec::new(), rules), Vec::new());
    }

    #[test]
    fn the_models_own_act_in_a_sentence_keeps_the_rules_other_agent_of_it() {
        // "Kerry made clear that Washington faults Moscow": the model gives Kerry the
        // accusation, the rules give Washington; both act (guidelines §3.2).
        let model = vec![statement(0, StanceLabel::Accusation, 3, Backend::Model)];
        let rules = vec![statement(1, StanceLabel::Accusation, 3, Backend::Rules)];
        assert_eq!(
            kept(model, rules),
            vec![(0, Backend::Model), (1, Backend::Rules)]
        );
    }

    #[test]
    fn another_label_or_another_sentence_does_not_keep_a_rules_statement() {
        let model = vec![statement(0, StanceLabel::Threat, 3, Backend::Model)];
        let rules = vec![
            statement(1, StanceLabel::Accusation, 3, Backend::Rules),
            statement(1, StanceLabel::Threat, 4, Backend::Rules),
        ];
        assert_eq!(kept(model, rules), vec![(0, Backend::Model)]);
    }

    #[test]
    fn a_statement_both_find_is_the_models_marked_hybrid() {
        let model = vec![statement(0, StanceLabel::Proposal, 2, Backend::Model)];
        let rules = vec![statement(0, StanceLabel::Proposal, 2, Backend::Rules)];
        assert_eq!(kept(model, rules), vec![(0, Backend::Hybrid)]);
    }
}
