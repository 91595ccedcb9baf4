//! CoNLL-format entity data: one token per line with its tag in the last
//! column, blank lines between sentences, `-DOCSTART-` lines between documents.
//!
//! Both tag schemes of the CoNLL files in circulation are read: IOB1 (the
//! original CoNLL-2003: `I-` starts an entity, `B-` only separates two adjacent
//! entities of one type) and IOB2 (every entity starts with `B-`).

use std::path::{Path, PathBuf};

use crate::span::Span;

#[derive(Debug, thiserror::Error)]
pub enum ConllError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Format {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// A sentence: its words and their tags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sentence {
    pub words: Vec<String>,
    pub tags: Vec<String>,
    /// Line number (1-based) of the sentence's first token, for messages.
    pub line: usize,
}

/// A document: the sentences between two `-DOCSTART-` lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Document {
    pub sentences: Vec<Sentence>,
}

fn valid_tag(tag: &str) -> bool {
    tag == "O"
        || tag
            .split_once('-')
            .is_some_and(|(p, t)| matches!(p, "B" | "I" | "E" | "S") && !t.is_empty())
}

/// Parses CoNLL text; `path` names the source in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<Document>, ConllError> {
    let mut docs: Vec<Document> = Vec::new();
    let mut sent = Sentence::default();
    let flush = |docs: &mut Vec<Document>, sent: &mut Sentence| {
        if !sent.words.is_empty() {
            if docs.is_empty() {
                docs.push(Document::default());
            }
            docs.last_mut()
                .expect("a document")
                .sentences
                .push(std::mem::take(sent));
        }
    };
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.starts_with("-DOCSTART-") {
            flush(&mut docs, &mut sent);
            docs.push(Document::default());
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut docs, &mut sent);
            continue;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 2 {
            return Err(ConllError::Format {
                path: path.into(),
                line: i + 1,
                message: format!("expected a word and a tag separated by a space, found {line:?}"),
            });
        }
        let tag = cols[cols.len() - 1];
        if !valid_tag(tag) {
            return Err(ConllError::Format {
                path: path.into(),
                line: i + 1,
                message: format!(
                    "{tag:?} is not an entity tag (O, B-TYPE, I-TYPE, E-TYPE or S-TYPE)"
                ),
            });
        }
        if sent.words.is_empty() {
            sent.line = i + 1;
        }
        sent.words.push(cols[0].to_string());
        sent.tags.push(tag.to_string());
    }
    flush(&mut docs, &mut sent);
    docs.retain(|d| !d.sentences.is_empty());
    Ok(docs)
}

/// Reads a CoNLL file.
pub fn read(path: &Path) -> Result<Vec<Document>, ConllError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConllError::Io {
        path: path.into(),
        source,
    })?;
    parse(&text, path)
}

/// An entity as a word range `[start, end)` of a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    pub kind: String,
}

fn split_tag(tag: &str) -> (&str, &str) {
    tag.split_once('-').unwrap_or((tag, ""))
}

/// Entities of a tag sequence, read the way `conlleval` reads them (so IOB1,
/// IOB2 and BIOES all decode): a chunk starts at `B-`/`S-`, at `I-`/`E-` after
/// `O` or after another type, and ends where the next one starts or at `O`.
pub fn chunks(tags: &[String]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = Vec::new();
    let (mut prev, mut prev_kind) = ("O", "");
    for (i, tag) in tags.iter().enumerate() {
        let (p, kind) = split_tag(tag);
        if starts_chunk(prev, p, prev_kind, kind) {
            out.push(Chunk {
                start: i,
                end: i + 1,
                kind: kind.to_string(),
            });
        } else if p != "O" {
            if let Some(c) = out.last_mut() {
                c.end = i + 1;
            }
        }
        prev = p;
        prev_kind = kind;
    }
    out
}

/// `conlleval`'s endOfChunk: does a chunk end between `prev` and `tag`?
/// (`S-` of BIOES, which `conlleval` predates, is read as a one-word chunk.)
pub fn ends_chunk(prev: &str, tag: &str, prev_kind: &str, kind: &str) -> bool {
    matches!(
        (prev, tag),
        ("B", "B") | ("B", "O") | ("I", "B") | ("I", "O") | ("E", "E") | ("E", "I") | ("E", "O")
    ) || (prev != "O" && prev != "." && prev_kind != kind)
        || prev == "S"
        || (tag == "S" && prev != "O")
}

