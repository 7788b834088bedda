//! Work along one axis held whole in the block ([`AlongOp`]): each run of pixels steps
//! through the axis, each step one row of the run, and the op's kernel carries its state
//! (a total, a last value, a window's rows) across the steps in cache. Along the last axis
//! (each row one pixel's steps), small tiles of rows are turned step-major in cache first.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis};
use rayon::prelude::*;

use super::{fill, scan, window};
use crate::expr::layout::{contiguous, rows, rows_mut};
use crate::expr::{AlongOp, WindowOp};

/// A kernel over one run of pixels: `steps[t]` holds step `t` of every pixel of the run, and
/// it writes every element of `outs[t]` (the same lengths).
type RunKernel<'a> = dyn Fn(&[&[f32]], &mut [&mut [MaybeUninit<f32>]]) + Sync + 'a;

/// The run kernel of `op`.
fn run_kernel(op: &AlongOp) -> Box<RunKernel<'_>> {
    match op {
        AlongOp::Scan { op, skipna } => {
            let (op, skipna) = (*op, *skipna);
            Box::new(move |steps, outs| scan::running(steps, outs, op, skipna))
        }
        AlongOp::Carry { backward, limit } => {
            let (backward, limit) = (*backward, *limit);
            Box::new(move |steps, outs| fill::carry(steps, outs, limit, backward))
        }
        AlongOp::Interpolate {
            positions,
            limit,
            max_gap,
        } => Box::new(move |steps, outs| fill::linear(steps, outs, positions, *limit, *max_gap)),
        AlongOp::Rolling { op, window } => {
            let window = *window;
            // a checked op is always a window reduction; another would write NaN
            let op = WindowOp::of(*op);
            Box::new(move |steps, outs| match op {
                Some(op) => window::moving(op, window, steps, outs),
                None => outs.iter_mut().for_each(|o| o.fill(MaybeUninit::new(f32::NAN))),
            })
        }
    }
}

/// `op` along `axis` of `block` (whole in it) into a fresh array.
pub(super) fn along(op: &AlongOp, block: ArrayViewD<'_, f32>, axis: usize) -> ArrayD<f32> {
    block_fresh(&*run_kernel(op), block, axis)
}

/// `op` along `axis` of `block` straight into `dst` (the block's shape); `false`, writing
/// nothing, when `dst` has no contiguous rows with `axis` first.
pub(super) fn along_into(
    op: &AlongOp,
    block: ArrayViewD<'_, f32>,
    dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>,
    axis: usize,
) -> bool {
    block_into(&*run_kernel(op), block, dst, axis)
}

/// Pixels a parallel run holds at once: a kernel's state (a value and a count per pixel, a
/// window's rows) stays in L1 and L2 while the steps stream past.
const RUN: usize = 1024;

/// One block, whole along `axis`, through `kernel` into a fresh array (see [`block_into`]);
/// where the destination has no contiguous rows with `axis` first (`axis` last), into a fresh
/// array so laid out, then rearranged.
fn block_fresh(kernel: &RunKernel, block: ArrayViewD<'_, f32>, axis: usize) -> ArrayD<f32> {
    let mut out = ArrayD::<f32>::uninit(block.raw_dim());
    if block_into(kernel, block.view(), &mut out.view_mut(), axis) {
        // SAFETY: block_into wrote every element.
        return unsafe { out.assume_init() };
    }
    let perm = axis_first(block.ndim(), axis);
    let moved = block.permuted_axes(perm.clone());
    let mut laid = ArrayD::<f32>::uninit(moved.raw_dim());
    let written = block_into(kernel, moved.view(), &mut laid.view_mut(), 0);
    assert!(written, "a fresh array has contiguous rows");
    // SAFETY: block_into wrote every element of the fresh array.
    let laid = unsafe { laid.assume_init() };
    laid.permuted_axes(inverse(&perm)).as_standard_layout().into_owned()
}

