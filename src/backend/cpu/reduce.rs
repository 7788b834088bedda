//! Partial-state reductions (sum, mean, min, max and their NaN-skipping forms, count, nanvar,
//! nanstd, any/all): a block reduces to a [`Partial`] in f64, partials merge in any order and
//! grouping, and a final step turns the state into f32 (or a mask). Accumulating in f64 keeps
//! results independent of chunking far below f32 rounding.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn};

use super::layout::{contiguous, rows, rows_mut};
use super::median::{holistic_reduce, median_rows};
use crate::backend::partial::{finalize, Partial};
use crate::expr::{Block, ReduceOp};

#[inline(always)]
fn fold1(a: &mut [f64], base: usize, row: &[f32], along_kept: bool, f: impl Fn(&mut f64, f32)) {
    if along_kept {
        a[base..base + row.len()]
            .iter_mut()
            .zip(row)
            .for_each(|(a, &x)| f(a, x));
    } else {
        let mut acc = a[base];
        row.iter().for_each(|&x| f(&mut acc, x));
        a[base] = acc;
    }
}

#[inline(always)]
fn fold2(
    a: &mut [f64],
    b: &mut [f64],
    base: usize,
    row: &[f32],
    along_kept: bool,
    f: impl Fn(&mut f64, &mut f64, f32),
) {
    if along_kept {
        let n = row.len();
        a[base..base + n]
            .iter_mut()
            .zip(&mut b[base..base + n])
            .zip(row)
            .for_each(|((a, b), &x)| f(a, b, x));
    } else {
        let (mut acc, mut cnt) = (a[base], b[base]);
        row.iter().for_each(|&x| f(&mut acc, &mut cnt, x));
        a[base] = acc;
        b[base] = cnt;
    }
}

impl Partial {
    /// Folds one row of values: into elements `base..base + row.len()` when the row runs
    /// along a kept axis, else all into element `base`. The op is matched once per row, so
    /// each loop below is a tight, branch-free (vectorisable) kernel.
    fn fold(&mut self, base: usize, row: &[f32], along_kept: bool) {
        let nan0 = |x: f32| if x.is_nan() { 0.0 } else { f64::from(x) };
        let valid = |x: f32| (!x.is_nan()) as u8 as f64;
        let (a, b, c) = (&mut self.a, &mut self.b, &mut self.c);
        match self.op {
            ReduceOp::Sum => fold1(a, base, row, along_kept, |a, x| *a += f64::from(x)),
            ReduceOp::NanSum => fold1(a, base, row, along_kept, |a, x| *a += nan0(x)),
            ReduceOp::Count => fold1(a, base, row, along_kept, |a, x| *a += valid(x)),
            ReduceOp::Mean => fold2(a, b, base, row, along_kept, |a, b, x| {
                *a += f64::from(x);
                *b += 1.0;
            }),
            ReduceOp::NanMean => fold2(a, b, base, row, along_kept, |a, b, x| {
                *a += nan0(x);
                *b += valid(x);
            }),
            // NaN propagates: once the state is NaN it stays NaN.
            ReduceOp::Min => fold1(a, base, row, along_kept, |a, x| {
                let x = f64::from(x);
                *a = if x.is_nan() || x < *a { x } else { *a }
            }),
            ReduceOp::Max => fold1(a, base, row, along_kept, |a, x| {
                let x = f64::from(x);
                *a = if x.is_nan() || x > *a { x } else { *a }
            }),
            ReduceOp::NanMin => fold2(a, b, base, row, along_kept, |a, b, x| {
                *a = a.min(f64::from(x));
                *b += valid(x);
            }),
            ReduceOp::NanMax => fold2(a, b, base, row, along_kept, |a, b, x| {
                *a = a.max(f64::from(x));
                *b += valid(x);
            }),
            ReduceOp::Any => fold1(a, base, row, along_kept, |a, x| *a = if x != 0.0 { 1.0 } else { *a }),
            ReduceOp::All => fold1(a, base, row, along_kept, |a, x| *a = if x == 0.0 { 0.0 } else { *a }),
            ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } => {
                let step = |a: &mut f64, b: &mut f64, c: &mut f64, x: f32| {
                    if !x.is_nan() {
                        // Welford's update: stable for long axes.
                        let x = f64::from(x);
                        *b += 1.0;
                        let d = x - *a;
                        *a += d / *b;
                        *c += d * (x - *a);
                    }
                };
                if along_kept {
                    let n = row.len();
                    for (((a, b), c), &x) in a[base..base + n]
                        .iter_mut()
                        .zip(&mut b[base..base + n])
                        .zip(&mut c[base..base + n])
                        .zip(row)
                    {
                        step(a, b, c, x);
                    }
                } else {
                    for &x in row {
                        step(&mut a[base], &mut b[base], &mut c[base], x);
                    }
                }
            }
            // holistic ops (medians, quantiles, arg extremes; `partial_lanes` 0) keep no state
            _ => {
                unreachable!("holistic reductions have no partial state")
            }
        }
    }
}

