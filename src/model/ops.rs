//! Differentiable fused operations for training on the CPU.
//!
//! candle-nn's fused `softmax_last_dim` and `layer_norm` have no backward pass,
//! and its dropout draws from an unseeded generator. Composing them from
//! elementary tensor ops works but is slow (every op allocates) and not
//! reproducible, so training uses these: one pass forward, a hand-derived
//! backward, and dropout masks drawn from a seed so a run can be repeated.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

/// The f32 values of a contiguous CPU tensor (the custom ops here and in [`super::fused`],
/// [`super::kernels`] and [`super::int8`] take no other).
pub(super) fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_slice(),
        _ => candle_core::bail!("{what}: takes f32 tensors only"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what}: input has to be contiguous"),
    }
}

fn last_dim(l: &Layout) -> usize {
    *l.dims().last().unwrap_or(&1)
}

/// A new buffer from `f` applied in parallel to each row of `n` values of `x`.
fn map_rows(x: &[f32], n: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let mut dst = vec![0f32; x.len()];
    x.par_chunks(n)
        .zip(dst.par_chunks_mut(n))
        .for_each(|(x, y)| f(x, y));
    dst
}

/// As [`map_rows`], over matching rows of two inputs of one length.
fn map_rows2(
    x: &[f32],
    g: &[f32],
    n: usize,
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut dst = vec![0f32; x.len()];
    x.par_chunks(n)
        .zip(g.par_chunks(n))
        .zip(dst.par_chunks_mut(n))
        .for_each(|((x, g), y)| f(x, g, y));
    dst
}

/// Rows for element-wise ops: large enough to amortise the thread hand-off.
const ELEMENTWISE_ROW: usize = 4096;

/// Softmax over the last dimension, with a backward pass.
struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "stance-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = contiguous(s, l, "softmax")?;
        let dst = map_rows(src, last_dim(l), |x, y| {
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (a, b) in x.iter().zip(y.iter_mut()) {
                *b = (a - max).exp();
                sum += *b;
            }
            let inv = 1.0 / sum;
            y.iter_mut().for_each(|v| *v *= inv);
        });
        Ok((CpuStorage::F32(dst), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        // dx = y * (gy - sum(gy * y))
        let dot = (gy * y)?.sum_keepdim(D::Minus1)?;
        Ok(Some(y.mul(&gy.broadcast_sub(&dot)?)?))
    }
}

/// Softmax over the last dimension that gradients flow through.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

/// Per-row mean and inverse standard deviation.
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// Layer normalisation over the last dimension, with a backward pass.
struct LayerNormOp {
    eps: f32,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "stance-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (
            contiguous(s1, l1, "layer norm")?,
            contiguous(s2, l2, "layer norm")?,
            contiguous(s3, l3, "layer norm")?,
        );
        let dst = map_rows(x, last_dim(l1), |x, y| {
            let (mean, rstd) = moments(x, self.eps);
            for i in 0..x.len() {
                y[i] = (x[i] - mean) * rstd * w[i] + b[i];
            }
        });
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let x = x.contiguous()?;
        let gy = gy.contiguous()?;
        let xhat = x.apply_op1_no_bwd(&Normalize { eps: self.eps })?;
        let rows = x.elem_count() / w.elem_count();
        let flat = |t: &Tensor| t.reshape((rows, w.elem_count()));
        let dw = (flat(&gy)? * flat(&xhat)?)?.sum(0)?;
        let db = flat(&gy)?.sum(0)?;
        let dx = x.apply_op3_no_bwd(w, &gy, &LayerNormGradX { eps: self.eps })?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// `(x - mean) * rstd` per row (the normalised input, for the weight gradient).
struct Normalize {
    eps: f32,
}

impl CustomOp1 for Normalize {
    fn name(&self) -> &'static str {
        "stance-normalize"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, "normalize")?;
        let dst = map_rows(x, last_dim(l), |x, y| {
            let (mean, rstd) = moments(x, self.eps);
            for (a, b) in x.iter().zip(y.iter_mut()) {
                *b = (a - mean) * rstd;
            }
        });
        Ok((CpuStorage::F32(dst), l.shape().clone()))
    }
}

/// The input gradient of layer normalisation:
/// `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))` with `g = gy * w`.
struct LayerNormGradX {
    eps: f32,
}

