//! `transpose` against ndarray's `permuted_axes` (numpy's `transpose`), at odd chunkings, on
//! the CPU and the GPU (lavapipe in CI), and composed with the operations around it.

mod common;

use ndarray::{ArrayD, IxDyn};
use strata::labelled::{Coord, CoordValues, DataArray, LabelError};
use strata::{Array, Backend, ComputeOptions, Slice};

fn data() -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[5, 7, 6]), |ix| {
        if (ix[0] + 2 * ix[1] + ix[2]) % 11 == 0 {
            f32::NAN
        } else {
            (100 * ix[0] + 10 * ix[1] + ix[2]) as f32
        }
    })
}

fn on(backend: Backend) -> ComputeOptions {
    ComputeOptions {
        backend,
        progress: strata::exec::Progress::Off,
        ..Default::default()
    }
}

fn same(got: &ArrayD<f32>, want: &ArrayD<f32>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for ((i, g), w) in got.indexed_iter().zip(want.iter()) {
        assert!(g.to_bits() == w.to_bits(), "{what} at {i:?}: {g} vs {w}");
    }
}

#[test]
fn transpose_is_numpys_on_cpu_and_gpu_at_any_chunking() {
    let gpu = common::gpu::device();
    let x = data();
    let mut backends = vec![Backend::Cpu];
    if gpu.is_some() {
        backends.push(Backend::Gpu);
    }
    for chunks in [[5, 7, 6], [2, 3, 4], [1, 7, 5]] {
        let a = Array::from_ndarray(x.clone(), chunks);
        for perm in [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]] {
            let want = x.clone().permuted_axes(IxDyn(&perm)).as_standard_layout().to_owned();
            let t = a.transpose(&perm);
            for &backend in &backends {
                let what = format!("{perm:?} chunks {chunks:?} on {backend:?}");
                same(&t.compute_with(&on(backend)).unwrap().0, &want, &what);
                // composed: a slice of it, and band math on it
                let cut = t.slice(&[Slice::range(1, 4)]);
                let cut_want = want.slice_axis(ndarray::Axis(0), (1..4).into()).to_owned();
                same(
                    &cut.compute_with(&on(backend)).unwrap().0,
                    &cut_want,
                    &format!("{what}, sliced"),
                );
                let twice = (&t * 2.0).compute_with(&on(backend)).unwrap().0;
                same(&twice, &want.mapv(|v| v * 2.0), &format!("{what}, times 2"));
            }
        }
    }
    assert!(Array::from_ndarray(x.clone(), [5, 7, 6])
        .transpose(&[0, 0, 1])
        .compute()
        .is_err());
    assert!(Array::from_ndarray(x, [5, 7, 6]).transpose(&[1, 0]).compute().is_err());
}

#[test]
fn labelled_transpose_reorders_dims_and_fixes_a_dim_order_mismatch() {
    let x = data();
    let da = DataArray::new(
        Array::from_ndarray(x.clone(), [2, 3, 4]),
        &["time", "y", "x"],
        vec![Coord::index(
            "y",
            CoordValues::F64((0..7).map(|i| 100.0 - 10.0 * i as f64).collect()),
        )],
    )
    .unwrap();
    let yxt = da.transpose(&["y", "x", "time"]).unwrap();
    assert_eq!(yxt.dims(), ["y", "x", "time"]);
    assert_eq!(yxt.shape(), [7, 6, 5]);
    assert_eq!(yxt.ys().unwrap().len(), 7);
    let want = x
        .clone()
        .permuted_axes(IxDyn(&[1, 2, 0]))
        .as_standard_layout()
        .to_owned();
    same(&yxt.values().unwrap(), &want, "y, x, time");
    assert!(matches!(da.transpose(&["y", "x"]), Err(LabelError::Shape { .. })));
    assert!(matches!(
        da.transpose(&["y", "x", "band"]),
        Err(LabelError::NoDim { .. })
    ));
    // operands whose dims come in different orders: transpose one, then the arithmetic works
    let back = yxt.transpose(&["time", "y", "x"]).unwrap();
    let diff = (&da - &back).values().unwrap();
    assert!(diff.iter().all(|v| v.is_nan() || *v == 0.0));
}
