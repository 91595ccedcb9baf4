//! Stand-off stance labels on real news (`data/stance/news/*.jsonl`), joined
//! with the article text where it lives (`../shared/data`), which is never
//! copied into the project.
//!
//! A line names a document and gives its statements in character offsets:
//! `{"source": "allsides", "doc": "fnTxVu71ogT8fxM9", "stances": [{"actor":
//! {"start", "end", "text"}, "label", "target": {...} | null, "ambiguous"?}]}`.
//! The text of a document is built exactly as `scripts/news_data.py` builds it
//! for annotators:
//!
//! - `allsides`: the article's title, a blank line and its body, or the body
//!   alone when it already begins with the title;
//! - `polnear`: the file `data/<split>/text/<stem>.txt` for `doc` = `<split>/<stem>`;
//! - `plv`: the `sentence` of row `doc` (from 0) of `PLV_train.tsv`;
//! - `dirsent`: for `doc` = `<split>/<row>`, the sentence of line `row` (from 0)
//!   of `directed_sentiment/<split>.txt`, without the brackets that mark its
//!   two entities.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Result, StanceError};
use crate::eval::stance::{GoldDoc, GoldSpan, GoldStance};

/// The data sources a news record may name.
pub const SOURCES: [&str; 4] = ["allsides", "polnear", "plv", "dirsent"];

const ALLSIDES: &str = "news/allsides/allsides_intl_politics.jsonl";
const POLNEAR: &str = "news/polnear/data";
const PLV: &str = "plv/PLV_train.tsv";
const DIRSENT: &str = "directed_sentiment";
const DIRSENT_SPLITS: [&str; 3] = ["train", "valid", "test"];

/// One stand-off record.
#[derive(Debug, Clone, Deserialize)]
pub struct NewsRecord {
    pub source: String,
    pub doc: String,
    #[serde(default)]
    pub stances: Vec<GoldStance>,
}

/// True when a JSON line is a news stand-off record (a source and a document, no text).
pub fn is_news_line(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line)
        .map(|v| v.get("text").is_none() && v.get("source").is_some() && v.get("doc").is_some())
        .unwrap_or(false)
}

/// Where the shared data lives: `$STANCE_SHARED/data`, else `../shared/data` beside
/// the current directory, else beside a directory above the executable (a clone's
/// `target/release/stance` finds the `shared/` next to the clone).
pub fn shared_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("STANCE_SHARED").filter(|v| !v.is_empty()) {
        return PathBuf::from(d).join("data");
    }
    let here = PathBuf::from("../shared/data");
    if here.is_dir() {
        return here;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .skip(1)
                .take(5)
                .map(|dir| dir.join("../shared/data"))
                .find(|d| d.is_dir())
        })
        .unwrap_or(here)
}

#[derive(Deserialize)]
struct AllSidesRow {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    title: Option<String>,
    content_original: String,
}

/// Article texts of the shared news corpora, read on first use.
pub struct NewsCorpus {
    root: PathBuf,
    allsides: Option<HashMap<String, String>>,
    plv: Option<Vec<String>>,
    dirsent: HashMap<String, Vec<String>>,
}

impl NewsCorpus {
    pub fn new(root: impl Into<PathBuf>) -> NewsCorpus {
        NewsCorpus {
            root: root.into(),
            allsides: None,
            plv: None,
            dirsent: HashMap::new(),
        }
    }

