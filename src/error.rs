//! Library errors. The binary adds context with `anyhow`; the library names
//! what went wrong and where (file and line) so messages need no guessing.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StanceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: is a directory, expected a text or JSON Lines file")]
    IsDirectory { path: PathBuf },
    #[error("{path}:{line}: invalid UTF-8 (byte offset {offset}); re-encode the file as UTF-8 or pass --lossy")]
    InvalidUtf8 {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
    #[error("{path}:{line}: {message}")]
    BadRecord {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cue lexicon line {line}: {message}")]
    Lexicon { line: usize, message: String },
    #[error("model backend unavailable: {0}")]
    ModelUnavailable(String),
    /// Options that contradict each other or are out of range.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

pub type Result<T, E = StanceError> = std::result::Result<T, E>;
