//! `stance eval stance`: statements scored as the guidelines' Scoring section says.
//!
//! A prediction matches a gold statement when their actor spans overlap and
//! the labels are equal; each gold statement matches at most one prediction,
//! taken in order. Gold items marked `"ambiguous": true` are optional: matching
//! one earns nothing and costs nothing. This mirrors the reference scorer
//! (`score_stance.py`) decision for decision.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{round4, Scores};
use crate::document::Document;
use crate::error::{Result, StanceError};
use crate::output::char_slice;
use crate::pipeline::{BackendChoice, ModelChoice, Pipeline};
use crate::stance::StanceLabel;
use crate::Backend;

/// A character span in gold or predicted data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldSpan {
    pub start: usize,
    pub end: usize,
    #[serde(default)]
    pub text: Option<String>,
}

impl GoldSpan {
    fn overlaps(&self, other: &GoldSpan) -> bool {
        self.start < other.end && other.start < self.end
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldStance {
    pub actor: GoldSpan,
    pub label: StanceLabel,
    #[serde(default)]
    pub target: Option<GoldSpan>,
    #[serde(default)]
    pub ambiguous: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldDoc {
    pub id: String,
    pub text: String,
    /// Required: a file without labels would score every prediction as a false alarm.
    pub stances: Vec<GoldStance>,
    /// Where the document comes from (`allsides`, `polnear`, `plv`, `conll`, or a file's
    /// own name): evaluation reports a row per source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Loads gold JSON Lines; every error names the file and line.
pub fn load_gold(path: &Path) -> Result<Vec<GoldDoc>> {
    let io = |source| StanceError::Io {
        path: path.to_path_buf(),
        source,
    };
    if path.is_dir() {
        return Err(StanceError::IsDirectory { path: path.into() });
    }
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let mut docs = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| StanceError::BadRecord {
            path: path.into(),
            line: n + 1,
            message: format!("cannot read line: {e}"),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let doc: GoldDoc = serde_json::from_str(&line).map_err(|e| StanceError::BadRecord {
            path: path.into(),
            line: n + 1,
            message: format!("not a gold document ({{\"id\", \"text\", \"stances\"}}): {e}"),
        })?;
        docs.push(doc);
    }
    Ok(docs)
}

/// A predicted statement reduced to what scoring reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    pub actor: GoldSpan,
    pub label: StanceLabel,
    pub target: Option<GoldSpan>,
}

/// What the pipeline found in one document, reduced to what scoring reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PredictedDoc {
    pub statements: Vec<Predicted>,
    /// The entities found, to tell the misses whose actor was never found as an entity
    /// from the others; `None` when not known (predictions read from elsewhere).
    pub entities: Option<Vec<GoldSpan>>,
}

impl PredictedDoc {
    /// Statements without the entities behind them.
    pub fn statements(statements: Vec<Predicted>) -> Self {
        PredictedDoc {
            statements,
            entities: None,
        }
    }

    pub fn from_document(doc: &Document) -> Self {
        PredictedDoc {
            statements: Predicted::from_document(doc),
            entities: Some(
                doc.entities
                    .iter()
                    .map(|e| GoldSpan {
                        start: e.start,
                        end: e.end,
                        text: None,
                    })
                    .collect(),
            ),
        }
    }
}

impl Predicted {
    pub fn from_document(doc: &Document) -> Vec<Predicted> {
        doc.statements
            .iter()
            .map(|s| Predicted {
                actor: GoldSpan {
                    start: s.actor.start,
                    end: s.actor.end,
                    text: Some(s.actor.text.clone()),
                },
                label: s.label,
                target: s.target.as_ref().map(|t| GoldSpan {
                    start: t.start,
                    end: t.end,
                    text: Some(t.text.clone()),
                }),
            })
            .collect()
    }
}

/// Scores of one label (the shared [`Scores`]).
pub type LabelScore = Scores;

/// One scoring error, for `--errors`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoringError {
    pub id: String,
    /// "miss" (gold not found) or "false_alarm" (prediction not in gold).
    pub kind: &'static str,
    pub label: StanceLabel,
    pub actor: String,
    pub target: Option<String>,
    pub sentence: String,
    pub cause: ErrorCause,
}

/// Where an error comes from, stage by stage: the entities, the actor's label, or the
/// sentence as a whole. Tells an entity recall problem from a classifier's one, and a
/// statement given to the wrong actor from one nobody in the sentence was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCause {
    /// Missed: no entity was found over the gold actor.
    MissNotAnEntity,
    /// Missed: the actor was given another label.
    MissActorOtherLabel,
    /// Missed: another actor of the sentence was given the label.
    MissLabelToAnotherActor,
    /// Missed: nobody in the sentence was given the label.
    MissLabelNotInSentence,
    /// False alarm: a second prediction for a gold statement already matched.
    FalseAlarmDuplicate,
    /// False alarm: the actor's gold statement has another label.
    FalseAlarmActorOtherLabel,
    /// False alarm: the gold gives the label to another actor of the sentence.
    FalseAlarmLabelOfAnotherActor,
    /// False alarm: the sentence holds no gold statement at all.
    FalseAlarmNoStatementInSentence,
    /// False alarm: the sentence holds only other actors' statements of other labels.
    FalseAlarmOtherStatementsInSentence,
}

