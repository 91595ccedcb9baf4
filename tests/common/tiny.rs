//! A tiny BERT token-classification checkpoint, built from scratch for tests:
//! random (seeded) weights written as safetensors, a config with `id2label`,
//! and a WordPiece `tokenizer.json` laid out like all-MiniLM-L6-v2's (with its
//! fixed padding and truncation at 128 switched on, which stance must undo).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::json;

pub const LABELS: [&str; 9] = [
    "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
];

/// Words of the tiny vocabulary (lowercased; the normalizer lowercases input).
pub const WORDS: &[&str] = &[
    "the", "minister", "said", "on", "monday", "that", "talks", "with", "would", "resume", "in",
    "paris", "berlin", "kerry", "warned", "russia", "and", "france", "accused", "of", "fraud", "a",
    "plan", "to", "end", "war", ".", ",", "\"", "'", "-", "(", ")", "é", "s",
];
pub const PIECES: &[&str] = &[
    "##s", "##ing", "##ed", "##a", "##e", "##o", "##n", "##r", "##t", "##i", "##l",
];

pub struct Tiny {
    pub hidden: usize,
    pub layers: usize,
    pub max_positions: usize,
    /// Prefix the encoder's weights with "bert." (the HF layout) or not.
    pub bert_prefix: bool,
    /// Zero position embeddings make every token's output independent of where it sits.
    pub zero_positions: bool,
    /// Zero attention values: a token's output then depends on itself alone, not its context.
    pub no_attention: bool,
    pub seed: u64,
}

impl Default for Tiny {
    fn default() -> Self {
        Tiny {
            hidden: 16,
            layers: 2,
            max_positions: 64,
            bert_prefix: true,
            zero_positions: false,
            no_attention: false,
            seed: 7,
        }
    }
}

pub fn vocab() -> Vec<String> {
    let mut v: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(WORDS.iter().map(|s| s.to_string()));
    v.extend(PIECES.iter().map(|s| s.to_string()));
    // Single letters, so any lowercase word tokenizes without [UNK].
    for c in 'a'..='z' {
        for w in [c.to_string(), format!("##{c}")] {
            if !v.contains(&w) {
                v.push(w);
            }
        }
    }
    // The markers the actor classifier wraps a mention in and puts before a rule cue
    // (as in BERT's vocabulary).
    v.extend(
        [
            "[unused0]",
            "[unused1]",
            "[unused2]",
            "[unused3]",
            "[unused4]",
        ]
        .map(String::from),
    );
    v
}

/// A deterministic pseudo-random tensor (no dependency on candle's RNG).
fn random(shape: &[usize], seed: &mut u64, scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 2.0 * scale
        })
        .collect();
    Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
}

pub fn tokenizer_json(vocab: &[String]) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = vocab
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), json!(i)))
        .collect();
    let special = |name: &str, id: usize| json!({"id": id, "special": true, "content": name, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false});
    json!({
        "version": "1.0",
        "truncation": {"max_length": 128, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 128}, "direction": "Right", "pad_to_multiple_of": null, "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": [special("[PAD]", 0), special("[UNK]", 1), special("[CLS]", 2), special("[SEP]", 3), special("[MASK]", 4)],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": map}
    })
}

pub fn config_json(t: &Tiny, vocab_size: usize) -> serde_json::Value {
    let id2label: serde_json::Map<String, serde_json::Value> = LABELS
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), json!(l)))
        .collect();
    json!({
        "architectures": ["BertForTokenClassification"],
        "model_type": "bert",
        "vocab_size": vocab_size,
        "hidden_size": t.hidden,
        "num_hidden_layers": t.layers,
        "num_attention_heads": 2,
        "intermediate_size": t.hidden * 2,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": t.max_positions,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "id2label": id2label,
    })
}

/// The weights, keyed as in a Hugging Face checkpoint.
pub fn weights(t: &Tiny, vocab_size: usize) -> HashMap<String, Tensor> {
    let mut seed = t.seed;
    let h = t.hidden;
    let p = if t.bert_prefix { "bert." } else { "" };
    let mut w = HashMap::new();
    let mut put = |name: String, shape: &[usize], scale: f32, seed: &mut u64| {
        w.insert(name, random(shape, seed, scale));
    };
    put(
        format!("{p}embeddings.word_embeddings.weight"),
        &[vocab_size, h],
        1.0,
        &mut seed,
    );
    // Positions draw from their own seed, so models that differ only in
    // max_positions share every other weight.
    let mut position_seed = t.seed ^ 0xABCD;
    put(
        format!("{p}embeddings.position_embeddings.weight"),
        &[t.max_positions, h],
        if t.zero_positions { 0.0 } else { 0.5 },
        &mut position_seed,
    );
    put(
        format!("{p}embeddings.token_type_embeddings.weight"),
        &[2, h],
        0.5,
        &mut seed,
    );
    let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    let zeros = |n: usize| Tensor::zeros(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut fixed: Vec<(String, Tensor)> = vec![
        (format!("{p}embeddings.LayerNorm.weight"), ones(h)),
        (format!("{p}embeddings.LayerNorm.bias"), zeros(h)),
    ];
    for l in 0..t.layers {
        let q = format!("{p}encoder.layer.{l}.");
        for name in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ] {
            put(format!("{q}{name}.weight"), &[h, h], 0.5, &mut seed);
            put(format!("{q}{name}.bias"), &[h], 0.1, &mut seed);
        }
        put(
            format!("{q}intermediate.dense.weight"),
            &[2 * h, h],
            0.5,
            &mut seed,
        );
        put(
            format!("{q}intermediate.dense.bias"),
            &[2 * h],
            0.1,
            &mut seed,
        );
        put(
            format!("{q}output.dense.weight"),
            &[h, 2 * h],
            0.5,
            &mut seed,
        );
        put(format!("{q}output.dense.bias"), &[h], 0.1, &mut seed);
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            fixed.push((format!("{q}{ln}.weight"), ones(h)));
            fixed.push((format!("{q}{ln}.bias"), zeros(h)));
        }
    }
    put(
        "classifier.weight".into(),
        &[LABELS.len(), h],
        2.0,
        &mut seed,
    );
    put("classifier.bias".into(), &[LABELS.len()], 0.5, &mut seed);
    w.extend(fixed);
    if t.no_attention {
        for l in 0..t.layers {
            for name in ["value.weight", "value.bias"] {
                let key = format!("{p}encoder.layer.{l}.attention.self.{name}");
                let shape = w[&key].dims().to_vec();
                w.insert(
                    key,
                    Tensor::zeros(shape, candle_core::DType::F32, &Device::Cpu).unwrap(),
                );
            }
        }
    }
    w
}

/// Writes the checkpoint into `dir` (created if needed).
pub fn write(t: &Tiny, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let vocab = vocab();
    std::fs::write(
        dir.join("tokenizer.json"),
        serde_json::to_string_pretty(&tokenizer_json(&vocab)).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config_json(t, vocab.len())).unwrap(),
    )
    .unwrap();
    candle_core::safetensors::save(&weights(t, vocab.len()), dir.join("model.safetensors"))
        .unwrap();
}
