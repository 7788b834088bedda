//! Every GDAL-written fixture in tests/data/cog reads back exactly the pixels GDAL reads, with
//! GDAL's georeferencing (fixtures and goldens: scripts/make_cog_fixtures.sh).

use std::path::PathBuf;

use ndarray::{s, Array3, ArrayD, Ix3};
use serde_json::Value;
use strata::io::{CogReader, IoError, ObjectStore, StoreOptions, TileWindow};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cog")
}

fn manifest() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(dir().join("manifest.json")).expect("manifest");
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// The golden pixels as f64 (exact for every dtype the fixtures use).
fn golden(name: &str, dtype: &str) -> Array3<f64> {
    let path = dir().join(format!("{name}.npy"));
    fn read<T: ndarray_npy::ReadableElement + Copy>(p: &PathBuf, f: impl Fn(T) -> f64) -> ArrayD<f64> {
        ndarray_npy::read_npy::<_, ArrayD<T>>(p).unwrap().mapv(f)
    }
    let a = match dtype {
        "uint8" => read::<u8>(&path, f64::from),
        "uint16" => read::<u16>(&path, f64::from),
        "int16" => read::<i16>(&path, f64::from),
        "uint32" => read::<u32>(&path, f64::from),
        "int32" => read::<i32>(&path, f64::from),
        "float32" => read::<f32>(&path, f64::from),
        "float64" => read::<f64>(&path, |v| v),
        other => panic!("{name}: dtype {other}"),
    };
    a.into_dimensionality::<Ix3>().unwrap()
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn reader() -> CogReader {
    CogReader::new(ObjectStore::new(StoreOptions::default()).unwrap())
}

#[test]
fn every_fixture_reads_as_gdal_reads_it() {
    let reader = reader();
    let manifest = manifest();
    assert!(manifest.len() >= 90, "fixtures missing: {}", manifest.len());
    let mut failures = Vec::new();
    for (name, m) in &manifest {
        let href = dir().join(format!("{name}.tif")).display().to_string();
        let expected = golden(name, m["dtype"].as_str().unwrap());
        let (bands, h, w) = expected.dim();
        let file = reader.open_blocking(&href).unwrap_or_else(|e| panic!("{name}: {e}"));
        let header = file.header();
        let level = &header.levels[0];
        assert_eq!(
            (level.bands, level.height as usize, level.width as usize),
            (bands, h, w),
            "{name}"
        );
        assert_eq!(level.tiled, m["tiled"].as_bool().unwrap(), "{name}");
        let block = m["block"].as_array().unwrap();
        assert_eq!(
            level.chunk_height as u64,
            block[0].as_u64().unwrap(),
            "{name} block rows"
        );
        assert_eq!(
            level.chunk_width as u64,
            block[1].as_u64().unwrap(),
            "{name} block cols"
        );
        assert_eq!(
            header.levels.len() - 1,
            m["overviews"].as_array().unwrap().len(),
            "{name} overviews"
        );
        let geo = header
            .geo
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no georeferencing"));
        let gt: Vec<f64> = m["geotransform"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(geo.transform.to_gdal().to_vec(), gt, "{name} transform");
        assert_eq!(geo.epsg.map(u64::from), m["epsg"].as_u64(), "{name} epsg");
        match &m["nodata"] {
            Value::Null => assert_eq!(header.nodata, None, "{name} nodata"),
            Value::String(s) if s == "nan" => assert!(header.nodata.unwrap().is_nan(), "{name} nodata"),
            v => assert_eq!(header.nodata, v.as_f64(), "{name} nodata"),
        }

        let all = TileWindow {
            level: 0,
            bands: (0..bands).collect(),
            rows: 0..h as u32,
            cols: 0..w as u32,
        };
        let got = match reader.read_window(&href, &all) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for ((i, a), b) in got.indexed_iter().zip(expected.iter()) {
            assert!(same(*a, *b), "{name} at {i:?}: read {a}, GDAL read {b}");
        }
        // A window crossing tile borders, bands reversed.
        let part = TileWindow {
            level: 0,
            bands: (0..bands).rev().collect(),
            rows: 13..41,
            cols: 29..67,
        };
        let got = reader
            .read_window(&href, &part)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = expected.slice(s![..;-1, 13..41, 29..67]);
        for ((i, a), b) in got.indexed_iter().zip(want.iter()) {
            assert!(same(*a, *b), "{name} window at {i:?}: read {a}, GDAL read {b}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixtures fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn overviews_are_listed_with_their_sizes() {
    let reader = reader();
    let href = dir().join("cog_uint16_deflate_overviews.tif").display().to_string();
    let file = reader.open_blocking(&href).unwrap();
    let sizes: Vec<(u32, u32)> = file.header().levels.iter().map(|l| (l.height, l.width)).collect();
    // GDAL halves (rounding down) per level: 50x70 → 25x35 → 12x17.
    assert_eq!(sizes, vec![(50, 70), (25, 35), (12, 17)]);
    let ovr = TileWindow {
        level: 2,
        bands: vec![0],
        rows: 0..12,
        cols: 0..17,
    };
    assert_eq!(reader.read_window(&href, &ovr).unwrap().dim(), (1, 12, 17));
}

#[test]
fn windows_outside_the_image_are_errors() {
    let reader = reader();
    let href = dir().join("tiled_uint16_deflate_p2.tif").display().to_string();
    let bad = [
        TileWindow {
            level: 0,
            bands: vec![0],
            rows: 0..51,
            cols: 0..10,
        },
        TileWindow {
            level: 0,
            bands: vec![1],
            rows: 0..5,
            cols: 0..10,
        },
        TileWindow {
            level: 1,
            bands: vec![0],
            rows: 0..5,
            cols: 0..10,
        },
    ];
    for w in bad {
        match reader.read_window(&href, &w) {
            Err(IoError::Window { url, .. }) => assert!(url.ends_with("tiled_uint16_deflate_p2.tif")),
            other => panic!("{w:?}: {other:?}"),
        }
    }
}
