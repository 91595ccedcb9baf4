//! The encoder's element-wise steps at inference, fused and done in place on the CPU.
//!
//! Unfused, every step reads a whole activation and writes a fresh one (bias, then GELU;
//! scale, then mask, then softmax; bias, then residual), and GELU and softmax call a scalar
//! `erf` and `exp` per value. The per-op profile in `benches/README.md` put about 11% of the
//! encoder in GELU's erf, 5% in softmax's exp and 8% in zeroing and copying buffers. These
//! ops write into the output of the matrix product before them, in one pass, with polynomial
//! erf and exp that the compiler vectorises for the widest unit the CPU has (AVX-512 or
//! AVX2, chosen at run time by `multiversion`). Training keeps [`super::ops`], which have
//! backward passes; `tests` below hold each op to the unfused one.

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

/// Values per parallel task: large enough to amortise the hand-off to another thread.
const VALUES_PER_TASK: usize = 16 * 1024;

/// True when the fused ops can run on `x` (f32 on the CPU); otherwise the caller
/// takes the unfused path.
pub fn applies_to(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && x.device().is_cpu()
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout, what: &str) -> Result<&'a mut [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_mut_slice(),
        _ => candle_core::bail!("{what}: fused ops take f32 tensors"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&mut data[a..b]),
        None => candle_core::bail!("{what}: output has to be contiguous"),
    }
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_slice(),
        _ => candle_core::bail!("{what}: fused ops take f32 tensors"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{what}: input has to be contiguous"),
    }
}

fn row_len(l: &Layout) -> usize {
    *l.dims().last().unwrap_or(&1)
}

/// Runs `f(first_row, rows)` over groups of whole rows of `row` values, in parallel.
fn par_rows(x: &mut [f32], row: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let row = row.max(1);
    let rows_per_task = (VALUES_PER_TASK / row).max(1);
    x.par_chunks_mut(rows_per_task * row)
        .enumerate()
        .for_each(|(i, chunk)| f(i * rows_per_task, chunk));
}

// ------------------------------------------------------------ vectorisable math

/// erf for f32: a rational approximation, odd numerator of degree 13 over an even
/// denominator of degree 8, on x clamped to [-4, 4] (beyond, erf is ±1 in f32). The
/// coefficients are the ones Eigen and XLA use; the error is a few ulp.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_473_9e-2;
    x * p / q
}

/// exp for f32 (Cephes' `expf`): 2^n times a degree-6 polynomial on the remainder,
/// relative error about 1e-7; zero below -87.3 (where f32's normal numbers end).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut y = 1.987_569_1e-4 * r + 1.398_199_9e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 1.666_666_5e-1;
    y = y * r + 0.5;
    y = y * r * r + r + 1.0;
    let y = y * f32::from_bits(((n as i32 + 127) << 23) as u32);
    // Exactly zero for masked positions, as the unfused softmax gives.
    if x <= -87.3 {
        0.0
    } else {
        y
    }
}

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Lanes of the partial sums below: one AVX-512 register of f32.
const LANES: usize = 16;

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn bias_gelu_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v = gelu(*v + b);
        }
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn bias_add_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn bias_residual_rows(x: &mut [f32], bias: &[f32], residual: &[f32]) {
    for (row, res) in x
        .chunks_exact_mut(bias.len())
        .zip(residual.chunks_exact(bias.len()))
    {
        for ((v, b), r) in row.iter_mut().zip(bias).zip(res) {
            *v += b + r;
        }
    }
}

/// Softmax of `scale * x + mask` over one row, in place.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn masked_softmax_row(x: &mut [f32], mask: &[f32], scale: f32) {
    let mut max = [f32::NEG_INFINITY; LANES];
    for (xs, ms) in x.chunks_mut(LANES).zip(mask.chunks(LANES)) {
        for ((v, m), top) in xs.iter_mut().zip(ms).zip(max.iter_mut()) {
            *v = *v * scale + m;
            *top = top.max(*v);
        }
    }
    let max = max.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = [0f32; LANES];
    for xs in x.chunks_mut(LANES) {
        for (v, s) in xs.iter_mut().zip(sum.iter_mut()) {
            *v = exp(*v - max);
            *s += *v;
        }
    }
    let inv = 1.0 / sum.iter().sum::<f32>();
    for v in x.iter_mut() {
        *v *= inv;
    }
}

