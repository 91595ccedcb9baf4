//! Byte spans inside the library, character offsets at the edge.
//!
//! Rust strings index by byte, but users' pipelines (spaCy, Hugging Face) count
//! Unicode scalar values. Everything internal is a byte [`Span`]; the output layer
//! converts through [`CharMap`] once per document.

use serde::{Deserialize, Serialize};

/// A half-open byte range `[start, end)` into a document's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end);
        Span { start, end }
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, other: &Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn text<'a>(&self, text: &'a str) -> &'a str {
        &text[self.start..self.end]
    }
}

/// A span in character offsets, as written to JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharSpan {
    pub start: usize,
    pub end: usize,
}

/// Converts byte offsets of one text to character offsets and back.
pub struct CharMap {
    /// Byte offset of every char boundary, plus `text.len()` at the end; `None` for
    /// ASCII text, where bytes are characters (no table of 8 bytes a character).
    boundaries: Option<Vec<usize>>,
    len: usize,
}

impl CharMap {
    pub fn new(text: &str) -> Self {
        if text.is_ascii() {
            return CharMap {
                boundaries: None,
                len: text.len(),
            };
        }
        let mut boundaries: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
        boundaries.push(text.len());
        CharMap {
            len: boundaries.len() - 1,
            boundaries: Some(boundaries),
        }
    }

    /// Character offset of a byte offset that lies on a char boundary.
    pub fn char_offset(&self, byte: usize) -> usize {
        let Some(boundaries) = &self.boundaries else {
            return byte.min(self.len);
        };
        match boundaries.binary_search(&byte) {
            Ok(i) => i,
            // Not on a boundary: round down to the char that contains it.
            Err(i) => i.saturating_sub(1),
        }
    }

    /// Byte offset of a character offset, clamped to the end of the text.
    pub fn byte_offset(&self, chars: usize) -> usize {
        match &self.boundaries {
            None => chars.min(self.len),
            Some(b) => b[chars.min(self.len)],
        }
    }

    pub fn to_chars(&self, span: Span) -> CharSpan {
        CharSpan {
            start: self.char_offset(span.start),
            end: self.char_offset(span.end),
        }
    }

    pub fn to_bytes(&self, span: CharSpan) -> Span {
        Span::new(self.byte_offset(span.start), self.byte_offset(span.end))
    }

    /// Number of characters in the text.
    pub fn char_len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_offsets_count_scalar_values_not_bytes() {
        let text = "Élysée “warned” Moscow";
        let map = CharMap::new(text);
        let start = text.find("Moscow").unwrap();
        let span = map.to_chars(Span::new(start, start + "Moscow".len()));
        assert_eq!(span.start, 16);
        let chars: String = text
            .chars()
            .skip(span.start)
            .take(span.end - span.start)
            .collect();
        assert_eq!(chars, "Moscow");
        assert_eq!(map.to_bytes(span), Span::new(start, start + 6));
        assert_eq!(map.char_len(), text.chars().count());
    }

    #[test]
    fn ascii_text_maps_without_a_table_and_clamps_alike() {
        let map = CharMap::new("Kerry warned");
        assert_eq!(
            map.to_chars(Span::new(6, 12)),
            CharSpan { start: 6, end: 12 }
        );
        assert_eq!(map.byte_offset(99), 12);
        assert_eq!(map.char_len(), 12);
        let map = CharMap::new("Kerry “warned”");
        assert_eq!(map.byte_offset(99), "Kerry “warned”".len());
        assert_eq!(map.char_len(), 14);
    }

    #[test]
    fn overlap_is_half_open() {
        assert!(Span::new(0, 5).overlaps(&Span::new(4, 6)));
        assert!(!Span::new(0, 5).overlaps(&Span::new(5, 6)));
    }
}
