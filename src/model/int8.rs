//! Dense layers in 8-bit integers on CPUs with AVX-512 VNNI (`--precision int8`, the
//! default there).
//!
//! Dynamic quantisation, as onnxruntime's: weights once, symmetric per output column
//! (`i8`, scale `max |w| / 127`); activations per row at run time, asymmetric (`u8` with
//! a zero point), so `x · w ≈ sx · sw · (Σ xq wq − zp Σ wq)`. VNNI's `vpdpbusd` multiplies
//! 64 `u8 × i8` pairs and adds them in fours into 16 `i32` lanes in one instruction,
//! four times the multiply-adds of an f32 FMA. No Rust crate offers an int8 GEMM with
//! VNNI (gemm has none), hence `std::arch` here. Weights are packed so that one 64-byte
//! load holds 4 consecutive inputs of 16 output columns, the operand layout `vpdpbusd`
//! wants. CPUs without VNNI keep the f32 path ([`available`] says which).

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

use super::fused::slice_mut;
use super::ops::contiguous;

/// Output columns per vector: 16 `i32` lanes.
const LANES: usize = 16;
/// Output columns per block of the micro-kernel: two vectors.
const BLOCK_COLS: usize = 2 * LANES;
/// Rows per block of the micro-kernel (4 × 2 accumulators stay in registers).
const BLOCK_ROWS: usize = 4;
/// Rows per parallel task.
const ROWS_PER_TASK: usize = 64;

/// True when this CPU runs the int8 kernels (AVX-512 with VNNI).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A dense layer's weight `[n, k]`, quantised and packed for the kernel.
#[derive(Debug, Clone)]
pub struct QuantizedWeight {
    n: usize,
    k: usize,
    /// `k` rounded up to a multiple of 4.
    k4: usize,
    /// `n` rounded up to a multiple of [`BLOCK_COLS`].
    n_pad: usize,
    /// `[n_pad / BLOCK_COLS][k4 / 4][BLOCK_COLS][4]`: per block of columns (contiguous, so
    /// a block stays in cache while every row passes), four consecutive inputs of each
    /// column side by side.
    packed: Vec<i8>,
    /// Per column: `max |w| / 127`.
    scales: Vec<f32>,
    /// Per column: `Σ wq`, to remove the activations' zero point.
    sums: Vec<i32>,
}

impl QuantizedWeight {
    /// Quantises `w` (`[n, k]`, a checkpoint's layout: one row per output).
    pub fn new(w: &Tensor) -> Result<Self> {
        let (n, k) = w.dims2()?;
        let w = w.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
        let k4 = k.div_ceil(4) * 4;
        let n_pad = n.div_ceil(BLOCK_COLS) * BLOCK_COLS;
        let mut packed = vec![0i8; k4 * n_pad];
        let mut scales = vec![0f32; n_pad];
        let mut sums = vec![0i32; n_pad];
        for (j, row) in w.iter().enumerate() {
            let top = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if top > 0.0 { top / 127.0 } else { 1.0 };
            scales[j] = scale;
            for (i, v) in row.iter().enumerate() {
                let q = (v / scale).round().clamp(-127.0, 127.0) as i8;
                packed[packed_index(i, j, k4)] = q;
                sums[j] += q as i32;
            }
        }
        Ok(QuantizedWeight {
            n,
            k,
            k4,
            n_pad,
            packed,
            scales,
            sums,
        })
    }
}

/// Where input `i` of column `j` sits in [`QuantizedWeight::packed`].
fn packed_index(i: usize, j: usize, k4: usize) -> usize {
    (j / BLOCK_COLS) * k4 * BLOCK_COLS + (i / 4) * BLOCK_COLS * 4 + (j % BLOCK_COLS) * 4 + i % 4
}

/// One row's activations as `u8`: scale and zero point.
struct QuantizedRow {
    scale: f32,
    zero: i32,
}