impl ErrorCause {
    pub const ALL: [ErrorCause; 9] = [
        ErrorCause::MissNotAnEntity,
        ErrorCause::MissActorOtherLabel,
        ErrorCause::MissLabelToAnotherActor,
        ErrorCause::MissLabelNotInSentence,
        ErrorCause::FalseAlarmDuplicate,
        ErrorCause::FalseAlarmActorOtherLabel,
        ErrorCause::FalseAlarmLabelOfAnotherActor,
        ErrorCause::FalseAlarmNoStatementInSentence,
        ErrorCause::FalseAlarmOtherStatementsInSentence,
    ];

    /// The row name in tables (at most 18 characters, the comparison's first column).
    pub fn describe(self) -> &'static str {
        match self {
            ErrorCause::MissNotAnEntity => "miss: no entity",
            ErrorCause::MissActorOtherLabel => "miss: other label",
            ErrorCause::MissLabelToAnotherActor => "miss: other actor",
            ErrorCause::MissLabelNotInSentence => "miss: none in sent",
            ErrorCause::FalseAlarmDuplicate => "fa: duplicate",
            ErrorCause::FalseAlarmActorOtherLabel => "fa: other label",
            ErrorCause::FalseAlarmLabelOfAnotherActor => "fa: other actor's",
            ErrorCause::FalseAlarmNoStatementInSentence => "fa: empty sentence",
            ErrorCause::FalseAlarmOtherStatementsInSentence => "fa: others in sent",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StanceReport {
    pub per_label: BTreeMap<String, LabelScore>,
    pub micro: LabelScore,
    pub macro_f1: f64,
    pub target_accuracy: Option<f64>,
    pub documents: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ScoringError>,
    /// The misses and false alarms counted by [`ErrorCause`], every cause listed; kept
    /// when `errors` is emptied.
    pub error_causes: BTreeMap<ErrorCause, usize>,
    /// The same scores per data source, when the gold holds more than one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_source: BTreeMap<String, StanceReport>,
}

/// A gold document's sentences as `stance` segments them, to quote in error listings.
struct Sentences<'a> {
    text: &'a str,
    map: crate::span::CharMap,
    spans: Vec<crate::span::Span>,
}

impl<'a> Sentences<'a> {
    fn of(text: &'a str) -> Self {
        Sentences {
            text,
            map: crate::span::CharMap::new(text),
            spans: crate::segment::segment(text)
                .into_iter()
                .map(|s| s.span)
                .collect(),
        }
    }

    /// The index of the sentence that holds a span's first character.
    fn index(&self, span: &GoldSpan) -> Option<usize> {
        let at = self.map.byte_offset(span.start);
        self.spans
            .iter()
            .position(|s| s.start <= at && at < s.end.max(s.start + 1))
    }