/// One block, whole along `axis`, through `kernel` straight into `dst` (the block's shape):
/// runs of pixels in parallel, each step a row of the run. The steps are read in place when
/// `axis` leads and rows are contiguous (a block cut from an in-memory array included), else
/// from one copy with `axis` first. Returns `false`, writing nothing, when `dst` has no
/// contiguous rows with `axis` first.
fn block_into(
    kernel: &RunKernel,
    block: ArrayViewD<'_, f32>,
    dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>,
    axis: usize,
) -> bool {
    let n = block.shape()[axis];
    if block.is_empty() {
        return true;
    }
    if axis + 1 == block.ndim() && axis > 0 {
        return last_axis_into(kernel, block, dst);
    }
    let perm = axis_first(block.ndim(), axis);
    // (axis, others...), with a unit axis after a lone one, so every step is a row
    let mut moved = block.permuted_axes(perm.clone());
    let mut out = dst.view_mut().permuted_axes(perm);
    if moved.ndim() == 1 {
        moved = moved.insert_axis(Axis(1));
        out = out.insert_axis(Axis(1));
    }
    let Some(out_rows) = rows_mut(&mut out) else {
        return false;
    };
    let width = *moved.shape().last().expect("two axes");
    let copied;
    let rows: Vec<&[f32]> = match rows(moved.view()) {
        Some(rows) => rows,
        None => {
            copied = contiguous(moved.view());
            copied.chunks(width).collect()
        }
    };
    let per_step = rows.len() / n;
    // run (q, c) is the c-th RUN pixels of row q; its outputs, one piece per step
    let per_row = width.div_ceil(RUN);
    let mut runs: Vec<Vec<&mut [MaybeUninit<f32>]>> = (0..per_step * per_row).map(|_| Vec::with_capacity(n)).collect();
    for (r, row) in out_rows.into_iter().enumerate() {
        let q = r % per_step;
        for (c, piece) in row.chunks_mut(RUN).enumerate() {
            runs[q * per_row + c].push(piece);
        }
    }
    runs.into_par_iter().enumerate().for_each(|(k, mut outs)| {
        let (q, start) = (k / per_row, (k % per_row) * RUN);
        let len = outs[0].len();
        let steps: Vec<&[f32]> = (0..n).map(|t| &rows[t * per_step + q][start..start + len]).collect();
        kernel(&steps, &mut outs);
    });
    true
}

/// Rows a tile of work along the last axis holds: a tile of `n` steps of them (a 2048-long
/// row: 128 KiB) is turned step-major, reduced and turned back within L2.
const TILE_ROWS: usize = 16;

/// [`block_into`] along the last axis, where every row is one pixel's steps: tiles of
/// [`TILE_ROWS`] rows, in parallel, each turned step-major into a small buffer (step `t` of the
/// tile's pixels one row of it), through `kernel`, and turned back into `dst`'s rows. Two
/// transposes in cache instead of two of the whole block. Returns `false` when `dst` has no
/// contiguous rows.
fn last_axis_into(
    kernel: &RunKernel,
    block: ArrayViewD<'_, f32>,
    dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>,
) -> bool {
    let Some(out_rows) = rows_mut(dst) else {
        return false;
    };
    let copied;
    let in_rows: Vec<&[f32]> = match rows(block.view()) {
        Some(rows) => rows,
        None => {
            copied = block.as_standard_layout();
            rows(copied.view()).expect("a standard layout has rows")
        }
    };
    let n = block.shape()[block.ndim() - 1];
    let mut outs = out_rows.into_iter();
    let tiles: Vec<_> = in_rows
        .chunks(TILE_ROWS)
        .map(|ins| (ins, outs.by_ref().take(ins.len()).collect::<Vec<_>>()))
        .collect();
    // each worker's two tile buffers serve all its tiles (a fresh 128 KiB each would be
    // mapped and zeroed page by page)
    let buffers = || (Vec::<f32>::new(), Vec::<MaybeUninit<f32>>::new());
    tiles
        .into_par_iter()
        .for_each_init(buffers, |(steps, result), (ins, mut outs)| {
            let m = ins.len();
            // every value of both is written before it is read
            steps.resize(n * m, 0.0);
            result.resize(n * m, MaybeUninit::uninit());
            for (p, row) in ins.iter().enumerate() {
                for (t, &v) in row.iter().enumerate() {
                    steps[t * m + p] = v;
                }
            }
            {
                let step_rows: Vec<&[f32]> = steps.chunks_exact(m).collect();
                let mut out_steps: Vec<&mut [MaybeUninit<f32>]> = result.chunks_exact_mut(m).collect();
                kernel(&step_rows, &mut out_steps);
            }
            for (p, out) in outs.iter_mut().enumerate() {
                for (t, o) in out.iter_mut().enumerate() {
                    *o = result[t * m + p];
                }
            }
        });
    true
}

/// The axes with `axis` first, the others in order.
fn axis_first(ndim: usize, axis: usize) -> Vec<usize> {
    std::iter::once(axis).chain((0..ndim).filter(|&a| a != axis)).collect()
}

fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    perm.iter().enumerate().for_each(|(i, &p)| inv[p] = i);
    inv
}
