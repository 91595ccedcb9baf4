//! Reading a checkpoint directory and validating it before anything runs, so a
//! wrong file gives a message that says which file and why, not a panic later.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;

use super::config::{Architecture, ModelConfig};
use super::encoder::{dense, Dense, Encoder, Mode};
use super::ModelError;

/// The files of a checkpoint, checked to exist and to agree with each other.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: ModelConfig,
    pub arch: Architecture,
    pub labels: Vec<String>,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

impl Checkpoint {
    /// Reads `config.json` and finds the tokenizer and weights in `dir`.
    pub fn open(dir: &Path) -> Result<Checkpoint, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::MissingFile {
                dir: dir.to_path_buf(),
                file: "the directory itself",
            });
        }
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(ModelError::MissingFile {
                dir: dir.into(),
                file: "config.json",
            });
        }
        let raw = std::fs::read_to_string(&config_path).map_err(|e| ModelError::Config {
            path: config_path.clone(),
            message: e.to_string(),
        })?;
        let config: ModelConfig = serde_json::from_str(&raw).map_err(|e| ModelError::Config {
            path: config_path.clone(),
            message: format!("not a model config: {e}"),
        })?;
        let arch = config
            .architecture()
            .ok_or_else(|| ModelError::UnsupportedArchitecture {
                path: config_path.clone(),
                found: config
                    .model_type
                    .clone()
                    .or_else(|| config.architectures.first().cloned())
                    .unwrap_or_else(|| "(none)".into()),
            })?;
        config.check_sizes().map_err(|message| ModelError::Config {
            path: config_path.clone(),
            message,
        })?;
        let labels = config.labels().map_err(|reason| ModelError::NoLabels {
            path: config_path,
            reason,
        })?;
        let tokenizer = dir.join("tokenizer.json");
        if !tokenizer.is_file() {
            return Err(ModelError::MissingFile {
                dir: dir.into(),
                file: "tokenizer.json",
            });
        }
        let weights = ["model.safetensors", "pytorch_model.bin"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| ModelError::NoWeights { dir: dir.into() })?;
        Ok(Checkpoint {
            dir: dir.into(),
            config,
            arch,
            labels,
            weights,
            tokenizer,
        })
    }
}

/// Tensor names and a [`VarBuilder`] over a weights file (safetensors or PyTorch pickle).
pub fn open_weights(
    path: &Path,
    dtype: DType,
    device: &Device,
) -> Result<(HashSet<String>, VarBuilder<'static>), ModelError> {
    let bad = |e: candle_core::Error| ModelError::Weights {
        path: path.into(),
        message: format!("unreadable weights (truncated or corrupt?): {e}"),
    };
    if path.extension().is_some_and(|e| e == "bin") {
        let pth = candle_core::pickle::PthTensors::new(path, None).map_err(bad)?;
        let names = pth.tensor_infos().keys().cloned().collect();
        return Ok((
            names,
            VarBuilder::from_backend(Box::new(pth), dtype, device.clone()),
        ));
    }
    // SAFETY: the file is memory-mapped read-only; stance does not modify model files while running.
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }.map_err(bad)?;
    let names = st.tensors().into_iter().map(|(n, _)| n).collect();
    Ok((
        names,
        VarBuilder::from_backend(Box::new(st), dtype, device.clone()),
    ))
}

/// An encoder with a token-classification head.
#[derive(Debug, Clone)]
pub struct TokenClassifier {
    pub encoder: Encoder,
    pub head: Dense,
    pub labels: Vec<String>,
    pub casing: bool,
}

/// What one forward pass gives.
pub struct Outputs {
    /// Entity label logits `[batch, seq, labels]`.
    pub logits: Tensor,
    /// Middle and last layer side by side `[batch, seq, 2 * hidden]`, when asked for.
    pub states: Option<Tensor>,
}

/// Where the encoder's weights sit in a file: `bert.`-prefixed or bare.
pub fn encoder_prefix(names: &HashSet<String>, arch: Architecture) -> Option<&'static str> {
    let key = "embeddings.word_embeddings.weight";
    if names.contains(&format!("{}.{key}", arch.prefix())) {
        Some(arch.prefix())
    } else if names.contains(key) {
        Some("")
    } else {
        None
    }
}

impl TokenClassifier {
    /// Builds the model from a [`VarBuilder`] at the checkpoint's root.
    pub fn build(
        config: &ModelConfig,
        arch: Architecture,
        labels: Vec<String>,
        prefix: &str,
        vb: VarBuilder,
    ) -> candle_core::Result<Self> {
        let enc_vb = if prefix.is_empty() {
            vb.clone()
        } else {
            vb.pp(prefix)
        };
        let encoder = Encoder::load(config, arch, enc_vb)?;
        let head = dense(config.hidden_size, labels.len(), vb.pp("classifier"))?;
        Ok(TokenClassifier {
            encoder,
            head,
            labels,
            casing: config.stance_casing,
        })
    }

