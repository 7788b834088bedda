//! The program a new user wrote against the README (issue: "an API without traps"), as they
//! would write it: stack red and nir08, NDVI, a monthly median, its max over time, a GeoTIFF
//! out. The first test is the program; the others check what it wrote, and the traps it hit.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata::geo::Bounds;
use strata::io::{CogReader, ObjectStore, StoreOptions};
use strata::labelled::DataArray;
use strata::loopback::Server;
use strata::stac::ItemCollection;
use strata::stack::{stack, StackOptions};

/// The user's program: under 40 lines, with no assembly of options the array already knows.
fn ndvi_max(out: &Path) -> Result<DataArray, Box<dyn Error>> {
    let server = Server::start(Some("tests/data/stack".into()))?;
    let mut items = ItemCollection::from_json(&std::fs::read("tests/data/stack/items.json")?, "items.json")?;
    items.rebase_hrefs("", &format!("{}/", server.url()));
    let reader = Arc::new(CogReader::new(ObjectStore::new(StoreOptions::default())?));
    let options = StackOptions {
        assets: vec!["red".into(), "nir08".into()],
        epsg: Some(32610),
        bounds_latlon: Some(Bounds::new(-122.49, 37.76, -122.47, 37.78)),
        resolution: Some((30.0, 30.0)),
        ..Default::default()
    };
    let s = stack(&items, &options, reader)?.labelled();
    let (red, nir) = (s.sel("band", "red")?, s.sel("band", "nir08")?);
    let ndvi = (&nir - &red) / (nir + &red);
    let monthly = ndvi.resample("time", "MS")?.median();
    let peak = monthly.max("time")?.compute()?;
    peak.to_geotiff(out.join("ndvi_max.tif"))?;
    peak.to_npy(out.join("ndvi_max.npy"))?;
    Ok(peak)
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("user-program-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_users_program_writes_a_georeferenced_geotiff_of_its_result() {
    let out = scratch("geotiff");
    let peak = ndvi_max(&out).unwrap();
    let values = peak.values().unwrap();
    assert_eq!(peak.dims(), ["y", "x"]);
    // The GeoTIFF reads back as the same pixels, in the array's CRS and grid, NaN as nodata.
    let path = out.join("ndvi_max.tif").display().to_string();
    let reader = CogReader::new(ObjectStore::new(StoreOptions::default()).unwrap());
    let file = reader.open_blocking(&path).unwrap();
    let header = file.header();
    let geo = header.geo.as_ref().expect("georeferenced");
    assert_eq!(geo.epsg, Some(32610));
    assert_eq!(geo.transform, peak.transform().unwrap());
    assert!(header.nodata.unwrap().is_nan());
    let (h, w) = (values.shape()[0] as u32, values.shape()[1] as u32);
    let window = strata::io::TileWindow {
        level: 0,
        bands: vec![0],
        rows: 0..h,
        cols: 0..w,
    };
    let back = reader.read_window(&path, &window).unwrap();
    for ((i, v), b) in values.indexed_iter().zip(back.iter()) {
        assert!((v.is_nan() && b.is_nan()) || *v as f64 == *b, "{i:?}: {v} vs {b}");
    }
    assert!(values.iter().any(|v| !v.is_nan()), "some pixels have values");
    // The .npy holds the same values.
    let npy: ndarray::ArrayD<f32> = ndarray_npy::read_npy(out.join("ndvi_max.npy")).unwrap();
    assert!(npy.iter().zip(values.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
    // Coordinates come out without matching on enums.
    assert_eq!(peak.xs().unwrap().len(), w as usize);
    assert_eq!(peak.ys().unwrap().len(), h as usize);
}

#[test]
fn operators_compose_owned_borrowed_and_scalar_on_either_side() {
    let data = strata::Array::from_ndarray(ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]).into_dyn(), [1, 2]);
    let x = DataArray::new(data, &["y", "x"], vec![]).unwrap();
    let all = [
        (&x + x.clone()).values().unwrap(),
        (x.clone() + &x).values().unwrap(),
        (1.0 - &x).values().unwrap(),
        (2.0 / x.clone()).values().unwrap(),
        (-&x).values().unwrap(),
        (-(x.clone()) * 3.0).values().unwrap(),
    ];
    let want: [[f32; 4]; 6] = [
        [2.0, 4.0, 6.0, 8.0],
        [2.0, 4.0, 6.0, 8.0],
        [0.0, -1.0, -2.0, -3.0],
        [2.0, 1.0, 2.0 / 3.0, 0.5],
        [-1.0, -2.0, -3.0, -4.0],
        [-3.0, -6.0, -9.0, -12.0],
    ];
    for (got, want) in all.iter().zip(want) {
        assert_eq!(got.iter().copied().collect::<Vec<_>>(), want);
    }
    // The computed result's values are shared, not copied.
    let held = x.compute().unwrap();
    let a = held.shared_values().unwrap();
    let b = held.shared_values().unwrap();
    assert_eq!(a.as_ptr(), b.as_ptr());
}

#[test]
fn writing_without_georeferencing_names_what_is_missing() {
    let data = strata::Array::from_ndarray(ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 2])), [2, 2]);
    let plain = DataArray::new(data.clone(), &["y", "x"], vec![]).unwrap();
    let out = scratch("refused");
    match plain.to_geotiff(out.join("a.tif")) {
        Err(strata::Error::Label(strata::labelled::LabelError::NotGeoreferenced { missing })) => {
            assert!(missing.contains("EPSG"), "{missing}")
        }
        other => panic!("{other:?}"),
    }
    let wrong = DataArray::new(data, &["a", "b"], vec![]).unwrap();
    match wrong.to_png(
        out.join("a.png"),
        strata::output::Stretch::ROBUST,
        strata::output::ColorMap::Viridis,
    ) {
        Err(strata::Error::Label(strata::labelled::LabelError::Layout { dims, .. })) => assert_eq!(dims, ["a", "b"]),
        other => panic!("{other:?}"),
    }
    assert!(std::fs::read_dir(&out).unwrap().next().is_none(), "nothing written");
}

