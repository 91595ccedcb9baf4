//! Sentence segmentation for news text.
//!
//! News mixes headlines, bylines and captions (lines without a final stop)
//! with prose full of abbreviations ("U.S.", "Gen.", "J. Smith") and quotes
//! that close after the full stop. Blank lines always end a sentence; a single
//! line break ends one after a short line (a headline or caption); inside prose
//! a stop ends a sentence unless it belongs to an abbreviation or initial.

use crate::span::Span;
use crate::tokenize::is_abbreviation;

/// A sentence: its byte span, trimmed of surrounding white space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sentence {
    pub span: Span,
}

/// A line shorter than this that lacks a final stop is taken as a headline or caption.
const SHORT_LINE_CHARS: usize = 60;

/// Characters after a dateline's place that are read to recognise it.
const DATELINE_REACH: usize = 80;

/// Longest sentence in bytes. A longer run (a table, a list without stops, text
/// without spaces) is cut into pieces, at white space where there is some, so that
/// every stage's work per sentence stays bounded whatever the input.
pub const MAX_SENTENCE_BYTES: usize = 2000;

/// Longest word that abbreviation checks look back or ahead over.
const MAX_WORD_SCAN: usize = 64;

/// Words that, capitalised after "U.S." or "Inc.", show that a new sentence began.
const SENTENCE_STARTERS: &[&str] = &[
    "The",
    "A",
    "An",
    "It",
    "He",
    "She",
    "They",
    "We",
    "I",
    "But",
    "And",
    "In",
    "On",
    "At",
    "This",
    "That",
    "These",
    "Those",
    "His",
    "Her",
    "Their",
    "Its",
    "Our",
    "There",
    "When",
    "While",
    "After",
    "Before",
    "However",
    "Meanwhile",
    "If",
    "As",
    "So",
    "Yet",
    "Officials",
    "Earlier",
    "Later",
];

fn is_closing(c: char) -> bool {
    matches!(c, '"' | '”' | '’' | '\'' | ')' | ']' | '»' | '›')
}

fn is_opening(c: char) -> bool {
    matches!(c, '"' | '“' | '‘' | '\'' | '(' | '[' | '«' | '‹')
}

/// Whether `span` is a dateline's place ("WASHINGTON, June 3 (Reuters) -"): the first
/// word of its line, in capitals, followed by a comma, a parenthesis or a dash. A dateline
/// says where the story was filed; the place never acts in it.
pub fn is_dateline(text: &str, span: Span) -> bool {
    let name = span.text(text);
    // Only white space between the line's start and the name (scanning back over it
    // alone, so that a long line costs nothing).
    let at_line_start = text[..span.start]
        .chars()
        .rev()
        .find(|c| !c.is_whitespace() || *c == '\n')
        .is_none_or(|c| c == '\n');
    if !at_line_start {
        return false;
    }
    let letters = name.chars().filter(|c| c.is_alphabetic()).count();
    if letters < 2 || name.chars().any(|c| c.is_lowercase()) {
        return false;
    }
    // What follows on the line, as far as a dateline could reach.
    let rest: String = text[span.end..]
        .chars()
        .take_while(|&c| c != '\n')
        .take(DATELINE_REACH)
        .collect();
    let rest = rest.trim_start_matches([' ', '\t']);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // "LONDON -", "LONDON 1996-08-30" (CoNLL), "LONDON, June 3", "PARIS (AP)", "GENEVA, Switzerland (AP)".
    rest.is_empty()
        || rest.starts_with(['-', '–', '—'])
        || rest.starts_with(|c: char| c.is_ascii_digit())
        || rest.strip_prefix(',').is_some_and(|r| {
            let r = r.trim_start();
            MONTHS.iter().any(|m| r.starts_with(m)) || r.chars().take(40).any(|c| c == '(')
        })
        || rest.starts_with('(') && rest.chars().take(20).any(|c| c == ')')
}

/// Splits `text` into sentences.
pub fn segment(text: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    for block in blocks(text) {
        for line in lines_of_block(text, block) {
            split_prose(text, line, &mut out);
        }
    }
    out
}

/// Paragraph blocks separated by blank lines.
fn blocks(text: &str) -> Vec<Span> {
    let mut blocks = Vec::new();
    let mut start = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        match (blank, start) {
            (true, Some(s)) => {
                blocks.push(Span::new(s, offset));
                start = None;
            }
            (false, None) => start = Some(offset),
            _ => {}
        }
        offset += line.len();
    }
    if let Some(s) = start {
        blocks.push(Span::new(s, text.len()));
    }
    blocks
}

