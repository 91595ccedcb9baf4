//! A BERT-family encoder in candle, written for both inference and training.
//!
//! candle-transformers' `BertModel` cannot be fine-tuned (its LayerNorm fast path
//! has no backward pass and its dropout is a no-op), so `stance` keeps one
//! implementation of the post-LayerNorm transformer shared by BERT, DistilBERT
//! and RoBERTa checkpoints: the fast fused ops at inference, plain tensor ops
//! (with gradients) and real dropout in training.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder};

use super::config::{Architecture, ModelConfig};
use super::int8::{self, QuantizedWeight};
use super::{fused, kernels, ops};
use std::sync::Arc;

/// Number of word shapes of the casing feature: lower, Capitalised, ALL CAPS, other.
pub const SHAPES: usize = 4;

/// Layer normalisation with a fast path (no backward) and a differentiable one.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Loads `weight`/`bias`, or the `gamma`/`beta` names of older checkpoints.
    pub fn load(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let (weight, bias) = match (vb.get(size, "weight"), vb.get(size, "bias")) {
            (Ok(w), Ok(b)) => (w, b),
            (Err(e), _) | (_, Err(e)) => match (vb.get(size, "gamma"), vb.get(size, "beta")) {
                (Ok(w), Ok(b)) => (w, b),
                _ => return Err(e),
            },
        };
        Ok(LayerNorm { weight, bias, eps })
    }

    pub fn forward(&self, x: &Tensor, mode: &mut Mode) -> Result<Tensor> {
        match mode {
            Mode::Infer => candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps as f32),
            Mode::Train { .. } => ops::layer_norm(x, &self.weight, &self.bias, self.eps),
        }
    }
}

/// A dense layer `x W^T + b` over the last dimension. Unlike candle-nn's
/// `Linear` it multiplies a 2-D view of the input, so training never
/// materialises (and then reduces) a weight gradient per batch row.
#[derive(Debug, Clone)]
pub struct Dense {
    pub weight: Tensor,
    pub bias: Tensor,
}

pub fn dense(inp: usize, out: usize, vb: VarBuilder) -> Result<Dense> {
    Ok(Dense {
        weight: vb.get((out, inp), "weight")?,
        bias: vb.get(out, "bias")?,
    })
}

impl Dense {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let inp = *dims.last().unwrap_or(&1);
        let rows = x.elem_count() / inp.max(1);
        let y = x.reshape((rows, inp))?.matmul(&self.weight.t()?)?;
        let y = ops::bias_add(&y, &self.bias)?;
        *dims.last_mut().expect("a dimension") = self.weight.dim(0)?;
        y.reshape(dims)
    }
}

/// Inference, or training with dropout masks drawn from a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Infer,
    /// Each dropout site takes the next seed, so a step is reproducible.
    Train {
        seed: u64,
    },
}

impl Mode {
    pub fn is_train(&self) -> bool {
        matches!(self, Mode::Train { .. })
    }

    fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        match self {
            Mode::Train { seed } if p > 0.0 => {
                *seed = ops::SplitMix64(*seed).next_u64();
                ops::dropout(x, p as f32, *seed)
            }
            _ => Ok(x.clone()),
        }
    }

    fn softmax(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Mode::Infer => candle_nn::ops::softmax_last_dim(x),
            Mode::Train { .. } => ops::softmax_last_dim(x),
        }
    }
}

#[derive(Debug, Clone)]
struct Layer {
    query: Dense,
    key: Dense,
    value: Dense,
    out: Dense,
    attn_norm: LayerNorm,
    ff_in: Dense,
    ff_out: Dense,
    out_norm: LayerNorm,
}