#[test]
fn the_auto_backend_is_quiet_on_a_machine_without_a_gpu() {
    if std::env::var_os("STRATA_QUIET_CHILD").is_some() {
        let x = strata::Array::full(&[64, 64], 1.0, [32, 32]);
        let (got, report) = (&x + 1.0).compute_with(&strata::ComputeOptions::default()).unwrap();
        assert_eq!(got[[0, 0]], 2.0);
        println!("backend: {}", report.backend);
        return;
    }
    // Run this test again in a child process, as a user's program would start: no
    // NODEVICE_SELECT, no XDG_RUNTIME_DIR.
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_auto_backend_is_quiet_on_a_machine_without_a_gpu",
            "--nocapture",
        ])
        .env("STRATA_QUIET_CHILD", "1")
        .env_remove("NODEVICE_SELECT")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("STRATA_BACKEND")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr),
    );
    assert!(child.status.success(), "{stdout}\n{stderr}");
    if !strata::backend::gpu::gpu_device_nodes() {
        assert!(stderr.trim().is_empty(), "the CPU fallback printed: {stderr}");
        assert!(stdout.contains("backend: cpu"), "{stdout}");
    }
    // Forcing the CPU needs nothing from the backend module.
    let options = strata::ComputeOptions {
        backend: strata::Backend::Cpu,
        ..Default::default()
    };
    let (_, report) = strata::Array::full(&[4], 1.0, [4]).compute_with(&options).unwrap();
    assert!(report.backend.contains("cpu"), "{}", report.backend);
}

#[test]
fn a_misspelt_asset_and_swapped_coordinates_say_so() {
    use strata::stack::StackError;
    let items =
        ItemCollection::from_json(&std::fs::read("tests/data/stack/items.json").unwrap(), "items.json").unwrap();
    let reader = Arc::new(CogReader::new(ObjectStore::new(StoreOptions::default()).unwrap()));
    let options = |assets: &[&str], bounds: Bounds| StackOptions {
        assets: assets.iter().map(|a| a.to_string()).collect(),
        epsg: Some(32610),
        bounds_latlon: Some(bounds),
        resolution: Some((30.0, 30.0)),
        ..Default::default()
    };
    let good = Bounds::new(-122.49, 37.76, -122.47, 37.78);
    match stack(&items, &options(&["red", "nir"], good), reader.clone()) {
        Err(StackError::UnknownAsset { asset, items: n, known }) => {
            assert_eq!((asset.as_str(), n), ("nir", items.items.len()));
            assert!(known.iter().any(|k| k == "nir08"), "{known:?}");
        }
        other => panic!("{:?}", other.map(|s| s.shape())),
    }
    let swapped = Bounds::new(37.76, -122.49, 37.78, -122.47);
    match stack(&items, &options(&["red"], swapped), reader.clone()) {
        Err(e @ StackError::LatLonRange { .. }) => assert!(e.to_string().contains("swapped"), "{e}"),
        other => panic!("{:?}", other.map(|s| s.shape())),
    }
    let beyond = Bounds::new(-122.49, 95.0, -122.47, 96.0);
    match stack(&items, &options(&["red"], beyond), reader) {
        Err(e @ StackError::LatLonRange { .. }) => assert!(!e.to_string().contains("swapped"), "{e}"),
        other => panic!("{:?}", other.map(|s| s.shape())),
    }
}