/// Splits a block at line breaks that follow a short line without a final stop.
fn lines_of_block(text: &str, block: Span) -> Vec<Span> {
    let mut pieces = Vec::new();
    let mut piece_start = block.start;
    let mut offset = block.start;
    let body = block.text(text);
    let mut lines = body.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        offset += line.len();
        if lines.peek().is_none() {
            break;
        }
        let trimmed = line.trim();
        let ends_with_stop = trimmed
            .trim_end_matches(is_closing)
            .ends_with(['.', '!', '?', ':', ';', ',']);
        if trimmed.chars().count() < SHORT_LINE_CHARS && !ends_with_stop {
            pieces.push(Span::new(piece_start, offset));
            piece_start = offset;
        }
    }
    pieces.push(Span::new(piece_start, block.end));
    pieces
}

/// The word that ends at byte `end` (exclusive), scanning back over letters and dots
/// (at most [`MAX_WORD_SCAN`] characters: no abbreviation is longer).
fn word_before(text: &str, end: usize) -> &str {
    let head = &text[..end];
    let mut start = end;
    for (n, (i, c)) in head.char_indices().rev().enumerate() {
        if n == MAX_WORD_SCAN || !(c.is_alphanumeric() || c == '.' || c == '-') {
            break;
        }
        start = i;
    }
    &text[start..end]
}

fn next_word(text: &str, from: usize) -> &str {
    let rest = &text[from..];
    let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || is_opening(c));
    let end = rest
        .char_indices()
        .take(MAX_WORD_SCAN)
        .find(|&(_, c)| !c.is_alphanumeric())
        .map_or_else(
            || {
                rest.char_indices()
                    .nth(MAX_WORD_SCAN)
                    .map_or(rest.len(), |(i, _)| i)
            },
            |(i, _)| i,
        );
    &rest[..end]
}

/// Whether a stop at byte `dot` (the '.') is part of an abbreviation rather than a sentence end.
fn dot_is_abbreviation(text: &str, dot: usize, next: &str) -> bool {
    let word = word_before(text, dot + 1);
    let stem = word.trim_end_matches('.');
    if stem.is_empty() {
        return false;
    }
    let letters = stem.chars().filter(|c| c.is_alphabetic()).count();
    // A single capital: an initial ("J. Smith"), unless the next word clearly starts a sentence.
    if letters == 1 && stem.chars().all(|c| c.is_uppercase() || c == '.') {
        return !SENTENCE_STARTERS.contains(&next);
    }
    // Initialisms ("U.S.") and corporate suffixes can end a sentence too.
    let initialism = stem.contains('.') && stem.split('.').all(|p| p.chars().count() <= 1);
    let corporate = ["Inc", "Corp", "Co", "Ltd", "Bros", "Jr", "Sr", "etc"].contains(&stem);
    if initialism || corporate {
        return !SENTENCE_STARTERS.contains(&next);
    }
    is_abbreviation(stem)
}

fn split_prose(text: &str, piece: Span, out: &mut Vec<Sentence>) {
    let body = piece.text(text);
    let mut sentence_start = piece.start;
    let mut iter = body.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if !matches!(c, '.' | '!' | '?' | '…') {
            continue;
        }
        // Extend over repeated stops and closing quotes/brackets.
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = iter.peek() {
            if matches!(d, '.' | '!' | '?' | '…') || is_closing(d) {
                end = j + d.len_utf8();
                iter.next();
            } else {
                break;
            }
        }
        let abs_end = piece.start + end;
        let after = &text[abs_end..piece.end];
        // A boundary needs white space (or the end) after it ...
        if !(after.is_empty() || after.starts_with(char::is_whitespace)) {
            continue;
        }
        let next = next_word(text, abs_end);
        let next_starts = after.trim_start().chars().next();
        // ... and a next word that can start a sentence.
        let starts_sentence = match next_starts {
            None => true,
            Some(ch) => ch.is_uppercase() || ch.is_ascii_digit() || is_opening(ch),
        };
        if !starts_sentence {
            continue;
        }
        if c == '.' && end == i + 1 && dot_is_abbreviation(text, piece.start + i, next) {
            continue;
        }
        push_trimmed(text, Span::new(sentence_start, abs_end), out);
        sentence_start = abs_end;
    }
    push_trimmed(text, Span::new(sentence_start, piece.end), out);
}

