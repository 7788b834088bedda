//! Labelled arrays through the public API, against hand-computed values: selection by name,
//! label slices on ascending and descending coordinates, monthly resampling with empty
//! months, dropna, alignment by dim name, and coordinates following every operation.

use chrono::{TimeZone, Utc};
use ndarray::{Array, ArrayD};
use strata::geo::Affine;
use strata::geo::XyCoords;
use strata::labelled::{Boundary, Coord, CoordValues, DataArray, DropHow, GeoAttrs, InterpolateNa, Label, LabelError};
use strata::Array as Lazy;

fn times() -> Vec<chrono::DateTime<Utc>> {
    // Jan 10, Jan 26, Feb 11, Apr 1 (March empty), Apr 17
    [(1, 10), (1, 26), (2, 11), (4, 1), (4, 17)]
        .iter()
        .map(|&(m, d)| Utc.with_ymd_and_hms(2020, m, d, 18, 50, 0).unwrap())
        .collect()
}

/// (time 5, band 2, y 3, x 4): value = 1000 t + 100 b + 10 y + x, with time 1 all NaN in
/// band 1 and pixel (y 0, x 0) NaN at time 3.
fn cube() -> DataArray {
    let mut v = Array::from_shape_fn((5, 2, 3, 4), |(t, b, y, x)| (1000 * t + 100 * b + 10 * y + x) as f32);
    v.slice_mut(ndarray::s![1, 1, .., ..]).fill(f32::NAN);
    v[[3, 0, 0, 0]] = f32::NAN;
    v[[3, 1, 0, 0]] = f32::NAN;
    let data = Lazy::from_ndarray(v.into_dyn(), [2, 1, 2, 3]);
    DataArray::new(
        data,
        &["time", "band", "y", "x"],
        vec![
            Coord::index("time", CoordValues::Time(times())),
            Coord::index("band", CoordValues::Str(vec!["red".into(), "nir08".into()])),
            Coord::index("y", CoordValues::F64(vec![4_180_075.0, 4_180_045.0, 4_180_015.0])),
            Coord::index("x", CoordValues::F64(vec![550_015.0, 550_045.0, 550_075.0, 550_105.0])),
            Coord::along(
                "id",
                "time",
                CoordValues::Str((0..5).map(|i| format!("scene-{i}")).collect()),
            ),
        ],
    )
    .unwrap()
    .with_attrs(GeoAttrs {
        epsg: Some(32610),
        resolution: Some((30.0, 30.0)),
        xy_coords: XyCoords::Center,
    })
}

fn f64s(da: &DataArray, dim: &str) -> Vec<f64> {
    da.f64_coord(dim).unwrap().to_vec()
}

#[test]
fn sel_by_name_drops_the_dim_and_keeps_a_scalar_label() {
    let da = cube();
    let nir = da.sel("band", "nir08").unwrap();
    assert_eq!(nir.dims(), ["time", "y", "x"]);
    let band = nir.coord("band").unwrap();
    assert_eq!(
        (band.dim.clone(), band.values.clone()),
        (None, CoordValues::Str(vec!["nir08".into()]))
    );
    let v = nir.values().unwrap();
    assert_eq!(v[[2, 1, 3]], 2113.0);
    let both = da.sel_many("band", &["nir08", "red"]).unwrap();
    assert_eq!(both.shape(), [5, 2, 3, 4]);
    assert_eq!(both.values().unwrap()[[0, 0, 0, 1]], 101.0);
    assert_eq!(
        both.coord("band").unwrap().values,
        CoordValues::Str(vec!["nir08".into(), "red".into()])
    );
    let err = da.sel("band", "swir16").unwrap_err();
    assert_eq!(
        err,
        LabelError::NoLabel {
            dim: "band".into(),
            label: "\"swir16\"".into()
        }
    );
    assert!(matches!(da.sel("band", 3.0), Err(LabelError::LabelType { .. })));
    assert!(matches!(da.sel("wavelength", "red"), Err(LabelError::NoDim { .. })));
}