/// Lanes of the partial minima and maxima below.
const REDUCE_LANES: usize = 16;
/// 1.5 * 2^23: adding it rounds an f32 in [0, 2^22) to the nearest integer, which then
/// sits in the low mantissa bits (no float-to-int conversion, which would not vectorise).
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Quantises `x` (`k` values) into `out` (`k4` bytes, zero-padded).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl", "x86_64+avx2+fma"))]
fn quantize_row(x: &[f32], out: &mut [u8]) -> QuantizedRow {
    let mut lo = [0f32; REDUCE_LANES];
    let mut hi = [0f32; REDUCE_LANES];
    let whole = x.len() - x.len() % REDUCE_LANES;
    for chunk in x[..whole].chunks_exact(REDUCE_LANES) {
        for i in 0..REDUCE_LANES {
            lo[i] = if chunk[i] < lo[i] { chunk[i] } else { lo[i] };
            hi[i] = if chunk[i] > hi[i] { chunk[i] } else { hi[i] };
        }
    }
    let (mut lo, mut hi) = (
        lo.iter().fold(0f32, |a, &b| a.min(b)),
        hi.iter().fold(0f32, |a, &b| a.max(b)),
    );
    for &v in &x[whole..] {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zero = (-lo / scale + ROUND_MAGIC - ROUND_MAGIC).clamp(0.0, 255.0);
    let inv = 1.0 / scale;
    for (q, &v) in out.iter_mut().zip(x) {
        let t = v * inv + zero;
        let t = t.clamp(0.0, 255.0);
        *q = ((t + ROUND_MAGIC).to_bits() & 0xff) as u8;
    }
    for q in out[x.len()..].iter_mut() {
        *q = 0;
    }
    QuantizedRow {
        scale,
        zero: ((zero + ROUND_MAGIC).to_bits() & 0xff) as i32,
    }
}

/// `dst += x · wᵀ` with `w` quantised: `dst` `[m, n]`, `x` `[m, k]`.
struct AccumulateInt8<'a> {
    w: &'a QuantizedWeight,
}

impl InplaceOp2 for AccumulateInt8<'_> {
    fn name(&self) -> &'static str {
        "stance-int8-accumulate-product"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let w = self.w;
        let (m, n) = l1.shape().dims2()?;
        let (xm, k) = l2.shape().dims2()?;
        if xm != m || n != w.n || k != w.k {
            candle_core::bail!(
                "{}: [{m}, {n}] += [{xm}, {k}] x [{}, {}]^T",
                self.name(),
                w.n,
                w.k
            );
        }
        if !available() {
            candle_core::bail!("{}: this CPU has no AVX-512 VNNI", self.name());
        }
        let x = contiguous(s2, l2, self.name())?;
        let dst = slice_mut(s1, l1, self.name())?;
        let task = |(t, dst): (usize, &mut [f32])| {
            let first = t * ROWS_PER_TASK;
            let rows = dst.len() / n;
            // The task's rows quantised once, padded to whole blocks with zeros.
            let padded = rows.div_ceil(BLOCK_ROWS) * BLOCK_ROWS;
            let mut xq = vec![0u8; padded * w.k4];
            let mut params = vec![(0f32, 0i32); padded];
            for r in 0..rows {
                let row = first + r;
                let q = quantize_row(
                    &x[row * k..(row + 1) * k],
                    &mut xq[r * w.k4..(r + 1) * w.k4],
                );
                params[r] = (q.scale, q.zero);
            }
            // Columns outermost: a block of weights stays in cache while the rows pass.
            for c0 in (0..w.n_pad).step_by(BLOCK_COLS) {
                for r0 in (0..rows).step_by(BLOCK_ROWS) {
                    let block = (rows - r0).min(BLOCK_ROWS);
                    // SAFETY: `available()` checked the CPU; the tile reads BLOCK_ROWS rows
                    // of `xq` from r0 (padded), one block of `w.packed`, and writes `block`
                    // rows of `dst` from r0, columns c0.. below n.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        tile(
                            w,
                            &xq[r0 * w.k4..],
                            &params[r0..r0 + BLOCK_ROWS],
                            &mut dst[r0 * n..],
                            c0,
                            block,
                        )
                    };
                }
            }
        };
        let chunks = dst.chunks_mut(ROWS_PER_TASK * n).enumerate();
        if candle_core::utils::get_num_threads() > 1 {
            chunks.collect::<Vec<_>>().into_par_iter().for_each(task);
        } else {
            chunks.for_each(task);
        }
        Ok(())
    }
}

