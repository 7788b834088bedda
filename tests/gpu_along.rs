//! Work along one axis (fills, gap interpolation, running sums and products, moving windows)
//! on the device against the CPU backend, on whatever adapter the machine has (Mesa lavapipe in CI): every
//! op the kernel takes along each axis, hand-computed series, random shapes, chunkings and
//! windows; a filled and smoothed block between device tasks staying on the device; and the
//! work the device leaves to the host saying so. Without an adapter these tests fail and say
//! how to get one; `STRATA_SKIP_GPU_TESTS=1` skips them with a notice.

mod common;

use common::gpu::*;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strata::backend::gpu::BackendChoice;
use strata::{Array, MovingWindow, ReduceOp};

/// One along-axis op: its task name in reports, and whether it only selects or counts values
/// (bitwise the CPU's) rather than adding them (within the reductions' parity bound).
#[derive(Debug, Clone, Copy)]
enum Along {
    Ffill(Option<usize>),
    Bfill(Option<usize>),
    Cumsum(bool),
    Cumprod(bool),
    Rolling(ReduceOp, MovingWindow),
}

impl Along {
    fn apply(self, a: &Array, axis: isize) -> Array {
        match self {
            Along::Ffill(limit) => a.ffill(axis, limit),
            Along::Bfill(limit) => a.bfill(axis, limit),
            Along::Cumsum(skipna) => a.cumsum(axis, skipna),
            Along::Cumprod(skipna) => a.cumprod(axis, skipna),
            Along::Rolling(op, window) => a.rolling(op, axis, window),
        }
    }

    fn task(self) -> &'static str {
        match self {
            Along::Ffill(_) => "ffill",
            Along::Bfill(_) => "bfill",
            Along::Cumsum(_) => "cumsum",
            Along::Cumprod(_) => "cumprod",
            Along::Rolling(..) => "rolling",
        }
    }

    fn selects(self) -> bool {
        match self {
            Along::Ffill(_) | Along::Bfill(_) => true,
            Along::Rolling(op, _) => matches!(
                op,
                ReduceOp::Count | ReduceOp::NanMin | ReduceOp::NanMax | ReduceOp::NanMedian
            ),
            _ => false,
        }
    }
}

fn window(size: usize, center: bool, min_periods: usize) -> MovingWindow {
    MovingWindow {
        size,
        center,
        min_periods,
    }
}

/// Every op the device kernel takes, with limits and windows that cut gaps and edges.
fn ops() -> Vec<Along> {
    let mut ops = vec![
        Along::Ffill(None),
        Along::Ffill(Some(1)),
        Along::Bfill(None),
        Along::Bfill(Some(2)),
        Along::Cumsum(true),
        Along::Cumsum(false),
        Along::Cumprod(true),
        Along::Cumprod(false),
    ];
    for op in [
        ReduceOp::Count,
        ReduceOp::NanSum,
        ReduceOp::NanMean,
        ReduceOp::NanMin,
        ReduceOp::NanMax,
        ReduceOp::NanMedian,
        ReduceOp::NanVar { ddof: 1 },
        ReduceOp::NanStd { ddof: 0 },
    ] {
        ops.push(Along::Rolling(op, window(3, false, 1)));
        ops.push(Along::Rolling(op, window(4, true, 2)));
        ops.push(Along::Rolling(op, MovingWindow::trailing(2)));
    }
    ops
}

/// Runs `e` on the GPU backend and asserts its `task` tasks ran on the device.
fn on_the_device(e: &Array, task: &str) -> ArrayD<f32> {
    let (out, report) = e.compute_with(&on(BackendChoice::Gpu)).unwrap();
    let along: Vec<_> = report.tasks.iter().filter(|t| t.kind == task).collect();
    assert!(!along.is_empty(), "no {task} task in the plan");
    for t in along {
        assert!(t.device, "a {task} task ran on the host: {}", t.placement);
    }
    out
}

