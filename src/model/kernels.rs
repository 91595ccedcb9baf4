//! The fused inference path's matrix products, calling `gemm` (the crate candle's own
//! products run on) directly.
//!
//! candle's `matmul` zeroes its output before the product, and multiplies attention's
//! `batch × heads` small matrices one after another, each split over threads; the
//! per-op profile (`benches/README.md`) showed about 10% of the encoder zeroing pages
//! and 6% in gemm's per-call dispatch. Here a dense layer accumulates into an output
//! already holding its bias (and residual), and attention runs each (item, head) as one
//! task that reads its query, key and value straight out of the fused projection and
//! writes its context straight into place: no zeroing, no transposing copies, and
//! keys past an item's last real token are never read. Dense weights are stored
//! transposed once at load, the layout gemm reads without copying it on every call.

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, CustomOp2, InplaceOp3, Layout, Result, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use super::fused::{masked_softmax_row, slice_mut};
use super::ops::contiguous;

/// How candle splits a product over threads, so both paths use the machine alike.
fn parallelism() -> Parallelism {
    match candle_core::utils::get_num_threads() {
        n if n > 1 => Parallelism::Rayon(n),
        _ => Parallelism::None,
    }
}

/// `dst += x · wt` for `x` `[m, k]`, a weight stored transposed `wt` `[k, n]`, and `dst`
/// `[m, n]`.
struct AccumulateProduct;

impl InplaceOp3 for AccumulateProduct {
    fn name(&self) -> &'static str {
        "stance-accumulate-product"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (m, n) = l1.shape().dims2()?;
        let (xm, k) = l2.shape().dims2()?;
        let (wk, wn) = l3.shape().dims2()?;
        if xm != m || wn != n || wk != k {
            candle_core::bail!("{}: [{m}, {n}] += [{xm}, {k}] x [{wk}, {wn}]", self.name());
        }
        let x = contiguous(s2, l2, self.name())?;
        let w = contiguous(s3, l3, self.name())?;
        let dst = slice_mut(s1, l1, self.name())?;
        // SAFETY: the three slices hold m·n, m·k and n·k values with the strides given.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                true,
                x.as_ptr(),
                1,
                k as isize,
                w.as_ptr(),
                1,
                n as isize,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism(),
            )
        };
        Ok(())
    }
}

/// `dst += x · wt` in place (`dst` already holds the bias, or bias plus residual) for a
/// weight stored transposed, `wt` `[k, n]`. gemm reads such a weight where it lies; in
/// the checkpoint's `[n, k]` it copied ("packed") the whole weight on every call, which
/// was over half of the time at batch 1.
pub fn accumulate_product_(dst: &Tensor, x: &Tensor, wt: &Tensor) -> Result<()> {
    dst.inplace_op3(&x.contiguous()?, &wt.contiguous()?, &AccumulateProduct)
}

/// `bias` repeated on `rows` rows, or added to each row of `x`: where a dense layer's
/// output starts (written row by row: candle's broadcasting copy goes value by value).
struct StartRows {
    rows: usize,
}

impl CustomOp2 for StartRows {
    fn name(&self) -> &'static str {
        "stance-start-rows"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let bias = contiguous(s2, l2, self.name())?;
        let n = bias.len();
        let mut out = Vec::with_capacity(self.rows * n);
        if l1.shape().elem_count() == self.rows * n {
            let x = contiguous(s1, l1, self.name())?;
            for row in x.chunks_exact(n) {
                out.extend(row.iter().zip(bias).map(|(a, b)| a + b));
            }
        } else {
            for _ in 0..self.rows {
                out.extend_from_slice(bias);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((self.rows, n))))
    }
}

/// `bias` repeated on `rows` rows: a dense layer's output before the product.
pub fn bias_rows(bias: &Tensor, rows: usize) -> Result<Tensor> {
    bias.apply_op2_no_bwd(&bias.contiguous()?, &StartRows { rows })
}

/// `x + bias` on each row of `x` `[rows, n]`: a dense layer's residual and bias.
pub fn plus_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let rows = x.elem_count() / bias.elem_count().max(1);
    x.contiguous()?
        .apply_op2_no_bwd(&bias.contiguous()?, &StartRows { rows })
}

/// Self-attention over a fused projection `[batch · seq, 3 · hidden]` (queries, keys,
/// values side by side, biases added) with an additive mask `[batch, seq]`, giving the
/// context `[batch · seq, hidden]` with heads side by side.
struct Attention {
    batch: usize,
    heads: usize,
    scale: f32,
}

/// A pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
struct Shared(*mut f32);
// SAFETY: each task writes its own rows and columns of the buffer (see `Attention`).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// The pointer `offset` values in (a method, so closures capture the `Shared`).
    ///
    /// # Safety
    /// `offset` must stay inside the buffer.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

