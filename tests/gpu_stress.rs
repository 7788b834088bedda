//! Races made visible without a GPU. A software adapter runs a dispatch nearly in order, so a
//! buffer reused too early shows up only now and then, if ever; here every released buffer is
//! poisoned (checking mode: a NaN with a payload), the device budget and pools are tiny (most
//! results move to the host, buffers are dropped and made again, the executor holds device
//! tasks back while submitted work drains), eight threads share the device, and the
//! tutorial's pipelines run twenty times. Every run must equal the first bit for bit, and the
//! CPU under the parity contract (bitwise, means to f32 rounding).

mod common;

use common::gpu::*;
use ndarray::ArrayD;
use strata::backend::gpu::BackendChoice;
use strata::{Array, BoundaryMode, ComputeOptions, ReduceOp};

/// The pipelines: monthly RGB nanmedian; NDVI nanmean; luminance nanmedian, its gaussian and
/// a threshold; the same with the tutorial's sigma (0, 0.1), whose radii are both 0 (the
/// identity gaussian whose result once was the pooled input buffer itself).
fn pipelines() -> Vec<(&'static str, Array, bool)> {
    let band = |k: u32| {
        Array::from_ndarray(
            rough_cube(16, 64, 48, 4 + k as usize, k).mapv(|v| v * 1e-4),
            [16, 16, 16],
        )
    };
    let (red, green, blue, nir, swir) = (band(0), band(1), band(2), band(3), band(4));
    let months: Vec<usize> = (0..16).map(|t| t * 6 / 16).collect();
    let rgb =
        Array::stack(&[red.clone(), green.clone(), blue.clone()], 1).group_reduce(ReduceOp::NanMedian, 0, &months, 6);
    let ndvi = ((&swir - &nir) / (&swir + &nir)).nanmean(0);
    let lum = (&(&(&red * 0.2125) + &(&green * 0.7154)) + &(&blue * 0.0721)).nanmedian(0);
    let smooth = lum.gaussian(&[1.0, 1.5], BoundaryMode::Reflect);
    let identity = lum.gaussian(&[0.0, 0.1], BoundaryMode::Reflect);
    vec![
        ("monthly rgb", rgb, true),
        ("ndvi mean", ndvi, false),
        ("smoothed", smooth.clone(), true),
        ("mask", smooth.gt(0.05), true),
        ("identity smoothed", identity.clone(), true),
        ("identity mask", identity.gt(0.05), true),
    ]
}

#[test]
fn twenty_runs_under_reuse_pressure_match_each_other_and_the_cpu() {
    // The only test in this binary, so nothing opened the device before this line: a 1 MiB
    // device budget, so pools of 256 KiB.
    std::env::set_var("STRATA_DEVICE_BUDGET", "1048576");
    let Some(ctx) = device() else { return };
    assert!(ctx.checks(), "checking mode is on in GPU tests");
    let gpu = ComputeOptions {
        threads: Some(8),
        ..on(BackendChoice::Gpu)
    };
    let cpu = on(BackendChoice::Cpu);
    let cases = pipelines();
    let expected: Vec<ArrayD<f32>> = cases.iter().map(|(_, e, _)| e.compute_with(&cpu).unwrap().0).collect();
    // A budget that moves most results to the host, then one that keeps them (tiny pools still).
    for budget in [1u64 << 20, 64 << 20] {
        ctx.set_device_budget(budget);
        let mut first: Vec<Option<ArrayD<f32>>> = vec![None; cases.len()];
        for run in 0..20 {
            for (i, (name, e, bitwise)) in cases.iter().enumerate() {
                let before = ctx.device_tasks();
                let got = e.compute_with(&gpu).unwrap().0;
                assert!(ctx.device_tasks() > before, "{name}: no task ran on the device");
                let what = format!("{name}, budget {budget}, run {run}");
                match &first[i] {
                    Some(f) => assert_same_bits(&got, f, &format!("{what} against run 0")),
                    None => first[i] = Some(got.clone()),
                }
                if *bitwise {
                    assert_same_bits(&got, &expected[i], &what);
                } else {
                    assert_close(&got, &expected[i], &what);
                }
            }
        }
    }
    ctx.settle();
    assert_eq!(ctx.in_flight_bytes(), 0, "nothing is left in flight");
    assert_eq!(ctx.resident_bytes(), 0, "every kept block was freed");
}
