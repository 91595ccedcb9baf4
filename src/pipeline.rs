//! The pipeline: text -> sentences -> entities -> actors -> statements -> [`Document`].

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use crate::actors::link;
use crate::doc::Doc;
use crate::document::Document;
use crate::edges::tidy;
use crate::error::{Result, StanceError};
use crate::model::load_tagger;
use crate::model::source::default_stance;
use crate::model::tagger::{InferenceOptions, ModelTagger, Precision};
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

/// Seconds spent in each stage of [`Pipeline::analyze_timed`], summed over documents.
/// `segment` is sentences and words; `tokenize` the entity model's word pieces (a stance
/// model that reads marked sentences cuts its own inside `stance`); `output` is building
/// the document object (and, in `stance bench --pipeline`, writing its JSON).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct StageTimes {
    pub segment: f64,
    /// Word pieces for the entity model (none with the rules).
    pub tokenize: f64,
    pub entities: f64,
    pub actors: f64,
    pub stance: f64,
    pub output: f64,
}

impl StageTimes {
    /// (stage, seconds) in pipeline order.
    pub fn rows(&self) -> [(&'static str, f64); 6] {
        [
            ("segment", self.segment),
            ("tokenize", self.tokenize),
            ("entities", self.entities),
            ("actors", self.actors),
            ("stance", self.stance),
            ("output", self.output),
        ]
    }
}

fn lap(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
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
        None => default_stance().ok_or_else(|| {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum BackendChoice {
    /// The model when one loads, otherwise the rules.
    #[default]
    Auto,
    /// Gazetteers, cue lexicon and clause rules; no model needed.
    Rules,
    /// The transformer model; fails if none can be loaded.
    Model,
}

impl BackendChoice {
    /// The name users write (`--backend auto|rules|model`).
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Rules => "rules",
            BackendChoice::Model => "model",
        }
    }
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

/// What a pipeline runs: its backend and what finds entities and statements
/// (model directories, or the rules), as shown at the top of reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PipelineInfo {
    pub backend: String,
    pub entities: String,
    pub statements: String,
    /// The models' number format ("f32" or "int8"); absent for the rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
}

/// `path` relative to the working directory when it lies below it: shorter, and
/// a report does not show where on the machine it was made.
fn relative(path: &str) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            std::path::Path::new(path)
                .strip_prefix(&cwd)
                .ok()
                .map(|p| p.display().to_string())
        })
        .unwrap_or_else(|| path.to_string())
}

/// A configured pipeline. Build it once and reuse it for every document.
pub struct Pipeline {
    /// The entity model, when there is one, for the tokenize stage's word pieces.
    word_pieces: Option<Arc<ModelTagger>>,
    tagger: Box<dyn EntityTagger>,
    classifier: Box<dyn StanceClassifier>,
    /// What finds entities and statements, for [`Pipeline::info`]; the stage
    /// traits do not say (they have one job each), so it is noted when built.
    sources: (String, String),
}

/// How the rules are named in [`PipelineInfo`].
const RULE_ENTITIES: &str = "rules (gazetteers and capitalisation)";
const RULE_STATEMENTS: &str = "rules (cue lexicon and clause rules)";