fn assert_parity(gpu: &ArrayD<f32>, cpu: &ArrayD<f32>, op: Along, what: &str) {
    if op.selects() {
        assert_same_bits(gpu, cpu, what);
    } else {
        assert_close(gpu, cpu, what);
    }
}

/// Values for products: near 1 in magnitude, so a running product neither overflows nor
/// vanishes over a few dozen steps, with NaN as `rough_cube` has them.
fn near_one(t: usize, rows: usize, cols: usize, seed: u32) -> ArrayD<f32> {
    cube(t, rows, cols, 5, seed).mapv(|v| if v.is_nan() { v } else { 1.0 + v / 97.0 })
}

#[test]
fn every_along_op_matches_the_cpu_along_every_axis() {
    let Some(_ctx) = device() else { return };
    let sums = rough_cube(9, 10, 14, 4, 3);
    let products = near_one(9, 10, 14, 5);
    for axis in 0..3isize {
        for op in ops() {
            let data = if matches!(op, Along::Cumprod(_)) {
                &products
            } else {
                &sums
            };
            // blocks cut every axis but the op's, which the plan makes whole
            let a = Array::from_ndarray(data.clone(), [4, 3, 5]);
            let e = op.apply(&a, axis);
            let gpu = on_the_device(&e, op.task());
            let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
            assert_parity(&gpu, &cpu, op, &format!("{op:?} along axis {axis}"));
        }
    }
}

#[test]
fn hand_computed_series_on_the_device() {
    let Some(_ctx) = device() else { return };
    let nan = f32::NAN;
    // one pixel's series: NaN, 1, NaN, NaN, NaN, 2, NaN (the CPU kernels' hand cases)
    let series = |values: &[f32]| {
        Array::from_ndarray(
            ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap(),
            [values.len()],
        )
    };
    let gaps = series(&[nan, 1.0, nan, nan, nan, 2.0, nan]);
    let a = series(&[1.0, 2.0, nan, 4.0, 5.0, 6.0, 7.0]);
    let short = series(&[5.0, 1.0, 4.0, 2.0, nan, 3.0]);
    let cases: Vec<(Along, &Array, Vec<f32>)> = vec![
        (Along::Ffill(None), &gaps, vec![nan, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]),
        (Along::Ffill(Some(2)), &gaps, vec![nan, 1.0, 1.0, 1.0, nan, 2.0, 2.0]),
        (Along::Bfill(Some(1)), &gaps, vec![1.0, 1.0, nan, nan, 2.0, 2.0, nan]),
        (Along::Cumsum(true), &a, vec![1.0, 3.0, 3.0, 7.0, 12.0, 18.0, 25.0]),
        (Along::Cumsum(false), &a, vec![1.0, 3.0, nan, nan, nan, nan, nan]),
        (Along::Cumprod(true), &a, vec![1.0, 2.0, 2.0, 8.0, 40.0, 240.0, 1680.0]),
        (
            Along::Rolling(ReduceOp::NanSum, MovingWindow::trailing(3)),
            &a,
            vec![nan, nan, nan, nan, nan, 15.0, 18.0],
        ),
        (
            Along::Rolling(ReduceOp::NanSum, window(3, false, 1)),
            &a,
            vec![1.0, 3.0, 3.0, 6.0, 9.0, 15.0, 18.0],
        ),
        (
            Along::Rolling(ReduceOp::Count, window(3, false, 1)),
            &a,
            vec![1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0],
        ),
        // centred 4 reaches 2 back and 1 forward
        (
            Along::Rolling(ReduceOp::NanMax, window(4, true, 1)),
            &a,
            vec![2.0, 2.0, 4.0, 5.0, 6.0, 7.0, 7.0],
        ),
        (
            Along::Rolling(ReduceOp::NanMin, window(3, true, 2)),
            &a,
            vec![1.0, 1.0, 2.0, 4.0, 4.0, 5.0, 6.0],
        ),
        (
            Along::Rolling(ReduceOp::NanMean, window(2, false, 2)),
            &a,
            vec![nan, 1.5, nan, nan, 4.5, 5.5, 6.5],
        ),
        // windows of 1; 1, 2; 1, 2, NaN; 2, NaN, 4; NaN, 4, 5; 4, 5, 6; 5, 6, 7
        (
            Along::Rolling(ReduceOp::NanMean, window(3, false, 1)),
            &a,
            vec![1.0, 1.5, 1.5, 3.0, 4.5, 5.0, 6.0],
        ),
        // the same windows' medians: the middle value, or the middle two halved
        (
            Along::Rolling(ReduceOp::NanMedian, window(3, false, 1)),
            &a,
            vec![1.0, 1.5, 1.5, 3.0, 4.5, 5.0, 6.0],
        ),
        // the same windows' variances (ddof 0): 0, 1/4, 1/4, 1, 1/4, 2/3, 2/3
        (
            Along::Rolling(ReduceOp::NanVar { ddof: 0 }, window(3, false, 1)),
            &a,
            vec![0.0, 0.25, 0.25, 1.0, 0.25, 2.0 / 3.0, 2.0 / 3.0],
        ),
        // with ddof 1 a window needs two values: NaN, then roots of 1/2, 1/2, 2, 1/2, 1, 1
        (
            Along::Rolling(ReduceOp::NanStd { ddof: 1 }, window(3, false, 1)),
            &a,
            [f64::NAN, 0.5, 0.5, 2.0, 0.5, 1.0, 1.0]
                .map(|v| v.sqrt() as f32)
                .to_vec(),
        ),
        // centred 4 needing 3: steps t-2..=t+1
        (
            Along::Rolling(ReduceOp::NanMedian, window(4, true, 3)),
            &short,
            vec![nan, 4.0, 3.0, 2.0, 3.0, nan],
        ),
    ];
    for (op, input, want) in cases {
        let got = on_the_device(&op.apply(input, 0), op.task());
        let ok = got.iter().zip(&want).all(|(g, w)| (g.is_nan() && w.is_nan()) || g == w);
        assert!(ok, "{op:?}: {got:?}, want {want:?}");
    }
}

