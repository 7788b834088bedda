//! The GPU backend against the CPU backend (the reference): medians, quantiles, selections,
//! gaussians, masks, transfers and placement, on whatever adapter the machine has (Mesa lavapipe
//! in CI); elementwise programs are in `gpu_elementwise.rs`. Without an adapter these tests
//! fail and say how to get one; `STRATA_SKIP_GPU_TESTS=1` skips them with a notice.

mod common;

use common::gpu::*;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strata::backend::gpu::BackendChoice;
use strata::Array;

#[test]
fn the_device_is_named_in_the_report() {
    let Some(ctx) = device() else { return };
    let a = Array::from_ndarray(ArrayD::from_elem(IxDyn(&[4, 4]), 2.0f32), [2, 2]);
    let (out, report) = (&a * 3.0).compute_with(&on(BackendChoice::Gpu)).unwrap();
    assert!(out.iter().all(|&v| v == 6.0));
    assert!(report.backend.contains(&ctx.adapter.name), "{}", report.backend);
    let adapter = report.adapter.as_ref().expect("the report names the adapter");
    assert_eq!(adapter, &ctx.adapter);
    assert!(report.to_json().contains("max_storage_binding"));
}

#[test]
fn medians_of_long_and_short_axes_match_the_cpu() {
    if device().is_none() {
        return;
    }
    for (t, axis) in [(1, 0), (2, 0), (63, 0), (64, 0), (65, 0), (1024, 0), (64, 1), (5, 2)] {
        let data = cube(t, 9, 7, 5, t as u32);
        let a = Array::from_ndarray(data, [t, 4, 3]);
        for nan_skipping in [true, false] {
            let m = if nan_skipping {
                a.nanmedian(axis)
            } else {
                a.median(axis)
            };
            let (gpu, cpu) = on_gpu_and_cpu(&m);
            assert_same_bits(&gpu, &cpu, &format!("T={t} axis {axis} nan-skipping {nan_skipping}"));
        }
    }
    // Quantiles interpolate between their two values as numpy's f64 `_lerp`, rounded once:
    // bit for bit the CPU's, at weights f32 cannot hold (a third) and from either end.
    for t in [2, 3, 65, 1024] {
        let a = Array::from_ndarray(rough_cube(t, 9, 7, 4, 11 + t as u32), [t, 9, 7]);
        for q in [0.1, 0.25, 1.0 / 3.0, 0.5, 0.7, 0.9, 0.999] {
            let (gpu, cpu) = on_gpu_and_cpu(&a.nanquantile(q, 0));
            assert_same_bits(&gpu, &cpu, &format!("quantile {q} over T={t}"));
        }
    }
    // Series that rise then fall (a season's NDVI: an organ pipe), sorted, and sawtooth, over
    // the longest axis the device holds: a pivot in the middle of each range made the
    // selection quadratic on the organ pipe, and lavapipe, which stops a shader's loops after
    // 65535 iterations, returned 410 for its median instead of 255.5.
    let n = 1024;
    type Shape = fn(usize, usize) -> f32;
    let shapes: [(&str, Shape); 3] = [
        ("organ pipe", |t, n| t.min(n - 1 - t) as f32),
        ("sorted", |t, _| t as f32),
        ("sawtooth", |t, _| (t % 128) as f32),
    ];
    for (name, shape) in shapes {
        let data = ArrayD::from_shape_fn(IxDyn(&[n, 8, 8]), |i| shape(i[0], n) + i[2] as f32 * 1000.0);
        let a = Array::from_ndarray(data, [n, 8, 8]);
        for m in [a.nanmedian(0), a.nanquantile(0.9, 0)] {
            let (gpu, cpu) = on_gpu_and_cpu(&m);
            assert_same_bits(&gpu, &cpu, name);
        }
    }
    let pipe = Array::from_ndarray(
        ArrayD::from_shape_fn(IxDyn(&[n, 8, 8]), |i| i[0].min(n - 1 - i[0]) as f32),
        [n, 8, 8],
    );
    let (gpu, _) = on_gpu_and_cpu(&pipe.nanmedian(0));
    assert!(
        gpu.iter().all(|&v| v == 255.5),
        "the organ pipe's median is 255.5 (0..511 twice)"
    );
}

