//! The encoder's element-wise steps at inference, vectorised and done in place.
//!
//! Unfused, GELU and softmax call a scalar `erf` and `exp` per value and write a fresh
//! tensor; the per-op profile in `benches/README.md` put about 11% of the encoder in
//! GELU's erf and 5% in softmax's exp. Here both use polynomial approximations that the
//! compiler vectorises for the widest unit the CPU has (AVX-512 or AVX2, chosen at run
//! time by `multiversion`, a well-kept crate for exactly this), in place. The matrix
//! products around them are in [`super::kernels`]. Training keeps [`super::ops`], which
//! have backward passes; `tests` below hold each op to candle's.

use candle_core::{CpuStorage, DType, InplaceOp1, Layout, Result, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

/// Values per parallel task: large enough to amortise the hand-off to another thread.
const VALUES_PER_TASK: usize = 16 * 1024;

/// True when the fused ops can run on `x` (f32 on the CPU); otherwise the caller
/// takes the unfused path.
pub fn applies_to(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && x.device().is_cpu()
}

pub(super) fn slice_mut<'a>(
    s: &'a mut CpuStorage,
    l: &Layout,
    what: &str,
) -> Result<&'a mut [f32]> {
    let data = match s {
        CpuStorage::F32(d) => d.as_mut_slice(),
        _ => candle_core::bail!("{what}: takes f32 tensors only"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&mut data[a..b]),
        None => candle_core::bail!("{what}: output has to be contiguous"),
    }
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
/// 1.5 * 2^23 + 127: see [`exp`].
const EXP_BIAS_MAGIC: f32 = 12_583_039.0;

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
    // 2^n from the bits: adding 1.5 * 2^23 + 127 puts n + 127 in the low mantissa
    // bits, and the shift moves them into the exponent (no float-to-int conversion,
    // which the compiler would not vectorise).
    let y = y * f32::from_bits((n + EXP_BIAS_MAGIC).to_bits() << 23);
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
fn gelu_values(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = gelu(*v);
    }
}

/// Softmax of `scale * x + mask` over one row, in place. Whole chunks of [`LANES`]
/// values first (fixed-length loops the compiler turns into vector code), then the rest.
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
pub(crate) fn masked_softmax_row(x: &mut [f32], mask: &[f32], scale: f32) {
    let whole = x.len() - x.len() % LANES;
    let (body, tail) = x.split_at_mut(whole);
    let (mask_body, mask_tail) = mask.split_at(whole);
    let mut top = [f32::NEG_INFINITY; LANES];
    for (xs, ms) in body
        .chunks_exact_mut(LANES)
        .zip(mask_body.chunks_exact(LANES))
    {
        for i in 0..LANES {
            let v = xs[i] * scale + ms[i];
            xs[i] = v;
            top[i] = if v > top[i] { v } else { top[i] };
        }
    }
    let mut max = f32::NEG_INFINITY;
    for (v, m) in tail.iter_mut().zip(mask_tail) {
        *v = *v * scale + m;
        max = if *v > max { *v } else { max };
    }
    for t in top {
        max = if t > max { t } else { max };
    }
    let mut sums = [0f32; LANES];
    for xs in body.chunks_exact_mut(LANES) {
        for i in 0..LANES {
            let e = exp(xs[i] - max);
            xs[i] = e;
            sums[i] += e;
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for v in tail.iter_mut() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

// ------------------------------------------------------------ the ops

/// `x = gelu(x)` (BERT's exact, erf GELU).
struct Gelu;

impl InplaceOp1 for Gelu {
    fn name(&self) -> &'static str {
        "stance-fused-gelu"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        let x = slice_mut(s, l, self.name())?;
        par_rows(x, VALUES_PER_TASK, |_, values| gelu_values(values));
        Ok(())
    }
}

/// `x = gelu(x)` in place; `x` must be a fresh, contiguous f32 tensor.
pub fn gelu_(x: &Tensor) -> Result<()> {
    x.inplace_op1(&Gelu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::max_diff;
    use candle_core::{Device, D};

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
    fn gelu_matches_candle() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(spread(7 * 1536), (7, 1536), &dev).unwrap();
        let reference = x.gelu_erf().unwrap();
        let fused = x.copy().unwrap();
        gelu_(&fused).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-5);
    }

    #[test]
    fn masked_softmax_matches_candle_with_padding() {
        let dev = Device::Cpu;
        let (rows, keys) = (40, 37);
        let scores = spread(rows * keys);
        // 28 real keys, then padding; some rows shorter than one vector of lanes.
        let mask: Vec<f32> = (0..keys).map(|j| if j < 28 { 0.0 } else { -1e9 }).collect();
        let scale = 0.125;
        let x = Tensor::from_vec(scores.clone(), (rows, keys), &dev).unwrap();
        let m = Tensor::from_vec(mask.clone(), (1, keys), &dev).unwrap();
        let reference = candle_nn::ops::softmax(
            &(&x * scale as f64).unwrap().broadcast_add(&m).unwrap(),
            D::Minus1,
        )
        .unwrap();
        let mut fused = scores;
        for row in fused.chunks_exact_mut(keys) {
            masked_softmax_row(row, &mask, scale);
        }
        let fused = Tensor::from_vec(fused, (rows, keys), &dev).unwrap();
        assert!(max_diff(&fused, &reference) < 1e-6);
        let padding = fused.narrow(1, 28, keys - 28).unwrap();
        let zeros = padding.zeros_like().unwrap();
        assert_eq!(max_diff(&padding, &zeros), 0.0, "padding gets no attention");
        for n in [1, 5, 16, 17] {
            let mut row = vec![0.5f32; n];
            masked_softmax_row(&mut row, &vec![0.0; n], 1.0);
            assert!(
                row.iter().all(|&p| (p - 1.0 / n as f32).abs() < 1e-6),
                "{n}: {row:?}"
            );
        }
    }
}
