//! CPU kernels on the workloads of `scripts/bench_baselines.py` (same data, same sizes):
//!
//! - `nanmedian_t64`: nanmedian over time of a NaN-holed f32 cube (64, 2048, 2048)
//! - `nanargmax_t64`: the step of each pixel's first maximum (NaN skipped) in the same cube
//! - `ffill_t64`: NaN filled forward along time in the same cube (bottleneck's `push`)
//! - `cumsum_t64`: the NaN-skipping running sum along time of the same cube (numpy's
//!   `nancumsum`, xarray's `cumsum`)
//! - `interpolate_na_t64`: NaN filled by linear interpolation along time at uneven dates, in a
//!   (64, 256, 256) cube (xarray's `interpolate_na` loops over pixels in Python)
//! - `rolling_mean_t64`, `rolling_median_t64`: the NaN-skipping mean and median of windows of
//!   5 steps along time ending at each step, any value enough, in a (64, 1024, 1024) cube
//!   (bottleneck's `move_mean`/`move_median` with `min_count=1`)
//! - `corr_t64`: the Pearson correlation over time of two NaN-holed cubes (64, 1024, 1024),
//!   pixel by pixel (xarray's `xr.corr(a, b, "time")`)
//! - `focal_mean_15`: the NaN-skipping mean of the centred 15 × 15 window around every pixel
//!   of a (4, 2048, 2048) cube, any value enough (xarray's
//!   `rolling(y=15, x=15, center=True, min_periods=1).mean()`)
//! - `coarsen_mean_16`, `coarsen_median_16`, `coarsen_median_4`: the NaN-skipping mean and
//!   median of 16 × 16 (and 4 × 4) pixel windows of a (8, 2048, 2048) cube, xarray's
//!   `coarsen(y=16, x=16).mean()`: a coarser raster for display or another grid
//! - `monthly_nanmedian`: the tutorial's monthly resample: nanmedian of each month's scenes
//!   of a NaN-holed cube (32, 2048, 2048) in scenes, 32 scenes over 12 months (2 or 3 each)
//! - `bandmath`: `(a-b)/(a+b)*c+0.5` on three 4096² f32 planes
//! - `gaussian_s2`: gaussian sigma 2 (reflect, truncate 4) of a 4096² f32 plane
//!
//! Run: `cargo bench --bench cpu_kernels`; `scripts/bench_compare.sh` runs it beside the
//! Python peers and prints the ratios. `STRATA_BENCH_QUICK=1` shrinks every size.

mod data;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ndarray::ArrayD;
use strata::{Array, BoundaryMode, ComputeOptions};

fn quick() -> bool {
    std::env::var_os("STRATA_BENCH_QUICK").is_some()
}

fn options() -> ComputeOptions {
    ComputeOptions {
        progress: strata::exec::Progress::Off,
        ..Default::default()
    }
}

fn nanmedian(c: &mut Criterion) {
    let (t, n) = if quick() { (64, 128) } else { (64, 2048) };
    let cube = Array::from_ndarray(data::cube(t, n, n), [t, n, n]);
    let expr = cube.nanmedian(0);
    let mut g = c.benchmark_group("nanmedian_t64");
    g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
    g.finish();
}

fn nanargmax(c: &mut Criterion) {
    let (t, n) = if quick() { (64, 128) } else { (64, 2048) };
    let cube = Array::from_ndarray(data::cube(t, n, n), [t, n, n]);
    let expr = cube.nanargmax(0);
    let mut g = c.benchmark_group("nanargmax_t64");
    g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
    g.finish();
}

fn gap_fills(c: &mut Criterion) {
    let (t, n) = if quick() { (64, 128) } else { (64, 2048) };
    let cube = Array::from_ndarray(data::cube(t, n, n), [t, n, n]);
    let expr = cube.ffill(0, None);
    let mut g = c.benchmark_group("ffill_t64");
    g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
    g.finish();
    let expr = cube.cumsum(0, true);
    let mut g = c.benchmark_group("cumsum_t64");
    g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
    g.finish();
    let (t, n) = if quick() { (64, 64) } else { (64, 256) };
    let cube = Array::from_ndarray(data::cube(t, n, n), [t, n, n]);
    let expr = cube.interpolate_na(0, &data::dates(t), None, None);
    let mut g = c.benchmark_group("interpolate_na_t64");
    g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
    g.finish();
}

