//! Every operation against numpy/scipy goldens (`scripts/make_goldens.py`), under several
//! chunkings each.

mod common;

use common::{assert_bitwise, assert_close, chunkings, golden};
use strata::{Array, Axes, BoundaryMode, ReduceOp, Slice};

fn cube(chunks: &[usize]) -> Array {
    Array::from_ndarray(golden("cube"), chunks.to_vec())
}

#[test]
fn nan_reductions_match_numpy() {
    let x = golden("cube");
    for chunks in chunkings(x.shape()) {
        let a = cube(&chunks);
        for (axes, tag) in [
            (vec![0], "t"),
            (vec![1, 2], "yx"),
            (vec![0, 1, 2], "all"),
            (vec![0, 2], "tx"),
        ] {
            let ax = Axes::Some(axes.clone());
            let what = |op: &str| format!("{op} over {tag} in chunks {chunks:?}");
            let close = |arr: Array, name: &str| {
                assert_close(
                    &arr.compute().unwrap(),
                    &golden(&format!("{name}_{tag}")),
                    1e-6,
                    1e-6,
                    &what(name),
                )
            };
            close(a.nansum(ax.clone()), "nansum");
            close(a.nanmean(ax.clone()), "nanmean");
            close(a.count(ax.clone()), "count");
            close(a.nanvar(ax.clone(), 0), "nanvar0");
            close(a.nanstd(ax.clone(), 1), "nanstd1");
            // numpy's plain, NaN-propagating forms through `reduce`
            close(a.reduce(ReduceOp::Sum, ax.clone()), "sum");
            close(a.reduce(ReduceOp::Mean, ax.clone()), "mean");
            // strata's plain names skip NaN, as xarray's do
            close(a.sum(ax.clone()), "nansum");
            close(a.mean(ax.clone()), "nanmean");
            let exact = |arr: Array, name: &str| {
                assert_bitwise(&arr.compute().unwrap(), &golden(&format!("{name}_{tag}")), &what(name))
            };
            exact(a.nanmin(ax.clone()), "nanmin");
            exact(a.nanmax(ax.clone()), "nanmax");
            exact(a.nanmedian(ax.clone()), "nanmedian");
            exact(a.reduce(ReduceOp::Min, ax.clone()), "min");
            exact(a.reduce(ReduceOp::Max, ax.clone()), "max");
            exact(a.reduce(ReduceOp::Median, ax.clone()), "median");
            exact(a.min(ax.clone()), "nanmin");
            exact(a.max(ax.clone()), "nanmax");
            exact(a.median(ax.clone()), "nanmedian");
            // the first extreme's index, ties (quarter steps repeat) to the first
            exact(a.argmax(ax.clone()), "nanargmax");
            exact(a.argmin(ax.clone()), "nanargmin");
            exact(a.reduce(ReduceOp::ArgMax, ax.clone()), "argmax");
            exact(a.reduce(ReduceOp::ArgMin, ax.clone()), "argmin");
            let full = Array::from_ndarray(golden("cube_full"), chunks.clone());
            assert_close(
                &full.sum(ax.clone()).compute().unwrap(),
                &golden(&format!("full_sum_{tag}")),
                1e-6,
                1e-6,
                &what("sum"),
            );
            assert_close(
                &full.mean(ax.clone()).compute().unwrap(),
                &golden(&format!("full_mean_{tag}")),
                1e-6,
                1e-6,
                &what("mean"),
            );
            assert_bitwise(
                &full.median(ax.clone()).compute().unwrap(),
                &golden(&format!("full_median_{tag}")),
                &what("median"),
            );
        }
    }
}

#[test]
fn elementwise_matches_numpy() {
    let (a0, b0, c0) = (golden("ew_a"), golden("ew_b"), golden("ew_c"));
    for chunks in chunkings(a0.shape()) {
        let a = Array::from_ndarray(a0.clone(), chunks.clone());
        let b = Array::from_ndarray(b0.clone(), chunks.clone());
        let c = Array::from_ndarray(c0.clone(), vec![chunks[1]]);
        let exact = |arr: Array, name: &str| {
            assert_bitwise(
                &arr.compute().unwrap(),
                &golden(name),
                &format!("{name} in chunks {chunks:?}"),
            )
        };
        exact((&a - &b) / (&a + &b) * &c + 0.5, "ew_bandmath");
        exact((&b - &a) / (&b + &a), "ew_ndvi");
        exact(a.sqrt(), "ew_sqrt");
        exact(a.minimum(&b), "ew_minimum");
        exact(a.maximum(&b), "ew_maximum");
        exact((-&a).abs(), "ew_abs_neg");
        exact(a.binary(strata::expr::BinaryOp::Gt, &b), "ew_gt");
        exact(a.le(0.25), "ew_le");
        exact(a.isnan(), "ew_isnan");
        exact(
            a.binary(strata::expr::BinaryOp::Gt, &b).where_(&a, &(&b * 2.0)),
            "ew_where",
        );
        exact(a.fillna(-9.0), "ew_fillna");
        // transcendental functions: libm and numpy's SIMD versions may differ in the last bit
        let close = |arr: Array, name: &str| assert_close(&arr.compute().unwrap(), &golden(name), 2e-7, 0.0, name);
        close(a.exp(), "ew_exp");
        close(a.ln(), "ew_log");
        close(a.powf(1.7), "ew_pow");
    }
}

