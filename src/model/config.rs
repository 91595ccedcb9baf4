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

    /// Labels in id order, or None when `id2label` is missing, has gaps, or is not numeric.
    pub fn labels(&self) -> Option<Vec<String>> {
        if self.id2label.is_empty() {
            return None;
        }
        let mut pairs: Vec<(usize, &String)> = self
            .id2label
            .iter()
            .map(|(k, v)| k.parse::<usize>().ok().map(|k| (k, v)))
            .collect::<Option<_>>()?;
        pairs.sort();
        pairs
            .iter()
            .enumerate()
            .all(|(i, (k, _))| i == *k)
            .then(|| pairs.into_iter().map(|(_, v)| v.clone()).collect())
    }
}