fn small() -> DataArray {
    use strata::labelled::{Coord, CoordValues};
    let v = ndarray::arr2(&[[1.0f32, f32::NAN, 3.0], [4.0, 5.0, 6.0]]).into_dyn();
    DataArray::new(
        strata::Array::from_ndarray(v, [1, 2]),
        &["y", "x"],
        vec![
            Coord::index("y", CoordValues::F64(vec![100.0, 90.0])),
            Coord::index("x", CoordValues::F64(vec![10.0, 20.0, 30.0])),
        ],
    )
    .unwrap()
}

fn flat(a: &DataArray) -> Vec<f32> {
    a.values().unwrap().iter().copied().collect()
}

#[test]
fn where_clip_and_mask_logic_follow_xarray() {
    let x = small();
    let bright = x.gt(2.5);
    assert_eq!(flat(&x.where_(&bright, -1.0)), [-1.0, -1.0, 3.0, 4.0, 5.0, 6.0]);
    let clipped = flat(&x.clip(2.0, 5.0));
    assert_eq!((clipped[0], clipped[2], clipped[5]), (2.0, 3.0, 5.0));
    assert!(clipped[1].is_nan(), "NaN stays NaN");
    assert_eq!(flat(&(&bright & &x.lt(5.5))), [0.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
    assert_eq!(flat(&(&x.gt(5.5) | &x.isnan())), [0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    assert_eq!(flat(&!&bright), [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    // a condition along fewer dims broadcasts by name
    let first_x = x
        .sel("y", 100.0)
        .unwrap()
        .gt(0.0)
        .or(&x.sel("y", 100.0).unwrap().isnan().not());
    let along_x = x.sel("y", 100.0).unwrap().isnan().not().and(&first_x);
    assert_eq!(flat(&x.where_(&along_x, 0.0)), [1.0, 0.0, 3.0, 4.0, 0.0, 6.0]);
}

#[test]
fn an_area_of_exactly_n_pixels_around_a_point_or_in_a_box() {
    use strata::labelled::{Coord, CoordValues, LabelError};
    let v = ndarray::Array::from_shape_fn((4, 5), |(i, j)| (i * 10 + j) as f32).into_dyn();
    let da = DataArray::new(
        strata::Array::from_ndarray(v, [2, 2]),
        &["y", "x"],
        vec![
            Coord::index("y", CoordValues::F64(vec![190.0, 160.0, 130.0, 100.0])),
            Coord::index("x", CoordValues::F64(vec![15.0, 45.0, 75.0, 105.0, 135.0])),
        ],
    )
    .unwrap();
    let a = da.around(76.0, 131.0, 3, 2).unwrap();
    assert_eq!(a.shape(), [2, 3]);
    assert_eq!(a.xs().unwrap(), [45.0, 75.0, 105.0]);
    assert_eq!(a.ys().unwrap(), [160.0, 130.0]);
    assert_eq!(flat(&a), [11.0, 12.0, 13.0, 21.0, 22.0, 23.0]);
    let b = da.within(Bounds::new(40.0, 100.0, 110.0, 190.0), 2, 2).unwrap();
    assert_eq!(
        (b.xs().unwrap(), b.ys().unwrap()),
        (&[45.0, 75.0][..], &[190.0, 160.0][..])
    );
    assert!(matches!(
        da.around(15.0, 190.0, 3, 3),
        Err(LabelError::OutOfRange {
            op: "around",
            index: -1,
            len: 5,
            ..
        })
    ));
}

/// `plot` draws xarray's quicklook: one panel per time step in a grid, one stretch for all,
/// NaN in light grey, a colorbar beside single bands; other layouts are typed errors.
#[test]
fn plot_draws_a_grid_of_panels_with_one_stretch_and_a_colorbar() {
    use chrono::TimeZone;
    use strata::labelled::{Coord, CoordValues, LabelError};
    use strata::output::{ColorMap, FigureStyle, Stretch};
    let dir = scratch("plot");
    // three 40 x 40 steps: all 0, all 1, all NaN
    let v = ndarray::Array3::from_shape_fn((3, 40, 40), |(t, _, _)| [0.0f32, 1.0, f32::NAN][t]).into_dyn();
    let times = (1..=3)
        .map(|m| chrono::Utc.with_ymd_and_hms(2020, m, 1, 0, 0, 0).unwrap())
        .collect();
    let cube = DataArray::new(
        strata::Array::from_ndarray(v, [1, 20, 20]),
        &["time", "y", "x"],
        vec![
            Coord::index("time", CoordValues::Time(times)),
            Coord::index(
                "y",
                CoordValues::F64((0..40).map(|i| 4000.0 - 30.0 * i as f64).collect()),
            ),
            Coord::index(
                "x",
                CoordValues::F64((0..40).map(|i| 500.0 + 30.0 * i as f64).collect()),
            ),
        ],
    )
    .unwrap()
    .with_attrs(strata::labelled::GeoAttrs {
        epsg: Some(32610),
        resolution: Some((30.0, 30.0)),
        ..Default::default()
    });
    let style = FigureStyle {
        stretch: Stretch::Range { vmin: 0.0, vmax: 1.0 },
        cmap: ColorMap::Viridis,
        columns: 2,
        panel_width: 100,
        ..FigureStyle::default()
    };
    let path = dir.join("cube.png");
    cube.plot(&path, &style).unwrap();
    let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut px = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut px).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let (w, h) = (info.width as usize, info.height as usize);
    // two columns of (image + labels) and a colorbar beside them; two rows
    assert!(w > 2 * 100 && h > 2 * 100, "{w} x {h}");
    // Count one colour's pixels in a rectangle of the figure.
    let count = |rgb: [u8; 3], xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
        ys.flat_map(|y| xs.clone().map(move |x| (y, x)))
            .filter(|&(y, x)| px[(y * w + x) * 3..(y * w + x) * 3 + 3] == rgb)
            .count()
    };
    // viridis at 0 and 1 (matplotlib's table), NaN's grey, and the white of the empty cell
    let (low, high, nan, white) = ([68, 1, 84], [253, 231, 37], [230, 230, 230], [255, 255, 255]);
    let bar = w - 80; // the colorbar column
    let (cw, ch) = (bar / 2, h / 2);
    let image = 100 * 100 * 9 / 10;
    assert!(count(low, 0..cw, 0..ch) >= image && count(high, 0..cw, 0..ch) == 0);
    assert!(count(high, cw..bar, 0..ch) >= image && count(low, cw..bar, 0..ch) == 0);
    assert!(count(nan, 0..cw, ch..h) >= image);
    assert_eq!(
        count(white, cw..bar, ch..h),
        (bar - cw) * (h - ch),
        "the fourth cell is empty"
    );
    // the colorbar shows both ends of the map
    assert!(count(low, bar..w, 0..h) > 0 && count(high, bar..w, 0..h) > 0);

    // Two bands are neither a single band nor RGB: a typed error, and no file.
    let two = DataArray::new(
        strata::Array::from_ndarray(ndarray::Array3::<f32>::zeros((2, 4, 4)).into_dyn(), [2, 4, 4]),
        &["band", "y", "x"],
        vec![],
    )
    .unwrap();
    let bad = dir.join("bad.png");
    match two.plot(&bad, &FigureStyle::default()) {
        Err(e) => assert!(matches!(e, strata::Error::Label(LabelError::Layout { .. })), "{e}"),
        Ok(()) => panic!("two bands drew a figure"),
    }
    assert!(!bad.exists());
}

/// One NaN convention: `Array`'s plain reductions skip NaN as `DataArray`'s do (xarray's), and
/// numpy's NaN-propagating forms are asked for by name.
#[test]
fn array_and_data_array_reductions_share_one_nan_convention() {
    use strata::ReduceOp;
    // [[1, NaN, 3], [4, 5, 6]]: the mean over y skips the NaN, numpy's propagates it
    let da = small();
    let arr = da.data().clone();
    let want = [2.5f32, 5.0, 4.5];
    assert_eq!(flat(&da.mean("y").unwrap()), want);
    assert_eq!(arr.mean(0).compute().unwrap().into_raw_vec_and_offset().0, want);
    assert_eq!(arr.nanmean(0).compute().unwrap().into_raw_vec_and_offset().0, want);
    let numpy = arr.reduce(ReduceOp::Mean, 0).compute().unwrap();
    assert!(numpy[[1]].is_nan() && numpy[[0]] == 2.5 && numpy[[2]] == 4.5);
    let labelled = da.reduce(ReduceOp::Mean, &["y"]).unwrap();
    assert!(flat(&labelled)[1].is_nan());
    for (plain, skipping) in [
        (arr.sum(0), [5.0f32, 5.0, 9.0]),
        (arr.max(0), [4.0, 5.0, 6.0]),
        (arr.min(0), [1.0, 5.0, 3.0]),
        (arr.median(0), [2.5, 5.0, 4.5]),
    ] {
        assert_eq!(plain.compute().unwrap().into_raw_vec_and_offset().0, skipping);
    }
}
