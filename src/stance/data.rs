//! The project's stance data: stand-off labels on CoNLL-2003 documents
//! (`data/stance/conll.jsonl`) joined with the CoNLL text, which is read from
//! where it lives and never copied into the project.
//!
//! A stand-off line names a document and every statement in it by token
//! positions: `{"split": "dev", "doc": 44, "statements": [{"sentence": 2,
//! "actor": [0, 1], "label": "proposal", "target": [3, 5] | null}]}`. Joined,
//! it becomes a gold document in the guidelines' format, whose text is the
//! CoNLL words joined by spaces and sentences by newlines.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::conll::{self, Document};
use crate::error::{Result, StanceError};
use crate::eval::stance::{GoldDoc, GoldSpan, GoldStance};
use crate::span::{CharMap, Span};
use crate::stance::StanceLabel;

#[derive(Debug, Clone, Deserialize)]
pub struct StandoffStatement {
    pub sentence: usize,
    /// Token range `[start, end)` of the actor within the sentence.
    pub actor: [usize; 2],
    pub label: StanceLabel,
    #[serde(default)]
    pub target: Option<[usize; 2]>,
    #[serde(default)]
    pub ambiguous: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StandoffDoc {
    pub split: String,
    pub doc: usize,
    #[serde(default)]
    pub annotator: Option<String>,
    #[serde(default)]
    pub statements: Vec<StandoffStatement>,
}

/// Where the CoNLL-2003 files are: `$STANCE_CONLL`, else `conll2003/` in the shared data.
pub fn conll_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STANCE_CONLL").filter(|v| !v.is_empty()) {
        return PathBuf::from(d);
    }
    crate::stance::news::shared_data_dir().join("conll2003")
}

/// True when a JSON line is a stand-off record rather than a gold document with text.
pub fn is_standoff_line(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .map(|v| v.get("text").is_none() && v.get("split").is_some() && v.get("doc").is_some())
        .unwrap_or(false)
}

/// Reads stand-off records; errors name the file and line.
pub fn load_standoff(path: &Path) -> Result<Vec<StandoffDoc>> {
    let file = std::fs::File::open(path).map_err(|source| StanceError::Io {
        path: path.into(),
        source,
    })?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let bad = |message: String| StanceError::BadRecord {
            path: path.into(),
            line: n + 1,
            message,
        };
        let line = line.map_err(|e| bad(format!("cannot read line: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let doc: StandoffDoc = serde_json::from_str(&line).map_err(|e| {
            bad(format!(
                "not a stand-off record ({{\"split\", \"doc\", \"statements\"}}): {e}"
            ))
        })?;
        out.push(doc);
    }
    Ok(out)
}

/// Joins stand-off records with the CoNLL files in `conll`, giving gold
/// documents with ids like `conll-dev-44`. Only records of `splits` are kept
/// (all when empty).
pub fn join(records: &[StandoffDoc], conll: &Path, splits: &[&str]) -> Result<Vec<GoldDoc>> {
    let mut files: HashMap<String, Vec<Document>> = HashMap::new();
    let mut out = Vec::new();
    for r in records
        .iter()
        .filter(|r| splits.is_empty() || splits.contains(&r.split.as_str()))
    {
        if !files.contains_key(&r.split) {
            let path = conll.join(format!("{}.txt", r.split));
            let docs = conll::read(&path)?;
            files.insert(r.split.clone(), docs);
        }
        let docs = &files[&r.split];
        let id = format!("conll-{}-{}", r.split, r.doc);
        let doc = docs.get(r.doc).ok_or_else(|| {
            StanceError::Data(format!(
                "{id}: the {} file has only {} documents",
                r.split,
                docs.len()
            ))
        })?;
        out.push(gold_of(doc, r, &id)?);
    }
    Ok(out)
}

fn gold_of(doc: &Document, r: &StandoffDoc, id: &str) -> Result<GoldDoc> {
    let dt = doc.text();
    let map = CharMap::new(&dt.text);
    let span = |sentence: usize, range: [usize; 2]| -> Result<GoldSpan> {
        let words = dt
            .words
            .get(sentence)
            .ok_or_else(|| StanceError::Data(format!("{id}: no sentence {sentence}")))?;
        if range[0] >= range[1] || range[1] > words.len() {
            return Err(StanceError::Data(format!(
                "{id}: tokens {range:?} outside sentence {sentence} of {} tokens",
                words.len()
            )));
        }
        let bytes = Span::new(words[range[0]].start, words[range[1] - 1].end);
        let chars = map.to_chars(bytes);
        Ok(GoldSpan {
            start: chars.start,
            end: chars.end,
            text: Some(bytes.text(&dt.text).to_string()),
        })
    };
    let mut stances = Vec::new();
    for s in &r.statements {
        stances.push(GoldStance {
            actor: span(s.sentence, s.actor)?,
            label: s.label,
            target: s.target.map(|t| span(s.sentence, t)).transpose()?,
            ambiguous: s.ambiguous,
        });
    }
    Ok(GoldDoc {
        id: id.to_string(),
        text: dt.text,
        stances,
        source: Some("conll".into()),
    })
}

/// Gold documents from any of the project's formats: the guidelines' JSON Lines
/// with text, stand-off records on CoNLL-2003 joined with the CoNLL files (only
/// `splits`, or all), or stand-off records on real news joined with the shared
/// news data. Documents without a source of their own take the file's name.
pub fn load_any(path: &Path, splits: &[&str]) -> Result<Vec<GoldDoc>> {
    let content = std::fs::read_to_string(path).map_err(|source| StanceError::Io {
        path: path.into(),
        source,
    })?;
    let first = content.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if is_standoff_line(first) {
        join(&load_standoff(path)?, &conll_dir(), splits)
    } else if crate::stance::news::is_news_line(first) {
        let mut corpus =
            crate::stance::news::NewsCorpus::new(crate::stance::news::shared_data_dir());
        crate::stance::news::load(path, &mut corpus)
    } else {
        let mut docs = crate::eval::stance::load_gold(path)?;
        let name = source_name(path);
        for d in docs.iter_mut().filter(|d| d.source.is_none()) {
            d.source = Some(name.clone());
        }
        Ok(docs)
    }
}

/// A short name for a gold file without sources of its own: its stem, or its folder's
/// name when the stem only names a split (`data/samples/gold.jsonl` -> `samples`).
fn source_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let generic = matches!(stem.as_str(), "gold" | "dev" | "train" | "tune" | "test");
    match path.parent().and_then(|p| p.file_name()) {
        Some(dir) if generic => dir.to_string_lossy().into_owned(),
        _ => stem,
    }
}
