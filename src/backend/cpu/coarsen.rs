//! Window reductions (`coarsen`): every window of a block that holds whole windows reduced to
//! one value. The block's windows are first laid side by side, value by value (xarray's
//! reshape to `(.., y/k, k, x/k, k)`, as one copy in step-major order), so that value `i` of
//! every window of an output row is one contiguous row; then the kernels that reduce steps
//! over time reduce them: the median's tiled sorting network, the moving windows' sums,
//! extremes and variances.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, Axis, IxDyn};
use rayon::prelude::*;

use super::median::median_rows;
use super::window::{reduce_window, WindowState};
use crate::expr::layout::{rows, rows_mut};
use crate::expr::ReduceOp;
use crate::expr::WindowOp;

/// `op` over every window of `x` (each axis a multiple of its window) into a fresh array of
/// the coarse shape. `None` for an op that is not a window reduction.
pub(super) fn coarsen(op: ReduceOp, x: &ArrayViewD<'_, f32>, windows: &[usize]) -> Option<ArrayD<f32>> {
    let shape: Vec<usize> = x.shape().iter().zip(windows).map(|(n, k)| n / k).collect();
    let mut out = ArrayD::<f32>::uninit(IxDyn(&shape));
    if !coarsen_into(op, x, windows, &mut out.view_mut()) {
        return None;
    }
    // SAFETY: coarsen_into wrote every element of the fresh (contiguous) array.
    Some(unsafe { out.assume_init() })
}

/// `op` over every window of `x` straight into `dst` (the coarse shape). Returns `false`,
/// writing nothing, for an op that is not a window reduction or a `dst` without contiguous
/// rows.
///
/// Costs one copy of `x` (its windows laid side by side) and, per window of `w` values, O(w)
/// (a median: a pruned sorting network across 64 windows at a time up to 256 values, a
/// selection beyond), parallel over runs of output pixels.
pub(super) fn coarsen_into(
    op: ReduceOp,
    x: &ArrayViewD<'_, f32>,
    windows: &[usize],
    dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>,
) -> bool {
    let Some(window_op) = WindowOp::of(op) else {
        return false;
    };
    // a lone value (no axes) is a window of one: reduce it as a row of one
    let (x, mut dst) = if x.ndim() == 0 {
        (x.view().insert_axis(Axis(0)), dst.view_mut().insert_axis(Axis(0)))
    } else {
        (x.view(), dst.view_mut())
    };
    let windows = if windows.is_empty() { &[1][..] } else { windows };
    let Some(runs) = output_runs(&mut dst) else {
        return false;
    };
    if runs.is_empty() {
        return true;
    }
    // the copy reuses this thread's last one: a fresh 2 MiB would be mapped and zeroed page by
    // page, which costs more than the copy itself (taken, not borrowed: a nested task on this
    // thread makes its own)
    let mut steps = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    side_by_side(&x, windows, &mut steps);
    coarsen_runs(window_op, &steps, windows, runs);
    if steps.capacity() <= KEPT_SCRATCH {
        SCRATCH.with(|s| *s.borrow_mut() = steps);
    }
    true
}

/// The most values a thread keeps for its next block (2 MiB blocks are the rule; a block of
/// larger windows, which cannot be cut, gives its copy back).
const KEPT_SCRATCH: usize = 2 << 20;

thread_local! {
    /// The last block's windows laid side by side, kept for the next block on this thread.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Output pixels a kernel call takes at once: several output rows when the block is
/// contiguous (a row of 16 windows would fill a quarter of the median's 64-wide tiles), a
/// multiple of those tiles.
const RUN: usize = 1024;

/// A run of contiguous output pixels and its first pixel's position in the block (C order).
type OutputRun<'a> = (usize, &'a mut [MaybeUninit<f32>]);

/// The result block as runs of contiguous pixels, each with its first pixel's position in the
/// block (C order): runs of [`RUN`] across rows when the block is one contiguous slice, else
/// its rows. `None` when its rows are not contiguous.
fn output_runs<'a>(dst: &'a mut ArrayViewMutD<'_, MaybeUninit<f32>>) -> Option<Vec<OutputRun<'a>>> {
    if dst.is_standard_layout() {
        let all = dst.as_slice_mut().expect("a standard layout is one slice");
        return Some(all.chunks_mut(RUN).enumerate().map(|(c, run)| (c * RUN, run)).collect());
    }
    let rows = rows_mut(dst)?;
    let width = rows.first().map_or(0, |r| r.len());
    Some(
        rows.into_iter()
            .enumerate()
            .map(|(q, row)| (q * width, row))
            .filter(|(_, r)| !r.is_empty())
            .collect(),
    )
}

