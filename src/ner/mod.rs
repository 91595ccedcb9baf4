//! Named-entity tagging: the [`EntityTagger`] trait and its implementations.

pub mod rules;

use serde::{Deserialize, Serialize};

use crate::doc::Doc;
use crate::error::Result;
use crate::span::Span;
use crate::Backend;

/// CoNLL-2003 entity types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum EntityLabel {
    #[serde(rename = "PER")]
    Per,
    #[serde(rename = "ORG")]
    Org,
    #[serde(rename = "LOC")]
    Loc,
    #[serde(rename = "MISC")]
    Misc,
}

impl EntityLabel {
    pub fn as_str(&self) -> &'static str {
        match self {
            EntityLabel::Per => "PER",
            EntityLabel::Org => "ORG",
            EntityLabel::Loc => "LOC",
            EntityLabel::Misc => "MISC",
        }
    }

    pub fn parse(s: &str) -> Option<EntityLabel> {
        match s {
            "PER" => Some(EntityLabel::Per),
            "ORG" => Some(EntityLabel::Org),
            "LOC" => Some(EntityLabel::Loc),
            "MISC" => Some(EntityLabel::Misc),
            _ => None,
        }
    }
}

impl std::fmt::Display for EntityLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entity mention found by a tagger.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    pub span: Span,
    pub label: EntityLabel,
    /// Confidence in [0, 1]: a probability for models, a fixed prior per rule for rules.
    pub score: f32,
    pub backend: Backend,
}

/// Finds entity mentions in a document.
pub trait EntityTagger: Send + Sync {
    /// Sets `doc.entities`, sorted by start offset and not overlapping; a model also
    /// sets `doc.states` when `doc.keep_states` asks for them.
    fn tag(&self, doc: &mut Doc) -> Result<()>;
    fn backend(&self) -> Backend;

    /// Entities of several texts; a model batches them together.
    fn tag_texts(&self, texts: &[&str]) -> Result<Vec<Vec<Entity>>> {
        texts.iter().map(|t| entities_of(self, t)).collect()
    }
}

/// The entities `tagger` finds in `text` (a document made and tagged for the purpose).
pub fn entities_of<T: EntityTagger + ?Sized>(tagger: &T, text: &str) -> Result<Vec<Entity>> {
    let mut doc = Doc::new(text);
    tagger.tag(&mut doc)?;
    Ok(doc.entities)
}

/// A shared tagger (the stance model reuses the entity model's encoder).
impl<T: EntityTagger + ?Sized> EntityTagger for std::sync::Arc<T> {
    fn tag(&self, doc: &mut Doc) -> Result<()> {
        (**self).tag(doc)
    }

    fn backend(&self) -> Backend {
        (**self).backend()
    }

    fn tag_texts(&self, texts: &[&str]) -> Result<Vec<Vec<Entity>>> {
        (**self).tag_texts(texts)
    }
}

/// The CoNLL type the gazetteer gives a phrase ("U.S." → LOC, "French" → MISC), if it lists it.
pub fn gazetteer_label(phrase: &str) -> Option<EntityLabel> {
    use crate::gazetteer::{EntryKind, Gazetteer};
    Gazetteer::builtin().lookup(phrase).map(|e| match e.kind {
        EntryKind::Country | EntryKind::Seat | EntryKind::Location => EntityLabel::Loc,
        EntryKind::Demonym => EntityLabel::Misc,
        EntryKind::Organization(_) => EntityLabel::Org,
    })
}
