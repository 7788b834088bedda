//! Zarr v3 output through the public API, read back with zarrs itself: values bitwise as
//! computed whatever the blocks and shards, masks as uint8, and a failed write that leaves the
//! array that was there.

use std::path::PathBuf;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use strata::output::zarr::{scratch_dir, ZarrOptions};
use strata::{Array, Chunks};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-zarr-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read_f32(root: &std::path::Path, path: &str) -> (Vec<u64>, Vec<f32>) {
    let store = Arc::new(zarrs::filesystem::FilesystemStore::new(root).unwrap());
    let array = zarrs::array::Array::open(store, path).unwrap();
    let values: Vec<f32> = array.retrieve_array_subset(&array.subset_all()).unwrap();
    (array.shape().to_vec(), values)
}

/// Values with NaNs and signed zeros, so fill values and bit patterns are both checked.
fn data(shape: &[usize]) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(shape), |ix| {
        let i = (0..shape.len()).fold(0usize, |a, k| a * 131 + ix[k]);
        match i % 11 {
            0 => f32::NAN,
            1 => -0.0,
            k => (i as f32 * 0.37).sin() * k as f32,
        }
    })
}

#[test]
fn shards_hold_the_computed_values_whatever_the_blocks() {
    let root = scratch("values");
    // Irregular blocks (7, 5) against shards of (8, 12) in chunks of (4, 6): blocks straddle
    // shards and chunks; the last shard row and column overhang the array.
    let x = Array::from_ndarray(
        data(&[19, 23]),
        Chunks::PerAxis(vec![vec![7, 7, 5], vec![5, 5, 5, 5, 3]]),
    );
    let e = (&x * 2.0) - 1.0;
    let expected = e.compute().unwrap();
    let options = ZarrOptions {
        chunk_shape: Some(vec![4, 6]),
        shard_shape: Some(vec![8, 12]),
        ..Default::default()
    };
    let written = e.to_zarr(&root, "/result", &options).unwrap();
    assert_eq!(written.shards, 3 * 2);
    let (shape, values) = read_f32(&root, "/result");
    assert_eq!(shape, vec![19, 23]);
    for (i, (g, w)) in values.iter().zip(expected.iter()).enumerate() {
        assert!(
            g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
            "at {i}: {g} vs {w}"
        );
    }
    // metadata says what xarray and zarr-python need: sharding, zstd, NaN fill
    let meta = std::fs::read_to_string(root.join("result/zarr.json")).unwrap();
    for needle in ["sharding_indexed", "zstd", "\"fill_value\": \"NaN\"", "float32"] {
        assert!(meta.contains(needle), "{needle} not in {meta}");
    }
    assert!(root.join("zarr.json").exists(), "the root is a group");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn masks_are_uint8() {
    let root = scratch("mask");
    let x = Array::from_ndarray(data(&[10, 9]), [4, 4]);
    let mask = x.gt(0.5);
    let expected = mask.compute().unwrap();
    mask.to_zarr(&root, "mask", &ZarrOptions::default()).unwrap();
    let store = Arc::new(zarrs::filesystem::FilesystemStore::new(&root).unwrap());
    let array = zarrs::array::Array::open(store, "/mask").unwrap();
    let values: Vec<u8> = array.retrieve_array_subset(&array.subset_all()).unwrap();
    assert_eq!(values, expected.iter().map(|&v| v as u8).collect::<Vec<_>>());
    let meta = std::fs::read_to_string(root.join("mask/zarr.json")).unwrap();
    assert!(meta.contains("uint8"), "{meta}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn a_failed_write_leaves_the_old_array_and_nothing_half_written() {
    let root = scratch("atomic");
    let old = Array::from_ndarray(data(&[12, 12]), [4, 4]);
    old.to_zarr(&root, "/a", &ZarrOptions::default()).unwrap();
    let (_, before) = read_f32(&root, "/a");
    // A user function that fails on one block: the run fails after other blocks were written.
    let failing = old.map_blocks("fails on one block", |b| {
        if b.iter().any(|v| *v == data(&[12, 12])[[9, 8]]) {
            panic!("this block cannot be computed");
        }
        b.to_owned()
    });
    let err = failing.to_zarr(&root, "/a", &ZarrOptions::default()).unwrap_err();
    match &err {
        strata::Error::Exec(strata::ExecError::Task {
            source: strata::backend::BackendError::MapPanicked { name, message },
            ..
        }) => assert_eq!(
            (name.as_str(), message.as_str()),
            ("fails on one block", "this block cannot be computed")
        ),
        other => panic!("{other:?}"),
    }
    let (_, after) = read_f32(&root, "/a");
    assert!(before.iter().zip(&after).all(|(a, b)| a.to_bits() == b.to_bits()));
    // nothing but the array and the root group, and an empty scratch folder beside them
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["a".to_string(), "zarr.json".into()]);
    assert_eq!(
        std::fs::read_dir(scratch_dir(&root.canonicalize().unwrap()))
            .unwrap()
            .count(),
        0
    );
    std::fs::remove_dir_all(&root).ok();
}
