//! The model [`EntityTagger`]: tokenize with offsets, window long texts, run
//! length-sorted batches through the classifier, aggregate sub-words to entities.

use std::ops::Range;

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

use super::aggregate::{aggregate, Aggregation, TokenScores};
use super::checkpoint::{load_tokenizer, Checkpoint, TokenClassifier};
use super::encoder::word_shape;
use super::window;
use super::ModelError;
use crate::doc::Doc;
use crate::error::Result;
use crate::ner::{Entity, EntityLabel, EntityTagger};
use crate::span::Span;
use crate::Backend;

/// How the work is spread over cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Parallelism {
    /// One single-threaded worker per core, each on its own batches.
    #[default]
    Workers,
    /// One worker; candle splits each matrix product over the cores.
    Intra,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InferenceOptions {
    pub batch_size: usize,
    /// Tokens shared by consecutive windows of a long text.
    pub stride: usize,
    pub aggregation: Aggregation,
    pub threads: usize,
    pub parallelism: Parallelism,
}

impl Default for InferenceOptions {
    fn default() -> Self {
        InferenceOptions {
            batch_size: 32,
            stride: 128,
            aggregation: Aggregation::First,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            parallelism: Parallelism::Workers,
        }
    }
}

/// One text unit (a sentence, or a whole text) as model tokens.
#[derive(Debug, Clone, Default)]
struct UnitTokens {
    ids: Vec<u32>,
    spans: Vec<Span>,
    subword: Vec<bool>,
    shapes: Vec<u32>,
}

/// One model input: a window of a unit, with special tokens added.
struct Sequence {
    unit: usize,
    range: Range<usize>,
}

pub struct ModelTagger {
    model: TokenClassifier,
    tokenizer: Tokenizer,
    cls: u32,
    sep: u32,
    pad: u32,
    wordpiece: bool,
    device: Device,
    pub options: InferenceOptions,
    /// Where the model came from, for messages.
    pub source: String,
}

/// Word shape of the word around `span` (the casing feature).
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

/// Shape id given to special and padding tokens.
pub const SHAPE_OTHER: u32 = 3;

fn special_id(tok: &Tokenizer, names: &[&str]) -> Option<u32> {
    names.iter().find_map(|n| tok.token_to_id(n))
}

impl ModelTagger {
    /// Loads a checkpoint directory on the CPU.
    pub fn load(ck: &Checkpoint, options: InferenceOptions) -> Result<ModelTagger, ModelError> {
        let device = Device::Cpu;
        let tokenizer = load_tokenizer(&ck.tokenizer, ck.config.vocab_size)?;
        let model = TokenClassifier::load(ck, &device)?;
        let mut tagger =
            ModelTagger::from_parts(model, tokenizer, ck.config.pad_token_id as u32, options)?;
        tagger.source = ck.dir.display().to_string();
        Ok(tagger)
    }

