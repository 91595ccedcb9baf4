//! CoNLL output: one token a line with its IOB2 entity tag, a blank line
//! between sentences, `-DOCSTART- O` before each document, as the entity
//! taggers of other toolkits read and write (and as [`crate::conll`] reads back).
//!
//! Tokens are the library's own words ([`crate::tokenize`]); a token is tagged
//! when it overlaps an entity, `B-` for the entity's first token and `I-` after.

use std::io::{self, Write};

use crate::document::Document;
use crate::span::{CharMap, CharSpan, Span};
use crate::tokenize::tokenize;

/// The `-DOCSTART-` line: two columns, so every line is a word and its tag.
pub const DOCSTART: &str = "-DOCSTART- O";

/// Writes one document in CoNLL format.
pub fn write_conll<W: Write>(out: &mut W, doc: &Document, text: &str) -> io::Result<()> {
    let map = CharMap::new(text);
    let bytes = |start, end| map.to_bytes(CharSpan { start, end });
    let sentences: Vec<Span> = doc
        .sentences
        .iter()
        .map(|s| bytes(s.start, s.end))
        .collect();
    let entities: Vec<(Span, &str)> = doc
        .entities
        .iter()
        .map(|e| (bytes(e.start, e.end), e.label.as_str()))
        .collect();
    write_tagged(out, text, &sentences, &entities)
}

/// Writes `text` as one CoNLL document: the tokens of each sentence (byte
/// spans, in order), each tagged by the entity (byte span, type; sorted, not
/// overlapping) it overlaps.
pub fn write_tagged<W: Write>(
    out: &mut W,
    text: &str,
    sentences: &[Span],
    entities: &[(Span, &str)],
) -> io::Result<()> {
    writeln!(out, "{DOCSTART}\n")?;
    let mut next = 0;
    for &span in sentences {
        let tokens = tokenize(text, span);
        if tokens.is_empty() {
            continue;
        }
        let mut open: Option<usize> = None;
        for t in tokens {
            while next < entities.len() && entities[next].0.end <= t.span.start {
                next += 1;
            }
            let tag = match entities.get(next) {
                Some((e, label)) if e.overlaps(&t.span) => {
                    let prefix = if open == Some(next) { "I" } else { "B" };
                    open = Some(next);
                    format!("{prefix}-{label}")
                }
                _ => {
                    open = None;
                    "O".to_string()
                }
            };
            writeln!(out, "{} {tag}", token_text(t.span.text(text)))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A token as one field: the tokenizer never yields whitespace inside a word,
/// but a control character would break a line-based reader, so it is escaped.
fn token_text(word: &str) -> String {
    super::text::escape_controls(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pipeline;

    #[test]
    fn tokens_carry_iob2_tags_and_read_back() {
        let text = "John Kerry accused Russia of fraud.\nNew York said nothing.";
        let doc = Pipeline::rules().analyze("t", text).unwrap();
        let mut out = Vec::new();
        write_conll(&mut out, &doc, text).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("-DOCSTART- O\n\nJohn B-PER\nKerry I-PER\naccused O\nRussia B-LOC\n"),
            "{out}"
        );
        assert!(out.contains(". O\n\nNew B-LOC\nYork I-LOC\n"), "{out}");
        let back = crate::conll::parse(&out, std::path::Path::new("x")).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].sentences.len(), 2);
        let chunks = crate::conll::chunks(&back[0].sentences[0].tags);
        assert_eq!(
            chunks.len(),
            doc.entities.iter().filter(|e| e.start < 35).count()
        );
    }
}