/// `op` over every window from `steps` (laid out by [`side_by_side`]) into `runs` of output
/// pixels: value `i` of the windows of a run at `at` lies at `i * pixels + at`.
fn coarsen_runs(window_op: WindowOp, steps: &[f32], windows: &[usize], runs: Vec<OutputRun<'_>>) {
    let r: usize = windows.iter().product();
    let pixels = steps.len() / r;
    let step = |i: usize, at: usize, len: usize| &steps[i * pixels + at..i * pixels + at + len];
    if window_op == WindowOp::Median {
        let n = runs.len();
        let mut rows = vec![&steps[..0]; r * n];
        for (c, (at, run)) in runs.iter().enumerate() {
            for i in 0..r {
                rows[i * n + c] = step(i, *at, run.len());
            }
        }
        return median_rows(true, &rows, r, runs.into_iter().map(|(_, run)| run).collect());
    }
    let need = match window_op {
        // a sum or count of no values is 0 (xarray's skipna sum, min_count 0)
        WindowOp::Count | WindowOp::Sum => 0,
        WindowOp::Var { ddof, .. } => ddof + 1,
        _ => 1,
    };
    runs.into_par_iter()
        .for_each_init(WindowState::default, |state, (at, out)| {
            let window: Vec<&[f32]> = (0..r).map(|i| step(i, at, out.len())).collect();
            reduce_window(window_op, &window, need, out, state);
        });
}

