//! Moving windows along one axis (xarray's `rolling(time=k, center=..., min_periods=...)`,
//! bottleneck's `move_mean`, `move_median`...): a cloud-gapped time series smoothed pixel by
//! pixel. Each run of pixels of a block holding the axis whole steps through it (see
//! [`super::along`]); every window is reduced from its steps as they lie, vectorised across
//! the run's pixels. `coarsen` reduces its windows with the same kernels.

use std::mem::MaybeUninit;

use crate::expr::{MovingWindow, WindowOp};

/// Windows of up to this many steps are sorted by a network across the run's pixels; longer
/// ones pixel by pixel.
const NETWORK_STEPS: usize = 16;

/// Every window of one run of pixels reduced by `op`, written into `outs`. Compiled for AVX2
/// where the CPU has it (the same bits: only the vector width differs).
pub(super) fn moving(op: WindowOp, window: MovingWindow, steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { moving_avx2(op, window, steps, outs) };
    }
    moving_generic(op, window, steps, outs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn moving_avx2(op: WindowOp, window: MovingWindow, steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]]) {
    moving_generic(op, window, steps, outs)
}

#[inline(always)]
fn moving_generic(op: WindowOp, window: MovingWindow, steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]]) {
    let (n, len) = (steps.len(), outs.first().map_or(0, |o| o.len()));
    let need = op.need(&window);
    let mut state = WindowState::default();
    for (t, out) in outs.iter_mut().enumerate() {
        let (lo, hi) = window.steps(t, n);
        window_generic(op, &steps[lo..hi], need, &mut out[..len], &mut state);
    }
}

/// Buffers of one run's window reductions, kept from window to window.
#[derive(Default)]
pub(super) struct WindowState {
    count: Vec<u32>,
    sum: Vec<f64>,
    acc: Vec<f32>,
    sorted: Vec<Vec<f32>>,
}

/// `op` over one window of a run of pixels: `rows[i]` holds the window's value `i` of every
/// pixel, and `out` gets each pixel's result, NaN where it has fewer than `need` non-NaN
/// values (0 lets a sum or count of none through). Compiled for AVX2 where the CPU has it
/// (the same bits: only the vector width differs).
pub(super) fn reduce_window(
    op: WindowOp,
    rows: &[&[f32]],
    need: u32,
    out: &mut [MaybeUninit<f32>],
    state: &mut WindowState,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { window_avx2(op, rows, need, out, state) };
    }
    window_generic(op, rows, need, out, state)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn window_avx2(op: WindowOp, rows: &[&[f32]], need: u32, out: &mut [MaybeUninit<f32>], state: &mut WindowState) {
    window_generic(op, rows, need, out, state)
}

#[inline(always)]
fn window_generic(op: WindowOp, rows: &[&[f32]], need: u32, out: &mut [MaybeUninit<f32>], state: &mut WindowState) {
    let len = out.len();
    let WindowState {
        count,
        sum,
        acc,
        sorted,
    } = state;
    count.resize(len, 0);
    sum.resize(len, 0.0);
    acc.resize(len, 0.0);
    let (count, sum, acc) = (&mut count[..len], &mut sum[..len], &mut acc[..len]);
    if matches!(op, WindowOp::Sum | WindowOp::Mean | WindowOp::Var { .. }) {
        sums(rows, sum, count);
    } else {
        counts(rows, count);
    }
    match op {
        WindowOp::Count => gate(out, count, need, count.iter().map(|&c| c as f32)),
        WindowOp::Sum => gate(out, count, need, sum.iter().map(|&s| s as f32)),
        WindowOp::Mean => {
            let means = sum.iter().zip(count.iter()).map(|(&s, &c)| (s / f64::from(c)) as f32);
            gate(out, count, need, means);
        }
        WindowOp::Min | WindowOp::Max => {
            extremes(rows, acc, op == WindowOp::Max);
            gate(out, count, need, acc.iter().copied());
        }
        WindowOp::Var { ddof, sqrt } => {
            for (s, &c) in sum.iter_mut().zip(count.iter()) {
                *s /= f64::from(c.max(1));
            }
            squared_deviations(rows, sum);
            let vars = sum.iter().zip(count.iter()).map(|(&ss, &c)| {
                let var = ss / (f64::from(c) - f64::from(ddof));
                (if sqrt { var.sqrt() } else { var }) as f32
            });
            gate(out, count, need, vars);
        }
        WindowOp::Median => {
            if rows.len() <= NETWORK_STEPS {
                sort_across(rows, sorted, len);
                gate_where_enough(out, count, need, |k| {
                    let c = count[k] as usize;
                    middle(sorted[(c - 1) / 2][k], sorted[c / 2][k], c)
                });
            } else {
                let mut values = Vec::with_capacity(rows.len());
                gate_where_enough(out, count, need, |k| {
                    values.clear();
                    values.extend(rows.iter().map(|r| r[k]).filter(|v| !v.is_nan()));
                    median_of(&mut values)
                });
            }
        }
    }
}