    /// The sentence around a character span.
    fn around(&self, span: &GoldSpan) -> String {
        self.index(span)
            .map(|i| self.spans[i].text(self.text).to_string())
            .unwrap_or_else(|| char_slice(self.text, span.start, span.end))
    }
}

fn span_text(text: &str, s: &GoldSpan) -> String {
    s.text
        .clone()
        .unwrap_or_else(|| char_slice(text, s.start, s.end))
}

/// Scores predictions (`preds[i]` for `gold[i]`) against the gold documents, in all
/// and, when the documents come from several sources, per source.
pub fn score(gold: &[GoldDoc], preds: &[PredictedDoc]) -> StanceReport {
    let mut report = score_all(gold, preds);
    let mut groups: BTreeMap<&str, (Vec<GoldDoc>, Vec<PredictedDoc>)> = BTreeMap::new();
    for (g, p) in gold.iter().zip(preds) {
        let group = groups
            .entry(g.source.as_deref().unwrap_or("-"))
            .or_default();
        group.0.push(g.clone());
        group.1.push(p.clone());
    }
    if groups.len() > 1 {
        for (name, (g, p)) in groups {
            let mut r = score_all(&g, &p);
            r.errors.clear();
            report.by_source.insert(name.to_string(), r);
        }
    }
    report
}

fn score_all(gold: &[GoldDoc], preds: &[PredictedDoc]) -> StanceReport {
    let mut per_label = BTreeMap::new();
    let (mut tp_all, mut fp_all, mut fn_all) = (0, 0, 0);
    let (mut tgt_ok, mut tgt_n) = (0, 0);
    let mut errors = Vec::new();
    let sentences: Vec<Sentences> = gold.iter().map(|d| Sentences::of(&d.text)).collect();
    for label in StanceLabel::ALL {
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for ((doc, pred), sentences) in gold.iter().zip(preds).zip(&sentences) {
            let g: Vec<&GoldStance> = doc
                .stances
                .iter()
                .filter(|s| s.label == label && !s.ambiguous)
                .collect();
            let amb: Vec<&GoldStance> = doc
                .stances
                .iter()
                .filter(|s| s.label == label && s.ambiguous)
                .collect();
            let mut used = vec![false; g.len()];
            for p in pred.statements.iter().filter(|p| p.label == label) {
                match (0..g.len()).find(|&i| !used[i] && p.actor.overlaps(&g[i].actor)) {
                    Some(i) => {
                        used[i] = true;
                        tp += 1;
                        tgt_n += 1;
                        let ok = match (&g[i].target, &p.target) {
                            (None, None) => true,
                            (Some(a), Some(b)) => a.overlaps(b),
                            _ => false,
                        };
                        tgt_ok += ok as usize;
                    }
                    None if amb.iter().any(|a| p.actor.overlaps(&a.actor)) => {}
                    None => {
                        fp += 1;
                        errors.push(ScoringError {
                            id: doc.id.clone(),
                            kind: "false_alarm",
                            label,
                            actor: span_text(&doc.text, &p.actor),
                            target: p.target.as_ref().map(|t| span_text(&doc.text, t)),
                            sentence: sentences.around(&p.actor),
                            cause: false_alarm_cause(doc, sentences, p),
                        });
                    }
                }
            }
            for (gs, _) in g.iter().zip(&used).filter(|(_, used)| !**used) {
                fn_ += 1;
                errors.push(ScoringError {
                    id: doc.id.clone(),
                    kind: "miss",
                    label,
                    actor: span_text(&doc.text, &gs.actor),
                    target: gs.target.as_ref().map(|t| span_text(&doc.text, t)),
                    sentence: sentences.around(&gs.actor),
                    cause: miss_cause(pred, sentences, gs),
                });
            }
        }
        per_label.insert(
            label.as_str().to_string(),
            LabelScore::from_counts(tp, fp, fn_),
        );
        tp_all += tp;
        fp_all += fp;
        fn_all += fn_;
    }
    let macro_f1 = round4(per_label.values().map(|s| s.f1).sum::<f64>() / per_label.len() as f64);
    errors.sort_by(|a, b| (&a.id, a.kind).cmp(&(&b.id, b.kind)));
    let error_causes = ErrorCause::ALL
        .iter()
        .map(|&c| (c, errors.iter().filter(|e| e.cause == c).count()))
        .collect();
    StanceReport {
        per_label,
        micro: LabelScore::from_counts(tp_all, fp_all, fn_all),
        macro_f1,
        target_accuracy: (tgt_n > 0).then(|| round4(tgt_ok as f64 / tgt_n as f64)),
        documents: gold.len(),
        errors,
        error_causes,
        by_source: BTreeMap::new(),
    }
}

/// Why gold statement `gs` found no prediction: first whether its actor was found at
/// all, then what the actor and the rest of its sentence were given.
fn miss_cause(pred: &PredictedDoc, sentences: &Sentences, gs: &GoldStance) -> ErrorCause {
    let found = pred
        .entities
        .as_ref()
        .is_none_or(|es| es.iter().any(|e| e.overlaps(&gs.actor)));
    let sentence = sentences.index(&gs.actor);
    if !found {
        ErrorCause::MissNotAnEntity
    } else if pred
        .statements
        .iter()
        .any(|p| p.actor.overlaps(&gs.actor) && p.label != gs.label)
    {
        ErrorCause::MissActorOtherLabel
    } else if pred
        .statements
        .iter()
        .any(|p| p.label == gs.label && sentences.index(&p.actor) == sentence)
    {
        ErrorCause::MissLabelToAnotherActor
    } else {
        ErrorCause::MissLabelNotInSentence
    }
}

/// Why prediction `p` matched no gold statement, from its own actor out to its sentence.
fn false_alarm_cause(doc: &GoldDoc, sentences: &Sentences, p: &Predicted) -> ErrorCause {
    let sure = || doc.stances.iter().filter(|g| !g.ambiguous);
    let sentence = sentences.index(&p.actor);
    let in_sentence = |g: &&GoldStance| sentences.index(&g.actor) == sentence;
    if sure().any(|g| g.label == p.label && g.actor.overlaps(&p.actor)) {
        ErrorCause::FalseAlarmDuplicate
    } else if sure().any(|g| g.actor.overlaps(&p.actor)) {
        ErrorCause::FalseAlarmActorOtherLabel
    } else if sure().filter(in_sentence).any(|g| g.label == p.label) {
        ErrorCause::FalseAlarmLabelOfAnotherActor
    } else if doc.stances.iter().any(|g| in_sentence(&g)) {
        ErrorCause::FalseAlarmOtherStatementsInSentence
    } else {
        ErrorCause::FalseAlarmNoStatementInSentence
    }
}

/// The report as a table for people.
pub fn format_table(report: &StanceReport, backend: &str, with_errors: bool) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "stance evaluation — backend: {backend}, {} documents\n\n",
        report.documents
    ));
    s.push_str(&format!(
        "{:<12} {:>9} {:>7} {:>7} {:>5} {:>5} {:>5}\n",
        "label", "precision", "recall", "f1", "tp", "fp", "fn"
    ));
    let mut row = |name: &str, l: &LabelScore| {
        s.push_str(&format!(
            "{:<12} {:>9.4} {:>7.4} {:>7.4} {:>5} {:>5} {:>5}\n",
            name, l.precision, l.recall, l.f1, l.tp, l.fp, l.fn_
        ));
    };
    for (name, l) in &report.per_label {
        row(name, l);
    }
    row("micro", &report.micro);
    s.push_str(&format!("\nmacro F1 {:.4}", report.macro_f1));
    match report.target_accuracy {
        Some(t) => s.push_str(&format!(
            ", target accuracy {t:.4} over matched statements\n"
        )),
        None => s.push_str(", target accuracy n/a (no matched statements)\n"),
    }
    if !report.by_source.is_empty() {
        s.push_str(&format!(
            "\nBy source\n{:<12} {:>5} {:>8} {:>10} {:>8} {:>9} {:>7} {:>7} {:>7}\n",
            "source",
            "docs",
            "threat",
            "accusation",
            "proposal",
            "precision",
            "recall",
            "micro",
            "target"
        ));
        for (name, r) in &report.by_source {
            let f = |l: StanceLabel| r.per_label.get(l.as_str()).map_or(0.0, |s| s.f1);
            s.push_str(&format!(
                "{:<12} {:>5} {:>8.4} {:>10.4} {:>8.4} {:>9.4} {:>7.4} {:>7.4} {:>7}\n",
                name,
                r.documents,
                f(StanceLabel::Threat),
                f(StanceLabel::Accusation),
                f(StanceLabel::Proposal),
                r.micro.precision,
                r.micro.recall,
                r.micro.f1,
                r.target_accuracy.map_or("-".into(), |t| format!("{t:.4}"))
            ));
        }
    }
    s.push_str("\nErrors by cause\n");
    for cause in ErrorCause::ALL {
        let n = report.error_causes.get(&cause).copied().unwrap_or(0);
        s.push_str(&format!("{:<24} {n:>5}\n", cause.describe()));
    }
    if with_errors {
        s.push_str(&format!("\nErrors ({})\n", report.errors.len()));
        for e in &report.errors {
            s.push_str(&format!(
                "  {:<11} {:<10} {:<24} target: {:<20} [{}] ({})\n      “{}”\n",
                e.kind,
                e.label.as_str(),
                e.actor,
                e.target.as_deref().unwrap_or("-"),
                e.id,
                e.cause.describe(),
                e.sentence
            ));
        }
    }
    s
}