impl Layer {
    fn load(cfg: &ModelConfig, arch: Architecture, vb: VarBuilder) -> Result<Self> {
        let (h, i, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        match arch {
            Architecture::DistilBert => Ok(Layer {
                query: dense(h, h, vb.pp("attention.q_lin"))?,
                key: dense(h, h, vb.pp("attention.k_lin"))?,
                value: dense(h, h, vb.pp("attention.v_lin"))?,
                out: dense(h, h, vb.pp("attention.out_lin"))?,
                attn_norm: LayerNorm::load(h, eps, vb.pp("sa_layer_norm"))?,
                ff_in: dense(h, i, vb.pp("ffn.lin1"))?,
                ff_out: dense(i, h, vb.pp("ffn.lin2"))?,
                out_norm: LayerNorm::load(h, eps, vb.pp("output_layer_norm"))?,
            }),
            _ => Ok(Layer {
                query: dense(h, h, vb.pp("attention.self.query"))?,
                key: dense(h, h, vb.pp("attention.self.key"))?,
                value: dense(h, h, vb.pp("attention.self.value"))?,
                out: dense(h, h, vb.pp("attention.output.dense"))?,
                attn_norm: LayerNorm::load(h, eps, vb.pp("attention.output.LayerNorm"))?,
                ff_in: dense(h, i, vb.pp("intermediate.dense"))?,
                ff_out: dense(i, h, vb.pp("output.dense"))?,
                out_norm: LayerNorm::load(h, eps, vb.pp("output.LayerNorm"))?,
            }),
        }
    }
}

/// Rows per block of a layer's feed-forward part on the int8 path: their intermediate
/// activations (`rows × intermediate` f32, 768 KiB for MiniLM) stay in a core's L2.
const ROWS_PER_CACHED_BLOCK: usize = 128;

/// A layer's weights as inference reads them: the query, key and value projections as
/// one matrix, so inference runs one product where the checkpoint has three, and every
/// dense weight transposed to `[in, out]`, which gemm reads without copying it first.
#[derive(Debug, Clone)]
struct FusedLayer {
    qkv_bias: Tensor,
    /// The f32 weights; dropped once the layer runs in int8.
    transposed: Option<Arc<TransposedLayer>>,
    /// The four products' weights in int8, after [`Encoder::quantize_int8`].
    int8: Option<Arc<Int8Layer>>,
}

/// A layer's dense weights `[in, out]` (shared by the workers' copies of the model).
#[derive(Debug)]
struct TransposedLayer {
    qkv: Tensor,
    out: Tensor,
    ff_in: Tensor,
    ff_out: Tensor,
}

/// A layer's dense weights quantised (shared by the workers' copies of the model).
#[derive(Debug)]
struct Int8Layer {
    qkv: QuantizedWeight,
    out: QuantizedWeight,
    ff_in: QuantizedWeight,
    ff_out: QuantizedWeight,
}

impl FusedLayer {
    fn new(layer: &Layer) -> Result<Self> {
        let (q, k, v) = (&layer.query, &layer.key, &layer.value);
        let t = |w: &Tensor| w.t()?.contiguous();
        Ok(FusedLayer {
            qkv_bias: Tensor::cat(&[&q.bias, &k.bias, &v.bias], 0)?,
            transposed: Some(Arc::new(TransposedLayer {
                qkv: t(&qkv_weight(layer)?)?,
                out: t(&layer.out.weight)?,
                ff_in: t(&layer.ff_in.weight)?,
                ff_out: t(&layer.ff_out.weight)?,
            })),
            int8: None,
        })
    }
}

/// The query, key and value weights stacked, `[3 hidden, hidden]`.
fn qkv_weight(layer: &Layer) -> Result<Tensor> {
    Tensor::cat(
        &[&layer.query.weight, &layer.key.weight, &layer.value.weight],
        0,
    )
}

/// The encoder: embeddings plus transformer layers.
#[derive(Debug, Clone)]
pub struct Encoder {
    arch: Architecture,
    word: Embedding,
    position: Embedding,
    token_type: Option<Embedding>,
    casing: Option<Embedding>,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    act: String,
    hidden_dropout: f64,
    attention_dropout: f64,
    pad_token_id: usize,
    pub hidden_size: usize,
    pub max_positions: usize,
    /// Set by [`Encoder::prepare_inference`]: the fused path's weights.
    fused: Option<Vec<FusedLayer>>,
}

impl Encoder {
    /// Loads the encoder from `vb`, which is already at the encoder's prefix
    /// (`bert`, `distilbert`, `roberta`, or the root for bare encoders).
    pub fn load(cfg: &ModelConfig, arch: Architecture, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        if cfg.num_attention_heads == 0 || !h.is_multiple_of(cfg.num_attention_heads) {
            candle_core::bail!(
                "hidden_size {h} is not a multiple of num_attention_heads {}",
                cfg.num_attention_heads
            );
        }
        let emb = vb.pp("embeddings");
        let token_type = match arch {
            Architecture::DistilBert => None,
            _ if cfg.type_vocab_size == 0 => None,
            _ => Some(embedding(
                cfg.type_vocab_size,
                h,
                emb.pp("token_type_embeddings"),
            )?),
        };
        let casing = if cfg.stance_casing {
            Some(embedding(SHAPES, h, emb.pp("casing_embeddings"))?)
        } else {
            None
        };
        let layer_vb = match arch {
            Architecture::DistilBert => vb.pp("transformer.layer"),
            _ => vb.pp("encoder.layer"),
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::load(cfg, arch, layer_vb.pp(i.to_string())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder {
            arch,
            word: embedding(cfg.vocab_size, h, emb.pp("word_embeddings"))?,
            position: embedding(
                cfg.max_position_embeddings,
                h,
                emb.pp("position_embeddings"),
            )?,
            token_type,
            casing,
            embed_norm: LayerNorm::load(h, cfg.layer_norm_eps, emb.pp("LayerNorm"))?,
            layers,
            heads: cfg.num_attention_heads,
            act: cfg.hidden_act.to_lowercase(),
            hidden_dropout: cfg.hidden_dropout_prob,
            attention_dropout: cfg.attention_probs_dropout_prob,
            pad_token_id: cfg.pad_token_id,
            hidden_size: h,
            max_positions: cfg.max_position_embeddings,
            fused: None,
        })
    }

    /// Switches inference to the fused path (`fused`): one product for the query,
    /// key and value projections, and bias, GELU, residual and masked softmax done in
    /// place. Call it once the weights are final: the fused weights are copies, so a
    /// model still training keeps the plain path.
    pub fn prepare_inference(&mut self) -> Result<()> {
        self.fused = Some(
            self.layers
                .iter()
                .map(FusedLayer::new)
                .collect::<Result<_>>()?,
        );
        Ok(())
    }

    /// Runs the fused path's four dense products per layer in int8 (dynamic
    /// quantisation, see [`int8`]); fails on a CPU without AVX-512 VNNI.
    pub fn quantize_int8(&mut self) -> Result<()> {
        if !int8::available() {
            candle_core::bail!("--precision int8 needs a CPU with AVX-512 VNNI; this one has none (--precision auto runs f32 on it)");
        }
        if self.fused.is_none() {
            self.prepare_inference()?;
        }
        let fused = self.fused.as_mut().expect("prepared above");
        for (layer, f) in self.layers.iter().zip(fused.iter_mut()) {
            f.int8 = Some(Arc::new(Int8Layer {
                qkv: QuantizedWeight::new(&qkv_weight(layer)?)?,
                out: QuantizedWeight::new(&layer.out.weight)?,
                ff_in: QuantizedWeight::new(&layer.ff_in.weight)?,
                ff_out: QuantizedWeight::new(&layer.ff_out.weight)?,
            }));
            f.transposed = None;
        }
        Ok(())
    }

    /// Back to the plain path (tests and benches compare the two).
    pub fn unfuse(&mut self) {
        self.fused = None;
    }

    /// One layer on the fused path: `x` is `[batch, seq, hidden]`, `mask` the additive
    /// attention mask `[batch, seq]`.
    fn fused_layer(
        &self,
        layer: &Layer,
        f: &FusedLayer,
        x: &Tensor,
        mask: &Tensor,
        act_gelu: bool,
    ) -> Result<Tensor> {
        let (batch, seq, h) = x.dims3()?;
        let head_dim = h / self.heads;
        let rows = x.reshape((batch * seq, h))?;
        let m = batch * seq;
        let q8 = f.int8.as_deref();
        let wt = f.transposed.as_deref();
        let product = |dst: &Tensor,
                       x: &Tensor,
                       wt: Option<&Tensor>,
                       q: Option<&QuantizedWeight>| match (q, wt) {
            (Some(q), _) => int8::accumulate_product_(dst, x, q),
            (None, Some(wt)) => kernels::accumulate_product_(dst, x, wt),
            (None, None) => {
                candle_core::bail!("a fused layer holds neither f32 nor int8 weights")
            }
        };
        let qkv = kernels::bias_rows(&f.qkv_bias, m)?;
        product(&qkv, &rows, wt.map(|w| &w.qkv), q8.map(|q| &q.qkv))?;
        let scale = 1.0 / (head_dim as f32).sqrt();
        let ctx = kernels::attention(&qkv, mask, batch, self.heads, scale)?;
        // Everything after attention works row by row. int8 runs it in blocks of rows
        // whose feed-forward activations stay in the core's cache (measured faster); f32
        // in one block, where blocks were not measured faster.
        let block = match q8 {
            Some(_) => ROWS_PER_CACHED_BLOCK,
            None => m,
        };
        let mut outs = Vec::with_capacity(m.div_ceil(block.max(1)));
        for start in (0..m).step_by(block.max(1)) {
            let len = block.min(m - start);
            let rows = rows.narrow(0, start, len)?;
            let ctx = ctx.narrow(0, start, len)?;
            let attn = kernels::plus_bias(&rows, &layer.out.bias)?;
            product(&attn, &ctx, wt.map(|w| &w.out), q8.map(|q| &q.out))?;
            let x = layer.attn_norm.forward(&attn, &mut Mode::Infer)?;
            let ff = kernels::bias_rows(&layer.ff_in.bias, len)?;
            product(&ff, &x, wt.map(|w| &w.ff_in), q8.map(|q| &q.ff_in))?;
            let ff = if act_gelu {
                fused::gelu_(&ff)?;
                ff
            } else {
                self.activation(&ff, &Mode::Infer)?
            };
            let out = kernels::plus_bias(&x, &layer.ff_out.bias)?;
            product(&out, &ff, wt.map(|w| &w.ff_out), q8.map(|q| &q.ff_out))?;
            outs.push(layer.out_norm.forward(&out, &mut Mode::Infer)?);
        }
        let out = match outs.len() {
            1 => outs.pop().expect("one block"),
            _ => Tensor::cat(&outs, 0)?,
        };
        out.reshape((batch, seq, h))
    }

    pub fn arch(&self) -> Architecture {
        self.arch
    }

    /// Longest input (with special tokens) the position embeddings allow.
    pub fn max_len(&self) -> usize {
        match self.arch {
            // RoBERTa positions start after the padding index.
            Architecture::Roberta => self.max_positions.saturating_sub(self.pad_token_id + 1),
            _ => self.max_positions,
        }
    }

    fn activation(&self, x: &Tensor, mode: &Mode) -> Result<Tensor> {
        match self.act.as_str() {
            "gelu" if mode.is_train() => ops::gelu(x),
            "gelu" => x.gelu_erf(),
            "relu" => x.relu(),
            _ => x.gelu(),
        }
    }

    /// Hidden states `[batch, seq, hidden]` for `ids` `[batch, seq]` (u32) and
    /// `mask` `[batch, seq]` (1 for tokens, 0 for padding). `shapes`, when the
    /// model has a casing embedding, holds each token's word shape.
    pub fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        shapes: Option<&Tensor>,
        mode: &mut Mode,
    ) -> Result<Tensor> {
        let mut layers = self.forward_layers(ids, mask, shapes, mode)?;
        Ok(layers.pop().expect("at least the embeddings"))
    }