/// `x`'s windows laid side by side: the array seen as `(n0/k0, k0, n1/k1, k1, ...)`, its
/// axes reordered to `(k0, k1, ..., n0/k0, n1/k1, ...)` and copied in C order. Value `i` of
/// every window of output row `q` (each row `n_last/k_last` long) is then row
/// `i * rows + q`. One pass over the input rows in memory order, each split into its
/// `k_last` strided pieces.
fn side_by_side(x: &ArrayViewD<'_, f32>, windows: &[usize], out: &mut Vec<f32>) {
    let copied;
    let rows = match rows(x.view()) {
        Some(rows) => rows,
        None => {
            copied = x.as_standard_layout();
            rows(copied.view()).expect("a standard layout has rows")
        }
    };
    let nd = windows.len();
    let shape = x.shape();
    let k_last = windows[nd - 1];
    let width = shape[nd - 1] / k_last;
    let q_count: usize = shape[..nd - 1].iter().zip(windows).map(|(n, k)| n / k).product();
    // every value is written below: old values are only ever overwritten
    out.resize(x.len(), 0.0);
    let mut index = vec![0usize; nd - 1];
    for row in rows {
        // the window offset and the output row of this input row
        let (mut step, mut q) = (0, 0);
        for (a, &i) in index.iter().enumerate() {
            step = step * windows[a] + i % windows[a];
            q = q * (shape[a] / windows[a]) + i / windows[a];
        }
        for d in 0..k_last {
            let at = ((step * k_last + d) * q_count + q) * width;
            let dst = &mut out[at..at + width];
            if k_last == 1 {
                dst.copy_from_slice(row);
            } else {
                for (o, w) in dst.iter_mut().zip(row.chunks_exact(k_last)) {
                    *o = w[d];
                }
            }
        }
        // the next input row's index, last axis fastest
        for a in (0..nd - 1).rev() {
            index[a] += 1;
            if index[a] < shape[a] {
                break;
            }
            index[a] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::coarsen;
    use crate::expr::ReduceOp;

    fn arr(shape: &[usize], v: &[f32]) -> ArrayD<f32> {
        ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap()
    }

    fn same(got: &ArrayD<f32>, want: &ArrayD<f32>) {
        assert_eq!(got.shape(), want.shape());
        for (g, w) in got.iter().zip(want) {
            assert!(g == w || (g.is_nan() && w.is_nan()), "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn windows_by_hand() {
        let nan = f32::NAN;
        // a 4 x 4 plane in 2 x 2 windows:
        //   1 2 | nan nan
        //   3 4 | nan 8
        //   ----+--------
        //   5 6 | 9  10
        //   7 9 | 11 nan
        let x = arr(
            &[4, 4],
            &[1., 2., nan, nan, 3., 4., nan, 8., 5., 6., 9., 10., 7., 9., 11., nan],
        );
        let c = |op| coarsen(op, &x.view(), &[2, 2]).unwrap();
        same(&c(ReduceOp::NanSum), &arr(&[2, 2], &[10., 8., 27., 30.]));
        same(&c(ReduceOp::Count), &arr(&[2, 2], &[4., 1., 4., 3.]));
        same(&c(ReduceOp::NanMean), &arr(&[2, 2], &[2.5, 8., 6.75, 10.]));
        same(&c(ReduceOp::NanMin), &arr(&[2, 2], &[1., 8., 5., 9.]));
        same(&c(ReduceOp::NanMax), &arr(&[2, 2], &[4., 8., 9., 11.]));
        same(&c(ReduceOp::NanMedian), &arr(&[2, 2], &[2.5, 8., 6.5, 10.]));
        // variance of 1 2 3 4 about 2.5: (2.25 + 0.25 + 0.25 + 2.25) / 4; one value over
        // n - 1 = 0 is NaN
        same(
            &c(ReduceOp::NanVar { ddof: 0 }),
            &arr(&[2, 2], &[1.25, 0., 2.1875, 2. / 3.]),
        );
        same(
            &c(ReduceOp::NanVar { ddof: 1 }),
            &arr(&[2, 2], &[5. / 3., nan, 2.9166667, 1.]),
        );

        // a window of NaN only: a sum and a count of none are 0, the rest NaN
        let x = arr(&[2, 2], &[nan; 4]);
        for (op, want) in [
            (ReduceOp::NanSum, 0.),
            (ReduceOp::Count, 0.),
            (ReduceOp::NanMean, nan),
            (ReduceOp::NanMax, nan),
            (ReduceOp::NanMedian, nan),
            (ReduceOp::NanStd { ddof: 0 }, nan),
        ] {
            same(&coarsen(op, &x.view(), &[2, 2]).unwrap(), &arr(&[1, 1], &[want]));
        }
    }

    #[test]
    fn windows_along_some_axes_of_a_cube_and_of_a_view() {
        // (2, 2, 6): windows of 3 along the last axis only, then of 2 along the first
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 2, 6]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as f32);
        let got = coarsen(ReduceOp::NanMax, &x.view(), &[1, 1, 3]).unwrap();
        same(&got, &arr(&[2, 2, 2], &[2., 5., 12., 15., 102., 105., 112., 115.]));
        let got = coarsen(ReduceOp::NanSum, &x.view(), &[2, 1, 1]).unwrap();
        let want = ArrayD::from_shape_fn(IxDyn(&[1, 2, 6]), |i| (100 + 2 * (i[1] * 10 + i[2])) as f32);
        same(&got, &want);
        // a view whose rows are not contiguous (every other column) gives the same as a copy
        let wide = ArrayD::from_shape_fn(IxDyn(&[4, 8]), |i| (i[0] * 8 + i[1]) as f32);
        let view = wide.slice(ndarray::s![.., ..;2]).into_dyn();
        let got = coarsen(ReduceOp::NanMedian, &view, &[2, 2]).unwrap();
        let copied = coarsen(ReduceOp::NanMedian, &view.to_owned().view(), &[2, 2]).unwrap();
        same(&got, &copied);
        // rows 0-1, columns 0 2 | 4 6: 0 2 8 10 -> 5; 4 6 12 14 -> 9
        same(&got, &arr(&[2, 2], &[5., 9., 21., 25.]));
    }

    #[test]
    fn runs_across_output_rows_give_each_window_its_own_values() {
        // 3072 output pixels: runs of 1024 cut across output rows of 48
        let x = ArrayD::from_shape_fn(IxDyn(&[2, 64, 96]), |i| {
            let v = ((i[0] * 7 + i[1] * 131 + i[2] * 197) % 101) as f32;
            if v % 9.0 == 0.0 {
                f32::NAN
            } else {
                v
            }
        });
        for op in [ReduceOp::NanMedian, ReduceOp::NanMax, ReduceOp::NanSum] {
            let got = coarsen(op, &x.view(), &[1, 2, 2]).unwrap();
            let want = ArrayD::from_shape_fn(IxDyn(&[2, 32, 48]), |o| {
                let mut v: Vec<f32> = (0..4)
                    .map(|d| x[[o[0], o[1] * 2 + d / 2, o[2] * 2 + d % 2]])
                    .filter(|v| !v.is_nan())
                    .collect();
                v.sort_by(f32::total_cmp);
                match (op, v.len()) {
                    (ReduceOp::NanSum, _) => v.iter().sum(),
                    (_, 0) => f32::NAN,
                    (ReduceOp::NanMax, n) => v[n - 1],
                    (_, n) => (v[(n - 1) / 2] + v[n / 2]) / 2.0,
                }
            });
            same(&got, &want);
        }
    }
}