#[test]
fn medians_and_quantiles_that_are_zero_are_positive_zero_on_every_path() {
    if device().is_none() {
        return;
    }
    // Series holding both zeros (a difference of equal reflectances is +0, a product by a
    // negative -0). Which zero lands in the middle depends on the sort or selection (the
    // CPU's min/max network even duplicates one), so every median and quantile gives +0 for
    // a zero: numpy's value for every median, which numpy averages from a +0 start
    // (np.nanmedian([-0., 0.]) and np.nanmedian([-0., -0., -0.]) are +0), and the same bits on
    // both backends. Before, the CPU gave -0 for [-0, 0] and the GPU +0.
    let (z, p, nan) = (-0.0f32, 0.0f32, f32::NAN);
    let series: [&[f32]; 9] = [
        &[z, p],
        &[p, z],
        &[z, z],
        &[z, p, p],
        &[p, z, z],
        &[z, z, z],
        &[p, 1.0, z, z],
        &[z, nan, p, z],
        &[-1.0, z, p, 1.0],
    ];
    for s in series {
        let t = s.len();
        let data = ArrayD::from_shape_fn(IxDyn(&[t, 6, 10]), |ix| s[ix[0]]);
        let a = Array::from_ndarray(data, [t, 3, 5]);
        let exprs = [
            ("nanmedian", a.nanmedian(0)),
            ("nanquantile 0.5", a.nanquantile(0.5, 0)),
            ("nanquantile 0.3", a.nanquantile(0.3, 0)),
            (
                "monthly median",
                a.group_reduce(strata::ReduceOp::NanMedian, 0, &vec![0; t], 1),
            ),
            ("coarsen median", a.coarsen(strata::ReduceOp::NanMedian, &[t, 2, 2])),
            (
                "rolling median",
                a.rolling(
                    strata::ReduceOp::NanMedian,
                    0,
                    strata::MovingWindow {
                        size: 2,
                        center: false,
                        min_periods: 1,
                    },
                ),
            ),
        ];
        for (what, e) in exprs {
            let (gpu, cpu) = on_gpu_and_cpu(&e);
            let what = format!("{what} of {s:?}");
            assert_same_bits(&gpu, &cpu, &what);
            assert!(
                cpu.iter().all(|v| v.to_bits() != (-0.0f32).to_bits()),
                "{what}: {:?}",
                cpu.iter().next()
            );
        }
    }
}

#[test]
fn reductions_of_signed_zeros_keep_the_cpus_bits() {
    if device().is_none() {
        return;
    }
    // The same series through min, max, sums, means and variances, over the whole axis, by
    // groups and by coarsen windows: each zero's sign as the CPU gives it (checked when the
    // medians' rule was fixed; the tests took -0 == +0 before, so nothing held this).
    let (z, p, nan) = (-0.0f32, 0.0f32, f32::NAN);
    let series: [&[f32]; 6] = [&[z, p], &[p, z], &[z, z], &[z, p, p], &[z, nan, z], &[-1.0, z, 1.0, z]];
    use strata::ReduceOp::*;
    for s in series {
        let t = s.len();
        let data = ArrayD::from_shape_fn(IxDyn(&[t, 6, 10]), |ix| s[ix[0]]);
        let a = Array::from_ndarray(data, [t, 3, 5]);
        for op in [NanMin, NanMax, NanSum, NanMean, NanVar { ddof: 0 }, Min, Max, Sum, Mean] {
            let mut exprs = vec![
                ("over time", a.reduce(op, 0)),
                ("by groups", a.group_reduce(op, 0, &vec![0; t], 1)),
            ];
            if matches!(op, NanMin | NanMax | NanSum | NanMean | NanVar { .. }) {
                exprs.push(("by coarsen windows", a.coarsen(op, &[t, 2, 2])));
            }
            for (how, e) in exprs {
                let (gpu, cpu) = on_gpu_backend_and_cpu(&e);
                assert_same_bits(&gpu, &cpu, &format!("{op:?} {how} of {s:?}"));
            }
        }
    }
}