#[test]
fn nearest_labels_pick_a_pixels_time_series_as_xarray_does() {
    let da = cube();
    // a point inside pixel (y 1, x 2): its time series in band red, value 1000 t + 12
    let series = da
        .sel("band", "red")
        .unwrap()
        .sel_nearest("x", 550_081.0, None)
        .unwrap()
        .sel_nearest("y", 4_180_040.0, Some(15.0))
        .unwrap();
    assert_eq!(series.dims(), ["time"]);
    let v = series.values().unwrap();
    assert_eq!(v.as_slice().unwrap(), [12.0, 1012.0, 2012.0, 3012.0, 4012.0]);
    assert_eq!(series.coord("x").unwrap().values, CoordValues::F64(vec![550_075.0]));
    // ties go to the larger label on ascending x and descending y alike (pandas' rule);
    // beyond either end, the end label
    let x = |v: f64| f64s(&da.sel_nearest_many("x", &[v], None).unwrap(), "x")[0];
    let y = |v: f64| f64s(&da.sel_nearest_many("y", &[v], None).unwrap(), "y")[0];
    assert_eq!(
        (x(550_030.0), x(550_090.0), x(0.0), x(9e9)),
        (550_045.0, 550_105.0, 550_015.0, 550_105.0)
    );
    assert_eq!(
        (y(4_180_030.0), y(4_180_060.0), y(0.0)),
        (4_180_045.0, 4_180_075.0, 4_180_015.0)
    );
    // many labels, in order, repeats kept; the dim stays
    let picked = da
        .sel_nearest_many("x", &[550_100.0, 550_010.0, 550_100.0], None)
        .unwrap();
    assert_eq!(f64s(&picked, "x"), [550_105.0, 550_015.0, 550_105.0]);
    assert_eq!(picked.values().unwrap()[[0, 0, 0, 1]], 0.0);
    // times: Feb 1 lies nearer Jan 26 (6 days) than Feb 11 (10 days); text is its first
    // instant; a tolerance in seconds
    let feb1 = Utc.with_ymd_and_hms(2020, 2, 1, 0, 0, 0).unwrap();
    let t = da.sel_nearest("time", feb1, None).unwrap();
    assert_eq!(t.values().unwrap()[[0, 0, 1]], 1001.0);
    let t = da.sel_nearest("time", "2020-03-20", None).unwrap();
    assert_eq!(t.values().unwrap()[[0, 0, 1]], 3001.0); // Apr 1, 12 days on; Feb 11, 38 days back
    let err = da.sel_nearest("time", feb1, Some(86_400.0)).unwrap_err();
    assert!(
        matches!(&err, LabelError::NotNear { dim, distance, .. } if dim == "time" && (*distance - 450_600.0).abs() < 1.0),
        "{err}"
    );
    let err = da.sel_nearest("x", 550_081.0, Some(5.0)).unwrap_err();
    assert!(err.to_string().contains("550075"), "{err}");
    assert!(matches!(
        da.sel_nearest("band", "red", None),
        Err(LabelError::NoDistance { .. })
    ));
    assert!(matches!(
        da.sel_nearest("x", "red", None),
        Err(LabelError::LabelType { .. })
    ));
    let unsorted = DataArray::new(
        Lazy::from_ndarray(ArrayD::<f32>::zeros(ndarray::IxDyn(&[3])), [3]),
        &["x"],
        vec![Coord::index("x", CoordValues::F64(vec![10.0, 30.0, 20.0]))],
    )
    .unwrap();
    assert!(matches!(
        unsorted.sel_nearest("x", 21.0, None),
        Err(LabelError::NotMonotonic { .. })
    ));
}

#[test]
fn mosaic_takes_the_top_valid_value_as_stackstac_does() {
    let nan = f32::NAN;
    // (time 4, x 3): by hand, last on top gives [3, 2, NaN]; first on top [1, 2, NaN]
    let v = Array::from_shape_vec((4, 3), vec![1.0, nan, nan, nan, 2.0, nan, 3.0, nan, nan, nan, nan, nan])
        .unwrap()
        .into_dyn();
    let times: Vec<_> = times()[..4].to_vec();
    for chunks in [[4, 3], [1, 2], [3, 1]] {
        let da = DataArray::new(
            Lazy::from_ndarray(v.clone(), chunks),
            &["time", "x"],
            vec![
                Coord::index("time", CoordValues::Time(times.clone())),
                Coord::index("x", CoordValues::F64(vec![10.0, 20.0, 30.0])),
            ],
        )
        .unwrap();
        for (reverse, want) in [(false, [3.0, 2.0, nan]), (true, [1.0, 2.0, nan])] {
            let m = da.mosaic("time", reverse).unwrap();
            assert_eq!(m.dims(), ["x"]);
            assert!(m.coord("time").is_none());
            assert_eq!(f64s(&m, "x"), [10.0, 20.0, 30.0]);
            let got = m.values().unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!(
                    g == &w || (g.is_nan() && w.is_nan()),
                    "{chunks:?} reverse {reverse}: {got} vs {want:?}"
                );
            }
        }
    }
    // on the cube: time 4 has every value, so it shows; the id along time goes with the dim
    let m = cube().mosaic("time", false).unwrap();
    assert_eq!(m.dims(), ["band", "y", "x"]);
    assert!(m.coord("id").is_none() && m.coord("band").is_some());
    assert_eq!(m.values().unwrap()[[1, 2, 3]], 4123.0);
    // first on top: time 0's values, 100 b + 10 y + x
    let m = cube().mosaic("time", true).unwrap();
    assert_eq!(m.values().unwrap()[[1, 2, 3]], 123.0);
    assert!(matches!(cube().mosaic("depth", false), Err(LabelError::NoDim { .. })));
}

