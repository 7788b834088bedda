//! Helpers shared by the behaviour tests: golden files and comparisons.
#![allow(dead_code)]

pub mod gpu;

use ndarray::ArrayD;

/// Reads `tests/data/golden/{name}.npy` as f32 (masks and labels are converted).
pub fn golden(name: &str) -> ArrayD<f32> {
    let path = format!("{}/tests/data/golden/{name}.npy", env!("CARGO_MANIFEST_DIR"));
    if let Ok(a) = ndarray_npy::read_npy::<_, ArrayD<f32>>(&path) {
        return a;
    }
    if let Ok(a) = ndarray_npy::read_npy::<_, ArrayD<u8>>(&path) {
        return a.mapv(f32::from);
    }
    let a: ArrayD<i64> = ndarray_npy::read_npy(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    a.mapv(|v| v as f32)
}

/// Shapes must match; a 0-d result matches a golden numpy scalar saved as shape `(1,)`.
fn same_shape(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    let scalar = actual.ndim() == 0 && expected.len() == 1;
    assert!(
        scalar || actual.shape() == expected.shape(),
        "{what}: shape {:?}, expected {:?}",
        actual.shape(),
        expected.shape()
    );
}

/// Asserts same shape, NaN at the same places, and `|a - e| <= atol + rtol * |e|` elsewhere.
pub fn assert_close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, rtol: f32, atol: f32, what: &str) {
    same_shape(actual, expected, what);
    for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
        if e.is_nan() || a.is_nan() {
            assert!(e.is_nan() && a.is_nan(), "{what}: element {i}: got {a}, expected {e}");
            continue;
        }
        if e.is_infinite() {
            assert_eq!(a, e, "{what}: element {i}");
            continue;
        }
        assert!(
            (a - e).abs() <= atol + rtol * e.abs(),
            "{what}: element {i}: got {a}, expected {e} (diff {})",
            (a - e).abs()
        );
    }
}

/// Asserts the arrays are bitwise identical (NaN payloads aside: any NaN matches any NaN).
pub fn assert_bitwise(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    same_shape(actual, expected, what);
    for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
        let same = (a.is_nan() && e.is_nan()) || a.to_bits() == e.to_bits();
        assert!(
            same,
            "{what}: element {i}: got {a} ({:#x}), expected {e} ({:#x})",
            a.to_bits(),
            e.to_bits()
        );
    }
}

/// Chunkings every golden case runs under: one block, and ragged blocks of every size class.
pub fn chunkings(shape: &[usize]) -> Vec<Vec<usize>> {
    vec![
        shape.to_vec(),
        shape.iter().map(|&n| (n / 3).max(1)).collect(),
        shape.iter().map(|&n| n.div_ceil(2).max(1)).collect(),
        vec![1; shape.len()],
    ]
}
