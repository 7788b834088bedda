//! Partial-state reductions (sum, mean, min, max and their NaN-skipping forms, count, nanvar,
//! nanstd, any/all): a block reduces to a [`Partial`] in f64, partials merge in any order and
//! grouping, and a final step turns the state into f32 (or a mask). Accumulating in f64 keeps
//! results independent of chunking far below f32 rounding.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn};

use super::layout::contiguous;
use super::median::holistic_reduce;
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
            ReduceOp::Median | ReduceOp::NanMedian | ReduceOp::Quantile { .. } | ReduceOp::NanQuantile { .. } => {
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