#[test]
fn quantiles_between_values_near_f32s_largest_match_the_cpu() {
    if device().is_none() {
        return;
    }
    // numpy's lerp between neighbours of 2^100 or more: their difference, or Dekker's split of
    // it, left f32's range on the device (the 0.25 quantile of [-3.4e38, 1, 2, 3], GDAL's
    // usual float32 nodata among values, gave NaN; the middle of [-3e38, 3e38] infinity). The
    // CPU interpolates in f64. Each column is a pixel's four steps.
    let big = f32::MAX;
    let columns: [[f32; 4]; 7] = [
        [-big, 1.0, 2.0, 3.0],
        [-3e38, 3e38, 3e38, -3e38],
        [big, big, -big, 0.5],
        [1e35, -2e36, 7e30, 3.5],
        [2e38, 1e-40, -1e-30, 5.0],
        [3.0e38, 3.1e38, 3.2e38, 3.3e38],
        [-big, -1e-40, big, f32::NAN],
    ];
    let a = Array::from_ndarray(ArrayD::from_shape_fn(IxDyn(&[4, 7]), |i| columns[i[1]][i[0]]), [4, 7]);
    for q in [0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9] {
        let (gpu, cpu) = on_gpu_and_cpu(&a.nanquantile(q, 0));
        assert!(gpu.iter().all(|v| v.is_finite()), "q = {q}: {gpu:?}");
        assert_same_bits(&gpu, &cpu, &format!("q = {q}"));
    }
}

#[test]
fn the_selections_heapsort_fallback_gives_the_same_values() {
    if device().is_none() {
        return;
    }
    // The quickselect heapsorts what is left of its range once it has taken its budget of
    // partitions (rare with hashed pivots). A budget of 0 (read at each launch) sends every
    // selection there: medians and quantiles of short, long and ordered columns, with NaN,
    // still equal the CPU's bit for bit. Other tests running meanwhile take that path too,
    // with the same values.
    std::env::set_var("STRATA_GPU_SELECT_ROUNDS", "0");
    let n = 1024;
    let pipe = ArrayD::from_shape_fn(IxDyn(&[n, 8, 8]), |i| i[0].min(n - 1 - i[0]) as f32);
    let mut columns: Vec<(String, Array)> = vec![("organ pipe".into(), Array::from_ndarray(pipe, [n, 8, 8]))];
    for (t, nan_every) in [(1, 5), (2, 5), (7, 3), (64, 5), (65, 4), (1024, 5)] {
        let a = Array::from_ndarray(cube(t, 9, 7, nan_every, t as u32), [t, 9, 7]);
        columns.push((format!("T={t}"), a));
    }
    for (what, a) in &columns {
        for m in [
            a.nanmedian(0),
            a.median(0),
            a.nanquantile(0.9, 0),
            a.nanquantile(0.25, 0),
        ] {
            let (gpu, cpu) = on_gpu_and_cpu(&m);
            assert_same_bits(&gpu, &cpu, &format!("{what}, heapsorted"));
        }
    }
    std::env::remove_var("STRATA_GPU_SELECT_ROUNDS");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn nanmedian_over_time_matches_the_cpu(
        t in 1usize..130,
        (rows, cols) in (1usize..20, 1usize..20),
        (cr, cc) in (1usize..12, 1usize..12),
        nan_every in 2usize..6,
        seed in 0u32..1000,
    ) {
        if device().is_none() {
            return Ok(());
        }
        let a = Array::from_ndarray(cube(t, rows, cols, nan_every, seed), [t, cr, cc]);
        let m = a.nanmedian(0);
        let (gpu, cpu) = on_gpu_and_cpu(&m);
        assert_same_bits(&gpu, &cpu, "nanmedian");
    }
}

#[test]
fn monthly_group_medians_match_the_cpu() {
    if device().is_none() {
        return;
    }
    // 23 scenes over 12 months: uneven groups, an empty month (7), a month of one scene.
    let labels: Vec<usize> = vec![0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 4, 4, 5, 6, 6, 8, 8, 9, 10, 10, 10, 11, 11];
    let a = Array::from_ndarray(cube(labels.len(), 11, 9, 4, 7), [labels.len(), 5, 4]);
    for op in [strata::ReduceOp::NanMedian, strata::ReduceOp::Median] {
        let m = a.group_reduce(op, 0, &labels, 12);
        let (gpu, cpu) = on_gpu_and_cpu(&m);
        assert_eq!(cpu.shape(), &[12, 11, 9]);
        assert_same_bits(&gpu, &cpu, &format!("{op:?} by month"));
    }
}