#[test]
fn gaps_interpolate_on_the_device_as_numpy_interp() {
    let Some(_ctx) = device() else { return };
    let nan = f32::NAN;
    // positions 0, 1, 3, 4, 10, 11: the NaN at index 2 lies between 1 (10) and 4 (40)
    let x = [0.0, 1.0, 3.0, 4.0, 10.0, 11.0];
    let series = Array::from_ndarray(
        ArrayD::from_shape_vec(IxDyn(&[6, 1]), vec![nan, 10.0, nan, 40.0, nan, 100.0]).unwrap(),
        [6, 1],
    );
    let run = |limit, max_gap| on_the_device(&series.interpolate_na(0, &x, limit, max_gap), "interpolate_na");
    let all = run(None, None);
    // index 2: 10 + 30 * 2 / 3 = 30; index 4: 40 + 60 * 6 / 7
    assert_eq!(all[[2, 0]], 30.0);
    assert!(
        (all[[4, 0]] - (40.0 + 60.0 / 7.0 * 6.0) as f32).abs() <= 1e-4,
        "{all:?}"
    );
    assert!(all[[0, 0]].is_nan(), "before the first valid value");
    // a gap 7 wide (positions 4 to 11) is over max_gap 5; one 3 wide is not
    let short = run(None, Some(5.0));
    assert_eq!(short[[2, 0]], 30.0);
    assert!(short[[4, 0]].is_nan());
    // limit 1 fills only the first NaN of a gap
    let gaps = Array::from_ndarray(
        ArrayD::from_shape_vec(IxDyn(&[4, 1]), vec![1.0, nan, nan, 4.0]).unwrap(),
        [4, 1],
    );
    let one = on_the_device(
        &gaps.interpolate_na(0, &[0.0, 1.0, 2.0, 3.0], Some(1), None),
        "interpolate_na",
    );
    assert_eq!(one[[1, 0]], 2.0);
    assert!(one[[2, 0]].is_nan());
    // seconds since 1970 of scenes 16 days apart, a max gap of 40 days: the gap test is the
    // CPU's, in f64 (32 days apart fill; 48 do not)
    let day = 86400.0;
    let t0 = 1.5778368e9;
    let times: Vec<f64> = [0.0, 16.0, 32.0, 48.0, 96.0].iter().map(|d| t0 + d * day).collect();
    let cloudy = Array::from_ndarray(
        ArrayD::from_shape_vec(IxDyn(&[5, 1]), vec![0.2, nan, 0.4, nan, 0.8]).unwrap(),
        [5, 1],
    );
    let e = cloudy.interpolate_na(0, &times, None, Some(40.0 * day));
    let gpu = on_the_device(&e, "interpolate_na");
    assert_eq!(gpu[[1, 0]], 0.3);
    assert!(gpu[[3, 0]].is_nan(), "a 64-day gap is over 40 days: {gpu:?}");
    let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    assert_close(&gpu, &cpu, "dated gaps");
}