/// Reduces `blocks` (which all reduce into the same output block) over `axes` into one
/// partial state. One pass over each block, row by row: a kept last axis accumulates whole
/// rows (vectorisable), a reduced last axis folds each row.
pub fn partial_reduce(op: ReduceOp, blocks: &[&Block], axes: &[usize]) -> Partial {
    let shape = blocks[0].shape();
    let mut p = Partial::empty(op, crate::expr::without_axes(shape, axes));
    for block in blocks {
        fold_block(&mut p, block, axes);
    }
    p
}

fn fold_block(p: &mut Partial, block: &Block, axes: &[usize]) {
    let x = block.to_f32();
    let shape = x.shape().to_vec();
    let data = contiguous(x.view());
    let data: &[f32] = &data;
    let ndim = shape.len();
    if ndim == 0 {
        p.fold(0, data, false);
        return;
    }
    let row = shape[ndim - 1];
    if row == 0 || data.is_empty() {
        return;
    }
    // Output strides of every input axis (0 for reduced axes).
    let mut out_stride = vec![0usize; ndim];
    let mut acc = 1;
    for a in (0..ndim).rev() {
        if !axes.contains(&a) {
            out_stride[a] = acc;
            acc *= shape[a];
        }
    }
    let last_kept = !axes.contains(&(ndim - 1));
    let mut idx = vec![0usize; ndim - 1];
    for r in 0..data.len() / row {
        let base: usize = idx.iter().zip(&out_stride).map(|(&i, &s)| i * s).sum();
        p.fold(base, &data[r * row..(r + 1) * row], last_kept);
        for a in (0..ndim - 1).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

/// Reduces `x` along `axis` separately for every group of indices with the same label; groups
/// without members give [`ReduceOp::empty_value`] (NaN for min and max).
pub fn group_reduce(op: ReduceOp, x: &Block, axis: usize, labels: &[usize], groups: usize) -> Block {
    let xf = x.to_f32();
    if let Some(skip_nan) = group_median(op, axis) {
        let mut shape = xf.shape().to_vec();
        shape[0] = groups;
        let mut out = ArrayD::<f32>::uninit(IxDyn(&shape));
        if group_median_into(skip_nan, &xf.view(), labels, &mut out.view_mut()) {
            // SAFETY: group_median_into wrote every element.
            return Block::F32(unsafe { out.assume_init() }.into_shared());
        }
    }
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (i, &g) in labels.iter().enumerate() {
        members[g].push(i);
    }
    let mut out_shape = xf.shape().to_vec();
    out_shape[axis] = groups;
    let empty = op.empty_value().unwrap_or(f32::NAN);
    let mut out = ArrayD::from_elem(IxDyn(&out_shape), empty);
    for (g, idx) in members.iter().enumerate() {
        if idx.is_empty() {
            continue;
        }
        let sub: ArrayD<f32> = xf.select(Axis(axis), idx);
        let reduced = reduce_view(op, &sub.view(), axis);
        out.index_axis_mut(Axis(axis), g).assign(&reduced);
    }
    if op.yields_mask() {
        Block::U8(out.mapv(|v| v as u8).into_shared())
    } else {
        Block::F32(out.into_shared())
    }
}

/// Whether a group reduction is a median over axis 0, and whether it skips NaN: those read
/// each group's steps where they lie ([`group_median_into`]).
pub(crate) fn group_median(op: ReduceOp, axis: usize) -> Option<bool> {
    match (op, axis) {
        (ReduceOp::NanMedian, 0) => Some(true),
        (ReduceOp::Median, 0) => Some(false),
        _ => None,
    }
}

/// The median (NaN skipped when `skip_nan`) of each group of `x`'s steps along axis 0 (step
/// `i` in group `labels[i]`), written into `dst`, whose axis 0 holds the groups; a group
/// without steps is NaN. Each group's steps are read in place, in any order of labels: no copy
/// of them, nor of the result.
///
/// Costs one pass over `x` plus O(steps) per pixel and group, parallel over rows. Returns
/// `false`, writing nothing, where `x` or `dst` has no contiguous rows.
pub(crate) fn group_median_into(
    skip_nan: bool,
    x: &ArrayViewD<'_, f32>,
    labels: &[usize],
    dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>,
) -> bool {
    let groups = dst.shape()[0];
    if x.ndim() < 2 || dst.ndim() != x.ndim() || x.shape()[1..] != dst.shape()[1..] || labels.len() != x.shape()[0] {
        return false;
    }
    let (Some(steps), Some(out)) = (rows(x.view()), rows_mut(dst)) else {
        return false;
    };
    // rows per step, and per group: the kept axes' rows
    let per = out.len() / groups.max(1);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (i, &g) in labels.iter().enumerate() {
        members[g].push(i);
    }
    let mut out = out.into_iter();
    for m in &members {
        let slab: Vec<&mut [MaybeUninit<f32>]> = out.by_ref().take(per).collect();
        if m.is_empty() {
            slab.into_iter().for_each(|row| row.fill(MaybeUninit::new(f32::NAN)));
            continue;
        }
        let group: Vec<&[f32]> = m
            .iter()
            .flat_map(|&i| steps[i * per..(i + 1) * per].iter().copied())
            .collect();
        median_rows(skip_nan, &group, m.len(), slab);
    }
    true
}

/// Reduces a whole view over one axis with any op (holistic or not).
fn reduce_view(op: ReduceOp, x: &ArrayViewD<'_, f32>, axis: usize) -> ArrayD<f32> {
    if op.is_holistic() {
        return holistic_reduce(op, x, &[axis]);
    }
    let block = Block::F32(x.to_owned().into_shared());
    match finalize(&partial_reduce(op, &[&block], &[axis])) {
        Block::F32(a) => a.into_owned(),
        Block::U8(a) => a.mapv(f32::from),
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{s, Array3, ArrayD, IxDyn};

    use super::group_median_into;

    fn medians(
        skip_nan: bool,
        x: ndarray::ArrayViewD<'_, f32>,
        labels: &[usize],
        groups: usize,
    ) -> Option<ArrayD<f32>> {
        let mut shape = x.shape().to_vec();
        shape[0] = groups;
        let mut out = ArrayD::<f32>::uninit(IxDyn(&shape));
        // SAFETY: read only when every element was written
        group_median_into(skip_nan, &x, labels, &mut out.view_mut()).then(|| unsafe { out.assume_init() })
    }

    #[test]
    fn group_medians_read_each_groups_steps_where_they_lie() {
        // 5 steps of a 2 × 2 image, cut from a wider array (rows contiguous, steps strided);
        // step i holds 10 i + pixel, pixel 3 NaN at steps 1 and 4
        let mut wide = Array3::<f32>::from_shape_fn((5, 2, 4), |(i, y, x)| (10 * i + 2 * y + x) as f32);
        wide[[1, 1, 1]] = f32::NAN;
        wide[[4, 1, 1]] = f32::NAN;
        let x = wide.slice(s![.., .., 0..2]).into_dyn();
        // groups: 0 = steps {0, 3} (interleaved with group 2), 1 = none, 2 = steps {1, 2, 4}
        let labels = [0, 2, 2, 0, 2];
        let got = medians(true, x.view(), &labels, 3).expect("rows are contiguous");
        // group 0: pixels (0+30)/2 = 15, 16, 17, 18
        assert_eq!(
            got.slice(s![0, .., ..]).iter().copied().collect::<Vec<_>>(),
            [15.0, 16.0, 17.0, 18.0]
        );
        assert!(got.slice(s![1, .., ..]).iter().all(|v| v.is_nan()));
        // group 2: {10, 20, 40} + pixel → 20 + pixel; pixel 3 keeps only 23 (steps 1, 4 NaN)
        assert_eq!(
            got.slice(s![2, .., ..]).iter().copied().collect::<Vec<_>>(),
            [20.0, 21.0, 22.0, 23.0]
        );
        // without skipping, a NaN step makes the pixel NaN
        let strict = medians(false, x.view(), &labels, 3).unwrap();
        assert!(strict[[2, 1, 1]].is_nan());
        assert_eq!(strict[[2, 1, 0]], 22.0);
        // a transposed view has no contiguous rows: nothing is written, the caller falls back
        let t = wide.view().reversed_axes().into_dyn();
        let mut out = ArrayD::<f32>::uninit(IxDyn(&[1, 2, 5]));
        assert!(!group_median_into(true, &t.view(), &[0, 0, 0, 0], &mut out.view_mut()));
    }
}