fn push_trimmed(text: &str, span: Span, out: &mut Vec<Sentence>) {
    let s = span.text(text);
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead + trail >= s.len() {
        return;
    }
    let mut rest = Span::new(span.start + lead, span.end - trail);
    // Cut an overlong run into bounded pieces: at the last white space before the
    // limit, else at the last character boundary before it.
    while rest.len() > MAX_SENTENCE_BYTES {
        let window = &text[rest.start..rest.start + MAX_SENTENCE_BYTES.min(rest.len())];
        let mut cut = window.len();
        while !text.is_char_boundary(rest.start + cut) {
            cut -= 1;
        }
        let at_space = window[..cut]
            .char_indices()
            .rev()
            .find(|&(i, c)| c.is_whitespace() && i > 0)
            .map(|(i, _)| i);
        let cut = at_space.unwrap_or(cut);
        let piece = Span::new(rest.start, rest.start + cut);
        let trimmed = piece.text(text).trim_end();
        out.push(Sentence {
            span: Span::new(piece.start, piece.start + trimmed.len()),
        });
        let next = &text[piece.end..rest.end];
        rest = Span::new(rest.end - next.trim_start().len(), rest.end);
    }
    if !rest.is_empty() {
        out.push(Sentence { span: rest });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        segment(text).iter().map(|s| s.span.text(text)).collect()
    }

    #[test]
    fn abbreviations_and_initials_do_not_split() {
        let text = "Gen. J. Smith met the U.S. envoy on Jan. 5 in Washington. He left.";
        assert_eq!(
            sentences(text),
            vec![
                "Gen. J. Smith met the U.S. envoy on Jan. 5 in Washington.",
                "He left."
            ]
        );
    }

    #[test]
    fn plural_titles_do_not_split() {
        let text = "Sens. John McCain and Lindsey Graham met Messrs. Obama and Biden. They left.";
        assert_eq!(
            sentences(text),
            vec![
                "Sens. John McCain and Lindsey Graham met Messrs. Obama and Biden.",
                "They left."
            ]
        );
    }

    #[test]
    fn initialism_can_end_a_sentence() {
        let text = "Talks stalled with the U.S. The envoy left.";
        assert_eq!(
            sentences(text),
            vec!["Talks stalled with the U.S.", "The envoy left."]
        );
    }

    #[test]
    fn quotes_closing_after_the_stop_stay_with_their_sentence() {
        let text = "“We will respond,” he said. “Not now.” She left.";
        assert_eq!(
            sentences(text),
            vec!["“We will respond,” he said.", "“Not now.”", "She left."]
        );
    }

    #[test]
    fn headlines_and_captions_without_stops_are_sentences() {
        let text =
            "Trade Talks Collapse\n\nJohn Doe\nJohn Doe / AP\n\nThe talks failed. Officials left";
        assert_eq!(
            sentences(text),
            vec![
                "Trade Talks Collapse",
                "John Doe",
                "John Doe / AP",
                "The talks failed.",
                "Officials left"
            ]
        );
    }

    #[test]
    fn wrapped_prose_lines_are_joined() {
        let text = "The minister said on Tuesday that the government would present\na plan to parliament. It passed.";
        assert_eq!(sentences(text).len(), 2);
    }

    #[test]
    fn question_inside_quote_followed_by_lowercase_does_not_split() {
        let text = "\"Why now?\" he asked. Then he left.";
        assert_eq!(
            sentences(text),
            vec!["\"Why now?\" he asked.", "Then he left."]
        );
    }

    #[test]
    fn empty_text_has_no_sentences() {
        assert!(segment("").is_empty());
        assert!(segment(" \n\n ").is_empty());
    }

    #[test]
    fn datelines_are_recognised() {
        let t = "Headline here\n\nWASHINGTON, June 3 (Reuters) - The U.S. acted.\nPARIS (AP) — France spoke.";
        let at = |w: &str| {
            let i = t.find(w).unwrap();
            Span::new(i, i + w.len())
        };
        assert!(is_dateline(t, at("WASHINGTON")));
        assert!(is_dateline(t, at("PARIS")));
        assert!(!is_dateline(t, at("U.S.")));
        assert!(!is_dateline(t, at("France")));
        // A capitalised name that opens a line is not a dateline without the punctuation.
        let t2 = "NATO warned Moscow.\nNATO, the alliance, warned Moscow.";
        assert!(!is_dateline(t2, Span::new(0, 4)));
        assert!(!is_dateline(t2, Span::new(20, 24)));
        let conll = "LONDON 1996-08-30\nThe Bank of England acted.";
        assert!(is_dateline(conll, Span::new(0, 6)));
        // Title case at the start of a line is a subject, not a dateline.
        let t3 = "Washington, in turn, accused Moscow.";
        assert!(!is_dateline(t3, Span::new(0, 10)));
    }
}