fn rolling(c: &mut Criterion) {
    let (t, n) = if quick() { (64, 128) } else { (64, 1024) };
    let cube = strata::labelled::DataArray::new(
        Array::from_ndarray(data::cube(t, n, n), [t, n, n]),
        &["time", "y", "x"],
        vec![],
    )
    .unwrap();
    // windows of 5 scenes ending at each, any value enough (bottleneck's min_count=1)
    let windows = cube.rolling(&[("time", 5)]).unwrap().min_periods(1).unwrap();
    for (name, expr) in [
        ("rolling_mean_t64", windows.mean()),
        ("rolling_median_t64", windows.median()),
    ] {
        let mut g = c.benchmark_group(name);
        g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
        g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
        g.finish();
    }
    // two series per pixel: the cube and the cube reversed in time
    let labelled = |a: ArrayD<f32>| {
        strata::labelled::DataArray::new(Array::from_ndarray(a, [t, n, n]), &["time", "y", "x"], vec![]).unwrap()
    };
    let a = data::cube(t, n, n);
    let mut b = a.clone();
    b.invert_axis(ndarray::Axis(0));
    let expr = labelled(a)
        .corr(&labelled(b.as_standard_layout().into_owned()), Some(&["time"]))
        .unwrap();
    let mut g = c.benchmark_group("corr_t64");
    g.sample_size(10)
        .throughput(Throughput::Elements((2 * t * n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
    g.finish();
    let (t, n) = if quick() { (4, 256) } else { (4, 2048) };
    let cube = strata::labelled::DataArray::new(
        Array::from_ndarray(data::cube(t, n, n), [t, n, n]),
        &["time", "y", "x"],
        vec![],
    )
    .unwrap();
    let focal = cube
        .rolling(&[("y", 15), ("x", 15)])
        .unwrap()
        .center(true)
        .min_periods(1)
        .unwrap()
        .mean();
    let mut g = c.benchmark_group("focal_mean_15");
    g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| focal.compute_with(&options()).unwrap()));
    g.finish();
}

fn coarsen(c: &mut Criterion) {
    let (t, n) = if quick() { (8, 256) } else { (8, 2048) };
    let cube = strata::labelled::DataArray::new(
        Array::from_ndarray(data::cube(t, n, n), [t, n, n]),
        &["time", "y", "x"],
        vec![],
    )
    .unwrap();
    let windows = |k| {
        cube.coarsen(&[("y", k), ("x", k)], strata::labelled::Boundary::Exact)
            .unwrap()
    };
    for (name, expr) in [
        ("coarsen_mean_16", windows(16).mean()),
        ("coarsen_median_16", windows(16).median()),
        ("coarsen_median_4", windows(4).median()),
    ] {
        let mut g = c.benchmark_group(name);
        g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
        g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
        g.finish();
    }
}

fn monthly_nanmedian(c: &mut Criterion) {
    let (t, n) = if quick() { (32, 128) } else { (32, 2048) };
    let cube = Array::from_ndarray(data::cube(t, n, n), [1, n, n]);
    let labels: Vec<usize> = (0..t).map(|i| i * 12 / t).collect();
    let expr = cube.group_reduce(strata::ReduceOp::NanMedian, 0, &labels, 12);
    let mut g = c.benchmark_group("monthly_nanmedian");
    g.sample_size(10).throughput(Throughput::Elements((t * n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
    g.finish();
}

fn bandmath(c: &mut Criterion) {
    let n = if quick() { 1024 } else { 4096 };
    let planes: Vec<Array> = (0..3)
        .map(|k| Array::from_ndarray(data::plane(k, n, n), strata::Chunks::auto()))
        .collect();
    let (a, b, cc) = (&planes[0], &planes[1], &planes[2]);
    let expr = (a - b) / (a + b) * cc + 0.5;
    let mut g = c.benchmark_group("bandmath");
    g.sample_size(20).throughput(Throughput::Elements((n * n) as u64));
    g.bench_function("strata_cpu", |bch| bch.iter(|| expr.compute_with(&options()).unwrap()));
    // into a reused result, as numexpr's `out=`: the kernel without the result's page faults
    let mut out = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[n, n]));
    g.bench_function("strata_cpu_into", |bch| {
        bch.iter(|| expr.compute_into(out.view_mut(), &options()).unwrap())
    });
    // the same on square blocks of n/2 (dask's auto shape) instead of auto's whole rows: what
    // contiguous blocks buy
    let square: Vec<Array> = (0..3)
        .map(|k| Array::from_ndarray(data::plane(k, n, n), [n / 2, n / 2]))
        .collect();
    let square_expr = (&square[0] - &square[1]) / (&square[0] + &square[1]) * &square[2] + 0.5;
    g.bench_function("strata_cpu_into_square_blocks", |bch| {
        bch.iter(|| square_expr.compute_into(out.view_mut(), &options()).unwrap())
    });
    // 512² blocks, a COG's tiles, into a fresh result as numpy makes one (issue 17: at least
    // 1.5x numpy, scripts/bench_baselines.sh in the same sitting)
    let tiles: Vec<Array> = (0..3)
        .map(|k| Array::from_ndarray(data::plane(k, n, n), [512, 512]))
        .collect();
    let tiles_expr = (&tiles[0] - &tiles[1]) / (&tiles[0] + &tiles[1]) * &tiles[2] + 0.5;
    g.bench_function("strata_cpu_512_blocks", |bch| {
        bch.iter(|| tiles_expr.compute_with(&options()).unwrap())
    });
    g.bench_function("strata_cpu_into_512_blocks", |bch| {
        bch.iter(|| tiles_expr.compute_into(out.view_mut(), &options()).unwrap())
    });
    g.finish();
}

fn gaussian(c: &mut Criterion) {
    let n = if quick() { 1024 } else { 4096 };
    let a = Array::from_ndarray(data::plane(0, n, n), strata::Chunks::auto());
    let expr = a.gaussian(&[2.0], BoundaryMode::Reflect);
    let mut out = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[n, n]));
    let mut g = c.benchmark_group("gaussian_s2");
    g.sample_size(10).throughput(Throughput::Elements((n * n) as u64));
    g.bench_function("strata_cpu", |b| b.iter(|| expr.compute_with(&options()).unwrap()));
    g.bench_function("strata_cpu_into", |b| {
        b.iter(|| expr.compute_into(out.view_mut(), &options()).unwrap())
    });
    // 512² blocks, a COG's tiles, into a fresh result (issue 17: at least OpenCV's speed)
    let tiles = Array::from_ndarray(data::plane(0, n, n), [512, 512]).gaussian(&[2.0], BoundaryMode::Reflect);
    g.bench_function("strata_cpu_512_blocks", |b| {
        b.iter(|| tiles.compute_with(&options()).unwrap())
    });
    g.finish();
}

criterion_group!(
    benches,
    nanmedian,
    nanargmax,
    gap_fills,
    rolling,
    coarsen,
    monthly_nanmedian,
    bandmath,
    gaussian
);
criterion_main!(benches);
