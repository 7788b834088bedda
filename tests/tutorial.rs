//! The tutorial example, run in-process on a reduced embedded catalog (served over loopback
//! HTTP, searched through the STAC API) on the CPU and on the GPU backend, against the goldens
//! of scripts/make_tutorial_goldens.py: the same steps in stackstac + xarray + numpy + scipy
//! on the same COGs. Values within 1e-5, NaN where the goldens have NaN, the mask identical,
//! the same pixel-centre coordinates and months.

#[allow(dead_code)]
#[path = "../examples/tutorial.rs"]
mod tutorial;

mod common;

use std::path::{Path, PathBuf};

use clap::Parser;
use ndarray::ArrayD;
use ndarray_npy::read_npy;
use serde_json::Value;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tutorial")
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The example's flags for the goldens' parameters.
fn args(backend: &str, out: &Path) -> tutorial::Args {
    let p = json(&golden_dir().join("params.json"));
    let sigma: Vec<String> = p["sigma"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
    let flags = [
        ("--scenes", p["scenes"].to_string()),
        ("--size", p["size"].to_string()),
        ("--buffer", p["buffer"].to_string()),
        ("--sigma", sigma.join(",")),
        ("--threshold", p["threshold"].to_string()),
        ("--lon", p["lon"].to_string()),
        ("--lat", p["lat"].to_string()),
        ("--cloud-lt", p["cloud_lt"].to_string()),
        ("--backend", backend.to_string()),
        ("--out", out.display().to_string()),
    ];
    let mut argv = vec!["tutorial".to_string(), "--quiet".to_string()];
    for (k, v) in flags {
        argv.push(k.to_string());
        argv.push(v);
    }
    tutorial::Args::parse_from(argv)
}

fn check_values(name: &str, ours: &ArrayD<f32>) {
    let want: ArrayD<f32> = read_npy(golden_dir().join(format!("{name}.npy"))).unwrap();
    assert_eq!(ours.shape(), want.shape(), "{name}: shape");
    let mut worst = 0.0f32;
    for (i, (a, b)) in ours.iter().zip(want.iter()).enumerate() {
        assert_eq!(
            a.is_nan(),
            b.is_nan(),
            "{name}: NaN differs at flat index {i}: {a} vs {b}"
        );
        if !a.is_nan() {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst <= 1e-5, "{name}: max abs difference {worst}");
    let valid = want.iter().filter(|v| !v.is_nan()).count();
    assert!(
        valid > want.len() / 2,
        "{name}: the golden must be mostly valid to mean anything"
    );
}

fn run_and_check(backend: &str) {
    let out = std::env::temp_dir().join(format!("strata-tutorial-{backend}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let o = tutorial::run(&args(backend, &out))
        .unwrap()
        .expect("a run, not a catalog dump");
    assert!(o.report.backend.starts_with(backend), "ran on {}", o.report.backend);

    // In memory and on disk, the same values.
    for (name, a) in [
        ("monthly_rgb", &o.monthly_rgb),
        ("ndvi_mean", &o.ndvi_mean),
        ("lum_median", &o.lum_median),
        ("smoothed", &o.smoothed),
    ] {
        let v = a.values().unwrap();
        check_values(name, &v);
        let written: ArrayD<f32> = read_npy(out.join(format!("{name}.npy"))).unwrap();
        assert!(
            v.iter().zip(&written).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}.npy"
        );
    }
    let mask: ArrayD<u8> = read_npy(out.join("mask.npy")).unwrap();
    let want: ArrayD<u8> = read_npy(golden_dir().join("mask.npy")).unwrap();
    assert_eq!(mask, want, "mask");
    assert!(want.iter().any(|&m| m == 1) && want.iter().any(|&m| m == 0));

    // Coordinates: pixel centres and month starts, as the golden expresses them.
    let ours = json(&out.join("coords.json"));
    let gold = json(&golden_dir().join("coords.json"));
    assert_eq!(ours["epsg"], gold["epsg"]);
    assert_eq!(ours["pixel"], "centre");
    for axis in ["x", "y"] {
        let (a, b) = (ours[axis].as_array().unwrap(), gold[axis].as_array().unwrap());
        assert_eq!(a.len(), b.len(), "{axis}");
        for (p, q) in a.iter().zip(b) {
            assert!(
                (p.as_f64().unwrap() - q.as_f64().unwrap()).abs() < 1e-6,
                "{axis}: {p} vs {q}"
            );
        }
    }
    assert_eq!(ours["outputs"]["monthly_rgb"]["time"], gold["time"]);
    let t = &ours["transform"];
    assert_eq!(t[0].as_f64(), Some(30.0));
    assert_eq!(t[2].as_f64().unwrap(), gold["x"][0].as_f64().unwrap() - 15.0);
    assert_eq!(t[5].as_f64().unwrap(), gold["y"][0].as_f64().unwrap() + 15.0);
    for f in [
        "monthly_rgb.png",
        "ndvi_mean.png",
        "mask.png",
        "ndvi_mean.tif",
        "smoothed.tif",
        "mask.tif",
        "report.json",
    ] {
        assert!(out.join(f).metadata().unwrap().len() > 0, "{f}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn tutorial_on_the_cpu_matches_the_python_goldens() {
    run_and_check("cpu");
}

#[test]
fn tutorial_on_the_gpu_matches_the_python_goldens() {
    if common::gpu::device().is_none() {
        return;
    }
    run_and_check("gpu");
}

#[test]
fn bad_flags_are_errors_not_panics() {
    let out = std::env::temp_dir().join(format!("strata-tutorial-bad-{}", std::process::id()));
    let mut a = args("cpu", &out);
    a.backend = "tpu".into();
    let err = tutorial::run(&a).err().expect("an error").to_string();
    assert!(err.contains("--backend tpu"), "{err}");
    let mut a = args("cpu", &out);
    a.bbox = vec![1.0, 2.0];
    assert!(tutorial::run(&a)
        .err()
        .expect("an error")
        .to_string()
        .contains("--bbox"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn the_tutorial_into_zarr_reads_back_in_xarray_equal_to_the_npy() {
    // The same run twice: results in memory written as .npy, and streamed into one Zarr group.
    // zarr-python, xarray and rioxarray (scripts/check_zarr.sh, in a venv it makes from PyPI)
    // then read the group: values bitwise the .npy, dims, coordinates, times, CRS, transform.
    let base = std::env::temp_dir().join(format!("strata-tutorial-zarr-{}", std::process::id()));
    let (npy, zarr) = (base.join("npy"), base.join("store"));
    tutorial::run(&args("cpu", &npy)).unwrap();
    let mut zargs = args("cpu", &base.join("zarr-run"));
    zargs.zarr = Some(zarr.clone());
    assert!(
        tutorial::run(&zargs).unwrap().is_none(),
        "a Zarr run keeps nothing in memory"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_zarr.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&zarr)
        .arg(&npy)
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "scripts/check_zarr.sh failed:\n{text}");
    assert!(text.contains("ok: 5 variables"), "{text}");
    std::fs::remove_dir_all(&base).ok();
}
