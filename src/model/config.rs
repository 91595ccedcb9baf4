//! `config.json` of a Hugging Face token-classification checkpoint.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The encoder families `stance` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    Bert,
    DistilBert,
    /// RoBERTa and XLM-RoBERTa: BERT layout, positions offset past the padding id.
    Roberta,
}

impl Architecture {
    /// The prefix of the encoder's weights in a `*ForTokenClassification` checkpoint.
    pub fn prefix(&self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::DistilBert => "distilbert",
            Architecture::Roberta => "roberta",
        }
    }
}

/// The fields of `config.json` that matter, for every supported family
/// (DistilBERT names them differently; both spellings are read).
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    #[serde(default)]
    pub model_type: Option<String>,
    #[serde(default)]
    pub architectures: Vec<String>,
    pub vocab_size: usize,
    #[serde(alias = "dim")]
    pub hidden_size: usize,
    #[serde(alias = "n_layers")]
    pub num_hidden_layers: usize,
    #[serde(alias = "n_heads")]
    pub num_attention_heads: usize,
    #[serde(alias = "hidden_dim")]
    pub intermediate_size: usize,
    #[serde(alias = "activation", default = "default_act")]
    pub hidden_act: String,
    #[serde(alias = "dropout", default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(alias = "attention_dropout", default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: usize,
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
    /// Extension of `stance`: a word-shape (casing) embedding added to the input
    /// embeddings, so an uncased encoder sees capitalisation.
    #[serde(default)]
    pub stance_casing: bool,
    /// Extension of `stance`: the window length (tokens) the model was trained on.
    #[serde(default)]
    pub stance_context: Option<usize>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_eps() -> f64 {
    1e-12
}

impl ModelConfig {
    pub fn architecture(&self) -> Option<Architecture> {
        let t = self.model_type.as_deref().unwrap_or("").to_lowercase();
        let arch = self
            .architectures
            .first()
            .map(|a| a.to_lowercase())
            .unwrap_or_default();
        if t == "bert" || arch.starts_with("bert") {
            Some(Architecture::Bert)
        } else if t == "distilbert" || arch.starts_with("distilbert") {
            Some(Architecture::DistilBert)
        } else if t == "roberta"
            || t == "xlm-roberta"
            || arch.starts_with("roberta")
            || arch.starts_with("xlmroberta")
        {
            Some(Architecture::Roberta)
        } else {
            None
        }
    }

    /// Labels in id order, or why `id2label` cannot give them (missing, a key
    /// that is not a number, or a gap in the ids).
    pub fn labels(&self) -> Result<Vec<String>, String> {
        if self.id2label.is_empty() {
            return Err("id2label is missing or empty".into());
        }
        let mut pairs: Vec<(usize, &String)> = Vec::with_capacity(self.id2label.len());
        for (k, v) in &self.id2label {
            let id = k
                .parse::<usize>()
                .map_err(|_| format!("id2label key {k:?} is not a number"))?;
            pairs.push((id, v));
        }
        pairs.sort();
        if let Some(gap) = pairs.iter().enumerate().position(|(i, (k, _))| i != *k) {
            return Err(format!("id2label has no label for id {gap}"));
        }
        Ok(pairs.into_iter().map(|(_, v)| v.clone()).collect())
    }

    /// Refuses sizes no supported encoder has, before anything is allocated for
    /// them: a hostile or corrupt config must not make `stance` reserve gigabytes.
    pub fn check_sizes(&self) -> Result<(), String> {
        let limits = [
            ("vocab_size", self.vocab_size, MAX_VOCAB),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HEADS),
            (
                "intermediate_size",
                self.intermediate_size,
                MAX_INTERMEDIATE,
            ),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_POSITIONS,
            ),
            ("type_vocab_size", self.type_vocab_size, MAX_TYPES),
        ];
        for (name, value, max) in limits {
            if value > max {
                return Err(format!(
                    "{name} {value} is beyond what stance runs (at most {max})"
                ));
            }
        }
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return Err(format!("{name} is 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }
}

/// Upper bounds on config sizes (the largest BERT-family encoders stay well inside them).
const MAX_VOCAB: usize = 1 << 20;
const MAX_HIDDEN: usize = 8192;
const MAX_LAYERS: usize = 128;
const MAX_HEADS: usize = 128;
const MAX_INTERMEDIATE: usize = 65_536;
const MAX_POSITIONS: usize = 65_536;
const MAX_TYPES: usize = 1024;