    /// Loads a checkpoint's weights, checking names and shapes against its config.
    pub fn load(ck: &Checkpoint, device: &Device) -> Result<TokenClassifier, ModelError> {
        let (names, vb) = open_weights(&ck.weights, DType::F32, device)?;
        let prefix = encoder_prefix(&names, ck.arch).ok_or_else(|| ModelError::Weights {
            path: ck.weights.clone(),
            message: format!(
                "no encoder weights: expected {p}.embeddings.word_embeddings.weight or embeddings.word_embeddings.weight",
                p = ck.arch.prefix()
            ),
        })?;
        if !names.contains("classifier.weight") {
            return Err(ModelError::Weights {
                path: ck.weights.clone(),
                message: "no token-classification head (classifier.weight): this is a bare encoder, not an NER model".into(),
            });
        }
        let mut model = TokenClassifier::build(&ck.config, ck.arch, ck.labels.clone(), prefix, vb)
            .map_err(|e| ModelError::Weights {
                path: ck.weights.clone(),
                message: format!("weights do not match config.json: {e}"),
            })?;
        model
            .encoder
            .prepare_inference()
            .map_err(|e| ModelError::Weights {
                path: ck.weights.clone(),
                message: format!("cannot fuse the weights for inference: {e}"),
            })?;
        Ok(model)
    }

    /// Label logits `[batch, seq, labels]`.
    pub fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        shapes: Option<&Tensor>,
        mode: &mut Mode,
    ) -> candle_core::Result<Tensor> {
        let hidden = self.encoder.forward(ids, mask, shapes, mode)?;
        self.head.forward(&hidden)
    }

    /// Entity logits and, with
    /// `states`, the middle and last layers' outputs side by side.
    pub fn forward_outputs(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        shapes: Option<&Tensor>,
        states: bool,
        mode: &mut Mode,
    ) -> candle_core::Result<Outputs> {
        let layers = self.encoder.forward_layers(ids, mask, shapes, mode)?;
        let last = layers.last().expect("layers");
        let logits = self.head.forward(last)?;
        let states = if states {
            let middle = &layers[layers.len() / 2];
            Some(Tensor::cat(&[middle, last], candle_core::D::Minus1)?)
        } else {
            None
        };
        Ok(Outputs { logits, states })
    }
}

/// Loads `tokenizer.json` with padding and truncation off (windows and batches
/// are made by `stance`), checking its vocabulary against the embedding matrix.
pub fn load_tokenizer(path: &Path, embeddings: usize) -> Result<Tokenizer, ModelError> {
    let mut tok = Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
        path: path.into(),
        message: e.to_string(),
    })?;
    tok.with_padding(None);
    tok.with_truncation(None)
        .map_err(|e| ModelError::Tokenizer {
            path: path.into(),
            message: e.to_string(),
        })?;
    let size = tok.get_vocab_size(true);
    if size != embeddings {
        return Err(ModelError::VocabMismatch {
            path: path.into(),
            tokenizer: size,
            embeddings,
        });
    }
    Ok(tok)
}

/// Copies a checkpoint directory with its floating-point weights in half
/// precision (f16), halving its size; other files are copied as they are.
pub fn export_half(src: &Path, dst: &Path) -> Result<(), ModelError> {
    let ck = Checkpoint::open(src)?;
    let io = |path: &Path, e: std::io::Error| ModelError::Weights {
        path: path.into(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dst).map_err(|e| io(dst, e))?;
    for entry in std::fs::read_dir(src).map_err(|e| io(src, e))? {
        let path = entry.map_err(|e| io(src, e))?.path();
        let name = path.file_name().unwrap_or_default();
        if path.is_file() && path != ck.weights {
            std::fs::copy(&path, dst.join(name)).map_err(|e| io(&path, e))?;
        }
    }
    let tensors = candle_core::safetensors::load(&ck.weights, &Device::Cpu)?;
    let half: std::collections::HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, t)| {
            let t = if t.dtype().is_float() {
                t.to_dtype(DType::F16)?
            } else {
                t
            };
            Ok((k, t))
        })
        .collect::<candle_core::Result<_>>()?;
    save_weights(&half, dst).map_err(|e| match e {
        candle_core::Error::Io(e) => io(dst, e),
        e => e.into(),
    })
}

/// Writes `dir/model.safetensors` through a `.partial` file, so that an interrupted
/// write never leaves a truncated checkpoint. The safetensors writer creates its
/// file owner-only; the weights get the permissions of `dir/config.json` (written
/// first, under the user's umask) so that a shared model stays readable.
pub fn save_weights(
    tensors: &std::collections::HashMap<String, Tensor>,
    dir: &Path,
) -> candle_core::Result<()> {
    save_tensors(
        tensors,
        &dir.join("model.safetensors"),
        &dir.join("config.json"),
    )
}

/// Writes `path` through a `.partial` file beside it, giving it the permissions of
/// `like` where that file exists (the safetensors writer alone makes it owner-only).
pub fn save_tensors(
    tensors: &std::collections::HashMap<String, Tensor>,
    path: &Path,
    like: &Path,
) -> candle_core::Result<()> {
    let tmp = path.with_extension("safetensors.partial");
    candle_core::safetensors::save(tensors, &tmp)?;
    if let Ok(meta) = std::fs::metadata(like) {
        std::fs::set_permissions(&tmp, meta.permissions())?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
