//! Library errors, by kind of failure: I/O, input data, options, models and
//! the tensor computations under them. Each keeps its source, and each says
//! its cause once: a wrapper names where it happened and leaves the cause to
//! `source()`, so a chain printer (`anyhow`'s `{:#}`) shows every part once.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StanceError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is a directory, expected a text or JSON Lines file")]
    IsDirectory { path: PathBuf },
    #[error("{path}: no .txt or .jsonl files below this directory")]
    EmptyDirectory { path: PathBuf },
    #[error("{path}:{line}: invalid UTF-8 (byte offset {offset}); re-encode the file as UTF-8 or pass --lossy")]
    InvalidUtf8 {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
    /// A record of an input or data file that cannot be used as it is.
    #[error("{path}:{line}: {message}")]
    BadRecord {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Labeled data that does not fit the text it refers to.
    #[error("{0}")]
    Data(String),
    #[error(transparent)]
    Conll(#[from] crate::conll::ConllError),
    #[error("cue lexicon line {line}: {message}")]
    Lexicon { line: usize, message: String },
    /// Options that contradict each other or are out of range.
    #[error("{0}")]
    Config(String),
    /// No model is installed where one was looked for: `auto` falls back to the
    /// rules on this kind of error alone.
    #[error("{0}")]
    ModelUnavailable(String),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A tensor computation failed (shapes, memory): what was being done, and candle's error.
    #[error("{context}")]
    Candle {
        context: &'static str,
        #[source]
        source: candle_core::Error,
    },
}

pub type Result<T, E = StanceError> = std::result::Result<T, E>;

/// Names the work a candle result belongs to, keeping candle's error as the source.
pub trait During<T> {
    fn during(self, context: &'static str) -> Result<T>;
}

impl<T> During<T> for std::result::Result<T, candle_core::Error> {
    fn during(self, context: &'static str) -> Result<T> {
        self.map_err(|source| StanceError::Candle { context, source })
    }
}
