//! Median and NaN-median over whole axes, per pixel.
//!
//! Pixels are processed in tiles of `TILE` columns: a tile's values are transposed into a
//! small time-major buffer (L1-resident), NaN replaced by +inf so a column's valid values are
//! its first order statistics. Axes up to `NETWORK_MAX` long are then sorted by a sorting
//! network applied to the whole tile at once (each comparator a vectorised min/max over a row),
//! pruned to the comparators that place the middle ranks the tile's valid counts need. Longer
//! axes map each column's values to order-preserving u32 keys and find the middle with
//! `select_nth_unstable` (introselect, O(R) expected; for an even count the lower middle is the
//! maximum of the lower partition). The two middles are averaged as numpy does,
//! `(lo + hi) / 2` in f32.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;

use super::layout::{contiguous, rows};
use crate::expr::ReduceOp;

const TILE: usize = 64;

/// Longest reduced axis sorted by a network; longer axes use selection.
const NETWORK_MAX: usize = 256;

/// Row-wise min/max of two tile rows: fixed length and select-free, so it compiles to packed
/// `minps`/`maxps` (no NaN can be present: they were replaced by +inf).
#[inline(always)]
fn compare_exchange(a: &mut [f32; TILE], b: &mut [f32; TILE]) {
    for l in 0..TILE {
        let (u, v) = (a[l], b[l]);
        a[l] = u.min(v);
        b[l] = u.max(v);
    }
}

/// Applies the network to every column of a time-major tile.
fn sort_columns(tile: &mut [f32], pairs: &[(usize, usize)]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { sort_columns_avx2(tile, pairs) };
    }
    sort_columns_generic(tile, pairs)
}

/// The same code compiled for AVX2: 8-wide min/max instead of SSE2's 4 (bitwise the same
/// results: min and max are exact).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sort_columns_avx2(tile: &mut [f32], pairs: &[(usize, usize)]) {
    sort_columns_generic(tile, pairs)
}

#[inline(always)]
fn sort_columns_generic(tile: &mut [f32], pairs: &[(usize, usize)]) {
    for &(a, b) in pairs {
        let (lo, hi) = tile.split_at_mut(b * TILE);
        let ra: &mut [f32; TILE] = (&mut lo[a * TILE..(a + 1) * TILE]).try_into().expect("tile row");
        let rb: &mut [f32; TILE] = (&mut hi[..TILE]).try_into().expect("tile row");
        compare_exchange(ra, rb);
    }
}