#[test]
fn arg_extremes_match_the_cpu_bitwise() {
    if device().is_none() {
        return;
    }
    // Ties are common (17 levels), all-NaN pixels on odd rows of column 0, a NaN in 3.
    let x = cube(19, 13, 11, 3, 5);
    // one chunk of time (held whole, on the device) and time cut in three (made whole first)
    for chunks in [[19, 7, 6], [7, 13, 11]] {
        let a = Array::from_ndarray(x.clone(), chunks);
        for op in [
            strata::ReduceOp::NanArgMax,
            strata::ReduceOp::NanArgMin,
            strata::ReduceOp::ArgMax,
            strata::ReduceOp::ArgMin,
        ] {
            for axis in 0..3isize {
                let (gpu, cpu) = on_gpu_and_cpu(&a.reduce(op, axis));
                assert_eq!(gpu.shape(), cpu.shape());
                let bits = |v: &ArrayD<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&gpu), bits(&cpu), "{op:?} over axis {axis} in chunks {chunks:?}");
            }
        }
    }
    // by groups: the position of the first extreme among each group's steps
    let labels: Vec<usize> = (0..19).map(|t| (t * 5) % 4).collect();
    let a = Array::from_ndarray(x, [19, 7, 6]);
    let (gpu, cpu) = on_gpu_and_cpu(&a.group_reduce(strata::ReduceOp::NanArgMax, 0, &labels, 5));
    assert_same_bits(&gpu, &cpu, "nanargmax by groups");
    assert!(
        cpu.index_axis(ndarray::Axis(0), 4).iter().all(|v| v.is_nan()),
        "group 4 is empty"
    );
}

const MODES: [strata::BoundaryMode; 6] = [
    strata::BoundaryMode::Reflect,
    strata::BoundaryMode::Mirror,
    strata::BoundaryMode::Nearest,
    strata::BoundaryMode::Wrap,
    strata::BoundaryMode::Constant(0.0),
    strata::BoundaryMode::Constant(-2.5),
];

#[test]
fn gaussians_in_every_mode_match_the_cpu() {
    if device().is_none() {
        return;
    }
    // Over y and x (halos read from neighbour blocks), a radius wider than a block, an
    // anisotropic sigma, the tutorial's (0, 0.1), and over all three axes of a cube (the
    // general path: blocks extended by a gather, then one pass per axis). Bit for bit: each
    // tap rounds as the CPU path's (exact.wgsl's fma_rn where the CPU uses FMA).
    let img = rough_cube(1, 37, 29, 1000, 3)
        .into_shape_with_order(IxDyn(&[37, 29]))
        .unwrap();
    let cube3 = rough_cube(6, 13, 11, 1000, 5);
    for mode in MODES {
        for (sigma, chunks) in [
            (vec![2.0, 2.0], [10, 8]),
            (vec![3.5, 0.7], [37, 29]),
            (vec![0.0, 0.1], [9, 9]),
            (vec![1.0, 5.0], [4, 6]),
        ] {
            let a = Array::from_ndarray(img.clone(), chunks);
            let (gpu, cpu) = on_gpu_and_cpu(&a.gaussian(&sigma, mode));
            let what = format!("{mode:?} sigma {sigma:?} chunks {chunks:?}");
            assert_same_bits(&gpu, &cpu, &what);
        }
        let a = Array::from_ndarray(cube3.clone(), [4, 5, 6]);
        let (gpu, cpu) = on_gpu_and_cpu(&a.gaussian(&[1.0, 1.5, 0.8], mode));
        assert_same_bits(&gpu, &cpu, &format!("{mode:?} over three axes"));
    }
}