/// `values` for every pixel whose window holds `need` (at least 1) values or more, NaN for the
/// others. Every value is computed (and discarded where the window falls short), so the loop
/// has no branch and vectorises.
#[inline(always)]
fn gate(out: &mut [MaybeUninit<f32>], count: &[u32], need: u32, values: impl Iterator<Item = f32>) {
    for ((o, &c), v) in out.iter_mut().zip(count).zip(values) {
        *o = MaybeUninit::new(if c >= need { v } else { f32::NAN });
    }
}

/// [`gate`] calling `f` only where the window holds `need` (at least 1) values or more.
#[inline(always)]
fn gate_where_enough(out: &mut [MaybeUninit<f32>], count: &[u32], need: u32, mut f: impl FnMut(usize) -> f32) {
    for (k, (o, &c)) in out.iter_mut().zip(count).enumerate() {
        *o = MaybeUninit::new(if c >= need { f(k) } else { f32::NAN });
    }
}

/// The non-NaN values of each pixel across `rows`.
#[inline(always)]
fn counts(rows: &[&[f32]], count: &mut [u32]) {
    count.fill(0);
    for row in rows {
        for (c, &v) in count.iter_mut().zip(*row) {
            #[allow(clippy::eq_op)] // v == v: not NaN, in a form that vectorises
            let valid = v == v;
            *c += u32::from(valid);
        }
    }
}

/// Pixels whose window sums stay in registers while the window's rows pass.
const LANES: usize = 8;

/// The sum (in f64) and the number of each pixel's non-NaN values across `rows`, in one pass:
/// [`LANES`] pixels at a time, their sums and counts in registers across the rows.
#[inline(always)]
fn sums(rows: &[&[f32]], sum: &mut [f64], count: &mut [u32]) {
    let len = sum.len();
    let whole = len - len % LANES;
    for k in (0..whole).step_by(LANES) {
        let (mut s, mut c) = ([0f64; LANES], [0u32; LANES]);
        for row in rows {
            let v: &[f32; LANES] = row[k..k + LANES].try_into().expect("LANES values");
            for j in 0..LANES {
                #[allow(clippy::eq_op)]
                let valid = v[j] == v[j];
                s[j] += if valid { f64::from(v[j]) } else { 0.0 };
                c[j] += u32::from(valid);
            }
        }
        sum[k..k + LANES].copy_from_slice(&s);
        count[k..k + LANES].copy_from_slice(&c);
    }
    for k in whole..len {
        let (mut s, mut c) = (0f64, 0u32);
        for row in rows {
            let v = row[k];
            if !v.is_nan() {
                s += f64::from(v);
                c += 1;
            }
        }
        sum[k] = s;
        count[k] = c;
    }
}

/// Each pixel's sum of squared deviations from `mean` (replaced by it) across `rows`, NaN
/// skipped, in f64.
#[inline(always)]
fn squared_deviations(rows: &[&[f32]], mean: &mut [f64]) {
    let mut ss = vec![0f64; mean.len()];
    for row in rows {
        for ((s, &m), &v) in ss.iter_mut().zip(mean.iter()).zip(*row) {
            let d = f64::from(v) - m;
            #[allow(clippy::eq_op)]
            let valid = v == v;
            *s += if valid { d * d } else { 0.0 };
        }
    }
    mean.copy_from_slice(&ss);
}

/// The smallest (or largest) non-NaN value of each pixel across `rows` (±inf where none).
#[inline(always)]
fn extremes(rows: &[&[f32]], acc: &mut [f32], largest: bool) {
    acc.fill(if largest { f32::NEG_INFINITY } else { f32::INFINITY });
    for row in rows {
        for (a, &v) in acc.iter_mut().zip(*row) {
            // a comparison with NaN is false: NaN never replaces the running value
            let take = if largest { v > *a } else { v < *a };
            *a = if take { v } else { *a };
        }
    }
}

/// `rows` sorted pixel by pixel into `sorted` (NaN as +inf, so they sort last): an odd-even
/// transposition network, each comparator a vectorised min and max across the run.
#[inline(always)]
fn sort_across(rows: &[&[f32]], sorted: &mut Vec<Vec<f32>>, len: usize) {
    let w = rows.len();
    sorted.resize_with(w.max(sorted.len()), Vec::new);
    for (s, row) in sorted.iter_mut().zip(rows) {
        s.clear();
        s.extend(row[..len].iter().map(|&v| if v.is_nan() { f32::INFINITY } else { v }));
    }
    for pass in 0..w {
        for i in (pass % 2..w.saturating_sub(1)).step_by(2) {
            let (a, b) = sorted.split_at_mut(i + 1);
            for (x, y) in a[i].iter_mut().zip(b[0].iter_mut()) {
                let (lo, hi) = if *y < *x { (*y, *x) } else { (*x, *y) };
                *x = lo;
                *y = hi;
            }
        }
    }
}

/// The median of `c` values whose middle two (the same one for odd `c`) are `lo` and `hi`
/// (a zero as +0, as every median: see `median::positive_zero`).
#[inline(always)]
fn middle(lo: f32, hi: f32, c: usize) -> f32 {
    super::median::positive_zero(if c % 2 == 1 { hi } else { (lo + hi) / 2.0 })
}