#[test]
fn selection_matches_numpy() {
    let x = golden("cube");
    for chunks in chunkings(x.shape()) {
        let a = cube(&chunks);
        let what = |n: &str| format!("{n} in chunks {chunks:?}");
        let s = a.slice(&[
            Slice::reverse(),
            Slice::new(Some(3), Some(17), 2),
            Slice::new(None, None, -3),
        ]);
        assert_bitwise(&s.compute().unwrap(), &golden("sel_slice"), &what("slice"));
        assert_bitwise(
            &a.take(1, &[5, 0, 0, 18, 7]).compute().unwrap(),
            &golden("sel_take"),
            &what("take"),
        );
        assert_bitwise(&a.index(1, -2).compute().unwrap(), &golden("sel_index"), &what("index"));
        let flipped = a.slice(&[Slice::all(), Slice::all(), Slice::reverse()]);
        assert_bitwise(
            &Array::concatenate(&[a.clone(), flipped], 2).compute().unwrap(),
            &golden("sel_concat"),
            &what("concatenate"),
        );
        let st = Array::stack(&[a.index(0, 0), a.index(0, 3), a.index(0, 6)], 0);
        assert_bitwise(&st.compute().unwrap(), &golden("sel_stack"), &what("stack"));
    }
}

fn modes() -> Vec<(&'static str, BoundaryMode)> {
    vec![
        ("reflect", BoundaryMode::Reflect),
        ("mirror", BoundaryMode::Mirror),
        ("nearest", BoundaryMode::Nearest),
        ("wrap", BoundaryMode::Wrap),
        ("constant", BoundaryMode::Constant(2.5)),
    ]
}

#[test]
fn gaussian_matches_scipy_in_every_mode() {
    let g = golden("gauss_in");
    for chunks in chunkings(g.shape()) {
        let a = Array::from_ndarray(g.clone(), chunks.clone());
        for (name, mode) in modes() {
            let out = a.gaussian(&[2.0, 1.5], mode).compute().unwrap();
            assert_close(
                &out,
                &golden(&format!("gauss_2d_{name}")),
                2e-6,
                2e-6,
                &format!("gaussian {name} in chunks {chunks:?}"),
            );
        }
        let out = a.gaussian(&[0.0, 0.1], BoundaryMode::Reflect).compute().unwrap();
        assert_close(
            &out,
            &golden("gauss_tutorial"),
            0.0,
            0.0,
            "tutorial sigma (0, 0.1) is the identity",
        );
    }
    let small = g.slice(ndarray::s![..9, ..14]).to_owned().into_dyn();
    for chunks in chunkings(small.shape()) {
        let a = Array::from_ndarray(small.clone(), chunks.clone());
        for (name, mode) in modes() {
            let out = a.gaussian(&[3.0, 0.7], mode).compute().unwrap();
            assert_close(
                &out,
                &golden(&format!("gauss_wide_{name}")),
                2e-6,
                2e-6,
                &format!("wide gaussian {name} in chunks {chunks:?}"),
            );
        }
    }
    let cube = golden("cube_full");
    for chunks in chunkings(cube.shape()) {
        let out = Array::from_ndarray(cube.clone(), chunks.clone())
            .gaussian(&[0.0, 1.0, 2.0], BoundaryMode::Reflect)
            .compute()
            .unwrap();
        assert_close(
            &out,
            &golden("gauss_3d_reflect"),
            2e-6,
            2e-6,
            &format!("3-D gaussian in chunks {chunks:?}"),
        );
    }
}

#[test]
fn group_reduce_matches_numpy_with_an_empty_group() {
    let labels: Vec<usize> = golden("group_labels").iter().map(|&v| v as usize).collect();
    for chunks in chunkings(golden("cube").shape()) {
        let a = cube(&chunks);
        for (name, op) in [
            ("nanmedian", ReduceOp::NanMedian),
            ("nanmean", ReduceOp::NanMean),
            ("nanmax", ReduceOp::NanMax),
        ] {
            let out = a.group_reduce(op, 0, &labels, 4).compute().unwrap();
            assert_close(
                &out,
                &golden(&format!("group_{name}")),
                1e-6,
                1e-6,
                &format!("group {name} in chunks {chunks:?}"),
            );
        }
    }
}