#[test]
fn gaussians_of_values_far_from_one_match_the_cpu_bitwise() {
    if device().is_none() {
        return;
    }
    // exact.wgsl's emulated fma needs its product's operands within [2^-60, 2^60]: values
    // beyond (counts near 1e18, or 1e-25) took the driver's fma, which lavapipe does not fuse,
    // and some pixels came out one ulp from the CPU's. They are scaled into range now.
    let img = rough_cube(1, 40, 36, 1000, 7)
        .into_shape_with_order(IxDyn(&[40, 36]))
        .unwrap();
    for scale in [3.1e18f32, -7.7e22, 2.5e-25, 1.0e30] {
        let a = Array::from_ndarray(img.mapv(|v| v * scale), [40, 36]);
        for sigma in [vec![1.0, 1.0], vec![2.0, 0.7]] {
            let (gpu, cpu) = on_gpu_and_cpu(&a.gaussian(&sigma, strata::BoundaryMode::Reflect));
            assert_same_bits(&gpu, &cpu, &format!("values times {scale:e}, sigma {sigma:?}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn gaussians_over_random_chunkings_match_the_cpu(
        (rows, cols) in (1usize..40, 1usize..40),
        (cr, cc) in (1usize..20, 1usize..20),
        (sy, sx) in (0.0f64..4.0, 0.0f64..4.0),
        mode in proptest::sample::select(MODES.to_vec()),
        nan_every in 3usize..50,
        seed in 0u32..1000,
    ) {
        if device().is_none() {
            return Ok(());
        }
        let img = rough_cube(1, rows, cols, nan_every, seed).into_shape_with_order(IxDyn(&[rows, cols])).unwrap();
        let a = Array::from_ndarray(img, [cr, cc]);
        let (gpu, cpu) = on_gpu_and_cpu(&a.gaussian(&[sy, sx], mode));
        assert_same_bits(&gpu, &cpu, &format!("{mode:?} sigma ({sy}, {sx})"));
    }
}

#[test]
fn masks_go_up_and_come_back_as_bytes() {
    if device().is_none() {
        return;
    }
    // Odd sizes and chunkings, so packed words end part-full; mask inputs (u8 from the host)
    // combined with f32 data, and u8 results (comparisons, logic, astype).
    let data = rough_cube(3, 7, 13, 4, 9);
    let m = ArrayD::from_shape_fn(IxDyn(&[3, 7, 13]), |ix| (ix[0] + ix[1] * 3 + ix[2] * 5) % 3 == 0);
    let x = Array::from_ndarray(data, [2, 3, 5]);
    let mask = Array::from_mask(m, [2, 3, 5]);
    let cases: Vec<(&str, Array)> = vec![
        ("mask and comparison", mask.and(&x.gt(10.0))),
        ("mask or not", mask.or(&x.isnan()).not()),
        ("where over a mask", mask.where_(&x, &(&x * -1.0))),
        ("mask times data", &mask.astype(strata::DType::F32) * &x),
        ("data to u8", (&x * 0.01).astype(strata::DType::U8)),
    ];
    for (what, e) in cases {
        let (gpu, cpu) = on_gpu_and_cpu(&e);
        assert_same_bits(&gpu, &cpu, what);
    }
}

#[test]
fn a_mask_program_moves_bytes_not_floats() {
    let Some(ctx) = device() else { return };
    let _turn = one_at_a_time();
    // One 1000 x 1000 block: a mask in, its negation out. As f32 that would be 4 MB each way.
    let m = ArrayD::from_shape_fn(IxDyn(&[1000, 1000]), |ix| (ix[0] * 7 + ix[1]) % 3 == 0);
    let e = Array::from_mask(m, [1000, 1000]).not();
    let (tasks, before) = (ctx.device_tasks(), ctx.transfer_stats());
    let out = e.compute_with(&on(BackendChoice::Gpu)).unwrap().0;
    let moved = ctx.transfer_stats().since(&before);
    assert!(ctx.device_tasks() > tasks);
    assert_eq!(moved.upload_bytes, 1_000_000, "the mask's bytes: {moved:?}");
    assert_eq!(moved.download_bytes, 1_000_000, "{moved:?}");
    assert_eq!(out[[0, 0]], 0.0);
    assert_eq!(out[[0, 1]], 1.0);
}

#[test]
fn uploads_copy_each_byte_once_and_workers_never_wait() {
    let Some(ctx) = device() else { return };
    // The tutorial's pipelines over blocks cut from host arrays (strided views: a block of a
    // (time, y, x) cube is not contiguous). Each input byte is copied once on the host,
    // straight into staging; no worker thread waits for the device (results come back through
    // the completion thread); every task is one submission, plus one per read-back.
    let band = |k: u32| {
        Array::from_ndarray(
            rough_cube(12, 40, 36, 4 + k as usize, k).mapv(|v| v * 1e-4),
            [12, 16, 16],
        )
    };
    let (red, green, blue, nir, swir) = (band(0), band(1), band(2), band(3), band(4));
    let months: Vec<usize> = (0..12).map(|t| t / 2).collect();
    let lum = (&(&(&red * 0.2125) + &(&green * 0.7154)) + &(&blue * 0.0721)).nanmedian(0);
    for (what, e) in [
        (
            "monthly rgb",
            Array::stack(&[red.clone(), green.clone(), blue.clone()], 1).group_reduce(
                strata::ReduceOp::NanMedian,
                0,
                &months,
                6,
            ),
        ),
        ("ndvi mean", ((&swir - &nir) / (&swir + &nir)).nanmean(0)),
        (
            "lum mask",
            lum.gaussian(&[1.0, 1.5], strata::BoundaryMode::Reflect).gt(0.05),
        ),
    ] {
        ctx.settle();
        let before = ctx.transfer_stats();
        let tasks = ctx.device_tasks();
        let (_, report) = e.compute_with(&on(BackendChoice::Gpu)).unwrap();
        ctx.settle();
        let moved = ctx.transfer_stats().since(&before);
        assert!(
            ctx.device_tasks() > tasks && moved.upload_bytes > 0,
            "{what}: {moved:?}"
        );
        assert!(moved.host_copy_bytes <= moved.upload_bytes, "{what}: {moved:?}");
        assert_eq!((moved.worker_waits, moved.blocking_waits), (0, 0), "{what}: {moved:?}");
        // One submission per device task, and at most one more to bring its result over.
        let device_tasks = report.tasks.iter().filter(|t| t.device).count() as u64;
        assert!(
            moved.submissions <= 2 * device_tasks,
            "{what}: {} submissions for {device_tasks} device tasks: {moved:?}",
            moved.submissions
        );
    }
}

#[test]
fn device_profiles_time_each_kernel_by_the_devices_clock() {
    let Some(ctx) = device() else { return };
    let a = Array::from_ndarray(rough_cube(16, 48, 40, 4, 5), [16, 24, 20]);
    let work = (&(&a * 0.5) + 1.0).nanmedian(0);
    // off (the default): nothing is measured
    let was = ctx.set_profiling(false);
    ctx.settle();
    let before = ctx.profile();
    let (_, report) = work.compute_with(&on(BackendChoice::Gpu)).unwrap();
    ctx.settle();
    assert_eq!(ctx.profile(), before, "profiling off measures nothing");
    assert_eq!(report.device_profile, None);
    // on: lavapipe, like Vulkan drivers on real GPUs, has timestamp queries
    assert!(ctx.set_profiling(true), "{} has no timestamp queries", ctx.adapter.name);
    let tasks = ctx.device_tasks();
    let (_, report) = work.compute_with(&on(BackendChoice::Gpu)).unwrap();
    ctx.settle();
    ctx.set_profiling(was);
    let d = ctx.profile().since(&before);
    // the run's report holds the same: its timestamps were read before it returned
    assert_eq!(report.device_profile.as_ref(), Some(&d), "{}", report.to_json());
    let device_tasks = ctx.device_tasks() - tasks;
    // four blocks: each a fused multiply-add and a median in one task (or two), each timed
    let kernel = |name: &str| d.kernels.iter().find(|k| k.kernel == name).cloned();
    let (fused, median) = (kernel("fused"), kernel("median"));
    assert!(
        fused.as_ref().is_some_and(|k| k.dispatches >= 4 && k.device_ns > 0),
        "{d:?}"
    );
    assert!(
        median.as_ref().is_some_and(|k| k.dispatches == 4 && k.device_ns > 0),
        "{d:?}"
    );
    assert!(
        d.submissions >= device_tasks,
        "{} submissions for {device_tasks} tasks: {d:?}",
        d.submissions
    );
    // every dispatch lies within its command buffer's stamps
    assert!(d.submission_ns >= d.kernel_ns() && d.untimed == 0, "{d:?}");
}

#[test]
fn intermediates_stay_on_the_device_within_its_budget() {
    let Some(ctx) = device() else { return };
    let _turn = one_at_a_time();
    // Band math feeding a median over time: each fused block is read by one median task. With
    // the whole budget only the medians come back; with none, nothing is kept: each fused
    // block is moved to the host as soon as it is computed, unless its median read it on the
    // device first (the move is asked for without waiting, so that race is the device's).
    let a = Array::from_ndarray(rough_cube(16, 24, 20, 5, 1), [16, 8, 10]);
    let b = Array::from_ndarray(rough_cube(16, 24, 20, 7, 2), [16, 8, 10]);
    let e = ((&a - &b) / (&a + &b)).nanmedian(0);
    let out_bytes = 24 * 20 * 4;
    let fused_bytes = 16 * 24 * 20 * 4;
    let budget = ctx.device_budget();
    for (allowed, most) in [(budget, out_bytes), (0, out_bytes + fused_bytes)] {
        ctx.set_device_budget(allowed);
        ctx.reset_peak_resident();
        let before = ctx.transfer_stats();
        let (gpu, cpu) = on_gpu_and_cpu_held(&e);
        ctx.settle();
        let moved = ctx.transfer_stats().since(&before);
        assert_same_bits(&gpu, &cpu, &format!("device budget {allowed}"));
        let least = if allowed > 0 { most } else { out_bytes };
        assert!(
            (least as u64..=most as u64).contains(&moved.download_bytes),
            "device budget {allowed}: {moved:?}"
        );
        // What was kept stayed within the budget; with room, the fused blocks were kept.
        assert!(
            ctx.peak_resident_bytes() <= allowed,
            "{} kept",
            ctx.peak_resident_bytes()
        );
        assert_eq!(
            ctx.peak_resident_bytes() > 0,
            allowed > 0,
            "{} kept",
            ctx.peak_resident_bytes()
        );
        assert_eq!(ctx.resident_bytes(), 0, "every kept block was freed");
        assert_eq!(ctx.in_flight_bytes(), 0, "no submitted work is left holding buffers");
        // Input buffers came back to the bounded pool for the next tiles.
        assert!(
            ctx.pooled_input_bytes() > 0 && ctx.pooled_input_bytes() <= budget / 4,
            "{} pooled",
            ctx.pooled_input_bytes()
        );
    }
    ctx.set_device_budget(budget);
}

#[test]
fn the_tutorial_pipelines_match_the_cpu() {
    if device().is_none() {
        return;
    }
    // (band, time, y, x) cubes standing in for red, green, blue, nir, swir.
    let band = |k: u32| {
        Array::from_ndarray(
            rough_cube(12, 30, 26, 4 + k as usize, k).mapv(|v| v * 1e-4),
            [12, 16, 13],
        )
    };
    let (red, green, blue, nir, swir) = (band(0), band(1), band(2), band(3), band(4));
    let months: Vec<usize> = (0..12).map(|t| t / 2).collect();
    // Monthly RGB nanmedian; NDVI-style band math then nanmean over time; luminance → nanmedian
    // → gaussian → threshold (a gaussian reading device-resident medians, then a mask).
    let rgb = Array::stack(&[red.clone(), green.clone(), blue.clone()], 1).group_reduce(
        strata::ReduceOp::NanMedian,
        0,
        &months,
        6,
    );
    let ndvi = ((&swir - &nir) / (&swir + &nir)).nanmean(0);
    let lum = (&(&(&red * 0.2125) + &(&green * 0.7154)) + &(&blue * 0.0721)).nanmedian(0);
    let smooth = lum.gaussian(&[1.0, 1.5], strata::BoundaryMode::Reflect);
    let mask = smooth.gt(0.05);
    for (what, e) in [
        ("monthly rgb", rgb),
        ("ndvi mean", ndvi),
        ("luminance median", lum),
        ("smoothed", smooth.clone()),
        ("mask", mask),
    ] {
        let (gpu, cpu) = on_gpu_and_cpu(&e);
        assert_filter_close(&gpu, &cpu, 0.0, what);
    }
}

#[test]
fn the_placement_pass_predicts_where_every_task_runs() {
    let Some(_device) = device() else { return };
    // Band math, a time median, a gaussian and a mask: kernels the device runs, beside the
    // host's (the in-memory blocks, the mask's cast).
    let a = Array::from_ndarray(rough_cube(12, 40, 36, 5, 7), [12, 20, 18]);
    let e = (&a * 2.0 - 1.0)
        .nanmedian(0)
        .gaussian(&[1.0, 1.0], strata::BoundaryMode::Reflect)
        .gt(0.5)
        .astype(strata::DType::F32);
    let options = on(BackendChoice::Gpu);
    let explained = e.explain(&options).unwrap();
    let planned = explained.placements.tasks();
    assert!(planned.iter().any(|p| p.device), "{explained}");
    assert!(planned.iter().any(|p| !p.device), "{explained}");
    let (gpu, report) = e.compute_with(&options).unwrap();
    let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    assert_eq!(gpu, cpu);
    // the plan held: every task ran where the pass put it
    assert_eq!(report.placement_changes, 0);
    assert_eq!(report.tasks.len(), planned.len());
    for r in &report.tasks {
        assert_eq!(r.device, r.planned_device, "{r:?}");
        assert_eq!(r.device, planned[r.id].device, "{r:?}");
        assert_eq!(r.placement, planned[r.id].reason, "{r:?}");
    }
    // the explanation names the device's share
    let text = explained.to_string();
    assert!(text.contains("== placement ==") && text.contains("device: "), "{text}");
}

/// A plan made for the CPU backend, whose median reads the six steps of `a + b` as six
/// inputs, run by the GPU backend: the device median binds one buffer, so that median runs on
/// the host and gives the CPU's result (on the device it would reduce the first step alone).
#[test]
fn a_median_planned_to_read_its_steps_in_place_runs_on_the_host_under_the_gpu_backend() {
    let Some(_device) = device() else { return };
    let a = Array::from_ndarray(cube(6, 16, 16, 3, 7), vec![1, 16, 16]);
    let b = Array::from_ndarray(cube(6, 16, 16, 4, 9), vec![1, 16, 16]);
    let m = (&a + &b).reduce(strata::ReduceOp::NanMedian, strata::Axes::Some(vec![0]));
    let graph = m.plan_with(&on(BackendChoice::Cpu)).unwrap();
    let medians: Vec<_> = graph
        .tasks()
        .iter()
        .filter(|t| t.kind().name() == "nanmedian")
        .collect();
    assert!(
        !medians.is_empty() && medians.iter().all(|t| t.deps().len() == 6),
        "{graph}"
    );
    let run = |choice: BackendChoice| {
        let backend = strata::backend::gpu::select(choice).unwrap();
        let sink = strata::exec::BlockCollector::new(&[graph.outputs()[0].tasks().len()]);
        let report = strata::exec::execute(&graph, backend.as_ref(), &on(choice), &sink).unwrap();
        let blocks: Vec<ArrayD<f32>> = sink.into_blocks()[0]
            .iter()
            .map(|b| b.as_ref().expect("every block").to_f32().to_owned())
            .collect();
        (blocks, report)
    };
    let (gpu, report) = run(BackendChoice::Gpu);
    let (cpu, _) = run(BackendChoice::Cpu);
    let median_runs: Vec<bool> = report
        .tasks
        .iter()
        .filter(|t| t.kind == "nanmedian")
        .map(|t| t.device)
        .collect();
    assert!(
        !median_runs.is_empty() && median_runs.iter().all(|&d| !d),
        "{median_runs:?}"
    );
    for (g, c) in gpu.iter().zip(&cpu) {
        assert_same_bits(g, c, "median of separate steps");
    }
}
