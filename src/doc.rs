//! A document prepared for the backends: its text split into sentences and words.

use crate::segment::segment;
use crate::span::Span;
use crate::tokenize::{tokenize, Token, TokenKind};

/// One sentence with its word tokens.
#[derive(Debug, Clone)]
pub struct Sentence {
    pub span: Span,
    pub tokens: Vec<Token>,
}

/// Text plus its sentences; every stage reads this instead of re-segmenting.
#[derive(Debug, Clone)]
pub struct Doc {
    pub text: String,
    pub sentences: Vec<Sentence>,
}

impl Doc {
    pub fn new(text: impl Into<String>) -> Doc {
        let text = text.into();
        let sentences = segment(&text)
            .into_iter()
            .map(|s| Sentence {
                span: s.span,
                tokens: tokenize(&text, s.span),
            })
            .collect();
        Doc { text, sentences }
    }

    /// The text of token `i` of sentence `s`.
    pub fn word(&self, s: usize, i: usize) -> &str {
        self.sentences[s].tokens[i].span.text(&self.text)
    }

    /// All token texts of a sentence.
    pub fn words(&self, s: usize) -> Vec<&str> {
        self.sentences[s]
            .tokens
            .iter()
            .map(|t| t.span.text(&self.text))
            .collect()
    }

    /// Index of the sentence that contains byte offset `pos`.
    pub fn sentence_of(&self, pos: usize) -> Option<usize> {
        // Sentences are in text order and do not overlap: binary search.
        let i = self.sentences.partition_point(|s| s.span.end <= pos);
        self.sentences
            .get(i)
            .filter(|s| s.span.start <= pos && pos < s.span.end)
            .map(|_| i)
    }
}

/// True for a quotation-mark token.
pub fn is_quote(t: &Token) -> bool {
    t.kind == TokenKind::Quote
}
