//! What may begin or end a span that users see (entity, mention, cue, target).
//!
//! Scraped text carries emoji, zero-width joiners, byte-order marks, NULs and
//! styled "mathematical" letters beside real names. A model happily tags an
//! emoji next to a name as part of it, and a span like "Angela Merkel 👩‍👧" or
//! "𝕿𝖊𝖘𝖙 Joe Biden" no longer matches anything downstream. Every span is
//! therefore trimmed to start and end on an ordinary character before output;
//! the same rules hold for every backend.

use std::borrow::Cow;

use unicode_general_category::{get_general_category, GeneralCategory as Gc};

use crate::span::Span;

/// Styled letters (𝐀, 𝕿, 𝔸 ...): Unicode letters by category, decoration in practice.
const MATH_ALPHANUMERICS: std::ops::RangeInclusive<char> = '\u{1D400}'..='\u{1D7FF}';

/// True for characters no span may begin or end with: white space, control and
/// format characters (NUL, ZWJ, BOM, bidi marks), symbols (emoji, math signs,
/// currency), styled math letters, and the variation selectors and marks that
/// only decorate such characters.
pub fn is_edge_noise(c: char) -> bool {
    if c.is_whitespace() || MATH_ALPHANUMERICS.contains(&c) {
        return true;
    }
    matches!(
        get_general_category(c),
        Gc::Control
            | Gc::Format
            | Gc::Surrogate
            | Gc::PrivateUse
            | Gc::Unassigned
            | Gc::MathSymbol
            | Gc::CurrencySymbol
            | Gc::ModifierSymbol
            | Gc::OtherSymbol
            | Gc::EnclosingMark
            | Gc::NonspacingMark
            | Gc::SpacingMark
    )
}

/// True for control characters that are not white space (NUL, ESC, DEL, C1 controls).
/// They split words: "Putin\0warned" is two words, not one.
pub fn is_splitting_control(c: char) -> bool {
    c.is_control() && !c.is_whitespace()
}

/// `span` without noise at either end, or `None` when nothing is left.
///
/// Marks (combining accents) are trimmed only at the edges: inside a word
/// ("Ayrault", "Jos\u{0301}e") they stay with their letter.
pub fn tidy(text: &str, span: Span) -> Option<Span> {
    let inner = span.text(text);
    let lead = inner
        .char_indices()
        .find(|&(_, c)| !is_edge_noise(c))
        .map(|(i, _)| i)?;
    // Trailing: drop noise, but a mark right after a kept letter belongs to it.
    let mut end = inner.len();
    let mut chars = inner[lead..].char_indices().rev().peekable();
    while let Some((i, c)) = chars.next() {
        let is_mark = matches!(
            get_general_category(c),
            Gc::NonspacingMark | Gc::SpacingMark | Gc::EnclosingMark
        );
        let after_kept_letter = chars.peek().is_some_and(|&(_, p)| !is_edge_noise(p));
        if !is_edge_noise(c) || (is_mark && after_kept_letter) {
            break;
        }
        end = lead + i;
    }
    // A control character inside keeps only the piece before it (the one that was tagged first).
    let kept = &inner[lead..end];
    let end = match kept.find(is_splitting_control) {
        Some(cut) => tidy(text, Span::new(span.start + lead, span.start + lead + cut))
            .map(|s| s.end)
            .unwrap_or(span.start + end),
        None => span.start + end,
    };
    let start = span.start + lead;
    (start < end).then(|| Span::new(start, end))
}

/// `text` with every splitting control character replaced by spaces of the same
/// byte length, so that offsets stay valid: what a tokenizer should read (the
/// BERT normaliser deletes controls and would glue "Putin\0warned" into one word).
pub fn controls_as_spaces(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_splitting_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_splitting_control(c) {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tidied(text: &str) -> Option<&str> {
        tidy(text, Span::new(0, text.len())).map(|s| s.text(text))
    }

    #[test]
    fn emoji_controls_and_styled_letters_leave_the_edges() {
        assert_eq!(tidied("👍 Korean"), Some("Korean"));
        assert_eq!(tidied("Angela Merkel 👩‍👩‍👧‍👦"), Some("Angela Merkel"));
        assert_eq!(tidied("Vladimir Putin\u{0}warned"), Some("Vladimir Putin"));
        assert_eq!(tidied("𝕿𝖊𝖘𝖙 Joe Biden"), Some("Joe Biden"));
        assert_eq!(tidied("\u{FEFF}Paris\u{200D}"), Some("Paris"));
        assert_eq!(tidied("👍\u{FE0F}"), None);
        assert_eq!(tidied(" \t"), None);
    }

    #[test]
    fn marks_stay_with_their_letter_and_punctuation_is_kept() {
        assert_eq!(tidied("Jose\u{0301}"), Some("Jose\u{0301}"));
        assert_eq!(tidied("\u{0301}Jose"), Some("Jose"));
        assert_eq!(tidied("U.S."), Some("U.S."));
        assert_eq!(tidied("محمد عباس"), Some("محمد عباس"));
    }

    #[test]
    fn control_spaces_keep_every_offset() {
        let text = "Putin\u{0}warned\u{9B}x\r\n";
        let clean = controls_as_spaces(text);
        assert_eq!(clean.len(), text.len());
        assert_eq!(clean, "Putin warned  x\r\n");
        assert!(matches!(controls_as_spaces("plain"), Cow::Borrowed(_)));
    }
}