// ------------------------------------------------------------ the ops

/// `x = gelu(x + b)` (BERT's exact, erf GELU), `b` broadcast over the rows of `x`.
struct BiasGelu;

impl InplaceOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "stance-fused-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let bias = slice(s2, l2, self.name())?;
        let n = row_len(l1);
        if bias.len() != n {
            candle_core::bail!("{}: bias of {} for rows of {n}", self.name(), bias.len());
        }
        let x = slice_mut(s1, l1, self.name())?;
        par_rows(x, n, |_, rows| bias_gelu_rows(rows, bias));
        Ok(())
    }
}

/// `x = x + b`, `b` broadcast over the rows of `x`.
struct BiasAdd;

impl InplaceOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "stance-fused-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let bias = slice(s2, l2, self.name())?;
        let n = row_len(l1);
        if bias.len() != n {
            candle_core::bail!("{}: bias of {} for rows of {n}", self.name(), bias.len());
        }
        let x = slice_mut(s1, l1, self.name())?;
        par_rows(x, n, |_, rows| bias_add_rows(rows, bias));
        Ok(())
    }
}

/// `x = x + b + r`: a dense layer's bias and the residual it is added to.
struct BiasResidual;

impl InplaceOp3 for BiasResidual {
    fn name(&self) -> &'static str {
        "stance-fused-bias-residual"
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
        let bias = slice(s2, l2, self.name())?;
        let residual = slice(s3, l3, self.name())?;
        let n = row_len(l1);
        if bias.len() != n || residual.len() != l1.shape().elem_count() {
            candle_core::bail!("{}: shapes do not match", self.name());
        }
        let x = slice_mut(s1, l1, self.name())?;
        par_rows(x, n, |first, rows| {
            let res = &residual[first * n..first * n + rows.len()];
            bias_residual_rows(rows, bias, res)
        });
        Ok(())
    }
}

/// `scores = softmax(scale * scores + mask)` over the last dimension of attention
/// scores `[batch, heads, queries, keys]`, with an additive mask `[batch, keys]`.
struct MaskedSoftmax {
    scale: f32,
}

impl InplaceOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "stance-fused-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let mask = slice(s2, l2, self.name())?;
        let (batch, heads, queries, keys) = l1.shape().dims4()?;
        if mask.len() != batch * keys {
            candle_core::bail!(
                "{}: mask of {} for {batch} x {keys}",
                self.name(),
                mask.len()
            );
        }
        let rows_per_item = heads * queries;
        let scale = self.scale;
        let x = slice_mut(s1, l1, self.name())?;
        par_rows(x, keys, |first, rows| {
            for (i, row) in rows.chunks_exact_mut(keys).enumerate() {
                let item = (first + i) / rows_per_item;
                masked_softmax_row(row, &mask[item * keys..(item + 1) * keys], scale);
            }
        });
        Ok(())
    }
}

/// `x = gelu(x + bias)` in place; `x` must be a fresh, contiguous f32 tensor.
pub fn bias_gelu_(x: &Tensor, bias: &Tensor) -> Result<()> {
    x.inplace_op2(bias, &BiasGelu)
}

/// `x = x + bias` in place.
pub fn bias_add_(x: &Tensor, bias: &Tensor) -> Result<()> {
    x.inplace_op2(bias, &BiasAdd)
}

/// `x = x + bias + residual` in place.
pub fn bias_residual_(x: &Tensor, bias: &Tensor, residual: &Tensor) -> Result<()> {
    x.inplace_op3(bias, &residual.contiguous()?, &BiasResidual)
}