/// Runs `pipeline` over the gold documents; each predicted document goes to
/// `on_document` (to be written, or counted for a progress bar) once scored.
pub fn predict(
    pipeline: &Pipeline,
    gold: &[GoldDoc],
    mut on_document: impl FnMut(Document, &GoldDoc) -> Result<()>,
) -> Result<Vec<PredictedDoc>> {
    let mut preds = Vec::with_capacity(gold.len());
    for g in gold {
        let doc = pipeline.analyze(&g.id, &g.text)?;
        preds.push(PredictedDoc::from_document(&doc));
        on_document(doc, g)?;
    }
    Ok(preds)
}

/// Writes gold documents as JSON Lines (the guidelines' format), so that
/// `score_stance.py` can cross-check the scores on the same text.
pub fn write_gold(path: &Path, gold: &[GoldDoc]) -> Result<()> {
    use std::io::Write;
    let io_err = |source| StanceError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut w = std::io::BufWriter::new(File::create(path).map_err(io_err)?);
    for g in gold {
        serde_json::to_writer(&mut w, g).map_err(|e| StanceError::Data(e.to_string()))?;
        writeln!(w).map_err(io_err)?;
    }
    w.flush().map_err(io_err)
}

/// One backend's scores in a comparison.
#[derive(Debug, Clone)]
pub struct Compared {
    /// The backend asked for.
    pub choice: BackendChoice,
    /// The backend that answered (`auto` answers as model, hybrid or rules).
    pub backend: Backend,
    pub report: StanceReport,
}