    /// The embeddings' output followed by every layer's output.
    pub fn forward_layers(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        shapes: Option<&Tensor>,
        mode: &mut Mode,
    ) -> Result<Vec<Tensor>> {
        let (batch, seq) = ids.dims2()?;
        let device = ids.device();
        let positions = match self.arch {
            Architecture::Roberta => {
                let offset = (self.pad_token_id + 1) as u32;
                let idx = Tensor::arange(offset, offset + seq as u32, device)?;
                // Padding tokens take the padding position, as in Hugging Face.
                let m = mask.to_dtype(DType::U32)?;
                idx.unsqueeze(0)?
                    .broadcast_mul(&m)?
                    .broadcast_add(&((m.ones_like()? - &m)? * self.pad_token_id as f64)?)?
            }
            _ => Tensor::arange(0u32, seq as u32, device)?
                .unsqueeze(0)?
                .repeat((batch, 1))?,
        };
        let mut x = self
            .word
            .forward(ids)?
            .add(&self.position.forward(&positions)?)?;
        if let Some(tt) = &self.token_type {
            x = x.broadcast_add(&tt.forward(&Tensor::zeros((1, seq), DType::U32, device)?)?)?;
        }
        if let (Some(casing), Some(shapes)) = (&self.casing, shapes) {
            x = x.add(&casing.forward(shapes)?)?;
        }
        let normed = self.embed_norm.forward(&x, mode)?;
        let mut x = mode.dropout(&normed, self.hidden_dropout)?;
        let mut outputs = vec![x.clone()];

        // Additive mask: 0 where attended, a large negative number on padding.
        let dtype = x.dtype();
        let bias = ((mask.to_dtype(dtype)? - 1.0)? * 1e9)?.reshape((batch, 1, 1, seq))?;
        let head_dim = self.hidden_size / self.heads;
        let scale = 1.0 / (head_dim as f64).sqrt();
        if let Some(fused_layers) = self.fused.as_ref().filter(|_| !mode.is_train()) {
            if fused::applies_to(&x) {
                let mask = bias.reshape((batch, seq))?;
                let act_gelu = self.act == "gelu";
                for (layer, f) in self.layers.iter().zip(fused_layers) {
                    x = self.fused_layer(layer, f, &x, &mask, act_gelu)?;
                    outputs.push(x.clone());
                }
                return Ok(outputs);
            }
        }
        for layer in &self.layers {
            let split = |t: Tensor| -> Result<Tensor> {
                t.reshape((batch, seq, self.heads, head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(layer.query.forward(&x)?)?;
            let k = split(layer.key.forward(&x)?)?;
            let v = split(layer.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&bias)?;
            let probs = mode.softmax(&scores)?;
            let probs = mode.dropout(&probs, self.attention_dropout)?;
            let ctx = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((
                batch,
                seq,
                self.hidden_size,
            ))?;
            let attn = mode.dropout(&layer.out.forward(&ctx)?, self.hidden_dropout)?;
            x = layer.attn_norm.forward(&(attn + &x)?, mode)?;
            let ff = self.activation(&layer.ff_in.forward(&x)?, mode)?;
            let ff = mode.dropout(&layer.ff_out.forward(&ff)?, self.hidden_dropout)?;
            x = layer.out_norm.forward(&(ff + &x)?, mode)?;
            outputs.push(x.clone());
        }
        Ok(outputs)
    }
}

/// Word shape of a token's word for the casing feature.
pub fn word_shape(word: &str) -> u32 {
    let letters: Vec<char> = word.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() {
        return 3;
    }
    if letters.iter().all(|c| c.is_lowercase()) {
        0
    } else if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        2
    } else if letters[0].is_uppercase() && letters[1..].iter().all(|c| c.is_lowercase()) {
        1
    } else {
        3
    }
}