/// The median of `values` (no NaN, at least one), reordering them.
fn median_of(values: &mut [f32]) -> f32 {
    let c = values.len();
    let (below, &mut hi, _) = values.select_nth_unstable_by(c / 2, f32::total_cmp);
    let lo = if c.is_multiple_of(2) {
        below.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    } else {
        hi
    };
    middle(lo, hi, c)
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use super::moving;
    use crate::expr::{MovingWindow, WindowOp};

    const NAN: f32 = f32::NAN;

    /// One pixel's series through `op`.
    fn lane(values: &[f32], op: WindowOp, window: MovingWindow) -> Vec<f32> {
        let steps: Vec<&[f32]> = values.iter().map(std::slice::from_ref).collect();
        let mut out = vec![MaybeUninit::new(-1.0f32); values.len()];
        let mut outs: Vec<&mut [MaybeUninit<f32>]> = out.iter_mut().map(std::slice::from_mut).collect();
        moving(op, window, &steps, &mut outs);
        // SAFETY: initialised above (and every step written by the kernel)
        out.iter().map(|v| unsafe { v.assume_init() }).collect()
    }

    fn same(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g.is_nan() && w.is_nan()) || g == w, "{got:?} against {want:?}");
        }
    }

    #[test]
    fn windows_by_hand() {
        // the series xarray's docs would use: 1, 2, NaN, 4, 5, 6, 7
        let a = [1.0, 2.0, NAN, 4.0, 5.0, 6.0, 7.0];
        let w = |size, center, min_periods| MovingWindow {
            size,
            center,
            min_periods,
        };
        // trailing 3, all needed: only the windows 4-5-6 and 5-6-7 are whole
        same(
            &lane(&a, WindowOp::Sum, MovingWindow::trailing(3)),
            &[NAN, NAN, NAN, NAN, NAN, 15.0, 18.0],
        );
        // one value enough: partial windows at the start and around the NaN
        same(
            &lane(&a, WindowOp::Sum, w(3, false, 1)),
            &[1.0, 3.0, 3.0, 6.0, 9.0, 15.0, 18.0],
        );
        same(
            &lane(&a, WindowOp::Count, w(3, false, 1)),
            &[1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0],
        );
        same(
            &lane(&a, WindowOp::Median, w(3, false, 1)),
            &[1.0, 1.5, 1.5, 3.0, 4.5, 5.0, 6.0],
        );
        // centred 4 reaches 2 back and 1 forward: at index 5, steps 3..=6
        same(
            &lane(&a, WindowOp::Sum, w(4, true, 4)),
            &[NAN, NAN, NAN, NAN, NAN, 22.0, NAN],
        );
        same(
            &lane(&a, WindowOp::Max, w(4, true, 1)),
            &[2.0, 2.0, 4.0, 5.0, 6.0, 7.0, 7.0],
        );
        same(
            &lane(&a, WindowOp::Min, w(3, true, 2)),
            &[1.0, 1.0, 2.0, 4.0, 4.0, 5.0, 6.0],
        );
        // variance over n - ddof: windows of one value have none with ddof 1
        same(
            &lane(&a, WindowOp::Var { ddof: 1, sqrt: false }, w(3, false, 1)),
            &[NAN, 0.5, 0.5, 2.0, 0.5, 1.0, 1.0],
        );
        same(
            &lane(&a, WindowOp::Mean, w(2, false, 2)),
            &[NAN, 1.5, NAN, NAN, 4.5, 5.5, 6.5],
        );
        // no running sum: a large value leaves nothing behind once out of the window
        // (bottleneck's float32 move_sum gives 0 for the last windows here)
        let big = [1e8, 0.1, 0.1, 0.1];
        same(&lane(&big, WindowOp::Sum, w(2, false, 1)), &[1e8, 1e8, 0.2, 0.2]);
    }

    #[test]
    fn long_windows_take_their_median_pixel_by_pixel() {
        // 20 steps, a centred window of 17 (past the network) and one of 16 (the network)
        let a: Vec<f32> = (0..20)
            .map(|i| if i % 3 == 0 { NAN } else { (i * 7 % 11) as f32 })
            .collect();
        for size in [16, 17] {
            let got = lane(
                &a,
                WindowOp::Median,
                MovingWindow {
                    size,
                    center: true,
                    min_periods: 1,
                },
            );
            for (t, g) in got.iter().enumerate() {
                let first = t as isize - size as isize / 2;
                let (lo, hi) = (
                    first.clamp(0, 20) as usize,
                    (first + size as isize).clamp(0, 20) as usize,
                );
                let mut v: Vec<f32> = a[lo..hi].iter().copied().filter(|v| !v.is_nan()).collect();
                v.sort_by(f32::total_cmp);
                let c = v.len();
                let want = if c % 2 == 1 {
                    v[c / 2]
                } else {
                    (v[c / 2 - 1] + v[c / 2]) / 2.0
                };
                assert_eq!(*g, want, "size {size} at {t}");
            }
        }
    }
}
