//! Text to model inputs, shared by inference and training so that both see
//! exactly the same tokens, word shapes and windows.

use std::ops::Range;

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use super::encoder::word_shape;
use super::ModelError;
use crate::span::Span;

/// Shape id given to special and padding tokens.
pub const SHAPE_OTHER: u32 = 3;

/// Model tokens of a text, with byte spans into it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    pub spans: Vec<Span>,
    /// True for a continuation piece of a word ("##ing").
    pub subword: Vec<bool>,
    /// Word shape of the word each token belongs to (the casing feature).
    pub shapes: Vec<u32>,
}

impl Tokens {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The tokenizer with the special tokens a sequence needs.
#[derive(Clone)]
pub struct TextEncoder {
    pub tokenizer: Tokenizer,
    pub cls: u32,
    pub sep: u32,
    pub pad: u32,
    /// WordPiece marks continuations with "##"; byte-level BPE by the absence of a space.
    wordpiece: bool,
}

fn special_id(tok: &Tokenizer, names: &[&str]) -> Option<u32> {
    names.iter().find_map(|n| tok.token_to_id(n))
}

/// Word shape of the whitespace/punctuation-delimited word around `span`.
pub fn shape_at(text: &str, span: Span) -> u32 {
    let is_word = |c: char| c.is_alphanumeric() || c == '\'' || c == '-';
    let start = text[..span.start]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_word(c))
        .last()
        .map_or(span.start, |(i, _)| i);
    let end = text[span.end..]
        .char_indices()
        .find(|&(_, c)| !is_word(c))
        .map_or(text.len(), |(i, _)| span.end + i);
    word_shape(&text[start..end])
}

impl TextEncoder {
    pub fn new(tokenizer: Tokenizer, pad: u32) -> Result<TextEncoder, ModelError> {
        let missing = |what: &str| ModelError::Tokenizer {
            path: "tokenizer.json".into(),
            message: format!("no {what} token"),
        };
        let cls =
            special_id(&tokenizer, &["[CLS]", "<s>"]).ok_or_else(|| missing("[CLS] or <s>"))?;
        let sep =
            special_id(&tokenizer, &["[SEP]", "</s>"]).ok_or_else(|| missing("[SEP] or </s>"))?;
        let wordpiece = tokenizer
            .get_vocab(false)
            .keys()
            .any(|k| k.starts_with("##"));
        Ok(TextEncoder {
            tokenizer,
            cls,
            sep,
            pad,
            wordpiece,
        })
    }

    /// Tokens of `text[unit]`, with spans into `text`. Long units are tokenized in
    /// pieces of at most [`ENCODE_PIECE`] bytes cut before white space, which gives
    /// the same tokens (no word piece crosses white space) with bounded memory.
    pub fn encode(&self, text: &str, unit: Span) -> Result<Tokens, ModelError> {
        let mut out = Tokens::default();
        let mut start = unit.start;
        while start < unit.end {
            let end = piece_end(text, start, unit.end);
            self.encode_piece(text, Span::new(start, end), &mut out)?;
            start = end;
        }
        Ok(out)
    }

    fn encode_piece(&self, text: &str, unit: Span, out: &mut Tokens) -> Result<(), ModelError> {
        // Controls become spaces first: the tokenizer would delete them and glue words.
        let piece = crate::edges::controls_as_spaces(unit.text(text));
        let enc = self
            .tokenizer
            .encode(piece.as_ref(), false)
            .map_err(|e| ModelError::Encode(e.to_string()))?;
        for ((&id, &(s, e)), tok) in enc
            .get_ids()
            .iter()
            .zip(enc.get_offsets())
            .zip(enc.get_tokens())
        {
            if e <= s {
                continue;
            }
            let span = Span::new(unit.start + s, unit.start + e);
            let subword = if self.wordpiece {
                tok.starts_with("##")
            } else {
                span.start > 0
                    && !text[..span.start].ends_with(char::is_whitespace)
                    && out.spans.last().is_some_and(|p: &Span| p.end == span.start)
            };
            out.ids.push(id);
            out.spans.push(span);
            out.subword.push(subword);
            out.shapes.push(shape_at(text, span));
        }
        Ok(())
    }

    /// A padded batch `(ids, mask, shapes)`, each `[batch, longest + 2]`, from
    /// token ranges; `[CLS]` and `[SEP]` are added around each.
    pub fn batch(
        &self,
        rows: &[(&Tokens, Range<usize>)],
        device: &Device,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let len = rows.iter().map(|(_, r)| r.len() + 2).max().unwrap_or(2);
        let (mut ids, mut mask, mut shapes) = (Vec::new(), Vec::new(), Vec::new());
        for (tokens, r) in rows {
            let n = r.len();
            ids.push(self.cls);
            ids.extend_from_slice(&tokens.ids[r.clone()]);
            ids.push(self.sep);
            ids.extend(std::iter::repeat_n(self.pad, len - n - 2));
            mask.extend(std::iter::repeat_n(1u32, n + 2));
            mask.extend(std::iter::repeat_n(0u32, len - n - 2));
            shapes.push(SHAPE_OTHER);
            shapes.extend_from_slice(&tokens.shapes[r.clone()]);
            shapes.extend(std::iter::repeat_n(SHAPE_OTHER, len - n - 1));
        }
        let b = rows.len();
        Ok((
            Tensor::from_vec(ids, (b, len), device)?,
            Tensor::from_vec(mask, (b, len), device)?,
            Tensor::from_vec(shapes, (b, len), device)?,
        ))
    }
}

/// Longest piece of text handed to the tokenizer at once.
pub const ENCODE_PIECE: usize = 16 * 1024;

/// End of the piece that starts at `start`: all of `text[start..end]` when it is short,
/// else the last white space before [`ENCODE_PIECE`] bytes (so the next piece begins
/// with it), else the last character boundary there (a run without spaces).
fn piece_end(text: &str, start: usize, end: usize) -> usize {
    if end - start <= ENCODE_PIECE {
        return end;
    }
    let mut limit = start + ENCODE_PIECE;
    while !text.is_char_boundary(limit) {
        limit -= 1;
    }
    text[start..limit]
        .char_indices()
        .rev()
        .find(|&(i, c)| c.is_whitespace() && i > 0)
        .map_or(limit, |(i, _)| start + i)
}