#[test]
fn random_gaps_interpolate_as_on_the_cpu_along_every_axis() {
    let Some(_ctx) = device() else { return };
    // values about 1e4 whose neighbours often cancel: the weights and rises are pairs, so
    // the results hold the sums' relative bound, not just one relative to the neighbours
    let a = Array::from_ndarray(rough_cube(9, 10, 14, 3, 6), [4, 3, 5]);
    for axis in 0..3usize {
        let n = [9, 10, 14][axis];
        // uneven positions whose differences f32 cannot hold, 1.37 sqrt(i) from the first
        // (gaps of 2 to 5 steps span 0.4 to 1.5 at the far end, over 2 at the start)
        let x: Vec<f64> = (0..n).map(|i| (i as f64).sqrt() * 1.37 + 1e3).collect();
        for (limit, max_gap) in [(None, None), (Some(1), None), (None, Some(1.2)), (Some(2), Some(2.0))] {
            let e = a.interpolate_na(axis as isize, &x, limit, max_gap);
            let gpu = on_the_device(&e, "interpolate_na");
            let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
            let what = format!("axis {axis}, limit {limit:?}, max_gap {max_gap:?}");
            assert_close(&gpu, &cpu, &what);
        }
    }
}

#[test]
fn interpolated_values_are_the_cpus_but_for_a_rare_ulp() {
    let Some(_ctx) = device() else { return };
    // With the weight and the rise as f32 pairs, an interpolated value is the CPU's f64
    // numpy.interp rounded unless it lies within about 2^-44 of a rounding boundary: at most
    // one in a hundred differs in its bits (a plain f32 weight misses far more often), and
    // none by more than 2e-6 relative.
    let a = Array::from_ndarray(rough_cube(40, 30, 30, 3, 6), [40, 30, 30]);
    let dated: Vec<f64> = (0..40).map(|i| 1.5778368e9 + (i * i) as f64 * 86400.0).collect();
    let irrational: Vec<f64> = (0..40).map(|i| (i as f64).sqrt() * 1.37).collect();
    for (x, what) in [(dated, "dates"), (irrational, "square roots")] {
        let e = a.interpolate_na(0, &x, None, None);
        let gpu = on_the_device(&e, "interpolate_na");
        let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        assert_close(&gpu, &cpu, what);
        let filled = cpu
            .iter()
            .zip(a.compute().unwrap().iter())
            .filter(|(c, v)| v.is_nan() && !c.is_nan())
            .count();
        let differ = gpu
            .iter()
            .zip(cpu.iter())
            .filter(|(g, c)| g.to_bits() != c.to_bits() && !c.is_nan())
            .count();
        eprintln!("{what}: {differ} of {filled} interpolated values differ in their bits");
        assert!(filled > 1000, "{what}: {filled} interpolated");
        assert!(differ * 100 <= filled, "{what}: {differ} of {filled} differ");
    }
}