/// Comparators of Batcher's odd-even merge sort for `n` inputs (any `n`): about
/// n log²n / 4 of them, in an order that sorts any input. Applied to a tile of pixels at once,
/// each comparator is a branch-free min/max over a row — vectorised — instead of the
/// mispredicted branches of a per-pixel quickselect.
fn batcher_pairs(n: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    let mut p = 1;
    while p < n {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < n {
                for i in 0..k.min(n - j - k) {
                    if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
                        pairs.push((i + j, i + j + k));
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
    pairs
}

/// The comparators of `pairs` (a sorting network) that decide the values left at positions
/// `ranks`: walking backwards, a comparator matters when either of its outputs does, and then
/// both its inputs do. Exact dead-comparator elimination; for a median of 64 about a sixth of
/// Batcher's 543 comparators go.
fn pruned_for(pairs: &[(usize, usize)], n: usize, ranks: std::ops::RangeInclusive<usize>) -> Vec<(usize, usize)> {
    let mut needed = vec![false; n];
    ranks.for_each(|k| needed[k] = true);
    let mut kept: Vec<(usize, usize)> = pairs
        .iter()
        .rev()
        .filter(|&&(a, b)| {
            let keep = needed[a] || needed[b];
            if keep {
                needed[a] = true;
                needed[b] = true;
            }
            keep
        })
        .copied()
        .collect();
    kept.reverse();
    kept
}

/// One reduced length's sorting network with its prunings to the ranks a tile needs, cached
/// per rank range (a tile's valid counts vary only with its NaN pattern). Per thread; the full
/// network is built once per call and shared.
struct MedianNetworks<'a> {
    full: &'a [(usize, usize)],
    n: usize,
    pruned: std::collections::HashMap<(usize, usize), Vec<(usize, usize)>>,
}

impl MedianNetworks<'_> {
    /// The comparators that place ranks `lo..=hi` of every column.
    fn for_ranks(&mut self, lo: usize, hi: usize) -> &[(usize, usize)] {
        let (full, n) = (self.full, self.n);
        self.pruned
            .entry((lo, hi))
            .or_insert_with(|| pruned_for(full, n, lo..=hi))
    }
}

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

/// The two middle order statistics, `(n-1)/2` and `n/2`, of column `j` of an unsorted tile,
/// by selection on order-preserving u32 keys (for axes too long for a network).
fn middle_by_selection(tile: &[f32], j: usize, n: usize, keys: &mut [u32]) -> (f32, f32) {
    for (i, k) in keys.iter_mut().enumerate() {
        *k = key(tile[i * TILE + j]);
    }
    let (lower, &mut hi, _) = keys.select_nth_unstable(n / 2);
    let hi = unkey(hi);
    let lo = if n % 2 == 1 {
        hi
    } else {
        unkey(*lower.iter().max().expect("n >= 2"))
    };
    (lo, hi)
}

/// Reduces `x` over `axes` (whole in `x`) with a holistic op: median, quantile (NaN-skipping
/// or not), or the index of the first extreme (`arg_extreme`).
///
/// Costs one transposing pass over `x` plus O(R) expected per pixel, parallel over rows of
/// pixels. When the reduced axes lead (the usual `(time, y, x)` median over time) the input is
/// read in place, row by row; otherwise it is first copied with the reduced axes in front.
pub fn holistic_reduce(op: ReduceOp, x: &ArrayViewD<'_, f32>, axes: &[usize]) -> ArrayD<f32> {
    holistic_reduce_parts(op, std::slice::from_ref(x), axes)
}

/// As [`holistic_reduce`] over the array that `parts` make laid one after another along
/// axis 0 (the steps of a median over time, each computed on its own).
///
/// Costs as [`holistic_reduce`]: a median over the leading axis reads the parts in place, so
/// they are never joined; anything else joins them first (one copy).
pub fn holistic_reduce_parts(op: ReduceOp, parts: &[ArrayViewD<'_, f32>], axes: &[usize]) -> ArrayD<f32> {
    let in_place =
        parts.len() > 1 && axes == [0] && parts[0].ndim() > 1 && matches!(op, ReduceOp::NanMedian | ReduceOp::Median);
    let part_rows: Option<Vec<&[f32]>> = in_place
        .then(|| parts.iter().map(|p| rows(p.view())).collect::<Option<Vec<_>>>())
        .flatten()
        .map(|r| r.concat());
    if parts.len() > 1 && part_rows.is_none() {
        let joined = ndarray::concatenate(ndarray::Axis(0), parts).expect("parts agree off axis 0");
        return holistic_reduce(op, &joined.view(), axes);
    }
    let x = &parts[0];
    if let Some((find_max, skip_nan)) = op.arg_extreme() {
        return super::arg_extreme::arg_extreme_reduce(find_max, skip_nan, x, axes);
    }
    let skip_nan = match op {
        ReduceOp::NanMedian => true,
        ReduceOp::Median => false,
        ReduceOp::Quantile { millionths } => return quantile_reduce(millionths, false, x, axes),
        ReduceOp::NanQuantile { millionths } => return quantile_reduce(millionths, true, x, axes),
        other => unreachable!("{} is not holistic", other.name()),
    };
    let ndim = x.ndim();
    let kept: Vec<usize> = (0..ndim).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| x.shape()[a]).collect();
    let r: usize = parts
        .iter()
        .map(|x| axes.iter().map(|&a| x.shape()[a]).product::<usize>())
        .sum();
    let p: usize = out_shape.iter().product();
    let mut out = vec![f32::NAN; p];
    if r == 0 || p == 0 {
        return ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("shape");
    }
    let steps = match part_rows {
        Some(rows) => StepRows::InPlace(rows, *out_shape.last().expect("kept axes")),
        None => StepRows::of(x, axes),
    };
    let (rows, width) = steps.rows();
    let out_rows: Vec<&mut [MaybeUninit<f32>]> = as_uninit(&mut out).chunks_mut(width).collect();
    median_rows(skip_nan, &rows, r, out_rows);
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("shape")
}

/// The rows of a block seen as (reduced axes..., kept axes...): row (i, q) holds `width`
/// pixels of kept row q at reduced index i, so a kernel walks the steps of a run of pixels.
pub(super) enum StepRows<'a> {
    /// rows read where they lie (the reduced axes lead; kept rows contiguous), and their width
    InPlace(Vec<&'a [f32]>, usize),
    /// the values laid out so (a copy, unless they already were), one row per reduced index
    /// holding every kept pixel
    Laid(std::borrow::Cow<'a, [f32]>, usize),
}

impl<'a> StepRows<'a> {
    /// `x`'s steps over `axes`: in place when the reduced axes lead and rows are contiguous (a
    /// block cut from a larger array included), else one copy with the reduced axes first.
    /// At least one axis must be kept for rows in place; otherwise each row is one pixel.
    pub(super) fn of(x: &ArrayViewD<'a, f32>, axes: &[usize]) -> Self {
        let kept: Vec<usize> = (0..x.ndim()).filter(|a| !axes.contains(a)).collect();
        let leading = axes.iter().enumerate().all(|(i, &a)| a == i) && !kept.is_empty();
        if let Some(rows) = leading.then(|| rows(x.clone())).flatten() {
            return StepRows::InPlace(rows, x.shape()[x.ndim() - 1]);
        }
        let p: usize = kept.iter().map(|&a| x.shape()[a]).product();
        let perm: Vec<usize> = axes.iter().copied().chain(kept.iter().copied()).collect();
        StepRows::Laid(contiguous(x.clone().permuted_axes(perm)), p)
    }

    /// The rows, in (reduced index, kept row) order, and their width.
    pub(super) fn rows(&self) -> (Vec<&[f32]>, usize) {
        match self {
            StepRows::InPlace(rows, width) => (rows.clone(), *width),
            StepRows::Laid(values, width) => (values.chunks(*width).collect(), *width),
        }
    }
}

/// The median (NaN skipped when `skip_nan`) of `r` steps for every pixel of `out_rows`:
/// `rows[i * out_rows.len() + q]` is step `i` of the pixels of output row `q` (each row as long
/// as its output row). Rows may lie anywhere (the steps of a median over time, a group's steps
/// picked from a block): nothing is copied but a tile at a time.
///
/// Costs one pass over the rows plus O(r) expected per pixel (a pruned sorting network up to
/// `NETWORK_MAX` steps, selection beyond), parallel over output rows.
pub(super) fn median_rows(skip_nan: bool, rows: &[&[f32]], r: usize, out_rows: Vec<&mut [MaybeUninit<f32>]>) {
    let q_count = out_rows.len();
    debug_assert_eq!(rows.len(), r * q_count);
    let network = (r <= NETWORK_MAX).then(|| batcher_pairs(r));
    out_rows.into_par_iter().enumerate().for_each_init(
        || {
            let networks = network.as_deref().map(|full| MedianNetworks {
                full,
                n: r,
                pruned: Default::default(),
            });
            (vec![0f32; TILE * r], vec![0usize; TILE], vec![0u32; r], networks)
        },
        |(tile, valid, keys, networks), (q, out_row)| {
            for (t, dst) in out_row.chunks_mut(TILE).enumerate() {
                let x0 = t * TILE;
                let w = dst.len();
                valid[..w].fill(0);
                // time-major tile: row i holds value i of the tile's pixels; NaN becomes +inf,
                // so the first `valid` order statistics of a column are its valid values
                for i in 0..r {
                    let src = &rows[i * q_count + q][x0..x0 + w];
                    let row = &mut tile[i * TILE..i * TILE + w];
                    for ((d, &v), n) in row.iter_mut().zip(src).zip(valid.iter_mut()) {
                        let nan = v.is_nan();
                        *d = if nan { f32::INFINITY } else { v };
                        *n += usize::from(!nan);
                    }
                }
                if let Some(networks) = networks.as_mut() {
                    // the middle ranks of every column: those of its valid count (a median
                    // without skipping needs only full columns; others are NaN)
                    let counts = valid[..w].iter().copied().filter(|&n| n > 0 && (skip_nan || n == r));
                    let (lo, hi) = counts.fold((usize::MAX, 0), |(lo, hi), n| (lo.min((n - 1) / 2), hi.max(n / 2)));
                    if lo <= hi {
                        sort_columns(tile, networks.for_ranks(lo, hi));
                    }
                }
                for (j, d) in dst.iter_mut().enumerate() {
                    let n = valid[j];
                    *d = MaybeUninit::new(if n == 0 || (n < r && !skip_nan) {
                        f32::NAN
                    } else {
                        let (lo, hi) = match networks {
                            Some(_) => (tile[(n - 1) / 2 * TILE + j], tile[n / 2 * TILE + j]),
                            None => middle_by_selection(tile, j, n, keys),
                        };
                        positive_zero(if n % 2 == 1 { hi } else { (lo + hi) / 2.0 })
                    });
                }
            }
        },
    );
}

/// `v` with a zero result made +0. Which zero sits in the middle of a series holding both
/// depends on how a sort or selection left them (a min/max network may even duplicate one), so
/// medians and quantiles give +0 for either: the same bits on every path, chunking and
/// backend, and numpy's value for every median: numpy averages the middle value or values
/// from a +0 start, so `np.nanmedian([-0., 0.])` and even `np.nanmedian([-0., -0., -0.])`
/// are +0 (its quantiles can be -0 where these are +0).
#[inline(always)]
pub(super) fn positive_zero(v: f32) -> f32 {
    if v == 0.0 {
        0.0
    } else {
        v
    }
}

/// An initialised slice as one to write: the same memory, every value a valid `f32`.
fn as_uninit(s: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: MaybeUninit<f32> has f32's layout; writing through it keeps every value valid.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

/// The quantile `millionths` / 10⁶ of `x` over `axes` (whole in `x`), numpy's "linear"
/// method, NaN skipped or propagated. Costs one copy of `x` with the reduced axes last, then
/// O(R) expected per pixel (a selection and a scan), parallel over pixels.
fn quantile_reduce(millionths: u32, skip_nan: bool, x: &ArrayViewD<'_, f32>, axes: &[usize]) -> ArrayD<f32> {
    let kept: Vec<usize> = (0..x.ndim()).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| x.shape()[a]).collect();
    let r: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let moved = contiguous(x.clone().permuted_axes(perm));
    let out: Vec<f32> = if r == 0 {
        vec![f32::NAN; out_shape.iter().product()]
    } else {
        moved
            .par_chunks(r)
            .map_init(Vec::new, |values, pixel| {
                values.clear();
                values.extend(pixel.iter().copied().filter(|v| !v.is_nan()));
                if values.is_empty() || (!skip_nan && values.len() < r) {
                    return f32::NAN;
                }
                quantile_of(values, millionths)
            })
            .collect()
    };
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("one value per kept pixel")
}

/// The quantile of non-empty, NaN-free `values` (reordered): rank h = (n - 1) q split into
/// an exact integer part and weight, then numpy's `_lerp` from the nearer end, in f64.
fn quantile_of(values: &mut [f32], millionths: u32) -> f32 {
    let h = (values.len() as u64 - 1) * u64::from(millionths);
    let (k, frac) = ((h / 1_000_000) as usize, h % 1_000_000);
    let (_, &mut a, right) = values.select_nth_unstable_by(k, f32::total_cmp);
    if frac == 0 {
        return positive_zero(a);
    }
    let b = right.iter().copied().fold(f32::INFINITY, f32::min);
    let (a, b, t) = (f64::from(a), f64::from(b), frac as f64 / 1e6);
    let d = b - a;
    positive_zero((if t >= 0.5 { b - d * (1.0 - t) } else { a + d * t }) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// `n` pseudo-random values below `modulo` (with ties), put through the comparators
    /// `pairs`, beside the same values sorted.
    fn networked_and_sorted(pairs: &[(usize, usize)], n: usize, modulo: u32, seed: &mut u64) -> (Vec<u32>, Vec<u32>) {
        let mut v: Vec<u32> = (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (*seed >> 40) as u32 % modulo
            })
            .collect();
        let mut sorted = v.clone();
        sorted.sort_unstable();
        for &(a, b) in pairs {
            if v[a] > v[b] {
                v.swap(a, b);
            }
        }
        (v, sorted)
    }

    #[test]
    fn steps_read_in_place_give_the_median_of_the_array_they_make() {
        // (5, 2, 3) over axis 0 as parts of 2, 1 and 2 steps; column (0, 0) holds 1, 5, NaN,
        // 3, 2: nanmedian 2.5, median NaN; column (1, 2) holds 0, 0, 7, 0, 1: median 0
        let whole = ArrayD::from_shape_fn(IxDyn(&[5, 2, 3]), |ix| match (ix[0], ix[1], ix[2]) {
            (t, 0, 0) => [1.0, 5.0, f32::NAN, 3.0, 2.0][t],
            (t, 1, 2) => [0.0, 0.0, 7.0, 0.0, 1.0][t],
            (t, y, x) => (t * 7 + y * 3 + x) as f32 % 4.0,
        });
        let parts = [
            whole.slice(ndarray::s![0..2, .., ..]).into_dyn(),
            whole.slice(ndarray::s![2..3, .., ..]).into_dyn(),
            whole.slice(ndarray::s![3..5, .., ..]).into_dyn(),
        ];
        let nan = holistic_reduce_parts(ReduceOp::NanMedian, &parts, &[0]);
        assert_eq!(nan[[0, 0]], 2.5);
        assert_eq!(nan[[1, 2]], 0.0);
        assert!(holistic_reduce_parts(ReduceOp::Median, &parts, &[0])[[0, 0]].is_nan());
        for op in [
            ReduceOp::NanMedian,
            ReduceOp::Median,
            ReduceOp::NanQuantile { millionths: 250_000 },
        ] {
            let joined = holistic_reduce(op, &whole.view(), &[0]);
            let got = holistic_reduce_parts(op, &parts, &[0]);
            let same = got.iter().zip(&joined).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{}: {got} against {joined}", op.name());
        }
    }

    #[test]
    fn batcher_networks_sort_every_length() {
        for n in [1usize, 2, 3, 5, 7, 16, 33, 64, 65, 100] {
            let pairs = batcher_pairs(n);
            let mut seed = n as u64 * 2654435761;
            for _ in 0..50 {
                let (v, sorted) = networked_and_sorted(&pairs, n, 17, &mut seed);
                assert_eq!(v, sorted, "n = {n}");
            }
        }
    }

    #[test]
    fn pruned_networks_place_their_ranks_as_sorting_does() {
        let mut seed = 12345u64;
        for n in [2usize, 5, 16, 33, 64, 65] {
            let full = batcher_pairs(n);
            for (lo, hi) in [(0, 0), ((n - 1) / 2, n / 2), (n / 4, n / 2), (n - 1, n - 1)] {
                let pairs = pruned_for(&full, n, lo..=hi);
                assert!(pairs.len() <= full.len());
                for _ in 0..50 {
                    let (v, sorted) = networked_and_sorted(&pairs, n, 23, &mut seed);
                    assert_eq!(v[lo..=hi], sorted[lo..=hi], "n = {n}, ranks {lo}..={hi}");
                }
            }
        }
        // the median of 64 drops a good share of the comparators
        let full = batcher_pairs(64);
        assert!(pruned_for(&full, 64, 31..=32).len() < full.len() * 9 / 10);
    }

    #[test]
    fn long_axes_use_selection_and_agree_with_sorting() {
        // 300 > NETWORK_MAX values per pixel: the selection path
        let r = 300;
        let x = ndarray::Array2::from_shape_fn((r, 3), |(i, j)| {
            let v = ((i * 37 + j * 11) % 101) as f32 - 50.0;
            if (i + j) % 7 == 0 {
                f32::NAN
            } else {
                v
            }
        })
        .into_dyn();
        let m = holistic_reduce(ReduceOp::NanMedian, &x.view(), &[0]);
        for j in 0..3 {
            let mut v: Vec<f32> = (0..r).map(|i| x[[i, j]]).filter(|v| !v.is_nan()).collect();
            v.sort_by(f32::total_cmp);
            let n = v.len();
            let expected = if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            };
            assert_eq!(m[[j]], expected, "pixel {j}");
        }
        assert!(holistic_reduce(ReduceOp::Median, &x.view(), &[0])
            .iter()
            .all(|v| v.is_nan()));
    }

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
