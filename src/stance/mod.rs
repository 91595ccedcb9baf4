//! Actor stance: the [`StanceClassifier`] trait, its labels and statements.

pub mod data;
pub mod lexicon;
pub mod markers;
pub mod model;
pub mod rules;
pub mod train;

use serde::{Deserialize, Serialize};

use crate::actors::Actors;
use crate::doc::Doc;
use crate::error::Result;
use crate::ner::Entity;
use crate::span::Span;
use crate::Backend;

/// The three acts of the guidelines; anything else is "none" and not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StanceLabel {
    Threat,
    Accusation,
    Proposal,
}

impl StanceLabel {
    pub const ALL: [StanceLabel; 3] = [
        StanceLabel::Threat,
        StanceLabel::Accusation,
        StanceLabel::Proposal,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            StanceLabel::Threat => "threat",
            StanceLabel::Accusation => "accusation",
            StanceLabel::Proposal => "proposal",
        }
    }

    pub fn parse(s: &str) -> Option<StanceLabel> {
        match s {
            "threat" => Some(StanceLabel::Threat),
            "accusation" => Some(StanceLabel::Accusation),
            "proposal" => Some(StanceLabel::Proposal),
            _ => None,
        }
    }
}

impl std::fmt::Display for StanceLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One actor performing one act in one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Index of the acting mention in the entity list.
    pub actor: usize,
    pub label: StanceLabel,
    pub score: f32,
    /// Index of the target mention, if the sentence names one.
    pub target: Option<usize>,
    /// Index of the sentence in the document.
    pub sentence: usize,
    /// The words that express the act ("accused", "would suspend").
    pub cue: Option<Span>,
    pub backend: Backend,
}

/// Finds statements given a document, its entities and its actors.
pub trait StanceClassifier: Send + Sync {
    /// Statements in sentence order.
    fn classify(&self, doc: &Doc, entities: &[Entity], actors: &Actors) -> Result<Vec<Statement>>;
    fn backend(&self) -> Backend;

    /// True when the classifier reads encoder states: the pipeline then asks
    /// the entity tagger for them, so one encoder pass serves both.
    fn wants_states(&self) -> bool {
        false
    }

    /// [`StanceClassifier::classify`] given the tagger's encoder states, if any.
    fn classify_with_states(
        &self,
        doc: &Doc,
        entities: &[Entity],
        actors: &Actors,
        _states: Option<&crate::model::tagger::TokenStates>,
    ) -> Result<Vec<Statement>> {
        self.classify(doc, entities, actors)
    }
}