#[test]
fn long_sums_keep_the_cpus_f64_totals() {
    let Some(_ctx) = device() else { return };
    // 0.1 added 16384 times: an f32 running sum drifts to 1638.147 (numpy's float32
    // cumsum); the f64 total rounds to the f32 nearest 16384 times 0.1f32, 1638.4.
    let steps = 16384;
    let a = Array::from_ndarray(ArrayD::from_elem(IxDyn(&[steps, 2]), 0.1f32), [steps, 2]);
    let gpu = on_the_device(&a.cumsum(0, true), "cumsum");
    let want = (steps as f64 * f64::from(0.1f32)) as f32;
    assert_eq!(gpu[[steps - 1, 0]], want);
    let drift = (0..steps).fold(0.0f32, |s, _| s + 0.1);
    assert!((drift - want).abs() > 0.2, "an f32 sum drifts: {drift} vs {want}");
}

#[test]
fn moving_variances_keep_the_cpus_value_at_any_scale() {
    let Some(_ctx) = device() else { return };
    // spread_series, one pixel each: a constant, a large mean with a small spread, squares
    // that overflow and that underflow, gaps, an infinity, a single value, the ordinary
    let pixels = spread_series();
    let series = ArrayD::from_shape_fn(IxDyn(&[6, 8]), |i| pixels[i[1]][i[0]]);
    let a = Array::from_ndarray(series, [6, 8]);
    let mut exact = 0;
    let mut all = 0;
    for op in [
        ReduceOp::NanVar { ddof: 0 },
        ReduceOp::NanVar { ddof: 1 },
        ReduceOp::NanStd { ddof: 0 },
        ReduceOp::NanStd { ddof: 1 },
    ] {
        for w in [window(3, false, 1), window(4, true, 1), window(6, false, 1)] {
            let e = a.rolling(op, 0, w);
            let gpu = on_the_device(&e, "rolling");
            let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
            exact += within_an_ulp(&gpu, &cpu, &format!("{op:?} {w:?}"));
            all += gpu.len();
            // the constant's windows: exactly 0, as numpy's (NaN where ddof leaves none)
            let constant = gpu.index_axis(ndarray::Axis(1), 0);
            assert!(
                constant.iter().all(|&v| v == 0.0 || v.is_nan()),
                "{op:?} {w:?}: {constant}"
            );
        }
    }
    println!("moving variances: {exact} of {all} values bitwise the CPU's, the rest one ulp away");
}

#[test]
fn products_and_interpolations_near_f32s_largest_keep_their_values() {
    let Some(_ctx) = device() else { return };
    // Dekker's split of a factor past 2^115 leaves f32's range (4097 x overflows), so a running
    // product through 1e35 came back NaN from the device, and an interpolation between ends of
    // opposite sign near f32's largest overflowed their difference. The CPU works in f64. Each
    // pixel starts at its own magnitude, then steps by factors whose running product stays
    // within 1.5 of 1 (so f64 totals stay within f32's range), with a NaN every fifth step.
    let starts = [1e35f32, -3e37, 2e38, 5e36, -1e30, 2.0, 1e-30, -2e38];
    let factors = [1.5f32, 0.6, 1.1, 0.9, 1.25, 0.8];
    let values = ArrayD::from_shape_fn(IxDyn(&[24, 8]), |i| {
        let (t, p) = (i[0], i[1]);
        if t % 5 == 3 {
            f32::NAN
        } else if t == 0 {
            starts[p]
        } else {
            factors[(t + p) % factors.len()]
        }
    });
    for skipna in [true, false] {
        let e = Array::from_ndarray(values.clone(), [24, 8]).cumprod(0, skipna);
        let gpu = on_the_device(&e, "cumprod");
        let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        assert!(gpu.iter().filter(|v| v.abs() > 1e35).count() >= 10, "{gpu:?}");
        assert_close(&gpu, &cpu, &format!("cumprod (skipna {skipna}) near f32's largest"));
    }
    // gaps between ends up to f32's largest, of either sign, with tiny and subnormal ends too
    let ends = [f32::MAX, -f32::MAX, 3e38, -3e38, 1e35, 2.5, -1e-30, 1e-40, -2e37, 1e38];
    let gappy = ArrayD::from_shape_fn(IxDyn(&[40, 8]), |i| {
        let (t, p) = (i[0], i[1]);
        if (t + p) % 4 == 0 {
            ends[(t / 4 + p) % ends.len()]
        } else {
            f32::NAN
        }
    });
    let x: Vec<f64> = (0..40).map(|i| i as f64 * 1.25 + (i % 3) as f64 * 0.5).collect();
    let e = Array::from_ndarray(gappy, [40, 8]).interpolate_na(0, &x, None, None);
    let gpu = on_the_device(&e, "interpolate_na");
    let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    assert!(gpu.iter().filter(|v| v.abs() > 1e37).count() >= 100, "{gpu:?}");
    assert_close(&gpu, &cpu, "interpolate_na between ends near f32's largest");
}