/// Scores several backends on the same gold documents. The rules read no model, so
/// the models `model` names are for the others. `on_note` hears a backend's
/// fallback note; `on_document` is called after each document of each backend.
/// Without `keep_errors` the reports' error lists are emptied.
pub fn compare(
    gold: &[GoldDoc],
    choices: &[BackendChoice],
    model: &ModelChoice,
    keep_errors: bool,
    mut on_note: impl FnMut(String),
    mut on_document: impl FnMut(),
) -> Result<Vec<Compared>> {
    let mut out = Vec::with_capacity(choices.len());
    for &choice in choices {
        let rules = choice == BackendChoice::Rules;
        let model = ModelChoice {
            spec: model.spec.clone().filter(|_| !rules),
            stance: model.stance.clone().filter(|_| !rules),
            options: model.options,
        };
        let (pipeline, note) = Pipeline::for_backend(choice, &model)?;
        if let Some(note) = note {
            on_note(note);
        }
        let preds = predict(&pipeline, gold, |_, _| {
            on_document();
            Ok(())
        })?;
        let mut report = score(gold, &preds);
        if !keep_errors {
            report.errors.clear();
        }
        out.push(Compared {
            choice,
            backend: pipeline.backend(),
            report,
        });
    }
    Ok(out)
}

/// A comparison as one JSON object: each backend asked for, by name, to its report.
pub fn comparison_json(compared: &[Compared]) -> Result<serde_json::Value> {
    let mut map = serde_json::Map::new();
    for c in compared {
        let value =
            serde_json::to_value(&c.report).map_err(|e| StanceError::Data(e.to_string()))?;
        map.insert(c.choice.as_str().to_string(), value);
    }
    Ok(serde_json::Value::Object(map))
}

