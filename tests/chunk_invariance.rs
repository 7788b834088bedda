//! Property tests: every operation gives the same result whatever the chunking and thread
//! count — bitwise for elementwise ops, selection, min/max and medians; within 1e-6 relative
//! for sums, means, variances and the gaussian (f64 partials combined in another grouping).
//! Rolling windows and coarsen's windows, besides, match a direct loop over each window.

mod common;

use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strata::labelled::{DataArray, Rolling};
use strata::{Array, Axes, BoundaryMode, ComputeOptions, ReduceOp, Slice};

/// A random array: shape of rank 1–3, values on a coarse grid (ties for medians), a NaN
/// fraction chosen per case, and a random block shape per axis.
fn case() -> impl Strategy<Value = (ArrayD<f32>, Vec<usize>)> {
    prop::collection::vec(1usize..9, 1..=3)
        .prop_flat_map(|shape| {
            let n: usize = shape.iter().product();
            let chunks = shape.iter().map(|&s| 1..=s).collect::<Vec<_>>();
            (
                Just(shape),
                prop::collection::vec((-20i32..20, 0u8..100), n),
                0u8..60,
                chunks,
            )
        })
        .prop_map(|(shape, cells, nan_pct, chunks)| {
            let data = cells
                .into_iter()
                .map(|(v, r)| if r < nan_pct { f32::NAN } else { v as f32 / 4.0 })
                .collect();
            (ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap(), chunks)
        })
}

/// A reduction of strata's rolling windows.
type WindowReduce = fn(&Rolling) -> DataArray;

/// A window's values (non-NaN, in f64) reduced to one.
type WindowFold = fn(&mut Vec<f64>) -> f64;

/// xarray's rolling windows by a direct loop: at each index, the non-NaN values of the window
/// of `sizes` ending at it (or centred, reaching one step further back for an even size),
/// reduced by `op` in f64 where they number `min_periods` or more, else NaN.
fn rolling_loop(
    x: &ArrayD<f32>,
    sizes: &[usize],
    center: bool,
    min_periods: usize,
    op: fn(&mut Vec<f64>) -> f64,
) -> ArrayD<f32> {
    let first: Vec<isize> = sizes
        .iter()
        .map(|&k| if center { -(k as isize / 2) } else { 1 - k as isize })
        .collect();
    ArrayD::from_shape_fn(x.raw_dim(), |at| {
        let mut values = Vec::new();
        let offsets: usize = sizes.iter().product();
        for n in 0..offsets {
            let (mut rest, mut index) = (n, Vec::new());
            for (axis, &k) in sizes.iter().enumerate() {
                index.push(at[axis] as isize + first[axis] + (rest % k) as isize);
                rest /= k;
            }
            let inside = index
                .iter()
                .zip(x.shape())
                .all(|(&i, &len)| i >= 0 && (i as usize) < len);
            if inside {
                let v = x[IxDyn(&index.iter().map(|&i| i as usize).collect::<Vec<_>>())];
                if !v.is_nan() {
                    values.push(v as f64);
                }
            }
        }
        if values.len() >= min_periods {
            op(&mut values) as f32
        } else {
            f32::NAN
        }
    })
}

/// xarray's `coarsen(...)` by a direct loop: every window of `windows` (each dividing its
/// axis) reduced by `op` in f64 over its non-NaN values; `none` where it has fewer than `need`.
fn coarsen_loop(x: &ArrayD<f32>, windows: &[usize], need: usize, none: f32, op: WindowFold) -> ArrayD<f32> {
    let shape: Vec<usize> = x.shape().iter().zip(windows).map(|(n, k)| n / k).collect();
    ArrayD::from_shape_fn(IxDyn(&shape), |at| {
        let mut values = Vec::new();
        for n in 0..windows.iter().product() {
            let (mut rest, mut index) = (n, Vec::new());
            for (axis, &k) in windows.iter().enumerate() {
                index.push(at[axis] * k + rest % k);
                rest /= k;
            }
            let v = x[IxDyn(&index)];
            if !v.is_nan() {
                values.push(v as f64);
            }
        }
        if values.len() >= need {
            op(&mut values) as f32
        } else {
            none
        }
    })
}

