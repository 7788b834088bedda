//! Gap filling along one axis: forward and backward fill (xarray's `ffill`/`bfill`, bottleneck's
//! `push`) and linear interpolation of NaN (xarray's `interpolate_na`): the cloud gaps of a
//! pixel's time series. Each needs the whole axis at once, so the axis is made whole in each
//! block (as dask-backed xarray asks the user to do) and every block is filled step by step on
//! the host, through the same node as `map_blocks`.

use std::mem::MaybeUninit;
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis};
use rayon::prelude::*;

use super::select::resolve_axis;
use super::Array;
use crate::expr::layout::{contiguous, rows, rows_mut};
use crate::expr::{split_regular, BlockFn, ChunkGrid, DType, ExprError, Node, Op};

/// How far a fill reaches and from where: the gap-filling work of one block.
#[derive(Debug, Clone, PartialEq)]
enum GapFill {
    /// the last valid value carried forward over at most `limit` NaN
    Forward { limit: Option<usize> },
    /// the next valid value carried backward over at most `limit` NaN
    Backward { limit: Option<usize> },
    /// numpy's `interp` between the valid neighbours at `positions`: at most the first `limit`
    /// NaN of a gap, only gaps whose valid ends lie at most `max_gap` apart
    Linear {
        positions: Vec<f64>,
        limit: Option<usize>,
        max_gap: Option<f64>,
    },
}

impl Array {
    /// NaN replaced by the last valid value before it along `axis` (xarray's `ffill(dim,
    /// limit)`): at most `limit` NaN in a row are filled (`None`: all), NaN before the first
    /// valid value stay. Lazy; the axis is made whole in each block, then one pass per block on
    /// the host.
    pub fn ffill(&self, axis: isize, limit: Option<usize>) -> Array {
        self.gap_filled("ffill", axis, GapFill::Forward { limit })
    }

    /// NaN replaced by the next valid value after it along `axis` (xarray's `bfill(dim,
    /// limit)`), as [`Array::ffill`] backwards.
    pub fn bfill(&self, axis: isize, limit: Option<usize>) -> Array {
        self.gap_filled("bfill", axis, GapFill::Backward { limit })
    }

    /// NaN replaced by linear interpolation between the valid values on either side along
    /// `axis`, at `positions` (one per index, strictly increasing: the coordinate; xarray's
    /// `interpolate_na(dim, method="linear")`, computed as `numpy.interp` in f64, rounded once
    /// to f32). NaN before the first or after the last valid value stay, as does a lane with
    /// fewer than two valid values. `limit` fills only the first `limit` NaN of each gap;
    /// `max_gap` only gaps whose valid ends lie at most that far apart (in position units).
    /// Lazy; the axis is made whole in each block, then one pass per block on the host.
    ///
    /// **Errors** (at compute): `InvalidArgument` for positions that are not one per index,
    /// not finite or not strictly increasing, a zero `limit`, or a negative or NaN `max_gap`.
    pub fn interpolate_na(&self, axis: isize, positions: &[f64], limit: Option<usize>, max_gap: Option<f64>) -> Array {
        let fill = GapFill::Linear {
            positions: positions.to_vec(),
            limit,
            max_gap,
        };
        self.gap_filled("interpolate_na", axis, fill)
    }

    fn gap_filled(&self, name: &'static str, axis: isize, fill: GapFill) -> Array {
        let input = self.astype(DType::F32);
        let result = input.node().and_then(|node| {
            let axis = resolve_axis(name, axis, node.grid.ndim())?;
            check(name, &fill, node.shape()[axis])?;
            let grid = fill_grid(&node.grid, axis);
            let whole = Node::new(Op::Rechunk, vec![node.clone()], grid.clone(), DType::F32);
            let fill = Arc::new(fill);
            let into = fill.clone();
            let f = BlockFn {
                name: name.to_string(),
                f: Arc::new(move |block| fill_block(&fill, block, axis)),
                // a final result's block is filled where it lies: no block, no copy
                into: Some(Arc::new(move |block, dst| fill_into(&into, block, dst, axis))),
            };
            Ok(Node::new(Op::MapBlocks(f), vec![whole], grid, DType::F32))
        });
        input.same_dims(Array::from_result(result))
    }
}