/// Several backends' reports side by side: F1 per label, micro P/R/F1, macro F1, target
/// accuracy; in all, then per source when there are several.
pub fn format_comparison(compared: &[Compared], documents: usize) -> String {
    let reports: Vec<(String, &str, StanceReport)> = compared
        .iter()
        .map(|c| {
            (
                c.choice.as_str().to_string(),
                c.backend.as_str(),
                c.report.clone(),
            )
        })
        .collect();
    let reports = reports.as_slice();
    let mut out = comparison_block(
        reports,
        &format!("stance evaluation, {documents} documents"),
    );
    let sources: Vec<&String> = reports
        .first()
        .map(|r| r.2.by_source.keys().collect())
        .unwrap_or_default();
    for source in sources {
        let per: Vec<(String, &str, StanceReport)> = reports
            .iter()
            .filter_map(|(n, p, r)| r.by_source.get(source).map(|s| (n.clone(), *p, s.clone())))
            .collect();
        let docs = per.first().map_or(0, |r| r.2.documents);
        out.push('\n');
        out.push_str(&comparison_block(
            &per,
            &format!("source {source}, {docs} documents"),
        ));
    }
    out
}

fn comparison_block(reports: &[(String, &str, StanceReport)], title: &str) -> String {
    let mut out = format!("{title}\n\n");
    out.push_str(&format!("{:<18}", "backend"));
    for (name, produced, _) in reports {
        out.push_str(&format!("{:>16}", format!("{name} ({produced})")));
    }
    out.push('\n');
    let mut row = |name: &str, f: &dyn Fn(&StanceReport) -> String| {
        out.push_str(&format!("{name:<18}"));
        for (_, _, r) in reports {
            out.push_str(&format!("{:>16}", f(r)));
        }
        out.push('\n');
    };
    for label in StanceLabel::ALL {
        row(&format!("{label} F1"), &|r| {
            r.per_label
                .get(label.as_str())
                .map_or("-".into(), |s| format!("{:.4}", s.f1))
        });
        row("  tp/fp/fn", &|r| {
            r.per_label
                .get(label.as_str())
                .map_or("-".into(), |s| format!("{}/{}/{}", s.tp, s.fp, s.fn_))
        });
    }
    row("micro precision", &|r| format!("{:.4}", r.micro.precision));
    row("micro recall", &|r| format!("{:.4}", r.micro.recall));
    row("micro F1", &|r| format!("{:.4}", r.micro.f1));
    row("macro F1", &|r| format!("{:.4}", r.macro_f1));
    row("target accuracy", &|r| {
        r.target_accuracy.map_or("-".into(), |t| format!("{t:.4}"))
    });
    for cause in ErrorCause::ALL {
        row(cause.describe(), &|r| {
            r.error_causes
                .get(&cause)
                .map_or("-".into(), |n| n.to_string())
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize) -> GoldSpan {
        GoldSpan {
            start,
            end,
            text: None,
        }
    }

    fn gold(stances: Vec<GoldStance>) -> GoldDoc {
        GoldDoc {
            id: "d".into(),
            text: "x".repeat(100),
            stances,
            source: None,
        }
    }

    fn g(
        a: (usize, usize),
        label: StanceLabel,
        t: Option<(usize, usize)>,
        ambiguous: bool,
    ) -> GoldStance {
        GoldStance {
            actor: span(a.0, a.1),
            label,
            target: t.map(|t| span(t.0, t.1)),
            ambiguous,
        }
    }

    fn p(a: (usize, usize), label: StanceLabel, t: Option<(usize, usize)>) -> Predicted {
        Predicted {
            actor: span(a.0, a.1),
            label,
            target: t.map(|t| span(t.0, t.1)),
        }
    }

    use StanceLabel::*;

    #[test]
    fn counts_follow_the_guidelines() {
        let doc = gold(vec![
            g((0, 5), Threat, Some((10, 15)), false),
            g((20, 25), Accusation, None, false),
            g((30, 35), Proposal, None, true),
        ]);
        let preds = vec![PredictedDoc::statements(vec![
            p((2, 4), Threat, Some((12, 13))), // tp, target ok
            p((0, 5), Threat, None),           // the gold is used up: fp
            p((20, 25), Threat, None),         // wrong label: fp
            p((31, 32), Proposal, None),       // ambiguous: ignored
            p((50, 55), Proposal, None),       // fp
        ])];
        let r = score(&[doc], &preds);
        assert_eq!(r.per_label["threat"], LabelScore::from_counts(1, 2, 0));
        assert_eq!(r.per_label["accusation"], LabelScore::from_counts(0, 0, 1));
        assert_eq!(r.per_label["proposal"], LabelScore::from_counts(0, 1, 0));
        assert_eq!((r.micro.tp, r.micro.fp, r.micro.fn_), (1, 3, 1));
        assert_eq!(r.micro.precision, 0.25);
        assert_eq!(r.micro.recall, 0.5);
        assert_eq!(r.target_accuracy, Some(1.0));
        assert_eq!(r.errors.iter().filter(|e| e.kind == "miss").count(), 1);
        assert_eq!(
            r.macro_f1,
            round4((LabelScore::from_counts(1, 2, 0).f1 + 0.0 + 0.0) / 3.0)
        );
    }

    #[test]
    fn each_error_is_put_down_to_one_cause() {
        // Two sentences: "A accused B. C spoke." (the rest pads the text).
        let mut doc = gold(vec![
            g((0, 1), Accusation, Some((11, 12)), false), // missed: A given a threat
            g((2, 8), Accusation, None, false),           // missed: given to A's neighbour
            g((14, 15), Proposal, None, false),           // missed: never an entity
        ]);
        doc.text = format!("{:<100}", "A accused B. C spoke.");
        let preds = vec![PredictedDoc {
            statements: vec![
                p((0, 1), Threat, None),       // fa: the actor's gold label is another
                p((11, 12), Accusation, None), // fa: the label is another actor's
                p((16, 21), Threat, None),     // fa: the sentence holds other statements
                p((50, 51), Threat, None),     // fa: no statement in that sentence
            ],
            entities: Some(vec![span(0, 1), span(2, 8), span(11, 12), span(50, 51)]),
        }];
        let r = score(&[doc], &preds);
        let n = |c: ErrorCause| r.error_causes[&c];
        assert_eq!(n(ErrorCause::MissActorOtherLabel), 1);
        assert_eq!(n(ErrorCause::MissLabelToAnotherActor), 1);
        assert_eq!(n(ErrorCause::MissNotAnEntity), 1);
        assert_eq!(n(ErrorCause::MissLabelNotInSentence), 0);
        assert_eq!(n(ErrorCause::FalseAlarmActorOtherLabel), 1);
        assert_eq!(n(ErrorCause::FalseAlarmLabelOfAnotherActor), 1);
        assert_eq!(n(ErrorCause::FalseAlarmOtherStatementsInSentence), 1);
        assert_eq!(n(ErrorCause::FalseAlarmNoStatementInSentence), 1);
        assert_eq!(n(ErrorCause::FalseAlarmDuplicate), 0);
        let causes: usize = r.error_causes.values().sum();
        assert_eq!(causes, r.micro.fp + r.micro.fn_);
        let table = format_table(&r, "rules", false);
        assert!(table.contains("miss: no entity"), "{table}");
        assert!(ErrorCause::ALL.iter().all(|c| c.describe().len() <= 18));
    }

    #[test]
    fn targets_count_over_matched_statements_only() {
        let doc = gold(vec![
            g((0, 5), Accusation, Some((10, 15)), false),
            g((20, 25), Accusation, None, false),
        ]);
        let preds = vec![PredictedDoc::statements(vec![
            p((0, 5), Accusation, Some((40, 45))),
            p((20, 25), Accusation, None),
        ])];
        let r = score(&[doc], &preds);
        assert_eq!(r.target_accuracy, Some(0.5));
        assert_eq!(r.micro.f1, 1.0);
    }
}