impl CustomOp3 for LayerNormGradX {
    fn name(&self) -> &'static str {
        "stance-layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, gy) = (
            contiguous(s1, l1, "layer norm grad")?,
            contiguous(s2, l2, "layer norm grad")?,
            contiguous(s3, l3, "layer norm grad")?,
        );
        let n = last_dim(l1);
        let dst = map_rows2(x, gy, n, |x, gy, dx| {
            let (mean, rstd) = moments(x, self.eps);
            let (mut mg, mut mgx) = (0f32, 0f32);
            for i in 0..n {
                let g = gy[i] * w[i];
                let xhat = (x[i] - mean) * rstd;
                mg += g;
                mgx += g * xhat;
            }
            mg /= n as f32;
            mgx /= n as f32;
            for i in 0..n {
                let xhat = (x[i] - mean) * rstd;
                dx[i] = rstd * (gy[i] * w[i] - mg - xhat * mgx);
            }
        });
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }
}

/// Layer normalisation over the last dimension that gradients flow through.
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(w, b, LayerNormOp { eps: eps as f32 })
}

/// Adds a bias row to every row of `x`; its backward sums the gradient over
/// rows in one contiguous pass (candle's broadcast backward reduces a strided view).
struct BiasAdd;

impl candle_core::CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "stance-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (
            contiguous(s1, l1, "bias add")?,
            contiguous(s2, l2, "bias add")?,
        );
        let dst = map_rows(x, b.len(), |x, y| {
            for i in 0..x.len() {
                y[i] = x[i] + b[i];
            }
        });
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = gy
            .contiguous()?
            .apply_op1_no_bwd(&ColumnSum(b.elem_count()))?;
        Ok((Some(gy.clone()), Some(db)))
    }
}

/// Sums rows of width `.0`: `[rows * n] -> [n]`.
struct ColumnSum(usize);

impl CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "stance-column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, "column sum")?;
        let n = self.0;
        let mut sum = vec![0f32; n];
        for row in x.chunks(n) {
            for i in 0..n {
                sum[i] += row[i];
            }
        }
        Ok((CpuStorage::F32(sum), Shape::from(n)))
    }
}

/// `x + b` with `b` broadcast over the rows of `x` (last dimensions equal).
pub fn bias_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd)
}

const SQRT_2: f32 = std::f32::consts::SQRT_2;
/// 1 / sqrt(2 pi)
const INV_SQRT_2PI: f32 = 0.398_942_3;

/// GELU (the exact, erf form of BERT) with a one-pass backward.
struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "stance-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, "gelu")?;
        let dst = map_rows(x, ELEMENTWISE_ROW, |x, y| {
            for (a, b) in x.iter().zip(y.iter_mut()) {
                *b = 0.5 * a * (1.0 + libm::erff(a / SQRT_2));
            }
        });
        Ok((CpuStorage::F32(dst), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            x.contiguous()?
                .apply_op2_no_bwd(&gy.contiguous()?, &GeluGrad)?,
        ))
    }
}

/// `gy * d gelu(x) / dx`.
struct GeluGrad;

impl candle_core::CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "stance-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, gy) = (
            contiguous(s1, l1, "gelu grad")?,
            contiguous(s2, l2, "gelu grad")?,
        );
        let dst = map_rows2(x, gy, ELEMENTWISE_ROW, |x, g, d| {
            for i in 0..x.len() {
                let a = x[i];
                let cdf = 0.5 * (1.0 + libm::erff(a / SQRT_2));
                let pdf = INV_SQRT_2PI * (-0.5 * a * a).exp();
                d[i] = g[i] * (cdf + a * pdf);
            }
        });
        Ok((CpuStorage::F32(dst), l1.shape().clone()))
    }
}

/// GELU that gradients flow through.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

