//! Reductions on the device against the CPU backend, on whatever adapter the machine has
//! (Mesa lavapipe in CI): every partial reduction over axes and by groups (states and their
//! final values on the device), the ones the host does better, long sums and variances at any
//! scale, masks, random chunkings, NaN patterns and labels. Without an adapter these tests
//! fail and say how to get one; `STRATA_SKIP_GPU_TESTS=1` skips them with a notice.

mod common;

use common::gpu::*;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strata::backend::gpu::BackendChoice;
use strata::Array;

const PARTIAL_OPS: [strata::ReduceOp; 13] = [
    strata::ReduceOp::Sum,
    strata::ReduceOp::NanSum,
    strata::ReduceOp::Mean,
    strata::ReduceOp::NanMean,
    strata::ReduceOp::Count,
    strata::ReduceOp::Min,
    strata::ReduceOp::Max,
    strata::ReduceOp::NanMin,
    strata::ReduceOp::NanMax,
    strata::ReduceOp::NanVar { ddof: 0 },
    strata::ReduceOp::NanVar { ddof: 1 },
    strata::ReduceOp::NanStd { ddof: 0 },
    strata::ReduceOp::NanStd { ddof: 1 },
];

#[test]
fn axis_reductions_match_the_cpu() {
    let Some(_device) = device() else { return };
    // Axis lengths the issue names and reductions over a run of axes, each whole in its block
    // with enough outputs for the device to spread over (states and final values there).
    for (t, axes, chunks) in [
        (1, vec![0], [1, 9, 7]),
        (2, vec![0], [2, 9, 7]),
        (63, vec![0], [63, 9, 7]),
        (64, vec![0], [64, 9, 7]),
        (1024, vec![0], [1024, 9, 7]),
        (40, vec![1, 2], [40, 9, 7]),
        (5, vec![2], [5, 9, 7]),
    ] {
        let a = Array::from_ndarray(rough_cube(t, 9, 7, 5, t as u32), chunks);
        for op in PARTIAL_OPS {
            let e = a.reduce(op, axes.as_slice());
            let (gpu, cpu) = on_gpu_and_cpu(&e);
            assert_close(&gpu, &cpu, &format!("{op:?} T={t} axes {axes:?}"));
            let report = e.compute_with(&on(BackendChoice::Gpu)).unwrap().1;
            assert!(
                report.tasks.iter().any(|r| r.kind == "reduce-chunk" && r.device),
                "{op:?} T={t} axes {axes:?} ran on the host: {:?}",
                report.tasks.iter().map(|r| (r.kind, r.placement)).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn reductions_the_host_does_better_run_there_and_match() {
    let Some(_device) = device() else { return };
    // A tree over blocks that each hold part of the time axis (partial states merge on the
    // host), and reductions to a handful of outputs (one invocation per output would sum
    // alone): the report says they ran on the host, and why; the results still match.
    for (t, axes, chunks, why) in [
        (65, vec![0], [30, 9, 7], "partial states"),
        (64, vec![0, 1, 2], [64, 9, 7], "too few outputs"),
        (3, vec![1, 2], [3, 9, 7], "too few outputs"),
    ] {
        let a = Array::from_ndarray(rough_cube(t, 9, 7, 5, t as u32), chunks);
        for op in PARTIAL_OPS {
            let e = a.reduce(op, axes.as_slice());
            let (gpu, report) = e.compute_with(&on(BackendChoice::Gpu)).unwrap();
            let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
            assert_close(&gpu, &cpu, &format!("{op:?} T={t} axes {axes:?}"));
            let chunk = report
                .tasks
                .iter()
                .find(|r| r.kind == "reduce-chunk")
                .expect("a reduce task");
            assert!(!chunk.device && chunk.placement.contains(why), "{:?}", chunk);
        }
    }
}

#[test]
fn long_sums_keep_f64_accuracy() {
    if device().is_none() {
        return;
    }
    // Columns of 2^14 values whose f32 running sum drifts (1 + 1e-4 k patterns), 64 of them
    // in one block: each summed by one invocation as a TwoSum pair.
    let n = 1 << 14;
    let data = ArrayD::from_shape_fn(IxDyn(&[n, 8, 8]), |ix| 1.0 + ((ix[0] + ix[2]) % 1000) as f32 * 1e-4);
    let a = Array::from_ndarray(data.clone(), [n, 8, 8]);
    let exact: f64 = (0..n).map(|t| f64::from(data[[t, 0, 0]])).sum();
    for op in [
        strata::ReduceOp::Sum,
        strata::ReduceOp::Mean,
        strata::ReduceOp::NanVar { ddof: 0 },
    ] {
        let (gpu, cpu) = on_gpu_and_cpu(&a.reduce(op, 0));
        assert_close(&gpu, &cpu, &format!("{op:?} of 2^14"));
        if op == strata::ReduceOp::Sum {
            assert!(
                (f64::from(gpu[[0, 0]]) - exact).abs() <= exact * 1e-7,
                "sum {} vs {exact}",
                gpu[[0, 0]]
            );
        }
    }
}

/// `spread_series` along time, `t` steps (repeating), each column 8 rows deep (enough outputs
/// for the device).
fn spread_cube(t: usize) -> ArrayD<f32> {
    let series = spread_series();
    ArrayD::from_shape_fn(IxDyn(&[t, 8, 8]), |i| series[i[2]][i[0] % 6])
}

#[test]
fn variances_keep_the_cpus_value_at_any_scale() {
    let Some(_device) = device() else { return };
    let ops = [
        strata::ReduceOp::NanVar { ddof: 0 },
        strata::ReduceOp::NanVar { ddof: 1 },
        strata::ReduceOp::NanStd { ddof: 0 },
        strata::ReduceOp::NanStd { ddof: 1 },
    ];
    let (mut exact, mut all) = (0, 0);
    // over a whole axis (states and final values on the device), and by months (states
    // merged on the host)
    let a = Array::from_ndarray(spread_cube(6), [6, 8, 8]);
    let long = Array::from_ndarray(spread_cube(12), [12, 8, 8]);
    let months = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
    for op in ops {
        for (e, what) in [
            (a.reduce(op, 0), format!("{op:?} over time")),
            (long.group_reduce(op, 0, &months, 3), format!("{op:?} by month")),
        ] {
            let (gpu, cpu) = on_gpu_and_cpu(&e);
            exact += within_an_ulp(&gpu, &cpu, &what);
            all += gpu.len();
            let constant = gpu.index_axis(ndarray::Axis(gpu.ndim() - 1), 0);
            assert!(constant.iter().all(|&v| v == 0.0), "{what}: {constant}");
        }
    }
    println!("variances: {exact} of {all} values bitwise the CPU's, the rest one ulp away");
}

#[test]
fn sums_and_means_near_f32s_largest_keep_the_cpus_value() {
    let Some(_device) = device() else { return };
    // A running f32 total past f32's largest where the CPU's f64 total comes back (values near
    // it, or GDAL's float32 nodata -3.4e38 left unmasked) was infinite or NaN on the device;
    // a mean of values over 2^60 lost its pair's low part. Columns are pixels, six steps each,
    // over the whole axis and by halves (tests/gpu_split.rs has states merged on the host).
    let (nan, big, inf) = (f32::NAN, f32::MAX, f32::INFINITY);
    let columns: [[f32; 6]; 9] = [
        [3e38, 3e38, -3e38, 1.0, 2.0, 3.0],
        [-big, -big, 0.5, nan, -big, 7.0],
        [3e38, 3e38, -inf, 1.0, 1.0, 1.0],
        [3e38, 3e38, -3e38, -3e38, 1.5, nan],
        [
            2f32.powi(60),
            0.4 * 2f32.powi(37),
            0.4 * 2f32.powi(37),
            0.3 * 2f32.powi(37),
            7.0,
            0.4 * 2f32.powi(37),
        ],
        [big; 6],
        [1e-30, 2e-30, -5e-31, 7e-30, nan, 3e-30],
        [1.5, -2.25, nan, 4.0, 8.5, -1.0],
        [1e38, 2e38, 3e38, -1e38, -2e38, -3e38],
    ];
    // four copies of the columns: the device takes blocks of 32 outputs or more
    let values = ArrayD::from_shape_fn(IxDyn(&[6, 36]), |i| columns[i[1] % 9][i[0]]);
    let whole = Array::from_ndarray(values, [6, 36]);
    let halves = [0, 0, 0, 1, 1, 1];
    for op in [
        strata::ReduceOp::Sum,
        strata::ReduceOp::NanSum,
        strata::ReduceOp::Mean,
        strata::ReduceOp::NanMean,
    ] {
        for (e, what) in [
            (whole.reduce(op, 0), format!("{op:?} over time")),
            (whole.group_reduce(op, 0, &halves, 2), format!("{op:?} by halves")),
        ] {
            let (gpu, cpu) = on_gpu_and_cpu(&e);
            assert_close(&gpu, &cpu, &what);
        }
    }
    // the pair's low part at 2^60: one large value and 999 of 0.4 2^37
    let long = ArrayD::from_shape_fn(IxDyn(&[1000, 32]), |i| {
        if i[0] == 0 {
            2f32.powi(60)
        } else {
            0.4 * 2f32.powi(37)
        }
    });
    let (gpu, cpu) = on_gpu_and_cpu(&Array::from_ndarray(long, [1000, 32]).mean(0));
    assert_close(&gpu, &cpu, "mean of 2^60 and 999 values of 0.4 2^37");
}

#[test]
fn mask_reductions_match_the_cpu() {
    if device().is_none() {
        return;
    }
    let a = Array::from_ndarray(rough_cube(13, 6, 5, 3, 11), [5, 6, 5]);
    let mask = a.gt(0.0);
    for op in [
        strata::ReduceOp::Any,
        strata::ReduceOp::All,
        strata::ReduceOp::Sum,
        strata::ReduceOp::Count,
    ] {
        for axes in [vec![0], vec![1, 2]] {
            let (gpu, cpu) = on_gpu_and_cpu(&mask.reduce(op, axes.as_slice()));
            assert_same_bits(&gpu, &cpu, &format!("{op:?} of a mask over {axes:?}"));
        }
    }
}

#[test]
fn monthly_group_reductions_match_the_cpu() {
    if device().is_none() {
        return;
    }
    let labels: Vec<usize> = vec![0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 4, 4, 5, 6, 6, 8, 8, 9, 10, 10, 10, 11, 11];
    let a = Array::from_ndarray(rough_cube(labels.len(), 11, 9, 4, 7), [labels.len(), 5, 4]);
    for op in PARTIAL_OPS
        .into_iter()
        .chain([strata::ReduceOp::Any, strata::ReduceOp::All])
    {
        let (gpu, cpu) = on_gpu_and_cpu(&a.group_reduce(op, 0, &labels, 12));
        assert_close(&gpu, &cpu, &format!("{op:?} by month"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn reductions_over_time_match_the_cpu(
        t in 1usize..80,
        (rows, cols) in (6usize..20, 6usize..20),
        (ct, cr, cc) in (1usize..100, 6usize..12, 6usize..12),
        nan_every in 2usize..6,
        seed in 0u32..1000,
        op in proptest::sample::select(PARTIAL_OPS.to_vec()),
    ) {
        if device().is_none() {
            return Ok(());
        }
        let a = Array::from_ndarray(rough_cube(t, rows, cols, nan_every, seed), [ct, cr, cc]);
        // Whole time axes reduce on the device; a time axis cut into blocks merges on the host.
        let (gpu, cpu) = if ct >= t {
            on_gpu_and_cpu(&a.reduce(op, 0))
        } else {
            on_gpu_backend_and_cpu(&a.reduce(op, 0))
        };
        assert_close(&gpu, &cpu, &format!("{op:?}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn group_reductions_over_random_labels_match_the_cpu(
        labels in proptest::collection::vec(0usize..7, 1..40),
        (rows, cols) in (1usize..12, 1usize..12),
        (cr, cc) in (1usize..8, 1usize..8),
        nan_every in 2usize..6,
        seed in 0u32..1000,
        op in proptest::sample::select(vec![
            strata::ReduceOp::NanMedian,
            strata::ReduceOp::Median,
            strata::ReduceOp::NanMean,
            strata::ReduceOp::Sum,
            strata::ReduceOp::NanMax,
            strata::ReduceOp::Count,
            strata::ReduceOp::NanStd { ddof: 1 },
            strata::ReduceOp::NanArgMax,
            strata::ReduceOp::ArgMin,
        ]),
    ) {
        if device().is_none() {
            return Ok(());
        }
        // Unsorted labels with gaps: groups of any size, empty ones included.
        let t = labels.len();
        let a = Array::from_ndarray(rough_cube(t, rows, cols, nan_every, seed), [t, cr, cc]);
        let (gpu, cpu) = on_gpu_and_cpu(&a.group_reduce(op, 0, &labels, 7));
        assert_close(&gpu, &cpu, &format!("{op:?} by labels {labels:?}"));
    }
}
