//! Calendar operations on labelled arrays against xarray's answers (`tests/data/labelled`,
//! made by `scripts/make_label_goldens.py`): resample at every frequency strata knows, groupby
//! month and season, with every NaN-skipping reduction xarray offers on them; rolling windows
//! (trailing and centred, with min_periods, over time and over y and x) with every reduction;
//! the first and last values of bins and groups; std and var over time; the ufuncs sqrt, exp, log and abs;
//! stackstac's mosaic; coarsen windows; diff and shift; cumsum and cumprod; xr.cov and xr.corr;
//! polyfit of degree 0 and 1 (held within 1e-5 of each coefficient: f32 products); linear
//! interp onto new times and positions;
//! quantiles over time, per month and per season. Each runs on the CPU and on the GPU (lavapipe in CI), at
//! two chunkings, and must match within 1e-6 with NaN where xarray has NaN.

mod common;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use ndarray::ArrayD;
use serde_json::Value;
use strata::labelled::{Boundary, Coarsen, Coord, CoordValues, DataArray, LabelError, Rolling};
use strata::{Array, Backend, ComputeOptions, ReduceOp};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/labelled")
}

fn cases() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("cases.json")).unwrap()).unwrap()
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn cube(chunks: [usize; 3]) -> DataArray {
    let values: ArrayD<f32> = ndarray_npy::read_npy(dir().join("cube.npy")).unwrap();
    let times: Vec<DateTime<Utc>> = cases()["time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| time(t.as_str().unwrap()))
        .collect();
    DataArray::new(
        Array::from_ndarray(values, chunks),
        &["time", "y", "x"],
        vec![Coord::index("time", CoordValues::Time(times))],
    )
    .unwrap()
}

/// The NaN-skipping reduction xarray's method `name` stands for on groups and bins (its
/// default `ddof` 0 for `std` and `var`).
fn group_op(name: &str) -> Option<ReduceOp> {
    Some(match name {
        "mean" => ReduceOp::NanMean,
        "median" => ReduceOp::NanMedian,
        "sum" => ReduceOp::NanSum,
        "min" => ReduceOp::NanMin,
        "max" => ReduceOp::NanMax,
        "count" => ReduceOp::Count,
        "std" => ReduceOp::NanStd { ddof: 0 },
        "var" => ReduceOp::NanVar { ddof: 0 },
        _ => return None,
    })
}

/// Every case of `cases.json`: its name, and the array strata builds for it.
fn build(name: &str, da: &DataArray) -> DataArray {
    let parts: Vec<&str> = name.split('_').collect();
    match parts[..] {
        ["resample", freq, op] if group_op(op).is_some() => {
            da.resample("time", freq).unwrap().reduce(group_op(op).unwrap())
        }
        ["groupby", dim, op] if group_op(op).is_some() => da
            .groupby(&format!("time.{dim}"))
            .unwrap()
            .reduce(group_op(op).unwrap()),
        ["resample", freq, "first"] => da.resample("time", freq).unwrap().first(),
        ["resample", freq, "last"] => da.resample("time", freq).unwrap().last(),
        ["groupby", dim, "first"] => da.groupby(&format!("time.{dim}")).unwrap().first(),
        ["groupby", dim, "last"] => da.groupby(&format!("time.{dim}")).unwrap().last(),
        ["rolling", spec, op] => {
            let windows = rolling(da, spec);
            match op {
                "mean" => windows.mean(),
                "sum" => windows.sum(),
                "min" => windows.min(),
                "max" => windows.max(),
                "count" => windows.count(),
                "median" => windows.median(),
                "prod" => windows.prod(),
                "std" => windows.std(0),
                "var" => windows.var(0),
                "std1" => windows.std(1),
                "var1" => windows.var(1),
                _ => panic!("no rolling {op}"),
            }
        }
        ["std", ddof] => da.std("time", ddof[4..].parse().unwrap()).unwrap(),
        ["var", ddof] => da.var("time", ddof[4..].parse().unwrap()).unwrap(),
        ["coarsen", spec, op] => {
            let c = coarsen(da, spec);
            match op {
                "mean" => c.mean(),
                "sum" => c.sum(),
                "min" => c.min(),
                "max" => c.max(),
                "count" => c.count(),
                "median" => c.median(),
                "std" => c.std(0),
                "var" => c.var(0),
                _ => panic!("no coarsen {op}"),
            }
        }
        ["cov", dims, ddof] => da
            .cov(&second_cube(da), Some(&spelled_dims(dims)), ddof[4..].parse().unwrap())
            .unwrap(),
        ["interp", "time"] => {
            let at = cases()["interp_time"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| time(t.as_str().unwrap()))
                .collect();
            da.interp("time", &CoordValues::Time(at)).unwrap()
        }
        ["interp", "x"] => da
            .interp("x", &CoordValues::F64(vec![0.0, 0.25, 1.5, 2.999, 3.0, 3.5, -0.5]))
            .unwrap(),
        ["polyfit", dim, deg] => da.polyfit(dim, deg[3..].parse().unwrap()).unwrap(),
        ["corr", dims] => da.corr(&second_cube(da), Some(&spelled_dims(dims))).unwrap(),
        ["diff", n] => da.diff("time", n.parse().unwrap()).unwrap(),
        ["cumsum", dim] => da.cumsum(dim, true).unwrap(),
        ["cumprod", dim] => da.cumprod(dim, true).unwrap(),
        ["cumsum", dim, "keepnan"] => da.cumsum(dim, false).unwrap(),
        ["cumprod", dim, "keepnan"] => da.cumprod(dim, false).unwrap(),
        ["shift", by] => da.shift("time", by.replace('m', "-").parse().unwrap()).unwrap(),
        ["mosaic"] => da.mosaic("time", false).unwrap(),
        ["mosaic", "reverse"] => da.mosaic("time", true).unwrap(),
        ["ufunc", "sqrt"] => da.sqrt(),
        ["ufunc", "exp"] => da.exp(),
        ["ufunc", "log"] => da.log(),
        ["ufunc", "abs"] => da.abs(),
        ["quantile", q] => da.quantile(q[1..].parse().unwrap(), "time").unwrap(),
        ["resample", freq, q] => da
            .resample("time", freq)
            .unwrap()
            .quantile(q[1..].parse().unwrap())
            .unwrap(),
        ["groupby", dim, q] => da
            .groupby(&format!("time.{dim}"))
            .unwrap()
            .quantile(q[1..].parse().unwrap())
            .unwrap(),
        _ => panic!("no builder for case {name}"),
    }
}

/// `time` as `["time"]`, `yx` as `["y", "x"]`.
fn spelled_dims(spec: &str) -> Vec<&'static str> {
    match spec {
        "time" => vec!["time"],
        "yx" => vec!["y", "x"],
        _ => panic!("no dims {spec}"),
    }
}