#[test]
fn a_moving_variance_with_a_ddof_past_any_window_is_nan() {
    let Some(_ctx) = device() else { return };
    // A window needs more values than ddof (numpy's nanvar: NaN where n - ddof <= 0); u32::MAX
    // + 1 wrapped to 0 in that count, and both backends gave finite values (the CPU -0).
    let a = Array::from_ndarray(rough_cube(12, 3, 4, 5, 11), [12, 3, 4]);
    for op in [ReduceOp::NanVar { ddof: u32::MAX }, ReduceOp::NanStd { ddof: u32::MAX }] {
        let e = a.rolling(op, 0, window(4, false, 1));
        let gpu = on_the_device(&e, "rolling");
        let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        assert!(cpu.iter().all(|v| v.is_nan()), "{op:?} on the CPU: {cpu:?}");
        assert_same_bits(&gpu, &cpu, &format!("{op:?}"));
    }
}

#[test]
fn a_filled_and_smoothed_block_between_device_tasks_stays_on_the_device() {
    let Some(ctx) = device() else { return };
    // Band math, gaps filled forward over time, a trailing 3-step mean, scaled: four device
    // tasks per block, and only the scaled result comes back.
    let a = Array::from_ndarray(rough_cube(6, 16, 24, 6, 1), [6, 8, 24]);
    let b = Array::from_ndarray(rough_cube(6, 16, 24, 7, 2), [6, 8, 24]);
    let ndvi = (&a - &b) / (&a + &b);
    let e = &ndvi.ffill(0, None).rolling(ReduceOp::NanMean, 0, window(3, false, 1)) * 2.0;
    let before = ctx.transfer_stats();
    let gpu = on_the_device(&e, "rolling");
    ctx.settle();
    let moved = ctx.transfer_stats().since(&before);
    assert_eq!(moved.download_bytes, (6 * 16 * 24 * 4) as u64, "{moved:?}");
    let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    assert_close(&gpu, &cpu, "filled, smoothed and scaled");
}

#[test]
fn work_the_device_does_not_take_runs_on_the_host_and_matches() {
    let Some(_ctx) = device() else { return };
    let a = Array::from_ndarray(rough_cube(20, 6, 10, 3, 4), [20, 3, 10]);
    let cases = [(a.rolling(ReduceOp::NanMedian, 0, window(65, true, 1)), "rolling")];
    for (e, task) in cases {
        let (gpu, report) = e.compute_with(&on(BackendChoice::Gpu)).unwrap();
        let t = report
            .tasks
            .iter()
            .find(|t| t.kind == task)
            .unwrap_or_else(|| panic!("a {task} task"));
        assert!(!t.device, "{}", t.placement);
        assert!(t.placement.contains("moving median over 64"), "{}", t.placement);
        let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        assert_same_bits(&gpu, &cpu, task);
    }
}

/// What the GPU backend says of a task it leaves to the host for the adapter's loop limit.
const LOOP_LIMIT: &str = "loop iterations per invocation";