    /// The text of one document, as annotators saw it.
    pub fn text(&mut self, source: &str, doc: &str) -> std::result::Result<String, String> {
        match source {
            "allsides" => {
                let root = self.root.clone();
                let map = match &mut self.allsides {
                    Some(m) => m,
                    slot => slot.insert(read_allsides(&root.join(ALLSIDES))?),
                };
                map.get(doc)
                    .cloned()
                    .ok_or_else(|| format!("no AllSides article with ID {doc:?}"))
            }
            "polnear" => {
                let (split, stem) = doc
                    .split_once('/')
                    .filter(|(split, stem)| {
                        matches!(*split, "train" | "dev" | "test")
                            && !stem.is_empty()
                            && !stem.contains(['/', '\\'])
                            && !stem.starts_with('.')
                    })
                    .ok_or_else(|| {
                        format!("PolNeAR document {doc:?} is not <split>/<file stem>")
                    })?;
                let path = self
                    .root
                    .join(POLNEAR)
                    .join(split)
                    .join("text")
                    .join(format!("{stem}.txt"));
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
            }
            "plv" => {
                let root = self.root.clone();
                let rows = match &mut self.plv {
                    Some(r) => r,
                    slot => slot.insert(read_plv(&root.join(PLV))?),
                };
                let i: usize = doc
                    .parse()
                    .map_err(|_| format!("PLV document {doc:?} is not a row number"))?;
                rows.get(i)
                    .cloned()
                    .ok_or_else(|| format!("PLV has {} rows, not row {i}", rows.len()))
            }
            "dirsent" => {
                let (split, row) = doc
                    .split_once('/')
                    .filter(|(split, _)| DIRSENT_SPLITS.contains(split))
                    .ok_or_else(|| {
                        format!("directed-sentiment document {doc:?} is not <split>/<row>")
                    })?;
                let i: usize = row
                    .parse()
                    .map_err(|_| format!("directed-sentiment row {row:?} is not a number"))?;
                let rows = match self.dirsent.entry(split.to_string()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(read_dirsent(
                        &self.root.join(DIRSENT).join(format!("{split}.txt")),
                    )?),
                };
                rows.get(i).cloned().ok_or_else(|| {
                    format!(
                        "directed sentiment {split} has {} rows, not row {i}",
                        rows.len()
                    )
                })
            }
            other => Err(format!(
                "unknown source {other:?} (expected one of {})",
                SOURCES.join(", ")
            )),
        }
    }
}

/// The text annotators see for an AllSides article.
pub fn allsides_text(title: &str, body: &str) -> String {
    if title.is_empty() || body.starts_with(title) {
        body.to_string()
    } else {
        format!("{title}\n\n{body}")
    }
}

fn read_allsides(path: &Path) -> std::result::Result<HashMap<String, String>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = HashMap::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let row: AllSidesRow = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        let text = allsides_text(row.title.as_deref().unwrap_or(""), &row.content_original);
        out.insert(row.id, text);
    }
    Ok(out)
}

fn read_plv(path: &Path) -> std::result::Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    let column = headers
        .iter()
        .position(|h| h == "sentence")
        .ok_or_else(|| format!("{}: no `sentence` column", path.display()))?;
    reader
        .records()
        .map(|r| {
            r.map_err(|e| format!("{}: {e}", path.display()))
                .map(|r| r.get(column).unwrap_or("").to_string())
        })
        .collect()
}

/// The sentences of one directed-sentiment file (`sentence \t p \t q \t label`
/// per line), each without the brackets around its two entities.
fn read_dirsent(path: &Path) -> std::result::Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .split_terminator('\n')
        .map(|line| {
            let sentence = line.split('\t').next().unwrap_or("");
            sentence.replace(['[', ']'], "")
        })
        .collect())
}