/// `conlleval`'s startOfChunk: does a chunk start at `tag`?
pub fn starts_chunk(prev: &str, tag: &str, prev_kind: &str, kind: &str) -> bool {
    matches!(
        (prev, tag),
        ("B", "B") | ("I", "B") | ("O", "B") | ("O", "I") | ("E", "E") | ("E", "I") | ("O", "E")
    ) || (tag != "O" && tag != "." && prev_kind != kind)
        || tag == "S"
        || (prev == "S" && tag != "O")
}

/// The same entities in IOB2 (`B-` at every entity start).
pub fn to_iob2(tags: &[String]) -> Vec<String> {
    let mut out = vec!["O".to_string(); tags.len()];
    for c in chunks(tags) {
        out[c.start] = format!("B-{}", c.kind);
        for t in &mut out[c.start + 1..c.end] {
            *t = format!("I-{}", c.kind);
        }
    }
    out
}

/// A document as running text: words joined by spaces, sentences by newlines,
/// with each word's byte span, so text-based taggers can be scored on it.
#[derive(Debug, Clone)]
pub struct DocumentText {
    pub text: String,
    /// Per sentence, the byte span of each word.
    pub words: Vec<Vec<Span>>,
}

impl Document {
    pub fn text(&self) -> DocumentText {
        let mut text = String::new();
        let mut words = Vec::with_capacity(self.sentences.len());
        for (k, s) in self.sentences.iter().enumerate() {
            if k > 0 {
                text.push('\n');
            }
            let mut spans = Vec::with_capacity(s.words.len());
            for (i, w) in s.words.iter().enumerate() {
                if i > 0 {
                    text.push(' ');
                }
                spans.push(Span::new(text.len(), text.len() + w.len()));
                text.push_str(w);
            }
            words.push(spans);
        }
        DocumentText { text, words }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn iob1_and_iob2_decode_to_the_same_entities() {
        // IOB1: I- starts an entity; B- only splits two adjacent entities of one type.
        let iob1 = tags("I-PER I-PER O I-LOC B-LOC I-ORG B-ORG I-ORG O I-MISC");
        let iob2 = tags("B-PER I-PER O B-LOC B-LOC B-ORG B-ORG I-ORG O B-MISC");
        let expect = vec![
            (0, 2, "PER"),
            (3, 4, "LOC"),
            (4, 5, "LOC"),
            (5, 6, "ORG"),
            (6, 8, "ORG"),
            (9, 10, "MISC"),
        ];
        for t in [&iob1, &iob2] {
            let c = chunks(t);
            let got: Vec<(usize, usize, &str)> = c
                .iter()
                .map(|c| (c.start, c.end, c.kind.as_str()))
                .collect();
            assert_eq!(got, expect);
        }
        assert_eq!(to_iob2(&iob1), iob2);
    }

    #[test]
    fn type_change_without_b_starts_a_new_entity() {
        let t = tags("I-PER I-LOC I-LOC");
        let c = chunks(&t);
        assert_eq!(c.len(), 2);
        assert_eq!((c[1].start, c[1].end, c[1].kind.as_str()), (1, 3, "LOC"));
    }

    #[test]
    fn documents_sentences_and_errors_with_line_numbers() {
        let text = "-DOCSTART- -X- O O\n\nUN NNP I-NP I-ORG\naccepts VBZ I-VP O\n\nMaria NNP I-NP I-PER\n\n-DOCSTART- -X- O O\n\nHi X X O\n";
        let docs = parse(text, Path::new("x.txt")).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].sentences.len(), 2);
        assert_eq!(docs[0].sentences[1].line, 6);
        let dt = docs[0].text();
        assert_eq!(dt.text, "UN accepts\nMaria");
        assert_eq!(dt.words[1][0], Span::new(11, 16));
        let err = parse("UN NNP I-NP I-ORG\naccepts\n", Path::new("bad.txt")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad.txt:2: expected a word and a tag separated by a space, found \"accepts\""
        );
        let err = parse("UN NNP I-NP X-ORG\n", Path::new("bad.txt")).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("bad.txt:1: \"X-ORG\" is not an entity tag"));
    }
}
