//! Blocks larger than one storage binding are split, never refused: with the binding strata
//! plans for lowered to 64 KiB (`STRATA_GPU_MAX_BINDING`, set before the device opens), every
//! kernel family runs on the device in pieces and still matches the CPU.

mod common;

use common::gpu::*;
use ndarray::IxDyn;
use strata::{Array, BoundaryMode, ReduceOp};

#[test]
fn blocks_beyond_one_binding_are_split_and_match_the_cpu() {
    // The only test in this binary, so nothing opened the device before this line.
    std::env::set_var("STRATA_GPU_MAX_BINDING", "65536");
    let Some(ctx) = device() else { return };
    assert_eq!(
        ctx.adapter.max_storage_binding, 65536,
        "the device opened before the cap was set"
    );
    // (64, 40, 50) f32 blocks: 512 KB each, eight bindings' worth.
    let cube = rough_cube(64, 40, 50, 5, 3);
    let a = Array::from_ndarray(cube.clone(), [64, 40, 50]);
    let b = Array::from_ndarray(cube.mapv(|v| v * 0.5 + 1.0), [64, 40, 50]);
    let months: Vec<usize> = (0..64).map(|t| t * 12 / 64).collect();
    // One (64 x 400) column slab does not fit 16k values either: median over time of a
    // (64, 1, 400) block is cut into column runs.
    let wide = Array::from_ndarray(rough_cube(64, 1, 400, 4, 9), [64, 1, 400]);
    let img = rough_cube(1, 200, 150, 1000, 1)
        .into_shape_with_order(IxDyn(&[200, 150]))
        .unwrap();
    let image = Array::from_ndarray(img, [200, 150]);
    let cases: Vec<(&str, Array)> = vec![
        ("band math", (&a - &b) / (&a + &b)),
        ("nanmedian over time", a.nanmedian(0)),
        ("median over space", a.reduce(ReduceOp::Median, 2)),
        ("nanmedian of a wide column slab", wide.nanmedian(0)),
        ("monthly nanmedian", a.group_reduce(ReduceOp::NanMedian, 0, &months, 12)),
        ("nanmean over time", a.nanmean(0)),
        ("nanvar over time", a.nanvar(0, 1)),
        ("monthly nanmax", a.group_reduce(ReduceOp::NanMax, 0, &months, 12)),
        (
            "gaussian in strips",
            image.gaussian(&[2.0, 1.5], BoundaryMode::Constant(0.5)),
        ),
    ];
    // The variance's states come back to the host in pieces: at any scale (values scaled by a
    // power of two on the device, back on the host), within one ulp of the CPU's. So do the
    // sums' (scaled by 2^-64 where their f32 total overflowed: the mean of the series near
    // f32's largest was infinite).
    let series = spread_series();
    let spread = ndarray::ArrayD::from_shape_fn(IxDyn(&[6, 64, 64]), |i| series[i[2] % 8][i[0]]);
    let spread = Array::from_ndarray(spread, [6, 64, 64]);
    for op in [ReduceOp::NanVar { ddof: 1 }, ReduceOp::NanStd { ddof: 0 }] {
        let (gpu, cpu) = on_gpu_and_cpu(&spread.reduce(op, 0));
        within_an_ulp(&gpu, &cpu, &format!("{op:?} of the spread series in pieces"));
    }
    for op in [ReduceOp::Sum, ReduceOp::NanSum, ReduceOp::Mean, ReduceOp::NanMean] {
        let (gpu, cpu) = on_gpu_and_cpu(&spread.reduce(op, 0));
        assert_close(&gpu, &cpu, &format!("{op:?} of the spread series in pieces"));
    }
    for (what, e) in cases {
        let (gpu, cpu) = on_gpu_and_cpu(&e);
        if what.starts_with("gaussian") {
            // each tap rounds as the CPU's (an exact fma where it uses FMA): bit for bit
            assert_same_bits(&gpu, &cpu, what);
        } else {
            assert_close(&gpu, &cpu, what);
        }
    }
}