/// A block's most bytes in a gap fill: a few MiB, so a large block (an in-memory array of one
/// block) becomes enough tasks for every core, each cache-friendly.
const FILL_BLOCK_BYTES: usize = 2 << 20;

/// The blocks a gap fill runs in: `axis` whole; the other axes' blocks kept, cut further
/// (outer axes first, never across a block's edge) while a block holds over
/// [`FILL_BLOCK_BYTES`].
fn fill_grid(grid: &ChunkGrid, axis: usize) -> ChunkGrid {
    let mut out = grid.with_axis(axis, vec![grid.shape()[axis]]);
    for a in (0..grid.ndim()).filter(|&a| a != axis) {
        let block = out.max_block_shape();
        let rest: usize = block
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != a)
            .map(|(_, &s)| s)
            .product();
        let fits = (FILL_BLOCK_BYTES / 4 / rest.max(1)).max(1);
        if block[a] > fits {
            out = out.refine(&out.with_axis(a, split_regular(grid.shape()[a], fits)));
        }
    }
    out
}

fn check(name: &str, fill: &GapFill, n: usize) -> Result<(), ExprError> {
    let bad = |reason: String| {
        Err(ExprError::InvalidArgument {
            op: name.to_string(),
            reason,
        })
    };
    let limit = match fill {
        GapFill::Forward { limit } | GapFill::Backward { limit } => *limit,
        GapFill::Linear {
            positions,
            limit,
            max_gap,
        } => {
            if positions.len() != n {
                return bad(format!("{} positions for an axis of {n}", positions.len()));
            }
            if let Some(i) = positions
                .windows(2)
                .position(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
            {
                return bad(format!(
                    "positions must increase strictly (index {i}: {}, then {})",
                    positions[i],
                    positions[i + 1]
                ));
            }
            if positions.iter().any(|p| !p.is_finite()) {
                return bad("positions must be finite".into());
            }
            if max_gap.is_some_and(|g| g.is_nan() || g < 0.0) {
                return bad(format!("max_gap {max_gap:?} must be 0 or more"));
            }
            *limit
        }
    };
    if limit == Some(0) {
        return bad("limit must be greater than 0 (None fills every gap)".into());
    }
    Ok(())
}

/// Pixels a parallel run fills at once: its state (a value and a count or an index per
/// pixel) stays in L1 while the steps stream past.
const RUN: usize = 1024;

/// One block, whole along `axis`, filled into a fresh array (see [`fill_into`]); where the
/// destination has no contiguous rows with `axis` first (`axis` last), into a fresh array so
/// laid out, then rearranged.
fn fill_block(fill: &GapFill, block: ArrayViewD<'_, f32>, axis: usize) -> ArrayD<f32> {
    let mut out = ArrayD::<f32>::uninit(block.raw_dim());
    if fill_into(fill, block.view(), &mut out.view_mut(), axis) {
        // SAFETY: fill_into wrote every element.
        return unsafe { out.assume_init() };
    }
    let perm = axis_first(block.ndim(), axis);
    let moved = block.permuted_axes(perm.clone());
    let mut laid = ArrayD::<f32>::uninit(moved.raw_dim());
    let written = fill_into(fill, moved.view(), &mut laid.view_mut(), 0);
    assert!(written, "a fresh array has contiguous rows");
    // SAFETY: fill_into wrote every element of the fresh array.
    let laid = unsafe { laid.assume_init() };
    laid.permuted_axes(inverse(&perm)).as_standard_layout().into_owned()
}

/// One block, whole along `axis`, filled step by step straight into `dst` (the block's shape):
/// runs of pixels in parallel, each step a row of the run (vectorised compares and blends for
/// the fills). The steps are read in place when `axis` leads and rows are contiguous (a block
/// cut from an in-memory array included), else from one copy with `axis` first. Returns
/// `false`, writing nothing, when `dst` has no contiguous rows with `axis` first.
fn fill_into(
    fill: &GapFill,
    block: ArrayViewD<'_, f32>,
    dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>,
    axis: usize,
) -> bool {
    let n = block.shape()[axis];
    if block.is_empty() {
        return true;
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
        match fill {
            GapFill::Forward { limit } => carry(&steps, &mut outs, *limit, false),
            GapFill::Backward { limit } => carry(&steps, &mut outs, *limit, true),
            GapFill::Linear {
                positions,
                limit,
                max_gap,
            } => linear(&steps, &mut outs, positions, *limit, *max_gap),
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

/// bottleneck's `push` over a run (backwards for `bfill`): each NaN takes the last valid value
/// seen when at most `limit` NaN (itself included) lie since it. Compiled for AVX2 where the
/// CPU has it (8-wide; the same bits: nothing is computed, only chosen).
fn carry(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]], limit: Option<usize>, backwards: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { carry_avx2(steps, outs, limit, backwards) };
    }
    carry_generic(steps, outs, limit, backwards)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn carry_avx2(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]], limit: Option<usize>, backwards: bool) {
    carry_generic(steps, outs, limit, backwards)
}

