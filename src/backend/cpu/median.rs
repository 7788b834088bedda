//! Median and NaN-median over whole axes, per pixel, by selection.
//!
//! Algorithm: pixels are processed in tiles of `TILE` columns; a tile's values are transposed
//! into a small buffer (one contiguous run of R values per pixel, L1-resident), NaNs are dropped
//! (or detected), the remaining f32 are mapped to order-preserving u32 keys and the middle is
//! found with `select_nth_unstable` (introselect: O(R) expected) — integer compares are cheaper
//! than `total_cmp` on floats. For an even count the lower middle is the maximum of the lower
//! partition. The two middles are averaged as numpy does, `(lo + hi) / 2` in f32.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;

use super::layout::contiguous;
use crate::expr::ReduceOp;

const TILE: usize = 64;

/// Order-preserving map of a non-NaN f32 to u32 (negative values flipped).
#[inline(always)]
fn key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

#[inline(always)]
fn unkey(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 { k & 0x7fff_ffff } else { !k })
}

/// Median of `keys` (non-empty), consuming their order.
#[inline]
fn median_of_keys(keys: &mut [u32]) -> f32 {
    let n = keys.len();
    let k = n / 2;
    let (lower, &mut hi, _) = keys.select_nth_unstable(k);
    let hi = unkey(hi);
    if n % 2 == 1 {
        hi
    } else {
        let lo = unkey(*lower.iter().max().expect("n >= 2"));
        (lo + hi) / 2.0
    }
}

/// Reduces `x` over `axes` (whole in `x`) with median or nanmedian.
///
/// Costs one transposing pass over `x` plus O(R) per pixel, parallel over pixel tiles.
pub fn holistic_reduce(op: ReduceOp, x: &ArrayViewD<'_, f32>, axes: &[usize]) -> ArrayD<f32> {
    let skip_nan = match op {
        ReduceOp::NanMedian => true,
        ReduceOp::Median => false,
        other => unreachable!("{} is not holistic", other.name()),
    };
    let ndim = x.ndim();
    let kept: Vec<usize> = (0..ndim).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| x.shape()[a]).collect();
    // Reduced axes first, kept axes after: a (R, P) matrix in standard layout.
    let perm: Vec<usize> = axes.iter().copied().chain(kept.iter().copied()).collect();
    let moved = x.clone().permuted_axes(perm);
    let data = contiguous(moved);
    let r: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let p: usize = out_shape.iter().product();
    let mut out = vec![f32::NAN; p];
    if r == 0 || p == 0 {
        return ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("shape");
    }
    out.par_chunks_mut(TILE).enumerate().for_each_init(
        || (vec![0f32; TILE * r], vec![0u32; r]),
        |(tile, keys), (t, dst)| {
            let p0 = t * TILE;
            let w = dst.len();
            for i in 0..r {
                let row = &data[i * p + p0..i * p + p0 + w];
                for (j, &v) in row.iter().enumerate() {
                    tile[j * r + i] = v;
                }
            }
            for (j, d) in dst.iter_mut().enumerate() {
                let column = &tile[j * r..(j + 1) * r];
                let mut n = 0;
                let mut saw_nan = false;
                for &v in column {
                    if v.is_nan() {
                        saw_nan = true;
                    } else {
                        keys[n] = key(v);
                        n += 1;
                    }
                }
                *d = if n == 0 || (saw_nan && !skip_nan) {
                    f32::NAN
                } else {
                    median_of_keys(&mut keys[..n])
                };
            }
        },
    );
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("shape")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn keys_preserve_order() {
        let xs = [f32::NEG_INFINITY, -3.5, -0.0, 0.0, 1e-30, 2.0, f32::INFINITY];
        for w in xs.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{w:?}");
            assert_eq!(unkey(key(w[0])).to_bits(), w[0].to_bits());
        }
    }

    #[test]
    fn hand_computed_medians() {
        let nan = f32::NAN;
        // time axis 0: pixel columns [1,5,3,nan] [2,2,nan,nan] [nan x4] [4,1,3,2]
        let x = array![
            [1.0, 2.0, nan, 4.0],
            [5.0, 2.0, nan, 1.0],
            [3.0, nan, nan, 3.0],
            [nan, nan, nan, 2.0]
        ]
        .into_dyn();
        let m = holistic_reduce(ReduceOp::NanMedian, &x.view(), &[0]);
        assert_eq!(m.as_slice().unwrap()[..2], [3.0, 2.0]);
        assert!(m[[2]].is_nan());
        assert_eq!(m[[3]], 2.5);
        let m = holistic_reduce(ReduceOp::Median, &x.view(), &[0]);
        assert!(m[[0]].is_nan() && m[[1]].is_nan());
        assert_eq!(m[[3]], 2.5);
    }
}
