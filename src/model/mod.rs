//! The transformer backend: Hugging Face token-classification checkpoints run through candle.
//!
//! - [`source`]: where a model comes from (a directory, the Hub cache, the shipped default)
//! - [`checkpoint`]: reading and validating `config.json`, `tokenizer.json` and the weights
//! - [`encoder`]: the BERT-family encoder (inference and training)
//! - [`fused`], [`kernels`]: its element-wise steps and matrix products fused for inference;
//!   [`int8`]: its dense products in 8-bit integers (`--precision int8`)
//! - [`window`], [`aggregate`]: long texts and sub-word tokens to entity spans
//! - [`average`]: the mean of several runs' weights (`stance models average`)
//! - [`tagger`]: the [`crate::EntityTagger`] that puts them together

pub mod aggregate;
pub mod average;
pub mod checkpoint;
pub mod config;
pub mod encoder;
pub mod fused;
pub mod inputs;
pub mod int8;
pub mod kernels;
pub mod ops;
pub mod optim;
pub mod source;
pub mod tagger;
pub mod threads;
pub mod train;
pub mod window;

/// Helpers the unit tests of the tensor code share.
#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::Tensor;

    /// Largest absolute value of `t`.
    pub fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Largest absolute difference of two tensors of one shape.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        max_abs(&(a - b).unwrap())
    }
}

use std::path::PathBuf;

/// Why a model could not be found, loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{dir}: not a model directory ({file} is missing)")]
    MissingFile { dir: PathBuf, file: &'static str },
    #[error("{dir}: no weights (expected model.safetensors or pytorch_model.bin)")]
    NoWeights { dir: PathBuf },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: unsupported architecture {found:?}; stance runs BERT, DistilBERT, RoBERTa and XLM-RoBERTa checkpoints")]
    UnsupportedArchitecture { path: PathBuf, found: String },
    #[error("{path}: no usable labels: {reason} (a token-classification checkpoint lists them as \"id2label\": {{\"0\": \"O\", \"1\": \"B-PER\", ...}})")]
    NoLabels { path: PathBuf, reason: String },
    #[error("{path}: cannot load the tokenizer: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("{path}: the tokenizer has {tokenizer} tokens but the embedding matrix has {embeddings} rows; the tokenizer does not belong to these weights")]
    VocabMismatch {
        path: PathBuf,
        tokenizer: usize,
        embeddings: usize,
    },
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("model {repo}: {message}")]
    Hub { repo: String, message: String },
    #[error("no default model is installed (looked in {looked}); pass --model DIR or ORG/NAME, or use --backend rules")]
    NoDefault { looked: String },
    #[error("cannot tokenize the text: {0}")]
    Encode(String),
    /// A tensor computation failed; candle's error is the source.
    #[error("model computation failed")]
    Candle(#[from] candle_core::Error),
    #[error("evaluating on the dev file")]
    Evaluation(#[source] Box<crate::error::StanceError>),
}

/// Loads an entity model: `spec` is a directory or a Hub id `ORG/NAME[@REV]`;
/// `None` takes the default installed under `models/`.
pub fn load_tagger(
    spec: Option<&str>,
    options: tagger::InferenceOptions,
) -> Result<tagger::ModelTagger, ModelError> {
    let dir = match spec {
        Some(s) => source::resolve(&source::ModelSpec::parse(s))?,
        None => source::default_model()?,
    };
    let ck = checkpoint::Checkpoint::open(&dir)?;
    tagger::ModelTagger::load(&ck, options)
}