impl Pipeline {
    /// The rule-based pipeline.
    pub fn rules() -> Pipeline {
        Pipeline {
            word_pieces: None,
            tagger: Box::new(RuleTagger::default()),
            classifier: Box::new(RuleClassifier::default()),
            sources: (RULE_ENTITIES.into(), RULE_STATEMENTS.into()),
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
        let started = std::time::Instant::now();
        let built = Pipeline::load(choice, model)?;
        let info = built.0.info();
        log::info!(
            "backend {} ready in {:.2} s: entities by {}; statements by {}",
            info.backend,
            started.elapsed().as_secs_f64(),
            info.entities,
            info.statements
        );
        if let Some(note) = &built.1 {
            log::info!("fallback: {note}");
        }
        Ok(built)
    }

    fn load(choice: BackendChoice, model: &ModelChoice) -> Result<(Pipeline, Option<String>)> {
        log::info!("backend asked for: {}", choice.as_str());
        let started = std::time::Instant::now();
        let tagger = match entity_model(choice, model)? {
            Ok(t) => t,
            Err(note) => return Ok((Pipeline::rules(), note)),
        };
        let o = &tagger.options;
        log::info!(
            "entity model {} loaded in {:.2} s ({} threads, {} parallelism, batches of {}, {})",
            tagger.source,
            started.elapsed().as_secs_f64(),
            o.threads,
            o.parallelism.as_str(),
            o.batch_size,
            o.precision.resolve().as_str()
        );
        let started = std::time::Instant::now();
        let stance = load_stance(model, &tagger);
        if let Ok(s) = &stance {
            log::info!(
                "stance model {} loaded in {:.2} s",
                s.dir.display(),
                started.elapsed().as_secs_f64()
            );
        }
        let entities = tagger.source.clone();
        let entity_model = Arc::clone(&tagger);
        let named = |p: Pipeline, statements: String| Pipeline {
            sources: (entities.clone(), statements),
            word_pieces: Some(Arc::clone(&entity_model)),
            ..p
        };
        match stance {
            Ok(learned) if choice == BackendChoice::Auto => {
                let dir = format!("{} + rules", learned.dir.display());
                let hybrid = Hybrid { model: learned };
                let p = Pipeline::with(Box::new(tagger), Box::new(hybrid));
                Ok((named(p, dir), None))
            }
            Ok(learned) => {
                let dir = learned.dir.display().to_string();
                let p = Pipeline::with(Box::new(tagger), Box::new(learned));
                Ok((named(p, dir), None))
            }
            // Heads the user named must load, and installed heads that are broken are an error.
            Err(e) if model.stance.is_some() => Err(e),
            Err(e @ StanceError::ModelUnavailable(_)) => {
                // An entity model without stance heads of its own (a foreign
                // checkpoint, say): entities from it, stance from the rules.
                let note = (choice == BackendChoice::Model || model.spec.is_none())
                    .then(|| format!("stance by the rules: {e}"));
                let p = Pipeline::with(Box::new(tagger), Box::new(RuleClassifier::default()));
                Ok((named(p, RULE_STATEMENTS.into()), note))
            }
            Err(e) => Err(e),
        }
    }

    pub fn with(tagger: Box<dyn EntityTagger>, classifier: Box<dyn StanceClassifier>) -> Pipeline {
        let name = |b: Backend| b.as_str().to_string();
        let sources = (name(tagger.backend()), name(classifier.backend()));
        Pipeline {
            word_pieces: None,
            tagger,
            classifier,
            sources,
        }
    }

    /// The number format the models run in (`--precision`, resolved for this CPU);
    /// `None` when no model runs.
    pub fn precision(&self) -> Option<Precision> {
        let model = self.word_pieces.as_ref()?;
        Some(model.options.precision.resolve())
    }

    /// The entity tagger (for `stance eval ner`).
    pub fn tagger(&self) -> &dyn EntityTagger {
        self.tagger.as_ref()
    }

    /// The backend and the models (or rules) behind it, for reports and logs.
    pub fn info(&self) -> PipelineInfo {
        PipelineInfo {
            backend: self.backend().as_str().to_string(),
            entities: relative(&self.sources.0),
            statements: relative(&self.sources.1),
            precision: self.precision().map(|p| p.as_str().to_string()),
        }
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
        self.analyze_timed(id, text, &mut StageTimes::default())
    }

    /// [`Pipeline::analyze`], adding each stage's time to `times` (`stance bench --pipeline`).
    pub fn analyze_timed(&self, id: &str, text: &str, times: &mut StageTimes) -> Result<Document> {
        let clock = Instant::now();
        let mut doc = Doc::new(text);
        times.segment += lap(clock);
        let clock = Instant::now();
        if let Some(model) = &self.word_pieces {
            doc.pieces = Some(model.word_pieces(&doc.text, &doc.prose_runs())?);
        }
        times.tokenize += lap(clock);
        let clock = Instant::now();
        doc.keep_states = self.classifier.reads_states();
        self.tagger.tag(&mut doc)?;
        let found = std::mem::take(&mut doc.entities);
        doc.entities = tidy_entities(&doc, found);
        times.entities += lap(clock);
        let clock = Instant::now();
        doc.actors = link(&doc, &doc.entities);
        times.actors += lap(clock);
        let clock = Instant::now();
        self.classifier.classify(&mut doc)?;
        doc.states = None;
        for s in &mut doc.statements {
            s.cue = s.cue.and_then(|cue| tidy(&doc.text, cue));
        }
        times.stance += lap(clock);
        let clock = Instant::now();
        let mut out = Document::build(id, self.backend(), &doc);
        out.precision = self.precision().map(|p| p.as_str().to_string());
        times.output += lap(clock);
        Ok(out)
    }
}