/// Whether the GPU backend plans some task of `e` on the host for the adapter's loop limit.
fn over_the_loop_limit(e: &Array) -> bool {
    let explained = e.explain(&on(BackendChoice::Gpu)).unwrap();
    explained
        .placements
        .tasks()
        .iter()
        .any(|p| p.reason.contains(LOOP_LIMIT))
}

/// A (len, 8) series: `f(t, pixel)` at each step.
fn series_of(len: usize, f: impl Fn(usize, usize) -> f32) -> Array {
    Array::from_ndarray(ArrayD::from_shape_fn(IxDyn(&[len, 8]), |i| f(i[0], i[1])), [len, 8])
}

#[test]
fn work_up_to_the_adapters_loop_limit_runs_on_the_device_and_beyond_it_on_the_host() {
    let Some(ctx) = device() else { return };
    // Mesa's llvmpipe stops a shader's loops after 65535 iterations, all loops together, and
    // the results are silently wrong. For each kernel whose loops grow with the data: the
    // longest series the GPU backend still plans on the device (found by bisection of its
    // plans, so the test does not restate the kernel's count) must give the CPU's values
    // there, which holds only if that count is never short; one step longer runs on the host,
    // saying why, and matches too. The median's windows are descending, so each insertion
    // shifts every value before it (the worst case).
    let wavy = |t: usize, p: usize| ((t * 7 + p * 3) % 23) as f32 - 11.0 + if t % 9 == 4 { f32::NAN } else { 0.0 };
    type Make = Box<dyn Fn(usize) -> Array>;
    let cases: Vec<(&str, Make, &str, usize)> = vec![
        (
            "cumsum",
            Box::new(move |n| series_of(n, wavy).cumsum(0, true)),
            "cumsum",
            70_000,
        ),
        (
            "ffill",
            Box::new(move |n| series_of(n, wavy).ffill(0, None)),
            "ffill",
            70_000,
        ),
        (
            "interpolate_na",
            Box::new(move |n| {
                let x: Vec<f64> = (0..n).map(|i| i as f64 * 1.5).collect();
                series_of(n, wavy).interpolate_na(0, &x, None, None)
            }),
            "interpolate_na",
            40_000,
        ),
        (
            // every pixel valid one step in 8, each at its own step: a loop over each gap
            // cost llvmpipe's vector of 8 pixels the longest gap at every step
            "interpolate_na, staggered gaps",
            Box::new(move |n| {
                let x: Vec<f64> = (0..n).map(|i| i as f64 * 0.5).collect();
                series_of(n, |t, p| if t % 8 == p { (t % 29) as f32 - 14.0 } else { f32::NAN })
                    .interpolate_na(0, &x, None, None)
            }),
            "interpolate_na",
            40_000,
        ),
        (
            "rolling mean of 64",
            Box::new(move |n| series_of(n, wavy).rolling(ReduceOp::NanMean, 0, window(64, false, 1))),
            "rolling",
            2_000,
        ),
        (
            "rolling median of 16, descending",
            Box::new(|n| {
                series_of(n, |t, p| (n - t) as f32 + p as f32 * 0.25).rolling(
                    ReduceOp::NanMedian,
                    0,
                    window(16, true, 1),
                )
            }),
            "rolling",
            1_000,
        ),
        (
            "rolling std of 8",
            Box::new(move |n| series_of(n, wavy).rolling(ReduceOp::NanStd { ddof: 1 }, 0, window(8, false, 2))),
            "rolling",
            4_000,
        ),
        (
            "nanargmax",
            Box::new(move |n| series_of(n, wavy).reduce(ReduceOp::NanArgMax, 0)),
            "nanargmax",
            70_000,
        ),
        (
            "nanmean of one group",
            Box::new(move |n| series_of(n, wavy).group_reduce(ReduceOp::NanMean, 0, &vec![0; n], 1)),
            "group-reduce",
            70_000,
        ),
        (
            "nanvar of one group",
            Box::new(move |n| series_of(n, wavy).group_reduce(ReduceOp::NanVar { ddof: 0 }, 0, &vec![0; n], 1)),
            "group-reduce",
            30_000,
        ),
        (
            "coarsen nanvar of one window",
            Box::new(move |n| series_of(n, wavy).coarsen(ReduceOp::NanVar { ddof: 0 }, &[n, 1])),
            "coarsen",
            30_000,
        ),
    ];
    for (what, make, task, cap) in cases {
        // the longest length up to `cap` planned on the device: lo fits, hi does not
        let (mut lo, mut hi) = (1, cap + 1);
        if !over_the_loop_limit(&make(cap)) {
            lo = cap;
        }
        while hi - lo > 1 && lo < cap {
            let mid = (lo + hi) / 2;
            if over_the_loop_limit(&make(mid)) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let longest = make(lo);
        let gpu = on_the_device(&longest, task);
        let cpu = longest.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        assert_close(&gpu, &cpu, &format!("{what} over {lo} steps"));
        match ctx.adapter.loop_limit {
            None => assert_eq!(lo, cap, "{what}: no loop limit, yet planned on the host"),
            Some(_) => {
                assert!(lo < cap, "{what}: {cap} steps still on the device");
                let beyond = make(lo + 1);
                let (gpu, report) = beyond.compute_with(&on(BackendChoice::Gpu)).unwrap();
                let t = report.tasks.iter().find(|t| t.kind == task).expect("the task");
                assert!(!t.device && t.placement.contains(LOOP_LIMIT), "{what}: {}", t.placement);
                let cpu = beyond.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
                assert_close(&gpu, &cpu, &format!("{what} over {} steps", lo + 1));
                println!("{what}: {lo} steps on the device, {} on the host", lo + 1);
            }
        }
    }
}

#[test]
fn a_wide_focal_mean_runs_dim_by_dim_on_the_device() {
    let Some(_ctx) = device() else { return };
    // A centred 7 x 7 focal mean (49 steps, over the 32 reduced as shifts) goes dim by dim:
    // window sums and counts along y, then along x, all on the device; the mean matches the
    // CPU's within the sums' bound.
    let img = rough_cube(2, 40, 36, 5, 7);
    let da =
        strata::labelled::DataArray::new(Array::from_ndarray(img, [1, 16, 12]), &["time", "y", "x"], vec![]).unwrap();
    let focal = da
        .rolling(&[("y", 7), ("x", 7)])
        .unwrap()
        .center(true)
        .min_periods(1)
        .unwrap()
        .mean();
    let (gpu, report) = focal.compute_with(&on(BackendChoice::Gpu)).unwrap();
    let rolling: Vec<_> = report.tasks.iter().filter(|t| t.kind == "rolling").collect();
    assert!(rolling.len() >= 4, "{} rolling tasks", rolling.len());
    assert!(rolling.iter().all(|t| t.device), "a rolling task ran on the host");
    let cpu = focal.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    assert_close(&gpu.values().unwrap(), &cpu.values().unwrap(), "7 x 7 focal mean");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_series_chunks_and_windows_match_the_cpu(
        (t, y, x) in (1usize..24, 1usize..9, 1usize..13),
        (ct, cy, cx) in (1usize..9, 1usize..9, 1usize..13),
        axis in 0isize..3,
        nan_every in 2usize..7,
        seed in 0u32..1000,
        pick in 0usize..32,
        (size, center) in (1usize..7, any::<bool>()),
        min_periods in 1usize..7,
    ) {
        let Some(_ctx) = device() else { return Ok(()) };
        let op = match ops()[pick] {
            Along::Rolling(op, _) => Along::Rolling(op, window(size, center, min_periods.min(size))),
            op => op,
        };
        let data = if matches!(op, Along::Cumprod(_)) { near_one(t, y, x, seed) } else { rough_cube(t, y, x, nan_every, seed) };
        let e = op.apply(&Array::from_ndarray(data, [ct, cy, cx]), axis);
        let gpu = on_the_device(&e, op.task());
        let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        assert_parity(&gpu, &cpu, op, &format!("{op:?} along {axis} of {:?} in {:?}", [t, y, x], [ct, cy, cx]));
    }
}