/// `scores = softmax(scale * scores + mask)` in place (`mask`: `[batch, keys]`, 0 or a
/// large negative number).
pub fn masked_softmax_(scores: &Tensor, mask: &Tensor, scale: f32) -> Result<()> {
    scores.inplace_op2(&mask.contiguous()?, &MaskedSoftmax { scale })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Values spread over the range activations take, and beyond the clamps.
    fn spread(n: usize) -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37).sin() * 12.0).collect()
    }

    #[test]
    fn erf_and_exp_match_libm() {
        let mut worst_erf = 0f32;
        let mut worst_exp = 0f32;
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.0005;
            worst_erf = worst_erf.max((erf(x) - libm::erff(x)).abs());
            let y = i as f32 * 0.004;
            let reference = libm::expf(y);
            worst_exp = worst_exp.max((exp(y) - reference).abs() / reference);
        }
        assert!(worst_erf < 1e-6, "erf off by {worst_erf}");
        assert!(worst_exp < 1e-6, "exp off by a relative {worst_exp}");
        assert!((erf(9.0) - 1.0).abs() < 1e-6 && (erf(-9.0) + 1.0).abs() < 1e-6);
        assert_eq!(exp(-1e9), 0.0);
    }

    #[test]
    fn bias_gelu_matches_candle() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(spread(7 * 1536), (7, 1536), &dev).unwrap();
        let b = Tensor::from_vec(
            spread(1536)[..].iter().map(|v| v / 7.0).collect(),
            1536,
            &dev,
        )
        .unwrap();
        let reference = x.broadcast_add(&b).unwrap().gelu_erf().unwrap();
        let fused = x.copy().unwrap();
        bias_gelu_(&fused, &b).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-5);
    }

    #[test]
    fn bias_residual_matches_candle() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(spread(5 * 384), (5, 384), &dev).unwrap();
        let r = x.sin().unwrap();
        let b = Tensor::from_vec(spread(384), 384, &dev).unwrap();
        let reference = x.broadcast_add(&b).unwrap().add(&r).unwrap();
        let fused = x.copy().unwrap();
        bias_residual_(&fused, &b, &r).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-5);
    }

    #[test]
    fn masked_softmax_matches_candle_with_padding() {
        let dev = Device::Cpu;
        let (batch, heads, seq) = (3, 12, 37);
        let scores = Tensor::from_vec(
            spread(batch * heads * seq * seq),
            (batch, heads, seq, seq),
            &dev,
        )
        .unwrap();
        // Item i has 37 - 9 i real tokens; the rest is padding.
        let mask: Vec<f32> = (0..batch)
            .flat_map(|i| (0..seq).map(move |j| if j < seq - 9 * i { 0.0 } else { -1e9 }))
            .collect();
        let mask = Tensor::from_vec(mask, (batch, seq), &dev).unwrap();
        let scale = 0.125;
        let reference = candle_nn::ops::softmax(
            &(&scores * scale as f64)
                .unwrap()
                .broadcast_add(&mask.reshape((batch, 1, 1, seq)).unwrap())
                .unwrap(),
            D::Minus1,
        )
        .unwrap();
        let fused = scores.copy().unwrap();
        masked_softmax_(&fused, &mask, scale).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-6);
        let padded = fused
            .narrow(0, 2, 1)
            .unwrap()
            .narrow(3, seq - 18, 18)
            .unwrap();
        let zeros = padded.zeros_like().unwrap();
        assert_eq!(max_diff(&padded, &zeros), 0.0, "padding gets no attention");
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 8), DType::F32, &dev).unwrap();
        assert!(bias_gelu_(&x, &Tensor::zeros(7, DType::F32, &dev).unwrap()).is_err());
        let s = Tensor::zeros((2, 1, 3, 3), DType::F32, &dev).unwrap();
        assert!(
            masked_softmax_(&s, &Tensor::zeros((1, 3), DType::F32, &dev).unwrap(), 1.0).is_err()
        );
    }
}