/// SplitMix64: a small, fast generator whose output depends only on its seed,
/// so dropout masks and shuffles are the same on every machine and version.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Standard normal (Box-Muller).
    pub fn next_normal(&mut self) -> f32 {
        let u1 = (self.next_f32() as f64).max(1e-12);
        let u2 = self.next_f32() as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Inverted dropout whose mask is a function of `seed`, so the backward pass
/// redraws the same mask instead of storing it.
struct Dropout {
    p: f32,
    seed: u64,
}

/// Elements per independently seeded block (keeps masks identical whatever the thread count).
const DROPOUT_BLOCK: usize = 4096;

impl Dropout {
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        let scale = 1.0 / (1.0 - self.p);
        let threshold = (self.p as f64 * (1u64 << 32) as f64) as u64;
        x.par_chunks(DROPOUT_BLOCK)
            .zip(out.par_chunks_mut(DROPOUT_BLOCK))
            .enumerate()
            .for_each(|(block, (x, y))| {
                let mut rng =
                    SplitMix64(self.seed ^ (block as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
                for (a, b) in x.iter().zip(y.iter_mut()) {
                    let keep = (rng.next_u64() >> 32) >= threshold;
                    *b = if keep { a * scale } else { 0.0 };
                }
            });
    }
}

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "stance-dropout"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, "dropout")?;
        let mut dst = vec![0f32; x.len()];
        self.apply(x, &mut dst);
        Ok((CpuStorage::F32(dst), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, gy: &Tensor) -> Result<Option<Tensor>> {
        let same = Dropout {
            p: self.p,
            seed: self.seed,
        };
        Ok(Some(gy.contiguous()?.apply_op1_no_bwd(&same)?))
    }
}

/// Dropout with probability `p`, reproducible from `seed`.
pub fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(x.clone());
    }
    x.contiguous()?.apply_op1(Dropout { p, seed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn close(a: &Tensor, b: &Tensor, tol: f32) {
        let d = crate::model::test_util::max_diff(a, b);
        assert!(d < tol, "max difference {d}");
    }

    fn input() -> Var {
        let data: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect();
        Var::from_vec(data, (2, 3, 4), &Device::Cpu).unwrap()
    }

    #[test]
    fn softmax_matches_candle_forward_and_backward() {
        let x = input();
        let w = Tensor::arange(0f32, 24.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let ours = softmax_last_dim(x.as_tensor()).unwrap();
        let reference = candle_nn::ops::softmax(x.as_tensor(), D::Minus1).unwrap();
        close(&ours, &reference, 1e-6);
        let g1 = (ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (reference * &w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        close(g1.get(&x).unwrap(), g2.get(&x).unwrap(), 1e-5);
    }

    #[test]
    fn layer_norm_matches_composed_ops_forward_and_backward() {
        let x = input();
        let w = Var::from_vec(vec![0.5f32, 1.0, 1.5, 2.0], 4, &Device::Cpu).unwrap();
        let b = Var::from_vec(vec![0.1f32, -0.1, 0.2, 0.0], 4, &Device::Cpu).unwrap();
        let ours = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let slow =
            candle_nn::ops::layer_norm_slow(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5)
                .unwrap();
        close(&ours, &slow, 1e-5);
        let weights = Tensor::arange(0f32, 24.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let g1 = (ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g2 = (slow * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&x, &w, &b] {
            close(g1.get(v).unwrap(), g2.get(v).unwrap(), 1e-3);
        }
    }

    #[test]
    fn bias_add_and_gelu_match_candle_forward_and_backward() {
        let x = input();
        let b = Var::from_vec(vec![0.5f32, -1.0, 1.5, 2.0], 4, &Device::Cpu).unwrap();
        let weights = Tensor::arange(0f32, 24.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let ours = gelu(&bias_add(x.as_tensor(), b.as_tensor()).unwrap()).unwrap();
        let reference = x
            .as_tensor()
            .broadcast_add(b.as_tensor())
            .unwrap()
            .gelu_erf()
            .unwrap();
        close(&ours, &reference, 1e-5);
        let g1 = (ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g2 = (reference * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for v in [&x, &b] {
            close(g1.get(v).unwrap(), g2.get(v).unwrap(), 1e-4);
        }
    }

    #[test]
    fn dropout_is_reproducible_scaled_and_its_gradient_uses_the_same_mask() {
        let x = Var::from_vec(vec![1f32; 10_000], 10_000, &Device::Cpu).unwrap();
        let a = dropout(x.as_tensor(), 0.25, 42).unwrap();
        let b = dropout(x.as_tensor(), 0.25, 42).unwrap();
        let c = dropout(x.as_tensor(), 0.25, 43).unwrap();
        let (va, vb, vc) = (
            a.to_vec1::<f32>().unwrap(),
            b.to_vec1::<f32>().unwrap(),
            c.to_vec1::<f32>().unwrap(),
        );
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        let dropped = va.iter().filter(|v| **v == 0.0).count() as f32 / 10_000.0;
        assert!((dropped - 0.25).abs() < 0.02, "dropped {dropped}");
        assert!(va
            .iter()
            .all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6));
        let g = a.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&x).unwrap().to_vec1::<f32>().unwrap(), va);
    }
}
