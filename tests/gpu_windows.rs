//! Window reductions (`coarsen`) on the device against the CPU backend, on whatever adapter the
//! machine has (Mesa lavapipe in CI): every op over windows along some or all axes, NaN
//! patterns with all-NaN windows, random shapes and chunkings; and a coarsened block between
//! two device tasks staying on the device. Without an adapter these tests fail and say how to
//! get one; `STRATA_SKIP_GPU_TESTS=1` skips them with a notice.

mod common;

use common::gpu::*;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strata::backend::gpu::BackendChoice;
use strata::{Array, ReduceOp};

/// The ops a window reduction takes. Counts, extremes and medians select or count values:
/// bitwise the CPU's. Sums, means and variances are TwoSum pairs on the device and f64 on the
/// CPU: within the reductions' parity bound.
const OPS: [ReduceOp; 9] = [
    ReduceOp::Count,
    ReduceOp::NanSum,
    ReduceOp::NanMean,
    ReduceOp::NanMin,
    ReduceOp::NanMax,
    ReduceOp::NanVar { ddof: 0 },
    ReduceOp::NanVar { ddof: 1 },
    ReduceOp::NanStd { ddof: 1 },
    ReduceOp::NanMedian,
];

fn selects(op: ReduceOp) -> bool {
    matches!(
        op,
        ReduceOp::Count | ReduceOp::NanMin | ReduceOp::NanMax | ReduceOp::NanMedian
    )
}

fn assert_window_parity(gpu: &ArrayD<f32>, cpu: &ArrayD<f32>, op: ReduceOp, what: &str) {
    if selects(op) {
        assert_same_bits(gpu, cpu, what);
    } else {
        assert_close(gpu, cpu, what);
    }
}

/// Runs `e` on the GPU backend and asserts its coarsen tasks ran on the device.
fn on_the_device(e: &Array) -> ArrayD<f32> {
    let (out, report) = e.compute_with(&on(BackendChoice::Gpu)).unwrap();
    let coarsened: Vec<_> = report.tasks.iter().filter(|t| t.kind == "coarsen").collect();
    assert!(!coarsened.is_empty(), "no coarsen task in the plan");
    for t in coarsened {
        assert!(t.device, "a coarsen task ran on the host: {}", t.placement);
    }
    out
}

#[test]
fn every_window_op_matches_the_cpu() {
    let Some(_ctx) = device() else { return };
    // (time, y, x) with all-NaN pixels on odd rows of column 0 (2 x 2 windows of them hold one
    // or two NaN-only columns) and one value in five NaN elsewhere; ties are common.
    let cube = rough_cube(4, 12, 18, 5, 3);
    let cases: [(&[usize], &[usize]); 5] = [
        (&[1, 2, 2], &[4, 12, 18]),
        (&[1, 3, 6], &[2, 6, 6]),
        (&[4, 1, 1], &[4, 4, 9]),
        (&[2, 4, 3], &[4, 12, 18]),
        (&[1, 12, 18], &[1, 12, 18]),
    ];
    for (windows, chunks) in cases {
        let a = Array::from_ndarray(cube.clone(), chunks);
        for op in OPS {
            let e = a.coarsen(op, windows);
            let gpu = on_the_device(&e);
            let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
            assert_window_parity(&gpu, &cpu, op, &format!("{op:?} over windows {windows:?}"));
        }
    }
}

