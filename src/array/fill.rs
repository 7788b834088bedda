//! Gap filling along one axis: forward and backward fill (xarray's `ffill`/`bfill`, bottleneck's
//! `push`) and linear interpolation of NaN (xarray's `interpolate_na`): the cloud gaps of a
//! pixel's time series. Each needs the whole axis at once, so the axis is made whole in each
//! block (as dask-backed xarray asks the user to do) and every block is filled step by step on
//! the host, through the same node as `map_blocks`.

use ndarray::{ArrayD, ArrayViewD};
use rayon::prelude::*;

use super::select::resolve_axis;
use super::Array;
use crate::expr::layout::{contiguous, rows};
use crate::expr::{split_regular, ChunkGrid, DType, ExprError, Node, Op};

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
        let checked = input.node().and_then(|node| {
            let axis = resolve_axis(name, axis, node.grid.ndim())?;
            check(name, &fill, node.shape()[axis])?;
            Ok((
                axis,
                Node::new(Op::Rechunk, vec![node.clone()], fill_grid(&node.grid, axis), DType::F32),
            ))
        });
        let (axis, node) = match checked {
            Ok(v) => v,
            Err(e) => return Array::from_result(Err(e)),
        };
        let whole = input.same_dims(Array::from_result(Ok(node)));
        whole.map_blocks(name, move |block| fill_block(&fill, block, axis))
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

/// One block, whole along `axis`, filled step by step: runs of pixels in parallel, each step
/// a row of the run (vectorised compares and blends for the fills). The steps are read in
/// place when `axis` leads and rows are contiguous (a block cut from an in-memory array
/// included), else from one copy with `axis` first.
fn fill_block(fill: &GapFill, block: ArrayViewD<'_, f32>, axis: usize) -> ArrayD<f32> {
    let n = block.shape()[axis];
    let perm: Vec<usize> = std::iter::once(axis)
        .chain((0..block.ndim()).filter(|&a| a != axis))
        .collect();
    let moved = block.permuted_axes(perm.clone());
    if moved.is_empty() {
        return moved.permuted_axes(inverse(&perm)).to_owned();
    }
    let copied;
    // rows of the (axis, others...) view: row (t, q) holds `width` pixels of row q at step t
    let (rows, width): (Vec<&[f32]>, usize) = match (moved.ndim() > 1).then(|| rows(moved.view())).flatten() {
        Some(rows) => (rows, *moved.shape().last().expect("two axes")),
        None => {
            copied = contiguous(moved.view());
            let p = copied.len() / n;
            (copied.chunks(p).collect(), p)
        }
    };
    let per_step = rows.len() / n;
    let p = per_step * width;
    // zeroed pages come from the OS as they are first written: no pass of its own
    let mut out = vec![0.0f32; n * p];
    // run (q, c) is the c-th RUN pixels of row q; its outputs, one piece per step
    let per_row = width.div_ceil(RUN);
    let mut runs: Vec<Vec<&mut [f32]>> = (0..per_step * per_row).map(|_| Vec::with_capacity(n)).collect();
    for (r, row) in out.chunks_mut(width).enumerate() {
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
    let out = ArrayD::from_shape_vec(moved.shape(), out).expect("shape");
    if axis == 0 {
        out
    } else {
        out.permuted_axes(inverse(&perm)).as_standard_layout().into_owned()
    }
}

fn inverse(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    perm.iter().enumerate().for_each(|(i, &p)| inv[p] = i);
    inv
}

/// bottleneck's `push` over a run (backwards for `bfill`): each NaN takes the last valid value
/// seen when at most `limit` NaN (itself included) lie since it. Compiled for AVX2 where the
/// CPU has it (8-wide; the same bits: nothing is computed, only chosen).
fn carry(steps: &[&[f32]], outs: &mut [&mut [f32]], limit: Option<usize>, backwards: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { carry_avx2(steps, outs, limit, backwards) };
    }
    carry_generic(steps, outs, limit, backwards)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn carry_avx2(steps: &[&[f32]], outs: &mut [&mut [f32]], limit: Option<usize>, backwards: bool) {
    carry_generic(steps, outs, limit, backwards)
}

/// Branch-free per step: a NaN count since the last valid value (capped, so it never wraps)
/// and that value, per pixel.
#[inline(always)]
fn carry_generic(steps: &[&[f32]], outs: &mut [&mut [f32]], limit: Option<usize>, backwards: bool) {
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
            dst[k] = if r <= limit { l } else { v };
        }
    }
}

/// xarray's linear `interpolate_na` over a run: each NaN between valid values at steps `p` and
/// `q` becomes `numpy.interp`'s value there, in f64 with numpy's formula, unless it lies more
/// than `limit` after `p` or the gap is wider than `max_gap`. NaN outside the valid range
/// stay (numpy's NaN left and right), so a pixel with under two valid values stays as it is.
fn linear(steps: &[&[f32]], outs: &mut [&mut [f32]], x: &[f64], limit: Option<usize>, max_gap: Option<f64>) {
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
                outs[t][k] = v;
                continue;
            }
            let (p, q) = (before[t * len + k], next[k]);
            outs[t][k] = f32::NAN;
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
            outs[t][k] = v as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{carry, linear};

    const NAN: f32 = f32::NAN;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// A one-pixel run: each value its own step.
    fn lane(values: &[f32], f: impl FnOnce(&[&[f32]], &mut [&mut [f32]])) -> Vec<f32> {
        let steps: Vec<&[f32]> = values.iter().map(std::slice::from_ref).collect();
        let mut out = vec![0.0f32; values.len()];
        let mut outs: Vec<&mut [f32]> = out.iter_mut().map(std::slice::from_mut).collect();
        f(&steps, &mut outs);
        out
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