/// One tile: `dst[r][j] += sx_r sw_j (Σ_i xq[r][i] wq[j][i] − zp_r Σ_i wq[j][i])` for the
/// first `block` of [`BLOCK_ROWS`] rows and the [`BLOCK_COLS`] columns from `c0`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile(
    w: &QuantizedWeight,
    xq: &[u8],
    rows: &[(f32, i32)],
    dst: &mut [f32],
    c0: usize,
    block: usize,
) {
    use std::arch::x86_64::*;
    let n = w.n;
    let quads = w.k4 / 4;
    let weights = w.packed.as_ptr().add(c0 * w.k4);
    let mut acc = [[_mm512_setzero_si512(); 2]; BLOCK_ROWS];
    for q in 0..quads {
        let base = weights.add(q * BLOCK_COLS * 4);
        let w0 = _mm512_loadu_si512(base as *const _);
        let w1 = _mm512_loadu_si512(base.add(64) as *const _);
        for (r, a) in acc.iter_mut().enumerate() {
            let four = (xq.as_ptr().add(r * w.k4 + q * 4) as *const i32).read_unaligned();
            let xb = _mm512_set1_epi32(four);
            a[0] = _mm512_dpbusd_epi32(a[0], xb, w0);
            a[1] = _mm512_dpbusd_epi32(a[1], xb, w1);
        }
    }
    for (r, a) in acc.iter().enumerate().take(block) {
        let (sx, zp) = rows[r];
        for (h, v) in a.iter().enumerate() {
            let col = c0 + h * LANES;
            if col >= n {
                break;
            }
            let sums = _mm512_loadu_si512(w.sums.as_ptr().add(col) as *const _);
            let exact = _mm512_sub_epi32(*v, _mm512_mullo_epi32(_mm512_set1_epi32(zp), sums));
            let scales = _mm512_mul_ps(
                _mm512_loadu_ps(w.scales.as_ptr().add(col)),
                _mm512_set1_ps(sx),
            );
            let y = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), scales);
            let live = (n - col).min(LANES);
            let mask: __mmask16 = if live == LANES {
                0xffff
            } else {
                (1u16 << live) - 1
            };
            let out = dst.as_mut_ptr().add(r * n + col);
            let old = _mm512_maskz_loadu_ps(mask, out);
            _mm512_mask_storeu_ps(out, mask, _mm512_add_ps(old, y));
        }
    }
}

/// `dst += x · wᵀ` in place with int8 weights (`dst` already holds bias or residual).
pub fn accumulate_product_(dst: &Tensor, x: &Tensor, w: &QuantizedWeight) -> Result<()> {
    dst.inplace_op2(&x.contiguous()?, &AccumulateInt8 { w })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::{max_abs, max_diff};
    use candle_core::Device;

    #[test]
    fn int8_products_are_close_to_f32() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
            return;
        }
        let dev = Device::Cpu;
        // Shapes off the block sizes: rows not a multiple of 4 or 64, k not of 4, n not of 32.
        let (m, k, n) = (70, 41, 37);
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i as f32) * 0.37).sin() * 3.0)
            .collect();
        let w: Vec<f32> = (0..n * k)
            .map(|i| ((i as f32) * 0.11).cos() * 0.2)
            .collect();
        let x = Tensor::from_vec(x, (m, k), &dev).unwrap();
        let w = Tensor::from_vec(w, (n, k), &dev).unwrap();
        let reference = x.matmul(&w.t().unwrap()).unwrap();
        let q = QuantizedWeight::new(&w).unwrap();
        let dst = Tensor::ones((m, n), candle_core::DType::F32, &dev).unwrap();
        accumulate_product_(&dst, &x, &q).unwrap();
        let got = (dst - 1.0).unwrap();
        let err = max_diff(&got, &reference);
        let top = max_abs(&reference);
        // 8-bit rounding on both sides: about 1% of the largest output.
        assert!(err < 0.02 * top, "int8 off by {err} (largest output {top})");
        assert!(err > 0.0, "a quantised product is not exact");
    }
}
