//! The pipeline: text -> sentences -> entities -> actors -> statements -> [`Document`].

use std::str::FromStr;

use crate::actors::link;
use crate::doc::Doc;
use crate::document::Document;
use crate::error::Result;
use crate::model::load_tagger;
use crate::model::tagger::InferenceOptions;
use crate::ner::rules::RuleTagger;
use crate::ner::EntityTagger;
use crate::stance::rules::RuleClassifier;
use crate::stance::StanceClassifier;
use crate::Backend;

/// Which model to load for the model backend, and how to run it.
#[derive(Debug, Clone, Default)]
pub struct ModelChoice {
    /// A directory or Hub id; `None` is the default model under `models/`.
    pub spec: Option<String>,
    pub options: InferenceOptions,
}

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
    pub fn for_backend(
        choice: BackendChoice,
        model: &ModelChoice,
    ) -> Result<(Pipeline, Option<String>)> {
        let load = || load_tagger(model.spec.as_deref(), model.options);
        match choice {
            BackendChoice::Rules => Ok((Pipeline::rules(), None)),
            BackendChoice::Model => {
                let tagger = load()?;
                Ok((
                    Pipeline::with(Box::new(tagger), Box::new(RuleClassifier::default())),
                    None,
                ))
            }
            BackendChoice::Auto => match load() {
                Ok(tagger) => Ok((
                    Pipeline::with(Box::new(tagger), Box::new(RuleClassifier::default())),
                    None,
                )),
                Err(e) => Ok((
                    Pipeline::rules(),
                    Some(format!("using the rules backend: {e}")),
                )),
            },
        }
    }

    pub fn with(tagger: Box<dyn EntityTagger>, classifier: Box<dyn StanceClassifier>) -> Pipeline {
        Pipeline { tagger, classifier }
    }

    /// The entity tagger (for `stance eval ner`).
    pub fn tagger(&self) -> &dyn EntityTagger {
        self.tagger.as_ref()
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