impl CustomOp2 for Attention {
    fn name(&self) -> &'static str {
        "stance-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, width) = l1.shape().dims2()?;
        let (batch, heads) = (self.batch, self.heads);
        let hidden = width / 3;
        if batch == 0 || rows % batch != 0 || width % 3 != 0 || hidden % heads != 0 {
            candle_core::bail!(
                "{}: {rows} x {width} for {batch} items of {heads} heads",
                self.name()
            );
        }
        let seq = rows / batch;
        let head = hidden / heads;
        let qkv = contiguous(s1, l1, self.name())?;
        let mask = contiguous(s2, l2, self.name())?;
        if mask.len() != batch * seq {
            candle_core::bail!(
                "{}: mask of {} for {batch} x {seq}",
                self.name(),
                mask.len()
            );
        }
        let mut out: Vec<MaybeUninit<f32>> = Vec::with_capacity(rows * hidden);
        // SAFETY: MaybeUninit needs no initialisation; every value is written below
        // (each task writes all `seq` rows of its item's `head` columns).
        unsafe { out.set_len(rows * hidden) };
        let dst = Shared(out.as_mut_ptr().cast::<f32>());
        let scale = self.scale;
        let task = |scores: &mut Vec<f32>, t: usize| {
            let (b, h) = (t / heads, t % heads);
            let mask = &mask[b * seq..(b + 1) * seq];
            // Keys after the last attended one have zero weight: never read them.
            let keys = mask.iter().rposition(|&m| m == 0.0).map_or(seq, |p| p + 1);
            scores.resize(seq * keys, 0.0);
            let base = b * seq * width;
            let (q, k, v) = (
                base + h * head,
                base + hidden + h * head,
                base + 2 * hidden + h * head,
            );
            // SAFETY: offsets and strides stay inside `qkv` (rows of `width`), `scores`
            // (seq × keys) and this task's block of `out`.
            unsafe {
                gemm::gemm(
                    seq,
                    keys,
                    head,
                    scores.as_mut_ptr(),
                    1,
                    keys as isize,
                    false,
                    qkv.as_ptr().add(q),
                    1,
                    width as isize,
                    qkv.as_ptr().add(k),
                    width as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
                for row in scores.chunks_exact_mut(keys) {
                    masked_softmax_row(row, &mask[..keys], scale);
                }
                gemm::gemm(
                    seq,
                    head,
                    keys,
                    dst.at(b * seq * hidden + h * head),
                    1,
                    hidden as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    keys as isize,
                    qkv.as_ptr().add(v),
                    1,
                    width as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        };
        if candle_core::utils::get_num_threads() > 1 {
            (0..batch * heads)
                .into_par_iter()
                .for_each_init(Vec::new, task);
        } else {
            let mut scores = Vec::new();
            (0..batch * heads).for_each(|t| task(&mut scores, t));
        }
        let mut out = std::mem::ManuallyDrop::new(out);
        // SAFETY: every value is initialised (above); MaybeUninit<f32> and f32 share a layout.
        let out = unsafe {
            Vec::from_raw_parts(out.as_mut_ptr().cast::<f32>(), out.len(), out.capacity())
        };
        Ok((CpuStorage::F32(out), Shape::from((rows, hidden))))
    }
}

/// Context vectors `[batch · seq, hidden]` from a fused projection `qkv`
/// `[batch · seq, 3 · hidden]` and an additive mask `[batch, seq]` (0 or a large
/// negative number); `scale` multiplies the scores before the softmax.
pub fn attention(
    qkv: &Tensor,
    mask: &Tensor,
    batch: usize,
    heads: usize,
    scale: f32,
) -> Result<Tensor> {
    qkv.contiguous()?.apply_op2_no_bwd(
        &mask.contiguous()?,
        &Attention {
            batch,
            heads,
            scale,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::max_diff;
    use candle_core::{Device, D};

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.61).sin()).collect()
    }

    #[test]
    fn accumulated_product_matches_candle() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(values(9 * 40, 1.0), (9, 40), &dev).unwrap();
        let w = Tensor::from_vec(values(24 * 40, 2.0), (24, 40), &dev).unwrap();
        let b = Tensor::from_vec(values(24, 3.0), 24, &dev).unwrap();
        let reference = x
            .matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&b)
            .unwrap();
        let wt = w.t().unwrap().contiguous().unwrap();
        let dst = bias_rows(&b, 9).unwrap();
        accumulate_product_(&dst, &x, &wt).unwrap();
        assert!(max_diff(&dst, &reference) < 1e-5);
        let r = x.narrow(1, 0, 24).unwrap().contiguous().unwrap();
        let with_residual = plus_bias(&r, &b).unwrap();
        accumulate_product_(&with_residual, &x, &wt).unwrap();
        assert!(max_diff(&with_residual, &(&reference + &r).unwrap()) < 1e-5);
        let wrong = Tensor::zeros((9, 23), candle_core::DType::F32, &dev).unwrap();
        assert!(accumulate_product_(&wrong, &x, &wt).is_err());
    }

    #[test]
    fn attention_matches_the_plain_computation_with_padding() {
        let dev = Device::Cpu;
        let (batch, seq, heads, head) = (3, 11, 4, 8);
        let hidden = heads * head;
        let qkv = Tensor::from_vec(
            values(batch * seq * 3 * hidden, 0.5),
            (batch * seq, 3 * hidden),
            &dev,
        )
        .unwrap();
        let lengths = [11, 7, 1];
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&n| (0..seq).map(move |j| if j < n { 0.0 } else { -1e9 }))
            .collect();
        let mask = Tensor::from_vec(mask, (batch, seq), &dev).unwrap();
        let scale = 1.0 / (head as f32).sqrt();

        let split = |i: usize| {
            qkv.narrow(1, i * hidden, hidden)
                .unwrap()
                .reshape((batch, seq, heads, head))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale as f64)
            .unwrap()
            .broadcast_add(&mask.reshape((batch, 1, 1, seq)).unwrap())
            .unwrap();
        let probs = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
        let reference = probs
            .matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((batch * seq, hidden))
            .unwrap();
        let fused = attention(&qkv, &mask, batch, heads, scale).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-5);
        assert!(attention(&qkv, &mask, 2, heads, scale).is_err());
    }
}