/// The second cube of the covariance cases, labelled and chunked as `da`.
fn second_cube(da: &DataArray) -> DataArray {
    let values: ArrayD<f32> = ndarray_npy::read_npy(dir().join("cube_b.npy")).unwrap();
    let chunks: Vec<usize> = da.chunks().iter().map(|c| c[0]).collect();
    let coords = vec![da.coord("time").unwrap().clone()];
    DataArray::new(Array::from_ndarray(values, chunks), &["time", "y", "x"], coords).unwrap()
}

/// The moving windows a case's name spells: `3` (3 steps of time, trailing), `4c` (centred),
/// `3m1` (min_periods 1), `y3x2cm1` (3 along y and 2 along x, centred, min_periods 1).
fn rolling(da: &DataArray, spec: &str) -> Rolling {
    let (spec, min_periods) = match spec.split_once('m') {
        Some((s, m)) => (s, Some(m.parse::<usize>().unwrap())),
        None => (spec, None),
    };
    let (spec, center) = match spec.strip_suffix('c') {
        Some(s) => (s, true),
        None => (spec, false),
    };
    let windows = dims_and_sizes(if spec.starts_with(|c: char| c.is_ascii_digit()) {
        format!("time{spec}")
    } else {
        spec.to_string()
    });
    let pairs: Vec<(&str, usize)> = windows.iter().map(|(d, k)| (d.as_str(), *k)).collect();
    let r = da.rolling(&pairs).unwrap().center(center);
    match min_periods {
        Some(m) => r.min_periods(m).unwrap(),
        None => r,
    }
}

/// `y3x2` as `[("y", 3), ("x", 2)]`.
fn dims_and_sizes(spec: String) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut rest = spec.as_str();
    while !rest.is_empty() {
        let name_len = rest.find(|c: char| c.is_ascii_digit()).unwrap();
        let digits = rest[name_len..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(rest.len(), |d| d + name_len);
        out.push((rest[..name_len].to_string(), rest[name_len..digits].parse().unwrap()));
        rest = &rest[digits..];
    }
    out
}

/// The windows a case's name spells (`y3x2`: 3 along y, 2 along x; `time5trim`: 5 along
/// time, the rest trimmed).
fn coarsen(da: &DataArray, spec: &str) -> Coarsen {
    let (spec, boundary) = match spec.strip_suffix("trim") {
        Some(s) => (s, Boundary::Trim),
        None => (spec, Boundary::Exact),
    };
    let windows = dims_and_sizes(spec.to_string());
    let windows: Vec<(&str, usize)> = windows.iter().map(|(d, k)| (d.as_str(), *k)).collect();
    da.coarsen(&windows, boundary).unwrap()
}