fn eval(a: &Array) -> ArrayD<f32> {
    a.compute().unwrap()
}

fn threads(n: usize) -> ComputeOptions {
    ComputeOptions {
        threads: Some(n),
        progress: strata::exec::Progress::Off,
        ..Default::default()
    }
}

const EXACT: [ReduceOp; 12] = [
    ReduceOp::Min,
    ReduceOp::Max,
    ReduceOp::NanMin,
    ReduceOp::NanMax,
    ReduceOp::Median,
    ReduceOp::NanMedian,
    ReduceOp::NanQuantile { millionths: 100_000 },
    ReduceOp::Quantile { millionths: 900_000 },
    ReduceOp::Count,
    ReduceOp::Any,
    ReduceOp::NanArgMax,
    ReduceOp::ArgMin,
];
const ACCUMULATING: [ReduceOp; 6] = [
    ReduceOp::Sum,
    ReduceOp::Mean,
    ReduceOp::NanSum,
    ReduceOp::NanMean,
    ReduceOp::NanVar { ddof: 0 },
    ReduceOp::NanStd { ddof: 1 },
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn elementwise_is_bitwise_chunk_invariant((x, chunks) in case()) {
        let one = Array::from_ndarray(x.clone(), x.shape().to_vec());
        let many = Array::from_ndarray(x.clone(), chunks);
        let f = |a: &Array| ((a - 1.5) / (a + &a.abs()) * 3.0 + 0.5).maximum(&a.sqrt()).fillna(-1.0);
        common::assert_bitwise(&eval(&f(&many)), &eval(&f(&one)), "band math");
        let m = |a: &Array| a.gt(0.0).and(&a.isnan().not()).where_(a, &(a * 2.0));
        common::assert_bitwise(&eval(&m(&many)), &eval(&m(&one)), "masks and where");
    }

    #[test]
    fn reductions_are_chunk_invariant((x, chunks) in case(), axis_bits in 1u8..8) {
        let nd = x.ndim();
        let axes: Vec<isize> = (0..nd).filter(|a| axis_bits & (1 << a) != 0).map(|a| a as isize).collect();
        let axes = if axes.is_empty() { Axes::All } else { Axes::Some(axes) };
        let one = Array::from_ndarray(x.clone(), x.shape().to_vec());
        let many = Array::from_ndarray(x.clone(), chunks);
        for op in EXACT {
            common::assert_bitwise(&eval(&many.reduce(op, axes.clone())), &eval(&one.reduce(op, axes.clone())), op.name());
        }
        for op in ACCUMULATING {
            common::assert_close(&eval(&many.reduce(op, axes.clone())), &eval(&one.reduce(op, axes.clone())), 1e-6, 1e-6, op.name());
        }
    }

    #[test]
    fn medians_of_expressions_are_chunk_invariant((x, chunks) in case()) {
        // chunked along axis 0, the steps of `a * 0.25 + b` are computed apart and the median
        // reads them in place; in one block it reads one block
        let y = x.mapv(|v| v * 0.5 - 1.0);
        let f = |a: &Array, b: &Array| &(a * 0.25) + b;
        let one = f(&Array::from_ndarray(x.clone(), x.shape().to_vec()), &Array::from_ndarray(y.clone(), y.shape().to_vec()));
        let many = f(&Array::from_ndarray(x.clone(), chunks.clone()), &Array::from_ndarray(y.clone(), chunks));
        for op in [ReduceOp::Median, ReduceOp::NanMedian, ReduceOp::NanQuantile { millionths: 250_000 }] {
            let axes = Axes::Some(vec![0]);
            common::assert_bitwise(&eval(&many.reduce(op, axes.clone())), &eval(&one.reduce(op, axes)), op.name());
        }
    }

    #[test]
    fn selection_is_chunk_invariant((x, chunks) in case(), start in -9isize..9, stop in -9isize..9, step in prop::sample::select(vec![-3isize, -2, -1, 1, 2, 3])) {
        let one = Array::from_ndarray(x.clone(), x.shape().to_vec());
        let many = Array::from_ndarray(x.clone(), chunks.clone());
        let s = [Slice::new(Some(start), Some(stop), step), Slice::reverse()];
        let k = s.len().min(x.ndim());
        common::assert_bitwise(&eval(&many.slice(&s[..k])), &eval(&one.slice(&s[..k])), "slice");
        let n = x.shape()[0] as isize;
        let idx = [n - 1, 0, (n / 2), -1];
        common::assert_bitwise(&eval(&many.take(0, &idx)), &eval(&one.take(0, &idx)), "take");
        let cat = |a: &Array| Array::concatenate(&[a.clone(), a.slice(&[Slice::reverse()])], 0);
        common::assert_bitwise(&eval(&cat(&many)), &eval(&cat(&one)), "concatenate");
        let re: Vec<usize> = chunks.iter().map(|&c| c.div_ceil(2)).collect();
        common::assert_bitwise(&eval(&many.rechunk(re)), &x, "rechunk");
    }

    #[test]
    fn gap_fills_are_chunk_invariant((x, chunks) in case(), limit in prop::option::of(1usize..4), gaps in prop::collection::vec(0.5f64..3.0, 1..40)) {
        let one = Array::from_ndarray(x.clone(), x.shape().to_vec());
        let many = Array::from_ndarray(x.clone(), chunks);
        for axis in 0..x.ndim() as isize {
            let n = x.shape()[axis as usize];
            // uneven, increasing positions (acquisition dates)
            let positions: Vec<f64> = (0..n).scan(0.0, |p, i| { *p += gaps[i % gaps.len()]; Some(*p) }).collect();
            let fills = |a: &Array| [
                a.ffill(axis, limit),
                a.bfill(axis, limit),
                a.interpolate_na(axis, &positions, limit, None),
                a.interpolate_na(axis, &positions, None, Some(2.5)),
            ];
            for (m, o) in fills(&many).iter().zip(fills(&one).iter()) {
                common::assert_bitwise(&eval(m), &eval(o), "gap fill");
                // a final result is filled where it lies; a block feeding another task is a
                // fresh array: the same values
                common::assert_bitwise(&eval(&(m * 1.0)), &eval(o), "gap fill through a block");
            }
        }
    }

    #[test]
    fn scans_are_chunk_invariant_and_match_a_direct_loop((x, chunks) in case()) {
        let one = Array::from_ndarray(x.clone(), x.shape().to_vec());
        let many = Array::from_ndarray(x.clone(), chunks);
        for axis in 0..x.ndim() {
            for (prod, skipna) in [(false, true), (false, false), (true, true), (true, false)] {
                let scan = |a: &Array| if prod { a.cumprod(axis as isize, skipna) } else { a.cumsum(axis as isize, skipna) };
                let what = format!("{} along {axis}, skipna {skipna}", if prod { "cumprod" } else { "cumsum" });
                let got = eval(&scan(&many));
                common::assert_bitwise(&got, &eval(&scan(&one)), &what);
                common::assert_bitwise(&eval(&(&scan(&many) * 1.0)), &got, &format!("{what} through a block"));
                // numpy's nancumsum/nancumprod (or cumsum/cumprod) in f64, lane by lane
                let mut want = x.clone();
                for mut lane in want.lanes_mut(ndarray::Axis(axis)) {
                    let mut total = if prod { 1f64 } else { 0f64 };
                    for v in lane.iter_mut() {
                        let step = if skipna && v.is_nan() { if prod { 1.0 } else { 0.0 } } else { f64::from(*v) };
                        total = if prod { total * step } else { total + step };
                        *v = total as f32;
                    }
                }
                common::assert_bitwise(&got, &want, &what);
            }
        }
    }

    #[test]
    fn gaussian_is_chunk_invariant((x, chunks) in case(), sigma in prop::collection::vec(0.0f64..2.5, 3), mode in 0usize..5) {
        let x = x.mapv(|v| if v.is_nan() { 0.25 } else { v });
        let mode = [BoundaryMode::Reflect, BoundaryMode::Mirror, BoundaryMode::Nearest, BoundaryMode::Wrap, BoundaryMode::Constant(-1.0)][mode];
        let sigma = &sigma[..x.ndim()];
        let one = Array::from_ndarray(x.clone(), x.shape().to_vec()).gaussian(sigma, mode);
        let many = Array::from_ndarray(x.clone(), chunks).gaussian(sigma, mode);
        common::assert_close(&eval(&many), &eval(&one), 1e-6, 1e-6, "gaussian");
    }

    #[test]
    fn group_reduce_and_overlap_are_chunk_invariant((x, chunks) in case(), groups in 1usize..4) {
        let n = x.shape()[0];
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 + 3) % groups).collect();
        let one = Array::from_ndarray(x.clone(), x.shape().to_vec());
        let many = Array::from_ndarray(x.clone(), chunks);
        for op in [ReduceOp::NanMedian, ReduceOp::NanMax, ReduceOp::Median, ReduceOp::NanQuantile { millionths: 250_000 }] {
            common::assert_bitwise(&eval(&many.group_reduce(op, 0, &labels, groups)), &eval(&one.group_reduce(op, 0, &labels, groups)), op.name());
        }
        common::assert_close(&eval(&many.group_reduce(ReduceOp::NanMean, 0, &labels, groups)), &eval(&one.group_reduce(ReduceOp::NanMean, 0, &labels, groups)), 1e-6, 1e-6, "group nanmean");
        // a 3-point running maximum along axis 0 through map_overlap
        let depth: Vec<usize> = (0..x.ndim()).map(|a| usize::from(a == 0)).collect();
        let runmax = |a: &Array| a.map_overlap("runmax", &depth, BoundaryMode::Nearest, |b| {
            let mut out = b.to_owned();
            for i in 1..b.shape()[0].saturating_sub(1) {
                let m = b.index_axis(ndarray::Axis(0), i - 1).to_owned();
                let m = ndarray::Zip::from(&m).and(b.index_axis(ndarray::Axis(0), i)).and(b.index_axis(ndarray::Axis(0), i + 1)).map_collect(|&p, &q, &r| p.max(q).max(r));
                out.index_axis_mut(ndarray::Axis(0), i).assign(&m);
            }
            out
        });
        common::assert_bitwise(&eval(&runmax(&many)), &eval(&runmax(&one)), "map_overlap");
    }

    #[test]
    fn rolling_windows_are_chunk_invariant_and_match_a_direct_loop((x, chunks) in case(), sizes in prop::collection::vec(1usize..6, 3), axis_bits in 1u8..8, center in any::<bool>(), min_periods in 1usize..28) {
        let nd = x.ndim();
        let dims = &["a", "b", "c"][..nd];
        // windows along some dims (one dim: the host kernel; several: the fused shifts); a
        // size of 1 along the others
        let along = |a: usize| axis_bits >> a & 1 == 1 || (a == nd - 1 && (axis_bits & ((1 << nd) - 1)) == 0);
        let sizes: Vec<usize> = (0..nd).map(|a| if along(a) { sizes[a] } else { 1 }).collect();
        let windows: Vec<(&str, usize)> = (0..nd).filter(|&a| along(a)).map(|a| (dims[a], sizes[a])).collect();
        let len: usize = sizes.iter().product();
        let min_periods = min_periods.min(len);
        let rolling = |chunks: Vec<usize>| {
            DataArray::new(Array::from_ndarray(x.clone(), chunks), dims, vec![])
                .unwrap()
                .rolling(&windows)
                .unwrap()
                .center(center)
                .min_periods(min_periods)
                .unwrap()
        };
        let (one, many) = (rolling(x.shape().to_vec()), rolling(chunks));
        let direct = |op: WindowFold| rolling_loop(&x, &sizes, center, min_periods, op);
        let cases: [(&str, WindowReduce, WindowFold); 6] = [
            ("count", Rolling::count, |v| v.len() as f64),
            ("max", Rolling::max, |v| v.iter().copied().fold(f64::MIN, f64::max)),
            ("median", Rolling::median, |v| {
                v.sort_by(f64::total_cmp);
                (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
            }),
            ("sum", Rolling::sum, |v| v.iter().sum()),
            ("mean", Rolling::mean, |v| v.iter().sum::<f64>() / v.len() as f64),
            ("var", |r| r.var(0), |v| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
            }),
        ];
        for (name, reduce, op) in cases {
            let got = reduce(&many).values().unwrap();
            common::assert_bitwise(&got, &reduce(&one).values().unwrap(), name);
            common::assert_close(&got, &direct(op), 1e-5, 1e-5, name);
        }
    }

    #[test]
    fn coarsen_windows_are_chunk_invariant_and_match_a_direct_loop((x, chunks) in case(), sizes in prop::collection::vec(1usize..6, 3)) {
        // each axis's window: the largest divisor of its length up to the size drawn
        let windows: Vec<usize> = x.shape().iter().zip(&sizes).map(|(&n, &k)| (1..=k.min(n)).rev().find(|d| n % d == 0).unwrap()).collect();
        let one = Array::from_ndarray(x.clone(), x.shape().to_vec());
        let many = Array::from_ndarray(x.clone(), chunks);
        let mean = |v: &mut Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let cases: [(ReduceOp, usize, f32, WindowFold); 8] = [
            (ReduceOp::Count, 0, 0.0, |v| v.len() as f64),
            (ReduceOp::NanSum, 0, 0.0, |v| v.iter().sum()),
            (ReduceOp::NanMin, 1, f32::NAN, |v| v.iter().copied().fold(f64::MAX, f64::min)),
            (ReduceOp::NanMax, 1, f32::NAN, |v| v.iter().copied().fold(f64::MIN, f64::max)),
            (ReduceOp::NanMean, 1, f32::NAN, mean),
            (ReduceOp::NanMedian, 1, f32::NAN, |v| {
                v.sort_by(f64::total_cmp);
                (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
            }),
            (ReduceOp::NanVar { ddof: 0 }, 1, f32::NAN, |v| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
            }),
            (ReduceOp::NanStd { ddof: 1 }, 2, f32::NAN, |v| {
                let m = v.iter().sum::<f64>() / v.len() as f64;
                (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
            }),
        ];
        for (op, need, none, fold) in cases {
            let got = eval(&many.coarsen(op, &windows));
            common::assert_bitwise(&got, &eval(&one.coarsen(op, &windows)), op.name());
            // written where it lies and through a block feeding another task: the same values
            common::assert_bitwise(&eval(&(many.coarsen(op, &windows) * 1.0)), &got, op.name());
            common::assert_close(&got, &coarsen_loop(&x, &windows, need, none, fold), 1e-5, 1e-5, op.name());
        }
    }

    #[test]
    fn results_do_not_depend_on_thread_count((x, chunks) in case()) {
        let a = Array::from_ndarray(x.clone(), chunks);
        let expr = (&a * 2.0 - 1.0).nanmean(0);
        let (one, _) = expr.compute_with(&threads(1)).unwrap();
        let (two, _) = expr.compute_with(&threads(2)).unwrap();
        common::assert_bitwise(&two, &one, "nanmean on 1 and 2 threads");
        let med = a.nanmedian(Axes::All);
        common::assert_bitwise(&med.compute_with(&threads(2)).unwrap().0, &med.compute_with(&threads(1)).unwrap().0, "nanmedian");
    }
}