#[test]
fn coarsen_aggregates_windows_and_keeps_the_grid_georeferenced() {
    let da = cube();
    let c = da.coarsen(&[("x", 2)], Boundary::Exact).unwrap();
    let mean = c.mean();
    assert_eq!(mean.shape(), [5, 2, 3, 2]);
    // pixel-centre labels: each window's centre; the grid's corner stays where it was
    assert_eq!(f64s(&mean, "x"), [550_030.0, 550_090.0]);
    assert_eq!(mean.attrs().resolution, Some((60.0, 30.0)));
    assert_eq!(mean.transform(), da.transform().map(|t| Affine { a: 60.0, ..t }));
    let v = mean.values().unwrap();
    // value 1000 t + 100 b + 10 y + x: windows (x 0, 1) and (2, 3); at time 3 pixel (0, 0)
    // is NaN, so its window's mean is the other value
    assert_eq!((v[[0, 0, 0, 0]], v[[0, 0, 0, 1]], v[[3, 0, 0, 0]]), (0.5, 2.5, 3001.0));
    assert_eq!(c.count().values().unwrap()[[3, 0, 0, 0]], 1.0);
    assert_eq!(c.max().values().unwrap()[[2, 1, 2, 1]], 2123.0);
    assert!(c.sum().values().unwrap()[[1, 1, 0, 0]] == 0.0); // band 1 is NaN at time 1
    let both = da.coarsen(&[("y", 3), ("x", 4)], Boundary::Exact).unwrap().min();
    assert_eq!(both.shape(), [5, 2, 1, 1]);
    assert_eq!(f64s(&both, "y"), [4_180_045.0]);
    assert_eq!(both.values().unwrap()[[3, 1, 0, 0]], 3101.0); // (0, 0) NaN at time 3
                                                              // 4 is not a multiple of 3: refused, or trimmed to one window of x 0..3
    let err = da.coarsen(&[("x", 3)], Boundary::Exact).unwrap_err();
    assert!(
        matches!(&err, LabelError::Coarsen { dim, size: 4, window: 3, .. } if dim == "x"),
        "{err}"
    );
    let trimmed = da.coarsen(&[("x", 3)], Boundary::Trim).unwrap().mean();
    assert_eq!(f64s(&trimmed, "x"), [550_045.0]);
    assert_eq!(trimmed.values().unwrap()[[0, 0, 0, 0]], 1.0);
    assert!(matches!(
        da.coarsen(&[("x", 0)], Boundary::Trim),
        Err(LabelError::Coarsen { .. })
    ));
    assert!(matches!(
        da.coarsen(&[("x", 5)], Boundary::Trim),
        Err(LabelError::Coarsen { .. })
    ));
    // time windows: names along time (item ids) are dropped, times are the windows' means
    let t = da.coarsen(&[("time", 5)], Boundary::Exact).unwrap().mean();
    assert!(t.coord("id").is_none());
    match &t.coord("time").unwrap().values {
        CoordValues::Time(v) => assert_eq!(v.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn fillna_from_another_array_keeps_every_label_of_the_first() {
    let line = |xs: Vec<f64>, v: Vec<f32>| {
        DataArray::new(
            Lazy::from_ndarray(ArrayD::from_shape_vec(ndarray::IxDyn(&[3]), v).unwrap(), [2]),
            &["x"],
            vec![Coord::index("x", CoordValues::F64(xs))],
        )
        .unwrap()
    };
    let nan = f32::NAN;
    let a = line(vec![10.0, 20.0, 30.0], vec![nan, 2.0, nan]);
    let b = line(vec![20.0, 30.0, 40.0], vec![5.0, 6.0, 7.0]);
    // b lined up to a's labels is [NaN, 5, 6]: x 10 has nothing to fill from
    let filled = a.fillna_from(&b).unwrap();
    assert_eq!(f64s(&filled, "x"), [10.0, 20.0, 30.0]);
    let v = filled.values().unwrap();
    assert!(v[0].is_nan() && v[1] == 2.0 && v[2] == 6.0, "{v}");
}

#[test]
fn where_with_an_array_takes_the_other_where_the_mask_is_unset() {
    let cube = cube();
    let red = cube.sel("band", "red").unwrap();
    // a fallback per (x, y) only, in the other axis order: it broadcasts over time and is
    // transposed to the result's order
    let fallback = red.median("time").unwrap().transpose(&["x", "y"]).unwrap();
    let recent = red.ge(2000.0);
    let mixed = red.where_array(&recent, &fallback).unwrap();
    assert_eq!(mixed.dims(), ["time", "y", "x"]);
    let v = mixed.values().unwrap();
    // time 3 keeps its own values; time 0 takes the median over time, of 12, 1012, ..., 4012
    // at pixel (1, 2); NaN is not >= 2000, so pixel (0, 0) at time 3 takes its median too:
    // of 0, 1000, 2000, 4000 (time 3's NaN skipped), the two middle values' mean
    assert_eq!(v[[3, 1, 2]], 3012.0);
    assert_eq!(v[[0, 1, 2]], 2012.0);
    assert_eq!(v[[3, 0, 0]], 1500.0);
    assert_eq!(v[[1, 0, 0]], 1500.0);
    // the labels of a shared dim must be equal (xarray's exact join for three operands)
    let shifted = fallback.isel_many("x", &[1, 2, 3, 0]).unwrap();
    let err = red.where_array(&recent, &shifted).unwrap_err();
    assert!(
        matches!(err, LabelError::Misaligned { ref dim, .. } if dim == "x"),
        "{err}"
    );
}

#[test]
fn gaps_fill_from_neighbours_in_time_weighed_by_dates() {
    let cube = cube();
    let at = |da: &DataArray, b: usize| da.values().unwrap()[[3, b, 0, 0]];
    let pixel = |da: &DataArray, t: usize, b: usize| da.values().unwrap()[[t, b, 0, 0]];
    // pixel (0, 0) of band 0 is 0, 1000, 2000, NaN, 4000 on Jan 10, Jan 26, Feb 11, Apr 1,
    // Apr 17 (2020): Apr 1 lies 50 of the 66 days from Feb 11 to Apr 17
    let linear = cube.interpolate_na("time", &InterpolateNa::default()).unwrap();
    assert_eq!(at(&linear, 0), (2000.0 + 2000.0 * 50.0 / 66.0) as f32);
    // band 1 is NaN over all of time 1 (Jan 26), halfway from Jan 10 to Feb 11: 100 and 2100
    assert_eq!(pixel(&linear, 1, 1), 1100.0);
    assert_eq!(pixel(&linear, 1, 0), 1000.0, "valid values stay");
    // by index, Apr 1 is halfway
    let by_index = InterpolateNa {
        use_coordinate: false,
        ..Default::default()
    };
    assert_eq!(at(&cube.interpolate_na("time", &by_index).unwrap(), 0), 3000.0);
    // a gap of 66 days is over a 60-day max_gap; 32 days (band 1 at time 1) is not
    let short = InterpolateNa {
        max_gap: Some(60.0 * 86400.0),
        ..Default::default()
    };
    let short = cube.interpolate_na("time", &short).unwrap();
    assert!(at(&short, 0).is_nan());
    assert_eq!(pixel(&short, 1, 1), 1100.0);
    assert_eq!(at(&cube.ffill("time", None).unwrap(), 0), 2000.0);
    assert_eq!(at(&cube.bfill("time", Some(1)).unwrap(), 0), 4000.0);
    // names have no distance
    let err = cube.interpolate_na("band", &InterpolateNa::default()).unwrap_err();
    assert!(matches!(err, LabelError::Interpolate { .. }), "{err}");
    // a zero limit is refused when computed
    assert!(cube.ffill("time", Some(0)).unwrap().values().is_err());
}

#[test]
fn label_slices_run_in_the_coordinates_order() {
    let da = cube();
    // descending y: from the larger value down, both ends included, ends need not be labels
    let cut = da.loc("y", 4_180_060.0, 4_180_015.0).unwrap();
    assert_eq!(f64s(&cut, "y"), [4_180_045.0, 4_180_015.0]);
    assert_eq!(cut.values().unwrap()[[0, 0, 0, 0]], 10.0);
    // the wrong way round is empty, as in xarray
    assert_eq!(da.loc("y", 4_180_015.0, 4_180_060.0).unwrap().shape()[2], 0);
    let cut = da.loc("x", 550_040.0, 550_080.0).unwrap();
    assert_eq!(f64s(&cut, "x"), [550_045.0, 550_075.0]);
    assert_eq!(cut.values().unwrap()[[4, 1, 2, 1]], 4122.0);
    // the tutorial's area of interest around a point, on both axes
    let (x, y, b) = (550_060.0, 4_180_040.0, 30.0);
    let aoi = da.loc("y", y + b, y - b).unwrap().loc("x", x - b, x + b).unwrap();
    assert_eq!(aoi.shape(), [5, 2, 2, 2]);
    assert_eq!((f64s(&aoi, "y")[0], f64s(&aoi, "x")[0]), (4_180_045.0, 550_045.0));
    // time: a month given as text covers the whole month
    let feb_apr = da.loc("time", "2020-02", "2020-04").unwrap();
    assert_eq!(feb_apr.shape()[0], 3);
    assert_eq!(
        feb_apr.coord("id").unwrap().values.label(0),
        Label::Str("scene-2".into())
    );
    let april = da.sel("time", "2020-04").unwrap();
    assert_eq!(april.dims(), ["time", "band", "y", "x"]);
    assert_eq!(april.shape()[0], 2);
    let one = da
        .sel("time", Utc.with_ymd_and_hms(2020, 2, 11, 18, 50, 0).unwrap())
        .unwrap();
    assert_eq!(one.values().unwrap()[[0, 0, 0]], 2000.0);
    // the transform of a cut follows its coordinates (centres, 30 m)
    let t = aoi.transform().unwrap();
    assert_eq!((t.c, t.f, t.a, t.e), (550_030.0, 4_180_060.0, 30.0, -30.0));
}

#[test]
fn monthly_resample_bins_calendar_months_and_dropna_removes_the_empty_ones() {
    let da = cube();
    let groups = da.resample("time", "MS").unwrap();
    assert_eq!(groups.labels(), [0, 0, 1, 3, 3]);
    let monthly = groups.median();
    assert_eq!(monthly.shape(), [4, 2, 3, 4]);
    let starts: Vec<_> = (1..=4)
        .map(|m| Utc.with_ymd_and_hms(2020, m, 1, 0, 0, 0).unwrap())
        .collect();
    assert_eq!(monthly.coord("time").unwrap().values, CoordValues::Time(starts.clone()));
    assert!(monthly.coord("id").is_none(), "item ids do not survive a resample");
    let v = monthly.values().unwrap();
    // January: steps 0 and 1 (band 1 of step 1 is NaN, skipped); April: steps 3 and 4
    assert_eq!(v[[0, 0, 1, 2]], 512.0); // median(12, 1012)
    assert_eq!(v[[0, 1, 1, 2]], 112.0); // only step 0
    assert!(v[[2, 0, 1, 2]].is_nan()); // March: no scene
    assert_eq!(v[[3, 0, 0, 0]], 4000.0); // step 3 NaN there, step 4 = 4000
    assert_eq!(v[[3, 0, 2, 3]], 3523.0); // median(3023, 4023)
    let kept = monthly.dropna("time", DropHow::All).unwrap();
    assert_eq!(kept.shape(), [3, 2, 3, 4]);
    assert_eq!(
        kept.coord("time").unwrap().values,
        CoordValues::Time(vec![starts[0], starts[1], starts[3]])
    );
    // "any": January's band 1 is fine (step 0), but nothing in March; April has no NaN left
    assert_eq!(monthly.dropna("time", DropHow::Any).unwrap().shape()[0], 3);
    // on the raw steps, "any" also drops step 1 (band 1 all NaN) and step 3 (one NaN pixel)
    let raw = da.dropna("time", DropHow::Any).unwrap();
    assert_eq!(
        raw.coord("id").unwrap().values,
        CoordValues::Str(vec!["scene-0".into(), "scene-2".into(), "scene-4".into()])
    );
    let yearly = da.resample("time", "YS").unwrap().mean();
    assert_eq!(yearly.shape()[0], 1);
    assert!(matches!(da.resample("time", "2W"), Err(LabelError::Frequency { freq }) if freq == "2W"));
    assert!(matches!(da.resample("band", "MS"), Err(LabelError::NoCoord { .. })));
}

#[test]
fn arithmetic_lines_up_by_dim_name_and_drops_conflicting_scalar_labels() {
    let da = cube();
    let (red, nir) = (da.sel("band", "red").unwrap(), da.sel("band", "nir08").unwrap());
    let ndvi = &(&nir - &red) / &(&nir + &red);
    assert_eq!(ndvi.dims(), ["time", "y", "x"]);
    assert!(ndvi.coord("band").is_none());
    assert_eq!(ndvi.coord("id").unwrap().values.len(), 5);
    let v = ndvi.values().unwrap();
    assert_eq!(v[[0, 1, 1]], 100.0 / 122.0);
    // (time, y, x) * (y, x): the right operand broadcasts over time
    let weight = red.mean("time").unwrap();
    assert_eq!(weight.dims(), ["y", "x"]);
    let scaled = &red * &weight;
    assert_eq!(scaled.dims(), ["time", "y", "x"]);
    let w = weight.values().unwrap();
    // red at (y 2, x 1): steps 1012·… → mean over t of 1000 t + 21 = 2021
    assert_eq!(w[[2, 1]], 2021.0);
    assert_eq!(scaled.values().unwrap()[[4, 2, 1]], 4021.0 * 2021.0);
    // (y, x) with a new dim on the right: (time, y, x) + (band,) → (time, y, x, band)
    let per_band = da.isel("time", 0).unwrap().isel("y", 0).unwrap().isel("x", 0).unwrap();
    assert_eq!(per_band.dims(), ["band"]);
    let sum = &red + &per_band;
    assert_eq!(sum.dims(), ["time", "y", "x", "band"]);
    assert_eq!(sum.values().unwrap()[[4, 2, 3, 1]], 4023.0 + 100.0);
    // labels that differ on a shared dim: xarray's inner join, the labels both have
    let shifted = da
        .isel_slice("x", strata::Slice::range(1, 4))
        .unwrap()
        .loc("x", 0.0, 1e9)
        .unwrap();
    let cut = da.isel_slice("x", strata::Slice::range(0, 3)).unwrap();
    let diff = &shifted - &cut;
    assert_eq!(diff.xs().unwrap(), [550_045.0, 550_075.0]);
    let d = diff.values().unwrap();
    assert_eq!(d.shape(), [5, 2, 3, 2]);
    assert!(d.iter().all(|v| v.is_nan() || *v == 0.0), "same pixels, same values");
    // an exact join refuses them, naming the labels that differ
    match shifted.align(&cut, strata::labelled::Join::Exact) {
        Err(LabelError::Misaligned { op, dim, left, right }) => {
            assert_eq!((op.as_str(), dim.as_str()), ("align", "x"));
            assert!(
                left.starts_with("3 labels, 550045") && right.starts_with("3 labels, 550015"),
                "{left} / {right}"
            );
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    // an error kept from building travels through whatever is built on it, and every way of
    // computing it: x labels that share nothing (the inner join leaves no x)
    let yx = da.isel("time", 0).unwrap().isel("band", 0).unwrap();
    let elsewhere = DataArray::new(
        strata::Array::from_ndarray(ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[3, 2])), [3, 2]),
        &["y", "x"],
        vec![
            Coord::index("y", CoordValues::F64(f64s(&yx, "y"))),
            Coord::index("x", CoordValues::F64(vec![1.0, 2.0])),
        ],
    )
    .unwrap();
    let bad = &yx - &elsewhere;
    let later = (&bad * 2.0).mean("y").unwrap();
    // known as soon as it is built, before any compute
    for built in [&bad, &later] {
        assert!(
            matches!(built.check(), Err(strata::Error::Label(LabelError::EmptyDim { .. }))),
            "{:?}",
            built.check()
        );
    }
    assert!(yx.check().is_ok());
    for result in [bad.values().map(|_| ()), later.compute().map(|_| ())] {
        assert!(
            matches!(result, Err(strata::Error::Label(LabelError::EmptyDim { .. }))),
            "{result:?}"
        );
    }
    // dims in another order line up by name, as xarray's: the right operand is transposed
    let xy = yx.transpose(&["x", "y"]).unwrap();
    let zero = (&yx - &xy).values().unwrap();
    assert_eq!(zero.shape(), yx.shape());
    assert!(zero.iter().all(|v| v.is_nan() || *v == 0.0));
}

#[test]
fn reductions_filters_and_masks_keep_the_right_labels() {
    let da = cube();
    let red = da.sel("band", "red").unwrap();
    let m = red.median("time").unwrap();
    assert_eq!(m.dims(), ["y", "x"]);
    assert_eq!(
        m.coords().iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["band", "y", "x"]
    );
    // median over t of {0, 1000, 2000, 3000, 4000} + 10 y + x
    let v = m.values().unwrap();
    assert_eq!(v[[1, 2]], 2012.0);
    assert_eq!(v[[0, 0]], 1500.0); // step 3 is NaN there: median(0, 1000, 2000, 4000)
    let smooth = m.gaussian(&[0.0, 1.0], strata::BoundaryMode::Reflect);
    assert_eq!(smooth.coords(), m.coords());
    let mask = smooth.gt(2010.0);
    let bits: ArrayD<u8> = mask.mask_values().unwrap();
    assert_eq!(bits.shape(), [3, 4]);
    assert_eq!(bits[[0, 0]], 0);
    assert_eq!(bits[[2, 3]], 1);
    let count = red.count("time").unwrap().values().unwrap();
    assert_eq!(count[[0, 0]], 4.0);
    let total = da.reduce(strata::ReduceOp::NanSum, &["time", "band"]).unwrap();
    assert_eq!(total.dims(), ["y", "x"]);
    assert!(matches!(da.mean("month"), Err(LabelError::NoDim { .. })));
}

#[test]
fn compute_keeps_labels_and_holds_the_values() {
    let da = cube();
    let monthly = da.resample("time", "MS").unwrap().median();
    let held = monthly.compute().unwrap();
    assert_eq!(held.coords(), monthly.coords());
    assert_eq!(held.data().to_string().split(',').next(), Some("strata.Array<array"));
    let a = held.values().unwrap();
    let b = monthly.values().unwrap();
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    // dropna on held values counts them in memory and keeps them held
    let kept = held.dropna("time", DropHow::All).unwrap();
    assert_eq!(kept.held().map(|v| v.shape().to_vec()), Some(vec![3, 2, 3, 4]));
    let lazy = monthly.dropna("time", DropHow::All).unwrap();
    assert!(lazy.held().is_none());
    assert_eq!(kept.values().unwrap(), lazy.values().unwrap()); // no NaN is left once March is gone
    let (outs, _) = strata::labelled::compute_all(
        &[&held, &da.sel("band", "red").unwrap().gt(1000.0)],
        &Default::default(),
    )
    .unwrap();
    assert_eq!(outs[1].mask_values().unwrap().iter().filter(|&&m| m == 1).count(), 46);
    let persisted = da.persist().unwrap();
    assert_eq!(persisted.values().unwrap().shape(), &[5, 2, 3, 4]);
}

#[test]
fn into_dropna_compacts_the_kept_steps_where_they_lie() {
    let da = cube();
    let monthly = da.resample("time", "MS").unwrap().median();
    let expected = monthly.dropna("time", DropHow::All).unwrap();
    // a computed array held by nothing else: the kept months move down in its own buffer
    let held = monthly.compute().unwrap();
    let start = held.held().unwrap().as_ptr();
    let kept = held.into_dropna("time", DropHow::All).unwrap();
    assert_eq!(kept.coords(), expected.coords());
    assert_eq!(kept.dims(), expected.dims());
    assert_eq!(kept.held().unwrap().as_ptr(), start, "compacted in place, not copied");
    assert_eq!(kept.values().unwrap(), expected.values().unwrap());
    // held elsewhere too: a copy, the other holder's values untouched
    let held = monthly.compute().unwrap();
    let other = held.clone();
    let kept = held.into_dropna("time", DropHow::All).unwrap();
    assert_ne!(kept.held().unwrap().as_ptr(), other.held().unwrap().as_ptr());
    assert_eq!(kept.values().unwrap(), expected.values().unwrap());
    let bits = |a: ArrayD<f32>| a.mapv(f32::to_bits);
    assert_eq!(bits(other.values().unwrap()), bits(monthly.values().unwrap()));
    // along an inner dim: time second, steps 1 and 3 dropped ("any": each has a NaN)
    let band_first = da.transpose(&["band", "time", "y", "x"]).unwrap();
    let inner = band_first.compute().unwrap().into_dropna("time", DropHow::Any).unwrap();
    assert_eq!(inner.shape(), [2, 3, 3, 4]);
    assert_eq!(
        inner.values().unwrap(),
        band_first.dropna("time", DropHow::Any).unwrap().values().unwrap()
    );
    // a lazy array: as dropna
    let lazy = monthly.clone().into_dropna("time", DropHow::All).unwrap();
    assert!(lazy.held().is_none());
    assert_eq!(lazy.values().unwrap(), expected.values().unwrap());
}

#[test]
fn display_reads_like_xarrays_repr() {
    let da = cube().with_name("stack");
    let s = da.to_string();
    assert!(
        s.starts_with("<strata.DataArray \"stack\" (time: 5, band: 2, y: 3, x: 4)>"),
        "{s}"
    );
    assert!(s.contains("chunksize=(2, 1, 2, 3)"), "{s}");
    assert!(s.contains("tasks: "), "{s}");
    assert!(s.contains("  * band       (band)   str      \"red\" \"nir08\""), "{s}");
    assert!(s.contains("    id         (time)   str      "), "{s}");
    assert!(s.contains("crs:        EPSG:32610"), "{s}");
    let scalar = da.sel("band", "red").unwrap().to_string();
    assert!(scalar.contains("    band       ()       str      \"red\""), "{scalar}");
    assert_eq!(da.nbytes(), 5 * 2 * 3 * 4 * 4);
    // Debug shows the labels without planning (Display plans, to count the tasks).
    let debug = format!("{da:?}");
    assert!(
        debug.starts_with("DataArray {") && debug.contains("dims: [\"time\"") && !debug.contains("tasks:"),
        "{debug}"
    );
    let bad = DataArray::new(Lazy::zeros(&[2, 3], [2, 3]), &["y"], vec![]);
    assert!(matches!(bad, Err(LabelError::Shape { .. })), "{bad:?}");
    let short = DataArray::new(
        Lazy::zeros(&[2, 3], [2, 3]),
        &["y", "x"],
        vec![Coord::index("x", CoordValues::F64(vec![1.0]))],
    );
    match short {
        Err(LabelError::Shape { what, expected, found }) => {
            assert_eq!(
                (what.as_str(), expected.as_str(), found.as_str()),
                ("coordinate \"x\"", "3 values", "1 values")
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn covariance_and_correlation_by_hand() {
    // a = [1, 2, 3, NaN], b = [2, 4, 7, 1] along time: the pairs (1, 2), (2, 4), (3, 7) count.
    // Demeaned: a -1, 0, 1; b -7/3, -1/3, 8/3; products 7/3, 0, 8/3, sum 5; squares 2 and 114/9.
    let series = |v: [f32; 4]| {
        let data = Lazy::from_ndarray(ArrayD::from_shape_vec(ndarray::IxDyn(&[4]), v.to_vec()).unwrap(), [2]);
        DataArray::new(data, &["time"], vec![]).unwrap()
    };
    let a = series([1.0, 2.0, 3.0, f32::NAN]);
    let b = series([2.0, 4.0, 7.0, 1.0]);
    let value = |d: DataArray| f64::from(d.values().unwrap().iter().copied().next().unwrap());
    let close = |got: f64, want: f64| assert!((got - want).abs() <= 1e-6 * want.abs(), "{got} vs {want}");
    close(value(a.cov(&b, Some(&["time"]), 1).unwrap()), 2.5);
    close(value(a.cov(&b, None, 0).unwrap()), 5.0 / 3.0);
    close(
        value(a.corr(&b, Some(&["time"])).unwrap()),
        5.0 / (2.0f64 * 114.0 / 9.0).sqrt(),
    );
    // one pair: with ddof 1, 0 / 0
    let one = series([f32::NAN, f32::NAN, 3.0, f32::NAN]);
    assert!(value(one.cov(&b, None, 1).unwrap()).is_nan());
    assert_eq!(value(one.cov(&b, None, 0).unwrap()), 0.0);
    assert!(matches!(a.cov(&b, Some(&["x"]), 1), Err(LabelError::NoDim { .. })));
}

#[test]
fn interp_refuses_what_has_no_positions() {
    let da = cube();
    let at = CoordValues::F64(vec![0.5]);
    // names have no positions; numbers are not times; an empty list is an empty dim
    assert!(matches!(da.interp("band", &at), Err(LabelError::Interp { .. })));
    assert!(matches!(da.interp("time", &at), Err(LabelError::Interp { .. })));
    assert!(matches!(da.interp("nope", &at), Err(LabelError::NoDim { .. })));
    // half-way between two x labels: the mean of the neighbours (value = ... + x index)
    let x = f64s(&da, "x");
    let mid = da.interp("x", &CoordValues::F64(vec![(x[1] + x[2]) / 2.0])).unwrap();
    assert_eq!(mid.shape(), &[5, 2, 3, 1]);
    let v = mid.values().unwrap();
    // time 0, band 0, y 1: 10 + 1.5
    assert_eq!(v[[0, 0, 1, 0]], 11.5);
    assert_eq!(f64s(&mid, "x"), vec![(x[1] + x[2]) / 2.0]);
}