fn labels_of(da: &DataArray, dim: &str) -> Vec<Value> {
    match &da.coord(dim).unwrap_or_else(|| panic!("no {dim} coordinate")).values {
        CoordValues::Time(t) => t
            .iter()
            .map(|t| Value::from(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()))
            .collect(),
        CoordValues::F64(v) => v.iter().map(|&v| Value::from(v as i64)).collect(),
        CoordValues::Str(v) => v.iter().map(|v| Value::from(v.as_str())).collect(),
    }
}

#[test]
fn calendar_operations_match_xarray_on_cpu_and_gpu() {
    let gpu = common::gpu::device();
    let all = cases();
    let cases = all["cases"].as_object().unwrap();
    assert!(cases.len() >= 226, "{} cases", cases.len());
    for chunks in [[24, 3, 4], [5, 2, 3]] {
        let da = cube(chunks);
        for (name, case) in cases {
            let want: ArrayD<f32> = ndarray_npy::read_npy(dir().join(format!("{name}.npy"))).unwrap();
            let out = build(name, &da);
            let dim = case["dim"].as_str().unwrap();
            assert_eq!(out.dims()[0], dim, "{name}");
            if let Some(labels) = case["labels"].as_array() {
                assert_eq!(&labels_of(&out, dim), labels, "{name} labels");
            }
            let mut backends = vec![Backend::Cpu];
            if gpu.is_some() {
                backends.push(Backend::Gpu);
            }
            for backend in backends {
                let options = ComputeOptions {
                    backend,
                    progress: strata::exec::Progress::Off,
                    ..Default::default()
                };
                let (got, report) = out.compute_with(&options).unwrap();
                if backend == Backend::Gpu && name.starts_with("quantile") {
                    // the quantile ran as a device kernel, not on the host beside it
                    assert!(
                        report.tasks.iter().any(|t| t.device && t.kind == "nanquantile"),
                        "{name}: {:?}",
                        report.tasks.iter().map(|t| (t.kind, t.device)).collect::<Vec<_>>()
                    );
                }
                let got = got.values().unwrap();
                let what = format!("{name} on {backend:?}, chunks {chunks:?}");
                assert_eq!(got.shape(), want.shape(), "{what}");
                // A slope per nanosecond is about 1e-17, and one near 0 carries the rounding of
                // its terms: each polyfit coefficient is held within 1e-5 of the largest of its
                // degree; everything else within 1e-6 relative (absolute below 1).
                let polyfit = name.starts_with("polyfit");
                let bound = |i: &ndarray::IxDyn, w: f32| -> f32 {
                    if polyfit {
                        let plane = want.index_axis(ndarray::Axis(0), i[0]);
                        1e-5 * plane.iter().filter(|v| !v.is_nan()).fold(0f32, |m, v| m.max(v.abs()))
                    } else {
                        1e-6 * w.abs().max(1.0)
                    }
                };
                for ((i, g), w) in got.indexed_iter().zip(want.iter()) {
                    assert!(
                        g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= bound(&i, *w),
                        "{what} at {i:?}: {g} against xarray's {w}"
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_frequencies_and_keys_are_named() {
    let da = cube([24, 3, 4]);
    for freq in ["2W", "M", "0MS", "H", ""] {
        assert!(
            matches!(da.resample("time", freq), Err(LabelError::Frequency { freq: f }) if f == freq),
            "{freq}"
        );
    }
    assert!(matches!(da.groupby("time.hour"), Err(LabelError::GroupKey { .. })));
    assert!(matches!(da.groupby("band.month"), Err(LabelError::NoDim { .. })));
    assert!(matches!(da.rolling(&[("time", 0)]), Err(LabelError::Rolling { .. })));
    assert!(matches!(
        da.rolling(&[("x", 2), ("x", 3)]),
        Err(LabelError::Rolling { .. })
    ));
    assert!(matches!(da.rolling(&[("band", 2)]), Err(LabelError::NoDim { .. })));
    // over several dims, a window is one shift of the array per step: 1024 at most
    assert!(da.rolling(&[("y", 32), ("x", 32)]).is_ok());
    assert!(matches!(
        da.rolling(&[("y", 33), ("x", 32)]),
        Err(LabelError::Rolling { window: 1056, .. })
    ));
    assert!(da.rolling(&[("time", 5000)]).is_ok(), "one dim: no shifts, any window");
    let pair = da.rolling(&[("y", 2), ("x", 3)]).unwrap();
    assert!(matches!(pair.clone().min_periods(0), Err(LabelError::Rolling { .. })));
    assert!(matches!(pair.clone().min_periods(7), Err(LabelError::Rolling { .. })));
    assert!(pair.clone().min_periods(6).is_ok());
    assert!(matches!(pair.center_dim("time", true), Err(LabelError::Rolling { .. })));
    // A window longer than the dim: all NaN, labels kept.
    let long = da.rolling(&[("time", 30)]).unwrap().mean().values().unwrap();
    assert_eq!(long.shape(), [24, 3, 4]);
    assert!(long.iter().all(|v| v.is_nan()));
}

#[test]
fn alignment_matches_xarray_on_cpu_and_gpu() {
    use strata::labelled::Join;
    let gpu = common::gpu::device();
    let meta: Value = serde_json::from_slice(&std::fs::read(dir().join("align.json")).unwrap()).unwrap();
    let f64s = |v: &Value| -> Vec<f64> { v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
    let load = |name: &str| -> DataArray {
        let values: ArrayD<f32> = ndarray_npy::read_npy(dir().join(format!("align_{name}.npy"))).unwrap();
        DataArray::new(
            Array::from_ndarray(values, [2, 3]),
            &["y", "x"],
            vec![
                Coord::index("y", CoordValues::F64(f64s(&meta[name]["y"]))),
                Coord::index("x", CoordValues::F64(f64s(&meta[name]["x"]))),
            ],
        )
        .unwrap()
    };
    let (a, b) = (load("a"), load("b"));
    // arithmetic takes xarray's default join (inner); `align` takes any
    let mut results = vec![("sub_default".to_string(), &a - &b)];
    for (join, name) in [(Join::Inner, "inner"), (Join::Outer, "outer"), (Join::Left, "left")] {
        let (l, r) = a.align(&b, join).unwrap();
        results.push((format!("{name}_a"), l));
        results.push((format!("{name}_b"), r));
    }
    let mut backends = vec![Backend::Cpu];
    if gpu.is_some() {
        backends.push(Backend::Gpu);
    }
    for (name, got) in &results {
        assert_eq!(got.ys().unwrap(), f64s(&meta[name.as_str()]["y"]), "{name} y");
        assert_eq!(got.xs().unwrap(), f64s(&meta[name.as_str()]["x"]), "{name} x");
        let want: ArrayD<f32> = ndarray_npy::read_npy(dir().join(format!("align_{name}.npy"))).unwrap();
        for &backend in &backends {
            let options = ComputeOptions {
                backend,
                progress: strata::exec::Progress::Off,
                ..Default::default()
            };
            let values = got.compute_with(&options).unwrap().0.values().unwrap();
            assert_eq!(values.shape(), want.shape(), "{name}");
            for ((i, g), w) in values.indexed_iter().zip(want.iter()) {
                assert!(
                    (g.is_nan() && w.is_nan()) || g == w,
                    "{name} on {backend:?} at {i:?}: {g} vs {w}"
                );
            }
        }
    }
}

#[test]
fn empty_bins_read_nothing_and_are_filled_after_everything_else() {
    // Daily bins of 24 scenes over 15 months: most days have no scene. Their blocks are
    // fills of NaN (nothing read, nothing reduced), started only once every other task has
    // ended, so they take memory when the run's working blocks are gone.
    let da = cube([24, 3, 4]);
    let daily = da.resample("time", "D").unwrap().median();
    let options = ComputeOptions {
        progress: strata::exec::Progress::Off,
        ..Default::default()
    };
    let (got, report) = daily.compute_with(&options).unwrap();
    let fills: Vec<_> = report.tasks.iter().filter(|t| t.kind == "fill").collect();
    let others: Vec<_> = report.tasks.iter().filter(|t| t.kind != "fill").collect();
    let days = got.shape()[0];
    let with_scenes = 23; // two scenes share 2020-05-12
    assert_eq!(days, 449, "2020-01-05 to 2021-03-28, both counted");
    // the fills cover the empty days, every pixel of them
    let plane_bytes = (got.shape()[1] * got.shape()[2] * 4) as u64;
    let filled: u64 = fills.iter().map(|t| t.bytes_out).sum();
    assert_eq!(filled, (days - with_scenes) as u64 * plane_bytes);
    let last_other = others.iter().map(|t| t.end_us).max().unwrap();
    assert!(
        fills.iter().all(|f| f.start_us >= last_other),
        "a fill started before the last other task ended"
    );
    // and the empty days are NaN, the others not all NaN
    let values = got.values().unwrap();
    let labels = da.resample("time", "D").unwrap().labels().to_vec();
    for day in 0..days {
        let step = values.index_axis(ndarray::Axis(0), day);
        assert_eq!(step.iter().all(|v| v.is_nan()), !labels.contains(&day), "day {day}");
    }
}