/// Reads news stand-off records from `path` and joins them with their text.
/// Each gold document's id is `<source>:<doc>` and its source is the record's.
/// Every span must slice back to its `text`; errors name the file and line.
pub fn load(path: &Path, corpus: &mut NewsCorpus) -> Result<Vec<GoldDoc>> {
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
        let r: NewsRecord = serde_json::from_str(&line).map_err(|e| {
            bad(format!(
                "not a news stand-off record ({{\"source\", \"doc\", \"stances\"}}): {e}"
            ))
        })?;
        let text = corpus.text(&r.source, &r.doc).map_err(|e| {
            bad(format!(
                "{e} (stand-off labels need the shared news data; set STANCE_SHARED)"
            ))
        })?;
        let chars: Vec<char> = text.chars().collect();
        let check = |s: &GoldSpan, what: &str| -> Result<()> {
            let slice: Option<String> = (s.start < s.end && s.end <= chars.len())
                .then(|| chars[s.start..s.end].iter().collect());
            match (slice, &s.text) {
                (None, _) => Err(bad(format!(
                    "{what} [{}, {}) lies outside the {}-character text of {} {}",
                    s.start,
                    s.end,
                    chars.len(),
                    r.source,
                    r.doc
                ))),
                (Some(got), Some(want)) if &got != want => Err(bad(format!(
                    "{what} [{}, {}) is {got:?} in the text, not {want:?}: the text of {} {} changed",
                    s.start, s.end, r.source, r.doc
                ))),
                _ => Ok(()),
            }
        };
        for st in &r.stances {
            check(&st.actor, "actor")?;
            if let Some(t) = &st.target {
                check(t, "target")?;
            }
        }
        out.push(GoldDoc {
            id: format!("{}:{}", r.source, r.doc),
            text,
            stances: r.stances,
            source: Some(r.source),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allsides_text_adds_the_title_once() {
        assert_eq!(allsides_text("Talks fail", "Body."), "Talks fail\n\nBody.");
        assert_eq!(
            allsides_text("Talks fail", "Talks fail\n\nBody."),
            "Talks fail\n\nBody."
        );
        assert_eq!(allsides_text("", "Body."), "Body.");
    }

    #[test]
    fn news_lines_are_told_from_gold_and_conll_lines() {
        assert!(is_news_line(r#"{"source":"plv","doc":"3","stances":[]}"#));
        assert!(!is_news_line(r#"{"id":"a","text":"x","stances":[]}"#));
        assert!(!is_news_line(r#"{"split":"dev","doc":3,"statements":[]}"#));
    }

    /// A corpus of the team's own words laid out as the shared data is.
    fn corpus() -> (tempfile::TempDir, NewsCorpus) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("news/allsides")).unwrap();
        std::fs::write(
            root.join(ALLSIDES),
            "{\"ID\":\"a1\",\"title\":\"Oslo offers talks\",\"content_original\":\"Norway offered talks to Chile.\"}\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("news/polnear/data/dev/text")).unwrap();
        std::fs::write(
            root.join("news/polnear/data/dev/text/x.txt"),
            "Ms Ruiz accused Pérez of lying.",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("plv")).unwrap();
        std::fs::write(
            root.join(PLV),
            "\tsentence\tgold_root\n0\t\"Quito warned Lima, \"\"again\"\".\"\tTHREATEN\n1\tPeru asked Bolivia for help.\tREQUEST\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.join(DIRSENT)).unwrap();
        std::fs::write(
            root.join(DIRSENT).join("train.txt"),
            "[Lima] blamed [Quito] for the spill.\tLima\tQuito\t3\nA [Pasto] mayor met [Cal]i envoys.\tPasto\tCal\t0\n",
        )
        .unwrap();
        let c = NewsCorpus::new(root);
        (dir, c)
    }

    #[test]
    fn texts_come_from_each_source() {
        let (_dir, mut c) = corpus();
        for (source, doc, text) in [
            (
                "allsides",
                "a1",
                "Oslo offers talks\n\nNorway offered talks to Chile.",
            ),
            ("polnear", "dev/x", "Ms Ruiz accused Pérez of lying."),
            ("plv", "0", "Quito warned Lima, \"again\"."),
            ("dirsent", "train/0", "Lima blamed Quito for the spill."),
            ("dirsent", "train/1", "A Pasto mayor met Cali envoys."),
        ] {
            assert_eq!(c.text(source, doc).unwrap(), text, "{source} {doc}");
        }
        assert!(c.text("plv", "7").unwrap_err().contains("2 rows"));
        assert!(c.text("polnear", "../etc/x").is_err());
        assert!(c.text("dirsent", "train/2").unwrap_err().contains("2 rows"));
        assert!(c.text("dirsent", "../train/0").is_err());
        assert!(c.text("dirsent", "valid/0").is_err());
        assert!(c
            .text("reddit", "1")
            .unwrap_err()
            .contains("unknown source"));
    }

    #[test]
    fn records_join_with_their_text_and_spans_are_checked() {
        let (dir, mut c) = corpus();
        let path = dir.path().join("labels.jsonl");
        // "Pérez" starts at character 16 (byte 16; the é comes after).
        std::fs::write(
            &path,
            "{\"source\":\"polnear\",\"doc\":\"dev/x\",\"stances\":[{\"actor\":{\"start\":3,\"end\":7,\"text\":\"Ruiz\"},\"label\":\"accusation\",\"target\":{\"start\":16,\"end\":21,\"text\":\"Pérez\"}}]}\n",
        )
        .unwrap();
        let docs = load(&path, &mut c).unwrap();
        assert_eq!(docs[0].id, "polnear:dev/x");
        assert_eq!(docs[0].source.as_deref(), Some("polnear"));
        std::fs::write(
            &path,
            "\n{\"source\":\"polnear\",\"doc\":\"dev/x\",\"stances\":[{\"actor\":{\"start\":2,\"end\":7,\"text\":\"Ruiz\"},\"label\":\"accusation\",\"target\":null}]}\n",
        )
        .unwrap();
        let e = load(&path, &mut c).unwrap_err().to_string();
        assert!(
            e.contains("labels.jsonl:2:") && e.contains("text of polnear dev/x changed"),
            "{e}"
        );
    }
}
