//! The index of the first minimum or maximum along whole axes (numpy's `argmin`/`argmax` and
//! `nanargmin`/`nanargmax`), per pixel: the date of peak greenness of an NDVI series.
//!
//! The reduced axes are walked as one flat index in C order (numpy's order for `axis=None`),
//! each step updating a running best and its index for a run of pixels: one pass over the
//! values, vectorisable compares, parallel over runs of pixels.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;

use super::median::StepRows;

/// Pixels per parallel run: big enough to amortise a task, small enough that a run's state
/// (best and index, 4 KiB each) stays in L1 while every step streams past it.
const RUN: usize = 1024;

/// The index (as f32) of the first maximum (`find_max`) or minimum of `x` over `axes`, the
/// reduced axes flattened in C order. Skipping NaN (`skip_nan`), an all-NaN pixel gives NaN;
/// otherwise the first NaN is the extreme, as numpy's `argmax` makes it. The axes must not
/// be empty (the caller refuses a zero-size reduction).
///
/// Costs one pass over `x`, parallel over runs of pixels (plus one copy when the reduced axes
/// do not lead, or the kept rows are not contiguous).
pub(super) fn arg_extreme_reduce(
    find_max: bool,
    skip_nan: bool,
    x: &ArrayViewD<'_, f32>,
    axes: &[usize],
) -> ArrayD<f32> {
    let ndim = x.ndim();
    let kept: Vec<usize> = (0..ndim).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| x.shape()[a]).collect();
    let p: usize = out_shape.iter().product();
    let r: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let mut out = vec![f32::NAN; p];
    if p > 0 && r > 0 {
        let steps = StepRows::of(x, axes);
        let (rows, width) = steps.rows();
        let per_step = p / width;
        out.par_chunks_mut(width).enumerate().for_each(|(q, out_row)| {
            out_row.par_chunks_mut(RUN).enumerate().for_each(|(c, idx)| {
                let (start, len) = (c * RUN, idx.len());
                let steps: Vec<&[f32]> = (0..r).map(|i| &rows[i * per_step + q][start..start + len]).collect();
                match (find_max, skip_nan) {
                    (true, true) => run::<true, true>(&steps, idx),
                    (false, true) => run::<false, true>(&steps, idx),
                    (true, false) => run::<true, false>(&steps, idx),
                    (false, false) => run::<false, false>(&steps, idx),
                }
            });
        });
    }
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("shape")
}

/// One run of pixels through every step (`steps[i]`: step i of these pixels), the first
/// extreme's index written to `idx`. Compiled for AVX2 where the CPU has it (8-wide compares
/// and blends; the same bits: comparisons are exact).
fn run<const MAX: bool, const SKIP: bool>(steps: &[&[f32]], idx: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { run_avx2::<MAX, SKIP>(steps, idx) };
    }
    run_generic::<MAX, SKIP>(steps, idx)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_avx2<const MAX: bool, const SKIP: bool>(steps: &[&[f32]], idx: &mut [f32]) {
    run_generic::<MAX, SKIP>(steps, idx)
}

/// Branch-free, so each step is a vectorised compare and two blends over the run:
/// - skipping NaN, the best starts at the far infinity with no index; a valid value takes over
///   when beyond the best, or when there is no index yet (an all-infinite run's first value);
/// - propagating NaN, the best starts at step 0; a value takes over while the best is not NaN,
///   when beyond it or NaN itself (so the first NaN wins and stays).
#[inline(always)]
fn run_generic<const MAX: bool, const SKIP: bool>(steps: &[&[f32]], idx: &mut [f32]) {
    let mut best = if SKIP {
        idx.fill(f32::NAN);
        vec![if MAX { f32::NEG_INFINITY } else { f32::INFINITY }; idx.len()]
    } else {
        idx.fill(0.0);
        steps[0].to_vec()
    };
    for (i, row) in steps.iter().enumerate().skip(usize::from(!SKIP)) {
        let at = i as f32;
        for ((b, j), &v) in best.iter_mut().zip(idx.iter_mut()).zip(row.iter()) {
            let beyond = if MAX { v > *b } else { v < *b };
            #[allow(clippy::eq_op)] // x != x: NaN, in a form that vectorises
            let take = if SKIP {
                beyond | ((v == v) & (*j != *j))
            } else {
                (*b == *b) & (beyond | (v != v))
            };
            *b = if take { v } else { *b };
            *j = if take { at } else { *j };
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array3};

    use super::arg_extreme_reduce;

    const NAN: f32 = f32::NAN;

    fn bits(a: &[f32]) -> Vec<u32> {
        a.iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn first_extreme_along_time_by_hand() {
        // 4 steps of 3 pixels: ties (the first wins), a NaN before the extreme, all NaN
        let x = array![[1.0, NAN, NAN], [3.0, 2.0, NAN], [3.0, 5.0, NAN], [0.0, 5.0, NAN]].into_dyn();
        let got = |max, skip| {
            arg_extreme_reduce(max, skip, &x.view(), &[0])
                .into_raw_vec_and_offset()
                .0
        };
        assert_eq!(bits(&got(true, true)), bits(&[1.0, 2.0, NAN]));
        assert_eq!(bits(&got(false, true)), bits(&[3.0, 1.0, NAN]));
        // numpy's argmax/argmin: the first NaN is the answer, all-NaN gives 0
        assert_eq!(got(true, false), vec![1.0, 0.0, 0.0]);
        assert_eq!(got(false, false), vec![3.0, 0.0, 0.0]);
    }

    #[test]
    fn several_axes_flatten_in_c_order_and_need_no_leading_layout() {
        // (2, 3, 2) reduced over axes 1 and 2 (flat index y * 2 + x), kept axis 0
        let mut x = Array3::<f32>::zeros((2, 3, 2));
        x[[0, 2, 1]] = 9.0; // flat 5
        x[[1, 1, 0]] = -4.0; // flat 2
        x[[1, 2, 0]] = 7.0; // flat 4
        let x = x.into_dyn();
        let max = arg_extreme_reduce(true, true, &x.view(), &[1, 2]);
        assert_eq!(max.into_raw_vec_and_offset().0, vec![5.0, 4.0]);
        let min = arg_extreme_reduce(false, true, &x.view(), &[1, 2]);
        // axis 0's minimum is 0 first at flat 0; axis 1's is -4 at flat 2
        assert_eq!(min.into_raw_vec_and_offset().0, vec![0.0, 2.0]);
        // reduced over the trailing axis of a transposed view: a copy, the same answers
        let t = x.view().reversed_axes();
        let along_first = arg_extreme_reduce(true, true, &t, &[2]);
        assert_eq!(along_first.shape(), &[2, 3]);
        assert_eq!(along_first[[1, 2]], 0.0); // t[1, 2, :] = x[:, 2, 1] = [9, 0]
        assert_eq!(along_first[[0, 2]], 1.0); // x[:, 2, 0] = [0, 7]
    }
}