    /// A tagger from a model and tokenizer already in memory (tests, training).
    pub fn from_parts(
        model: TokenClassifier,
        tokenizer: Tokenizer,
        pad: u32,
        options: InferenceOptions,
    ) -> Result<ModelTagger, ModelError> {
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
        Ok(ModelTagger {
            model,
            tokenizer,
            cls,
            sep,
            pad,
            wordpiece,
            device: Device::Cpu,
            options,
            source: String::from("(in memory)"),
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.model.labels
    }

    /// Longest window, in tokens, without the two special tokens.
    pub fn max_tokens(&self) -> usize {
        self.model.encoder.max_len().saturating_sub(2).max(1)
    }

    fn encode(&self, text: &str, unit: Span) -> Result<UnitTokens, ModelError> {
        let piece = unit.text(text);
        let enc = self
            .tokenizer
            .encode(piece, false)
            .map_err(|e| ModelError::Inference(format!("tokenizer: {e}")))?;
        let mut out = UnitTokens::default();
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
        Ok(out)
    }

    /// Label probabilities of every token of every unit (windowed, batched).
    pub fn probabilities(
        &self,
        text: &str,
        units: &[Span],
    ) -> Result<Vec<Vec<TokenScores>>, ModelError> {
        let encoded: Vec<UnitTokens> = units
            .iter()
            .map(|&u| self.encode(text, u))
            .collect::<Result<_, _>>()?;
        let max = self.max_tokens();
        let mut seqs: Vec<Sequence> = Vec::new();
        let mut plans: Vec<Vec<Range<usize>>> = Vec::new();
        for (u, enc) in encoded.iter().enumerate() {
            let plan = if enc.ids.is_empty() {
                Vec::new()
            } else {
                window::plan(enc.ids.len(), max, self.options.stride)
            };
            for r in &plan {
                seqs.push(Sequence {
                    unit: u,
                    range: r.clone(),
                });
            }
            plans.push(plan);
        }
        // Length-sorted batches waste little on padding.
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| seqs[i].range.len());
        let batches: Vec<Vec<usize>> = order
            .chunks(self.options.batch_size.max(1))
            .map(|c| c.to_vec())
            .collect();
        let mut rows: Vec<Vec<Vec<f32>>> = vec![Vec::new(); seqs.len()];
        let run = |batch: &[usize]| self.run_batch(batch, &seqs, &encoded);
        let workers = match self.options.parallelism {
            Parallelism::Workers => self.options.threads.clamp(1, batches.len().max(1)),
            Parallelism::Intra => 1,
        };
        if workers <= 1 {
            for b in &batches {
                for (i, r) in b.iter().zip(run(b)?) {
                    rows[*i] = r;
                }
            }
        } else {
            let results: Vec<Result<Vec<(usize, Vec<Vec<f32>>)>, ModelError>> =
                std::thread::scope(|scope| {
                    let handles: Vec<_> = (0..workers)
                        .map(|w| {
                            let batches = &batches;
                            let run = &run;
                            scope.spawn(move || {
                                let mut out = Vec::new();
                                for b in batches.iter().skip(w).step_by(workers) {
                                    out.extend(b.iter().copied().zip(run(b)?));
                                }
                                Ok(out)
                            })
                        })
                        .collect();
                    handles
                        .into_iter()
                        .map(|h| h.join().expect("inference worker panicked"))
                        .collect()
                });
            for r in results {
                for (i, row) in r? {
                    rows[i] = row;
                }
            }
        }
        // Each token from the window where it is most central.
        let mut out = Vec::with_capacity(units.len());
        let mut seq_of_unit: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
        for (i, s) in seqs.iter().enumerate() {
            seq_of_unit[s.unit].push(i);
        }
        for (u, enc) in encoded.iter().enumerate() {
            let owners = window::owners(enc.ids.len(), &plans[u]);
            let tokens = (0..enc.ids.len())
                .map(|t| {
                    let s = seq_of_unit[u][owners[t]];
                    TokenScores {
                        span: enc.spans[t],
                        probs: rows[s][t - seqs[s].range.start].clone(),
                        is_subword: enc.subword[t],
                    }
                })
                .collect();
            out.push(tokens);
        }
        Ok(out)
    }

    /// Probabilities for one batch: one row per token, special tokens dropped.
    fn run_batch(
        &self,
        batch: &[usize],
        seqs: &[Sequence],
        encoded: &[UnitTokens],
    ) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
        let len = batch
            .iter()
            .map(|&i| seqs[i].range.len() + 2)
            .max()
            .unwrap_or(2);
        let (mut ids, mut mask, mut shapes) = (Vec::new(), Vec::new(), Vec::new());
        for &i in batch {
            let s = &seqs[i];
            let enc = &encoded[s.unit];
            let n = s.range.len();
            ids.push(self.cls);
            ids.extend_from_slice(&enc.ids[s.range.clone()]);
            ids.push(self.sep);
            ids.extend(std::iter::repeat_n(self.pad, len - n - 2));
            mask.extend(std::iter::repeat_n(1u32, n + 2));
            mask.extend(std::iter::repeat_n(0u32, len - n - 2));
            shapes.push(SHAPE_OTHER);
            shapes.extend_from_slice(&enc.shapes[s.range.clone()]);
            shapes.extend(std::iter::repeat_n(SHAPE_OTHER, len - n - 1));
        }
        let b = batch.len();
        let ids = Tensor::from_vec(ids, (b, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, len), &self.device)?;
        let shapes = Tensor::from_vec(shapes, (b, len), &self.device)?;
        let logits =
            self.model
                .forward(&ids, &mask, self.model.casing.then_some(&shapes), false)?;
        let probs =
            candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?.to_vec3::<f32>()?;
        Ok(batch
            .iter()
            .zip(probs)
            .map(|(&i, p)| p[1..seqs[i].range.len() + 1].to_vec())
            .collect())
    }

    /// Entities of the given text units (sentences, or whole texts).
    pub fn tag_units(&self, text: &str, units: &[Span]) -> Result<Vec<Entity>, ModelError> {
        let probs = self.probabilities(text, units)?;
        let mut out = Vec::new();
        for tokens in probs {
            for g in aggregate(&tokens, &self.model.labels, self.options.aggregation) {
                out.push(Entity {
                    span: g.span,
                    label: map_label(&g.label),
                    score: g.score,
                    backend: Backend::Model,
                });
            }
        }
        out.sort_by_key(|e| e.span.start);
        Ok(out)
    }
}

/// CoNLL type of a model's entity type ("PER", "PERSON", "GPE", ...).
pub fn map_label(t: &str) -> EntityLabel {
    match t.to_uppercase().as_str() {
        "PER" | "PERSON" => EntityLabel::Per,
        "ORG" | "ORGANIZATION" | "ORGANISATION" => EntityLabel::Org,
        "LOC" | "LOCATION" | "GPE" | "FAC" => EntityLabel::Loc,
        _ => EntityLabel::Misc,
    }
}

impl EntityTagger for ModelTagger {
    fn tag(&self, doc: &Doc) -> Result<Vec<Entity>> {
        let units: Vec<Span> = doc.sentences.iter().map(|s| s.span).collect();
        Ok(self.tag_units(&doc.text, &units)?)
    }

    fn backend(&self) -> Backend {
        Backend::Model
    }
}
