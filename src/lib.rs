//! # stance
//!
//! Who said what to whom in news text: named entities, the actors they
//! stand for, and each actor's threats, accusations and proposals.
//!
//! ```text
//! text ─► segment ─► tokenize ─► ner (rules | model) ─► actors ─► stance (rules | model) ─► document
//! ```
//!
//! ```
//! let pipeline = stance::Pipeline::rules();
//! let doc = pipeline.analyze("ex", "Paris accused Rome of breaking the deal.").unwrap();
//! assert_eq!(doc.statements[0].label, stance::StanceLabel::Accusation);
//! assert_eq!(doc.statements[0].actor.text, "Paris");
//! ```

pub mod actors;
pub mod bench;
#[cfg(feature = "cli")]
pub mod cli;
pub mod conll;
pub mod doc;
pub mod document;
pub mod edges;
pub mod error;
pub mod eval;
pub mod gazetteer;
pub mod input;
pub mod model;
pub mod ner;
pub mod output;
pub mod pipeline;
pub mod segment;
pub mod span;
pub mod stance;
pub mod term;
pub mod tokenize;
pub mod verbose;
pub mod wordlist;

use serde::{Deserialize, Serialize};

pub use document::Document;
pub use error::{Result, StanceError};
pub use ner::{Entity, EntityLabel, EntityTagger};
pub use pipeline::{BackendChoice, Pipeline};
pub use stance::{StanceClassifier, StanceLabel, Statement};

/// Which backend produced an entity or a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Rules,
    Model,
    /// Entities from one backend, statements from the other, or a vote.
    Hybrid,
}

impl Backend {
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Rules => "rules",
            Backend::Model => "model",
            Backend::Hybrid => "hybrid",
        }
    }
}
