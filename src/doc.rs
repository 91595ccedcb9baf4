//! The document every stage reads and annotates, as spaCy's `Doc`: its text split
//! into sentences and words, then the entities, actors, statements and (when a
//! stance model reads them) the encoder's token states that the stages add.

use crate::actors::Actors;
use crate::model::inputs::Tokens;
use crate::model::tagger::TokenStates;
use crate::ner::Entity;
use crate::segment::segment;
use crate::span::Span;
use crate::stance::Statement;
use crate::tokenize::{tokenize, Token, TokenKind};

/// Characters in a run without white space beyond which the run is not prose.
const LONG_RUN_CHARS: usize = 40;

/// One sentence with its word tokens.
#[derive(Debug, Clone)]
pub struct Sentence {
    pub span: Span,
    /// Its words; none when the sentence is not prose (noise is never read word by word,
    /// which keeps memory near the size of the text on megabytes of it).
    pub tokens: Vec<Token>,
    /// Whether it reads as language (see [`Doc::is_prose`]).
    pub prose: bool,
}

/// Text plus its sentences and what each stage found; every stage reads this instead of
/// re-segmenting, and writes its own field.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub text: String,
    pub sentences: Vec<Sentence>,
    /// Entity mentions in text order (the entity tagger's output).
    pub entities: Vec<Entity>,
    /// The actors the entities stand for (actor linking's output).
    pub actors: Actors,
    /// Statements in sentence order (the stance classifier's output).
    pub statements: Vec<Statement>,
    /// Set by the pipeline when the stance classifier reads encoder states: the entity
    /// model then keeps them in `states`, so that one encoder pass serves both stages.
    pub keep_states: bool,
    pub states: Option<TokenStates>,
    /// The entity model's word pieces of each of [`Doc::prose_runs`], when the
    /// pipeline's tokenize stage made them; the entity model reads and clears them.
    pub pieces: Option<Vec<Tokens>>,
}

impl Doc {
    pub fn new(text: impl Into<String>) -> Doc {
        let text = text.into();
        let sentences = segment(&text)
            .into_iter()
            .map(|s| {
                let prose = is_prose(s.span.text(&text));
                Sentence {
                    span: s.span,
                    tokens: if prose {
                        tokenize(&text, s.span)
                    } else {
                        Vec::new()
                    },
                    prose,
                }
            })
            .collect();
        Doc {
            text,
            sentences,
            ..Doc::default()
        }
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

    /// Whether sentence `s` reads as language at all: not mostly long runs without
    /// white space (scraped noise, encodings, text glued together). Entities and
    /// statements are only looked for in prose, whichever backend runs.
    pub fn is_prose(&self, s: usize) -> bool {
        self.sentences[s].prose
    }

    /// Stretches of consecutive prose sentences, from the first one's start to the
    /// last one's end: what a model reads, so that its windows still see the
    /// document around each word (one stretch for ordinary news).
    pub fn prose_runs(&self) -> Vec<Span> {
        let mut runs: Vec<Span> = Vec::new();
        let mut open = false;
        for (s, sentence) in self.sentences.iter().enumerate() {
            if !self.is_prose(s) {
                open = false;
            } else if open {
                runs.last_mut().expect("an open run").end = sentence.span.end;
            } else {
                runs.push(sentence.span);
                open = true;
            }
        }
        runs
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

/// Whether `sentence` is mostly words rather than long runs without white space.
fn is_prose(sentence: &str) -> bool {
    let chars = sentence.chars().count().max(1);
    let in_long_runs: usize = sentence
        .split(char::is_whitespace)
        .map(|r| r.chars().count())
        .filter(|&n| n > LONG_RUN_CHARS)
        .sum();
    in_long_runs * 2 <= chars
}

/// True for a quotation-mark token.
pub fn is_quote(t: &Token) -> bool {
    t.kind == TokenKind::Quote
}
