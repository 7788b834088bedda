//! The gaussian over the last two axes, reading halos from neighbour blocks in place.
//!
//! Output rows are processed in strips: the strip's extended rows (block plus halo, boundary
//! mode applied through the plan's index maps) are assembled in a per-thread buffer from the
//! neighbour blocks' rows, filtered vertically into a second buffer, then horizontally straight
//! into the output row. Nothing block-sized is allocated besides the output. Each element sums
//! its taps in one fixed order (symmetric pairs, see `correlate`), so results are bitwise
//! identical whatever the chunking.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use ndarray::ArrayViewMutD;
use rayon::prelude::*;

use super::layout::{contiguous, rows, rows_mut};
use crate::expr::Block;
use crate::plan::TileSpec;

/// One output row, not yet written.
type OutRow<'a> = &'a mut [MaybeUninit<f32>];

/// Output rows per strip.
const STRIP: usize = 32;

thread_local! {
    static BUFFERS: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// One neighbour block as borrowed rows of its last axis.
struct Neighbour<'a> {
    rows: Vec<&'a [f32]>,
    rows_per_batch: usize,
}

impl Neighbour<'_> {
    fn row(&self, batch: usize, y: usize) -> &[f32] {
        self.rows[batch * self.rows_per_batch + y]
    }
}

/// Lanes accumulated in registers at once.
const LANES: usize = 16;

/// `out[j] = 0 + w[0] src(0)[j] + w[1] src(1)[j] + ...`, sixteen columns at a time with the
/// sums held in registers across all taps (one load per tap instead of a load, a store and a
/// load of a running sum).
fn correlate<'s>(w: &[f32], src: impl Fn(usize) -> &'s [f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { correlate_avx2(w, src, out) };
    }
    correlate_generic(w, src, out)
}

/// The same code compiled for AVX2 (8-wide); without FMA contraction the sums round exactly
/// as the SSE2 path's do.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn correlate_avx2<'s>(w: &[f32], src: impl Fn(usize) -> &'s [f32], out: &mut [f32]) {
    correlate_generic(w, src, out)
}

#[inline(always)]
fn correlate_generic<'s>(w: &[f32], src: impl Fn(usize) -> &'s [f32], out: &mut [f32]) {
    let n = out.len();
    let r = w.len() / 2;
    // Gaussian weights are symmetric: pair the taps, w[k] (x[k] + x[2r-k]), for r + 1
    // multiplies instead of 2r + 1. Every output element still sums in one fixed order.
    let symmetric = (0..r).all(|k| w[k] == w[2 * r - k]);
    let mut j = 0;
    while j + LANES <= n {
        let mut acc = [0f32; LANES];
        let row = |k: usize| -> &[f32; LANES] { src(k)[j..j + LANES].try_into().expect("lane width") };
        if symmetric {
            let mid = row(r);
            for l in 0..LANES {
                acc[l] = w[r] * mid[l];
            }
            for (k, &wk) in w.iter().enumerate().take(r) {
                let (a, b) = (row(k), row(2 * r - k));
                for l in 0..LANES {
                    acc[l] += wk * (a[l] + b[l]);
                }
            }
        } else {
            for (k, &wk) in w.iter().enumerate() {
                let s = row(k);
                for l in 0..LANES {
                    acc[l] += wk * s[l];
                }
            }
        }
        out[j..j + LANES].copy_from_slice(&acc);
        j += LANES;
    }
    for (jj, o) in out.iter_mut().enumerate().skip(j) {
        *o = if symmetric {
            let mut acc = w[r] * src(r)[jj];
            for (k, &wk) in w.iter().enumerate().take(r) {
                acc += wk * (src(k)[jj] + src(2 * r - k)[jj]);
            }
            acc
        } else {
            let mut acc = 0f32;
            for (k, &wk) in w.iter().enumerate() {
                acc += wk * src(k)[jj];
            }
            acc
        };
    }
}

/// The inputs as f32 with contiguous rows (rare reversed or transposed views are copied).
fn with_contiguous_rows(inputs: &[&Block]) -> Vec<ndarray::ArcArray<f32, ndarray::IxDyn>> {
    inputs
        .iter()
        .map(|b| {
            let a = b.to_f32();
            if rows(a.view()).is_some() {
                a
            } else {
                ndarray::ArrayD::from_shape_vec(a.shape(), contiguous(a.view()).into_owned())
                    .expect("shape")
                    .into_shared()
            }
        })
        .collect()
}

fn neighbours(owned: &[ndarray::ArcArray<f32, ndarray::IxDyn>]) -> Vec<Neighbour<'_>> {
    owned
        .iter()
        .map(|a| Neighbour {
            rows: rows(a.view()).expect("contiguous rows"),
            rows_per_batch: a.shape()[a.ndim() - 2],
        })
        .collect()
}