/// Branch-free per step: a NaN count since the last valid value (capped, so it never wraps)
/// and that value, per pixel.
#[inline(always)]
fn carry_generic(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]], limit: Option<usize>, backwards: bool) {
    let limit = limit.map_or(u32::MAX - 1, |l| l.min(u32::MAX as usize - 1) as u32);
    let len = outs[0].len();
    let (mut last, mut run) = (vec![f32::NAN; len], vec![0u32; len]);
    let n = steps.len();
    for i in 0..n {
        let t = if backwards { n - 1 - i } else { i };
        let (src, dst) = (&steps[t][..len], &mut outs[t][..len]);
        for k in 0..len {
            let v = src[k];
            #[allow(clippy::eq_op)] // v != v: NaN, in a form that vectorises
            let nan = v != v;
            let r = if nan { (run[k] + 1).min(limit + 1) } else { 0 };
            let l = if nan { last[k] } else { v };
            run[k] = r;
            last[k] = l;
            dst[k] = MaybeUninit::new(if r <= limit { l } else { v });
        }
    }
}

/// xarray's linear `interpolate_na` over a run: each NaN between valid values at steps `p` and
/// `q` becomes `numpy.interp`'s value there, in f64 with numpy's formula, unless it lies more
/// than `limit` after `p` or the gap is wider than `max_gap`. NaN outside the valid range
/// stay (numpy's NaN left and right), so a pixel with under two valid values stays as it is.
fn linear(
    steps: &[&[f32]],
    outs: &mut [&mut [MaybeUninit<f32>]],
    x: &[f64],
    limit: Option<usize>,
    max_gap: Option<f64>,
) {
    const NONE: u32 = u32::MAX;
    let (n, len) = (steps.len(), outs[0].len());
    // forward: the last valid step at or before each step, per pixel
    let mut before = vec![NONE; n * len];
    let mut last = vec![NONE; len];
    for t in 0..n {
        for ((b, l), &v) in before[t * len..(t + 1) * len].iter_mut().zip(&mut last).zip(steps[t]) {
            if !v.is_nan() {
                *l = t as u32;
            }
            *b = *l;
        }
    }
    // backward: the next valid step, and the value at each NaN
    let mut next = vec![NONE; len];
    for t in (0..n).rev() {
        for k in 0..len {
            let v = steps[t][k];
            if !v.is_nan() {
                next[k] = t as u32;
                outs[t][k] = MaybeUninit::new(v);
                continue;
            }
            let (p, q) = (before[t * len + k], next[k]);
            outs[t][k] = MaybeUninit::new(f32::NAN);
            if p == NONE || q == NONE {
                continue;
            }
            let (p, q) = (p as usize, q as usize);
            if limit.is_some_and(|l| t - p > l) || max_gap.is_some_and(|g| x[q] - x[p] > g) {
                continue;
            }
            let (fp, fq) = (f64::from(steps[p][k]), f64::from(steps[q][k]));
            let slope = (fq - fp) / (x[q] - x[p]);
            let mut v = slope * (x[t] - x[p]) + fp;
            if v.is_nan() {
                v = slope * (x[t] - x[q]) + fq;
            }
            outs[t][k] = MaybeUninit::new(v as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use super::{carry, linear};

    const NAN: f32 = f32::NAN;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// A one-pixel run: each value its own step.
    fn lane(values: &[f32], f: impl FnOnce(&[&[f32]], &mut [&mut [MaybeUninit<f32>]])) -> Vec<f32> {
        let steps: Vec<&[f32]> = values.iter().map(std::slice::from_ref).collect();
        let mut out = vec![MaybeUninit::new(-1.0f32); values.len()];
        let mut outs: Vec<&mut [MaybeUninit<f32>]> = out.iter_mut().map(std::slice::from_mut).collect();
        f(&steps, &mut outs);
        // SAFETY: initialised above (and every step written by the kernel)
        out.iter().map(|v| unsafe { v.assume_init() }).collect()
    }

    #[test]
    fn carries_fill_from_the_last_valid_value_within_the_limit() {
        let a = [NAN, 1.0, NAN, NAN, NAN, 2.0, NAN];
        let all = lane(&a, |s, o| carry(s, o, None, false));
        assert_eq!(bits(&all), bits(&[NAN, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]));
        let two = lane(&a, |s, o| carry(s, o, Some(2), false));
        assert_eq!(bits(&two), bits(&[NAN, 1.0, 1.0, 1.0, NAN, 2.0, 2.0]));
        let back = lane(&a, |s, o| carry(s, o, Some(1), true));
        assert_eq!(bits(&back), bits(&[1.0, 1.0, NAN, NAN, 2.0, 2.0, NAN]));
    }

    #[test]
    fn linear_interpolation_by_hand() {
        // positions 0, 1, 3, 4, 10, 11: the NaN at index 2 lies between 1 (10) and 4 (40)
        let x = [0.0, 1.0, 3.0, 4.0, 10.0, 11.0];
        let a = [NAN, 10.0, NAN, 40.0, NAN, 100.0];
        let got = lane(&a, |s, o| linear(s, o, &x, None, None));
        // index 2: 10 + (40 - 10) / 3 * 2 = 30; index 4: 40 + 60 / 7 * 6
        assert_eq!(got[2], 30.0);
        assert_eq!(got[4], (40.0 + 60.0 / 7.0 * 6.0) as f32);
        assert!(got[0].is_nan(), "before the first valid value");
        // a gap 7 wide (positions 4 to 11) is over max_gap 5; one 3 wide is not
        let short = lane(&a, |s, o| linear(s, o, &x, None, Some(5.0)));
        assert_eq!(short[2], 30.0);
        assert!(short[4].is_nan());
        // limit 1 fills only the first NaN of a gap
        let c = lane(&[1.0, NAN, NAN, 4.0], |s, o| {
            linear(s, o, &[0.0, 1.0, 2.0, 3.0], Some(1), None)
        });
        assert_eq!(bits(&c), bits(&[1.0, 2.0, NAN, 4.0]));
        // one valid value: left as it is
        let d = lane(&[NAN, 5.0, NAN], |s, o| linear(s, o, &[0.0, 1.0, 2.0], None, None));
        assert_eq!(bits(&d), bits(&[NAN, 5.0, NAN]));
    }
}
