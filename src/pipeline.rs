//! The pipeline: text -> sentences -> entities -> actors -> statements -> [`Document`].

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use crate::actors::link;
use crate::doc::Doc;
use crate::document::Document;
use crate::edges::tidy;
use crate::error::{Result, StanceError};
use crate::model::load_tagger;
use crate::model::source::models_dirs;
use crate::model::tagger::{InferenceOptions, ModelTagger};
use crate::ner::rules::RuleTagger;
use crate::ner::{Entity, EntityTagger};
use crate::stance::model::{Hybrid, ModelClassifier};
use crate::stance::rules::RuleClassifier;
use crate::stance::StanceClassifier;
use crate::Backend;

/// Entities trimmed to ordinary characters at both ends ([`crate::edges`]); those
/// with nothing left (an emoji tagged as a name) are dropped, and so are those in
/// sentences that are not prose (a model tags names in noise as readily as in news).
fn tidy_entities(doc: &Doc, entities: Vec<Entity>) -> Vec<Entity> {
    entities
        .into_iter()
        .filter(|e| {
            doc.sentence_of(e.span.start)
                .is_some_and(|s| doc.is_prose(s))
        })
        .filter_map(|e| tidy(&doc.text, e.span).map(|span| Entity { span, ..e }))
        .collect()
}

/// Which model to load for the model backend, and how to run it.
#[derive(Debug, Clone, Default)]
pub struct ModelChoice {
    /// A directory or Hub id; `None` is the default model under `models/`.
    pub spec: Option<String>,
    /// Directory of the stance model (`stance.json`, `actors/`, ...); `None` is `models/stance`.
    pub stance: Option<PathBuf>,
    pub options: InferenceOptions,
}

/// Loads the learned stance model over the tagger's encoder.
fn load_stance(model: &ModelChoice, tagger: &Arc<ModelTagger>) -> Result<ModelClassifier> {
    let dir = match &model.stance {
        Some(d) => d.clone(),
        None => models_dirs()
            .into_iter()
            .map(|d| d.join("stance"))
            .find(|d| d.join("stance.json").is_file())
            .ok_or_else(|| {
                StanceError::ModelUnavailable("no stance model is installed (models/stance)".into())
            })?,
    };
    ModelClassifier::load(&dir, tagger.clone())
}

/// The entity model for `choice`, or (as `Err`) the rules with `auto`'s note on
/// why it fell back. Only `auto` without an explicit model falls back, and only
/// when no default model is installed: a model the user names, or a default
/// that is there but broken, must load (a silent fallback would hide it).
fn entity_model(
    choice: BackendChoice,
    model: &ModelChoice,
) -> Result<std::result::Result<Arc<ModelTagger>, Option<String>>> {
    if choice == BackendChoice::Rules {
        if model.spec.is_some() || model.stance.is_some() {
            return Err(StanceError::Config(
                "--model and --stance-model need --backend model or auto, not rules".into(),
            ));
        }
        return Ok(Err(None));
    }
    match load_tagger(model.spec.as_deref(), model.options) {
        Ok(t) => Ok(Ok(Arc::new(t))),
        Err(e @ crate::model::ModelError::NoDefault { .. })
            if choice == BackendChoice::Auto && model.spec.is_none() && model.stance.is_none() =>
        {
            Ok(Err(Some(format!("using the rules backend: {e}"))))
        }
        Err(e) => Err(e.into()),
    }
}

/// The entity tagger alone for a backend choice (`stance eval ner`): the stance
/// model is not loaded. Returns `auto`'s fallback note as [`Pipeline::for_backend`] does.
pub fn entity_tagger(
    choice: BackendChoice,
    model: &ModelChoice,
) -> Result<(Box<dyn EntityTagger>, Option<String>)> {
    Ok(match entity_model(choice, model)? {
        Ok(t) => (Box::new(t), None),
        Err(note) => (Box::new(RuleTagger::default()), note),
    })
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
    /// `auto`, a note saying why it fell back (to print once).
    ///
    /// - `rules`: rule entities and rule stance.
    /// - `model`: the entity model and the learned stance model.
    /// - `auto`: the entity model, and the learned stance model with the rules'
    ///   statements it does not veto ([`Hybrid`]); rules wherever a model is missing.
    pub fn for_backend(
        choice: BackendChoice,
        model: &ModelChoice,
    ) -> Result<(Pipeline, Option<String>)> {
        let tagger = match entity_model(choice, model)? {
            Ok(t) => t,
            Err(note) => return Ok((Pipeline::rules(), note)),
        };
        match load_stance(model, &tagger) {
            Ok(learned) if choice == BackendChoice::Auto => {
                let hybrid = Hybrid { model: learned };
                Ok((Pipeline::with(Box::new(tagger), Box::new(hybrid)), None))
            }
            Ok(learned) => Ok((Pipeline::with(Box::new(tagger), Box::new(learned)), None)),
            // Heads the user named must load, and installed heads that are broken are an error.
            Err(e) if model.stance.is_some() => Err(e),
            Err(e @ StanceError::ModelUnavailable(_)) => {
                // An entity model without stance heads of its own (a foreign
                // checkpoint, say): entities from it, stance from the rules.
                let note = (choice == BackendChoice::Model || model.spec.is_none())
                    .then(|| format!("stance by the rules: {e}"));
                Ok((
                    Pipeline::with(Box::new(tagger), Box::new(RuleClassifier::default())),
                    note,
                ))
            }
            Err(e) => Err(e),
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

    /// Analyses one document: each stage reads the [`Doc`] and adds its part.
    pub fn analyze(&self, id: &str, text: &str) -> Result<Document> {
        let mut doc = Doc::new(text);
        doc.keep_states = self.classifier.reads_states();
        self.tagger.tag(&mut doc)?;
        let found = std::mem::take(&mut doc.entities);
        doc.entities = tidy_entities(&doc, found);
        doc.actors = link(&doc, &doc.entities);
        self.classifier.classify(&mut doc)?;
        doc.states = None;
        for s in &mut doc.statements {
            s.cue = s.cue.and_then(|cue| tidy(&doc.text, cue));
        }
        Ok(Document::build(id, self.backend(), &doc))
    }
}