/// Writes extended row `e` (block rows plus halo, the boundary mode applied through the plan's
/// index maps) of batch `batch` into `row`, which holds the constant (or anything, for modes
/// without one) beforehand.
fn assemble_row(spec: &TileSpec, neighbours: &[Neighbour<'_>], batch: usize, e: usize, row: &mut [f32]) {
    let Some((iy, ly)) = spec.rows[e] else { return };
    for run in &spec.cols {
        let src = neighbours[iy * spec.nx + run.block].row(batch, ly);
        let dst = &mut row[run.dst..run.dst + run.len];
        match run.step {
            1 => dst.copy_from_slice(&src[run.src..run.src + run.len]),
            0 => dst.fill(src[run.src]),
            step => dst
                .iter_mut()
                .enumerate()
                .for_each(|(k, d)| *d = src[(run.src as isize + step * k as isize) as usize]),
        }
    }
}

/// The output block extended by its halo on the last two axes, `(batch, h + 2ry, w + 2rx)`
/// in C order, the boundary mode applied: what a device filters in two passes. Costs one
/// write of the extended block.
pub fn extended_tile(spec: &TileSpec, inputs: &[&Block]) -> Vec<f32> {
    let owned = with_contiguous_rows(inputs);
    let neighbours = neighbours(&owned);
    let nd = spec.shape.len();
    let (h, w) = (spec.shape[nd - 2], spec.shape[nd - 1]);
    let batch: usize = spec.shape[..nd - 2].iter().product();
    let (n_ext, wext) = (h + spec.wy.len() - 1, w + spec.wx.len() - 1);
    let mut ext = vec![spec.fill.unwrap_or(0.0); batch * n_ext * wext];
    if wext == 0 {
        return ext;
    }
    ext.par_chunks_mut(n_ext * wext).enumerate().for_each(|(b, plane)| {
        for (e, row) in plane.chunks_mut(wext).enumerate() {
            assemble_row(spec, &neighbours, b, e, row);
        }
    });
    ext
}

/// Filters into `dst` (the output block's shape). Returns `false`, writing nothing, when the
/// destination's rows are not contiguous.
pub fn gaussian_tiles_into(spec: &TileSpec, inputs: &[&Block], dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>) -> bool {
    let owned = with_contiguous_rows(inputs);
    let neighbours = neighbours(&owned);
    let Some(mut out_rows) = rows_mut(dst) else {
        return false;
    };
    let nd = spec.shape.len();
    let (h, w) = (spec.shape[nd - 2], spec.shape[nd - 1]);
    if h == 0 || w == 0 {
        return true;
    }
    let (ry2, rx2) = (spec.wy.len() - 1, spec.wx.len() - 1);
    let wext = w + rx2;
    // (batch, first output row, the strip's output rows)
    let mut strips: Vec<(usize, usize, &mut [OutRow<'_>])> = Vec::new();
    let mut rest = out_rows.as_mut_slice();
    let mut b = 0;
    while !rest.is_empty() {
        let (batch_rows, tail) = rest.split_at_mut(h);
        for (s, strip) in batch_rows.chunks_mut(STRIP).enumerate() {
            strips.push((b, s * STRIP, strip));
        }
        rest = tail;
        b += 1;
    }
    strips.into_par_iter().for_each(|(batch, i0, strip)| {
        BUFFERS.with_borrow_mut(|(ext, tmp)| {
            let n_ext = strip.len() + ry2;
            ext.clear();
            ext.resize(n_ext * wext, spec.fill.unwrap_or(0.0));
            for e in 0..n_ext {
                assemble_row(spec, &neighbours, batch, i0 + e, &mut ext[e * wext..(e + 1) * wext]);
            }
            tmp.clear();
            tmp.resize(wext, 0.0);
            for (r, out) in strip.iter_mut().enumerate() {
                correlate(&spec.wy, |k| &ext[(r + k) * wext..(r + k + 1) * wext], tmp);
                if let Some(c) = spec.fill {
                    // scipy pads the horizontal pass with the constant, not the filtered constant
                    tmp[..spec.inside_cols.start.min(wext)].fill(c);
                    tmp[spec.inside_cols.end.min(wext)..].fill(c);
                }
                out.iter_mut().for_each(|d| *d = MaybeUninit::new(0.0));
                // SAFETY: every element was just initialised.
                let out = unsafe { &mut *(&mut **out as *mut [MaybeUninit<f32>] as *mut [f32]) };
                correlate(&spec.wx, |k| &tmp[k..], out);
            }
        })
    });
    true
}
