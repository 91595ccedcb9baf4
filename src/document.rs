//! The document object that `stance classify` writes: a stable contract.
//!
//! Field names never change or disappear; new fields may be added. All
//! offsets are character offsets (Unicode scalar values, end exclusive).

use serde::{Deserialize, Serialize};

use crate::doc::Doc;
use crate::ner::EntityLabel;
use crate::span::{CharMap, Span};
use crate::stance::StanceLabel;
use crate::Backend;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    pub id: String,
    /// The backend that produced entities and statements.
    pub backend: Backend,
    pub entities: Vec<EntityOut>,
    pub actors: Vec<ActorOut>,
    pub statements: Vec<StatementOut>,
    /// Sentence spans, so consumers need not re-segment.
    pub sentences: Vec<SpanOut>,
    /// Length of the text in characters.
    pub chars: usize,
    /// Number format the models' dense layers ran in ("f32" or "int8", see
    /// `classify --precision`); absent when no model ran (the rules backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Why the document could not be analysed; its other lists are then empty.
    /// Absent for documents that were analysed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EntityOut {
    pub text: String,
    pub label: EntityLabel,
    pub start: usize,
    pub end: usize,
    pub score: f32,
    pub backend: Backend,
    /// Id of the actor this mention belongs to.
    pub actor_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MentionOut {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActorOut {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EntityLabel,
    /// Distinct surface forms of the mentions.
    pub aliases: Vec<String>,
    pub mentions: Vec<MentionOut>,
    /// True for news agencies and outlets, which report but never act.
    pub reporter: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActorRef {
    pub start: usize,
    pub end: usize,
    pub text: String,
    pub actor_id: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct SpanOut {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatementOut {
    pub actor: ActorRef,
    pub label: StanceLabel,
    pub score: f32,
    pub target: Option<ActorRef>,
    pub sentence: SpanOut,
    pub cue: Option<MentionOut>,
    pub backend: Backend,
}

fn round(x: f32) -> f32 {
    (x * 10_000.0).round() / 10_000.0
}

impl Document {
    /// The output form of an analysed document.
    pub fn build(id: &str, backend: Backend, doc: &Doc) -> Document {
        let (entities, actors, statements) = (&doc.entities, &doc.actors, &doc.statements);
        let map = CharMap::new(&doc.text);
        let mention = |span: Span| {
            let c = map.to_chars(span);
            MentionOut {
                start: c.start,
                end: c.end,
                text: span.text(&doc.text).to_string(),
            }
        };
        let actor_ref = |e: usize| {
            let m = mention(entities[e].span);
            ActorRef {
                start: m.start,
                end: m.end,
                text: m.text,
                actor_id: actors.of_entity(e).id.clone(),
            }
        };
        let sentence_span = |s: usize| {
            let c = map.to_chars(doc.sentences[s].span);
            SpanOut {
                start: c.start,
                end: c.end,
            }
        };
        Document {
            id: id.to_string(),
            backend,
            entities: entities
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let m = mention(e.span);
                    EntityOut {
                        text: m.text,
                        label: e.label,
                        start: m.start,
                        end: m.end,
                        score: round(e.score),
                        backend: e.backend,
                        actor_id: actors.of_entity(i).id.clone(),
                    }
                })
                .collect(),
            actors: actors
                .actors
                .iter()
                .map(|a| {
                    let mentions: Vec<MentionOut> = a
                        .mentions
                        .iter()
                        .map(|&m| mention(entities[m].span))
                        .collect();
                    let mut aliases: Vec<String> = Vec::new();
                    for m in &mentions {
                        if !aliases.contains(&m.text) {
                            aliases.push(m.text.clone());
                        }
                    }
                    ActorOut {
                        id: a.id.clone(),
                        name: a.name.clone(),
                        kind: a.label,
                        aliases,
                        mentions,
                        reporter: a.reporter,
                    }
                })
                .collect(),
            statements: statements
                .iter()
                .map(|s| StatementOut {
                    actor: actor_ref(s.actor),
                    label: s.label,
                    score: round(s.score),
                    target: s.target.map(actor_ref),
                    sentence: sentence_span(s.sentence),
                    cue: s.cue.map(mention),
                    backend: s.backend,
                })
                .collect(),
            sentences: (0..doc.sentences.len()).map(sentence_span).collect(),
            chars: map.char_len(),
            precision: None,
            error: None,
        }
    }

    /// The document of a record that failed inside the pipeline: no annotations,
    /// the reason in `error`, so the record is not lost from the output.
    pub fn failed(id: &str, backend: Backend, text: &str, error: String) -> Document {
        Document {
            id: id.to_string(),
            backend,
            entities: Vec::new(),
            actors: Vec::new(),
            statements: Vec::new(),
            sentences: Vec::new(),
            chars: text.chars().count(),
            precision: None,
            error: Some(error),
        }
    }
}