#[test]
fn hand_computed_windows_on_the_device() {
    let Some(_ctx) = device() else { return };
    // 2 x 4 plane in 2 x 2 windows: [[1, 2, NaN, NaN], [3, 5, NaN, NaN]]; the second window
    // holds no value.
    let nan = f32::NAN;
    let plane = ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![1.0, 2.0, nan, nan, 3.0, 5.0, nan, nan]).unwrap();
    let a = Array::from_ndarray(plane, [2, 4]);
    let cases = [
        (ReduceOp::Count, [4.0, 0.0]),
        (ReduceOp::NanSum, [11.0, 0.0]),
        (ReduceOp::NanMean, [2.75, nan]),
        (ReduceOp::NanMin, [1.0, nan]),
        (ReduceOp::NanMax, [5.0, nan]),
        // deviations from 2.75: -1.75, -0.75, 0.25, 2.25; squares sum to 8.75
        (ReduceOp::NanVar { ddof: 0 }, [8.75 / 4.0, nan]),
        (ReduceOp::NanVar { ddof: 1 }, [8.75 / 3.0, nan]),
        // the middle two of 1, 2, 3, 5
        (ReduceOp::NanMedian, [2.5, nan]),
    ];
    for (op, want) in cases {
        let got = on_the_device(&a.coarsen(op, &[2, 2]));
        assert_eq!(got.shape(), &[1, 2], "{op:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-6 * w.abs(),
                "{op:?}: {got:?}, want {want:?}"
            );
        }
    }
}

#[test]
fn a_coarsened_block_between_device_tasks_stays_on_the_device() {
    let Some(ctx) = device() else { return };
    // Band math, coarsened 4 x 4, scaled: three device tasks per block, and only the scaled
    // result comes back.
    let a = Array::from_ndarray(rough_cube(3, 32, 24, 6, 1), [3, 16, 24]);
    let b = Array::from_ndarray(rough_cube(3, 32, 24, 7, 2), [3, 16, 24]);
    for op in [ReduceOp::NanMean, ReduceOp::NanMedian] {
        let e = &((&a - &b) / (&a + &b)).coarsen(op, &[1, 4, 4]) * 2.0;
        let before = ctx.transfer_stats();
        let gpu = on_the_device(&e);
        ctx.settle();
        let moved = ctx.transfer_stats().since(&before);
        let out_bytes = (3 * 8 * 6 * 4) as u64;
        assert_eq!(moved.download_bytes, out_bytes, "{op:?}: {moved:?}");
        let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        assert_window_parity(&gpu, &cpu, op, &format!("{op:?} between device tasks"));
    }
}

#[test]
fn windows_the_device_does_not_take_run_on_the_host_and_match() {
    let Some(_ctx) = device() else { return };
    // A median of 36 x 36 = 1296 values a window is over the device kernel's 1024.
    let a = Array::from_ndarray(rough_cube(1, 36, 72, 5, 4), [1, 36, 72]);
    let e = a.coarsen(ReduceOp::NanMedian, &[1, 36, 36]);
    let (gpu, report) = e.compute_with(&on(BackendChoice::Gpu)).unwrap();
    let task = report
        .tasks
        .iter()
        .find(|t| t.kind == "coarsen")
        .expect("a coarsen task");
    assert!(!task.device, "{}", task.placement);
    assert!(task.placement.contains("1024"), "{}", task.placement);
    let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    assert_same_bits(&gpu, &cpu, "a median of 1296 values a window");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_windows_and_chunks_match_the_cpu(
        (t, kt) in (1usize..4, 1usize..3),
        (ry, ky) in (1usize..5, 1usize..5),
        (rx, kx) in (1usize..5, 1usize..6),
        (ct, cy, cx) in (1usize..8, 1usize..24, 1usize..24),
        nan_every in 2usize..7,
        seed in 0u32..1000,
        op in proptest::sample::select(OPS.to_vec()),
    ) {
        let Some(_ctx) = device() else { return Ok(()) };
        let shape = [t * kt, ry * ky, rx * kx];
        let a = Array::from_ndarray(rough_cube(shape[0], shape[1], shape[2], nan_every, seed), [ct, cy, cx]);
        let e = a.coarsen(op, &[kt, ky, kx]);
        let gpu = on_the_device(&e);
        let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        assert_window_parity(&gpu, &cpu, op, &format!("{op:?} of {shape:?} by {:?} in chunks {:?}", [kt, ky, kx], [ct, cy, cx]));
    }
}
