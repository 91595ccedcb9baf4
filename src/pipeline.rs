//! The pipeline: text -> sentences -> entities -> actors -> statements -> [`Document`].

use std::str::FromStr;

use crate::actors::link;
use crate::doc::Doc;
use crate::document::Document;
use crate::error::{Result, StanceError};
use crate::ner::rules::RuleTagger;
use crate::ner::EntityTagger;
use crate::stance::rules::RuleClassifier;
use crate::stance::StanceClassifier;
use crate::Backend;

/// Which backend the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum BackendChoice {
    /// The model when one loads, otherwise the rules.
    #[default]
    Auto,
    /// Gazetteers, cue lexicon and clause rules; no model needed.
    Rules,
    /// The transformer model; fails if none can be loaded.
    Model,
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "rules" => Ok(BackendChoice::Rules),
            "model" => Ok(BackendChoice::Model),
            _ => Err(format!(
                "unknown backend '{s}' (expected auto, rules or model)"
            )),
        }
    }
}

/// A configured pipeline. Build it once and reuse it for every document.
pub struct Pipeline {
    tagger: Box<dyn EntityTagger>,
    classifier: Box<dyn StanceClassifier>,
}

impl Pipeline {
    /// The rule-based pipeline.
    pub fn rules() -> Pipeline {
        Pipeline {
            tagger: Box::new(RuleTagger::default()),
            classifier: Box::new(RuleClassifier::default()),
        }
    }

    /// Builds the pipeline for a backend choice. Returns the pipeline and, for
    /// `auto`, a note saying why it fell back to rules (to print once).
    pub fn for_backend(choice: BackendChoice) -> Result<(Pipeline, Option<String>)> {
        match choice {
            BackendChoice::Rules => Ok((Pipeline::rules(), None)),
            BackendChoice::Model => Err(StanceError::ModelUnavailable(
                "no transformer model is available in this version of stance yet; use --backend rules (or auto)".into(),
            )),
            // No model backend exists yet, so auto is the rules, silently: there is nothing to fall back from.
            BackendChoice::Auto => Ok((Pipeline::rules(), None)),
        }
    }

    pub fn with(tagger: Box<dyn EntityTagger>, classifier: Box<dyn StanceClassifier>) -> Pipeline {
        Pipeline { tagger, classifier }
    }

    /// The backend that produced the entities and statements.
    pub fn backend(&self) -> Backend {
        match (self.tagger.backend(), self.classifier.backend()) {
            (Backend::Rules, Backend::Rules) => Backend::Rules,
            (Backend::Model, Backend::Model) => Backend::Model,
            _ => Backend::Hybrid,
        }
    }

    /// Analyses one document.
    pub fn analyze(&self, id: &str, text: &str) -> Result<Document> {
        let doc = Doc::new(text);
        let entities = self.tagger.tag(&doc)?;
        let actors = link(&doc, &entities);
        let statements = self.classifier.classify(&doc, &entities, &actors)?;
        Ok(Document::build(
            id,
            self.backend(),
            &doc,
            &entities,
            &actors,
            &statements,
        ))
    }
}
