//! The seed tutorial's geoscience steps in strata, end to end: search a STAC API for Landsat
//! scenes, stack them lazily, cut the area of interest, then the monthly RGB nanmedian, the
//! NDVI-style mean, the luminance median, its gaussian and the threshold mask, written as
//! `.npy`, GeoTIFF and PNG quicklooks.
//!
//! With no source flag it serves the embedded synthetic Landsat catalog on a loopback HTTP
//! server, so the whole cloud path runs offline.
//!
//! Run: `cargo run --release --example tutorial -- [--out DIR] [--backend auto|gpu|cpu]`
//!
//! Work in progress (issue 5): the labelled-array API (`sel`, `loc`, `resample`, `dropna`)
//! is written out here by hand from the stack's coordinates.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Datelike;
use clap::Parser;
use ndarray::{ArrayD, Axis};
use strata::backend::gpu::BackendChoice;
use strata::geo::{Affine, Crs};
use strata::io::{CogReader, ObjectStore, StoreOptions};
use strata::loopback::landsat::SyntheticLandsat;
use strata::loopback::Server;
use strata::output::{
    write_geotiff, write_npy, write_npy_mask, write_png_band, write_png_mask, write_png_rgb_grid, ColorMap,
    GeoTiffOptions, Stretch,
};
use strata::stac::{search, ItemCollection, SearchParams};
use strata::stack::{stack, StackOptions};
use strata::{compute_many, Array, BoundaryMode, ComputeOptions, ReduceOp, Slice};

#[derive(Parser, Debug)]
#[command(about = "The seed tutorial's Landsat analysis, in strata")]
struct Args {
    /// a STAC API (default: the embedded synthetic catalog on a loopback server)
    #[arg(long)]
    stac_api: Option<String>,
    /// the collection to search
    #[arg(long, default_value = "landsat-c2-l2")]
    collection: String,
    /// an ItemCollection file or URL instead of a search
    #[arg(long)]
    items: Option<String>,
    /// west,south,east,north in degrees
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, default_values_t = [-124.031297, 36.473972, -120.831297, 39.073972])]
    bbox: Vec<f64>,
    /// search interval
    #[arg(long, default_value = "2020-01-31/2021-01-31")]
    datetime: String,
    /// keep scenes with eo:cloud_cover below this
    #[arg(long, default_value_t = 20.0)]
    cloud_lt: f64,
    /// assets to stack
    #[arg(long, value_delimiter = ',', default_values_t = ["red", "green", "blue", "nir08", "swir16"].map(String::from))]
    assets: Vec<String>,
    /// pixel size in metres
    #[arg(long, default_value_t = 30.0)]
    resolution: f64,
    /// output CRS (default: the first item's)
    #[arg(long)]
    epsg: Option<u32>,
    /// centre of the area of interest
    #[arg(long, default_value_t = -122.4312, allow_hyphen_values = true)]
    lon: f64,
    /// centre of the area of interest
    #[arg(long, default_value_t = 37.7739)]
    lat: f64,
    /// half-width of the area of interest in metres
    #[arg(long, default_value_t = 6000.0)]
    buffer: f64,
    /// gaussian sigma over y,x in pixels
    #[arg(long, value_delimiter = ',', default_values_t = [0.0, 0.1])]
    sigma: Vec<f64>,
    /// luminance threshold of the mask
    #[arg(long, default_value_t = 0.175)]
    threshold: f32,
    /// auto, gpu or cpu
    #[arg(long, default_value = "auto")]
    backend: String,
    /// where results go
    #[arg(long, default_value = "tutorial-out")]
    out: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let store = ObjectStore::new(StoreOptions::default())?;

    // catalog = pystac_client.Client.open(...); catalog.search(...).item_collection()
    let _server; // keeps the embedded catalog served until the end
    let items = if let Some(src) = &args.items {
        ItemCollection::load(&store, src)?
    } else {
        let api = match &args.stac_api {
            Some(api) => api.clone(),
            None => {
                let server = Server::start(None)?;
                let began = std::time::Instant::now();
                let cat = SyntheticLandsat::default().serve(&server)?;
                println!(
                    "serving the embedded synthetic Landsat catalog ({} scenes, {} files) at {} [{:.1} s]",
                    cat.items.len(),
                    cat.files.len(),
                    server.url(),
                    began.elapsed().as_secs_f64()
                );
                let url = server.url();
                _server = server;
                url
            }
        };
        let params = SearchParams {
            collections: vec![args.collection.clone()],
            bbox: Some([args.bbox[0], args.bbox[1], args.bbox[2], args.bbox[3]]),
            datetime: Some(args.datetime.clone()),
            query: Some(serde_json::json!({"eo:cloud_cover": {"lt": args.cloud_lt}})),
            ..Default::default()
        };
        search(&store, &api, &params)?.items
    };
    println!("{} items found", items.items.len());

    // stack = stackstac.stack(items, assets=[...], resolution=30)
    let options = StackOptions {
        assets: args.assets.clone(),
        epsg: args.epsg,
        resolution: Some((args.resolution, args.resolution)),
        ..Default::default()
    };
    let s = stack(&items, &options, Arc::new(CogReader::new(store)))?;
    println!("{}\nprojected size: {:.2} GB", s.array, s.nbytes() as f64 / 1e9);

    // x, y = pyproj.Proj(crs)(lon, lat); aoi = stack.loc[..., y+buffer:y-buffer, x-buffer:x+buffer]
    let mut centre = [(args.lon, args.lat)];
    Crs::from_epsg(4326)?.project(&Crs::from_epsg(s.spec.epsg)?, &mut centre)?;
    let (x, y) = centre[0];
    let cols = index_range(&s.coords.x, x - args.buffer, x + args.buffer);
    let rows = index_range(&s.coords.y, y + args.buffer, y - args.buffer);
    let band = |name: &str| -> Result<isize, String> {
        s.coords
            .band
            .iter()
            .position(|b| b == name)
            .map(|i| i as isize)
            .ok_or(format!("no band {name}"))
    };
    let aoi = s.array.slice(&[
        Slice::all(),
        Slice::all(),
        Slice::range(rows.start as isize, rows.end as isize),
        Slice::range(cols.start as isize, cols.end as isize),
    ]);
    println!(
        "area of interest: {} x {} pixels around ({x:.0}, {y:.0})",
        rows.len(),
        cols.len()
    );
    let pick = |name: &str| -> Result<Array, String> { Ok(aoi.index(1, band(name)?)) };
    let (red, green, blue) = (pick("red")?, pick("green")?, pick("blue")?);

    // rgb.resample(time="MS").median("time", keep_attrs=True)
    let first = s.coords.time.first().ok_or("no scenes")?;
    let month = |t: &chrono::DateTime<chrono::Utc>| {
        (t.year() * 12 + t.month0() as i32 - (first.year() * 12 + first.month0() as i32)) as usize
    };
    let labels: Vec<usize> = s.coords.time.iter().map(month).collect();
    let months = labels.iter().max().map_or(0, |m| m + 1);
    let rgb = Array::stack(&[red.clone(), green.clone(), blue.clone()], 1);
    let monthly = rgb.group_reduce(ReduceOp::NanMedian, 0, &labels, months);
    // ndvi = (swir16 - nir08) / (swir16 + nir08), as the tutorial writes it; mean over time
    let (nir, swir) = (pick("nir08")?, pick("swir16")?);
    let ndvi = ((&swir - &nir) / (&swir + &nir)).nanmean(0);
    // luminance, its median over time, a gaussian, a threshold
    let lum = (&(&(&red * 0.2125) + &(&green * 0.7154)) + &(&blue * 0.0721)).nanmedian(0);
    let smoothed = lum.gaussian(&args.sigma, BoundaryMode::Reflect);
    let mask = smoothed.gt(args.threshold);

    let backend = match args.backend.as_str() {
        "gpu" => BackendChoice::Gpu,
        "cpu" => BackendChoice::Cpu,
        _ => BackendChoice::Auto,
    };
    let opts = ComputeOptions {
        backend,
        ..Default::default()
    };
    let began = std::time::Instant::now();
    let (outs, report) = compute_many(&[&monthly, &ndvi, &lum, &smoothed, &mask], &opts)?;
    println!(
        "computed on {} in {:.2} s",
        report.backend,
        began.elapsed().as_secs_f64()
    );
    let [monthly, ndvi, lum, smoothed, mask]: [ArrayD<f32>; 5] = outs.try_into().map_err(|_| "five results")?;

    // .dropna("time", how="all")
    let kept: Vec<usize> = (0..monthly.shape()[0])
        .filter(|&m| monthly.index_axis(Axis(0), m).iter().any(|v| !v.is_nan()))
        .collect();
    let monthly = monthly.select(Axis(0), &kept);
    let mask_u8 = mask.mapv(|v| v as u8);
    for (name, a) in [
        ("monthly_rgb", &monthly),
        ("ndvi_mean", &ndvi),
        ("lum_median", &lum),
        ("smoothed", &smoothed),
    ] {
        let valid: Vec<f32> = a.iter().copied().filter(|v| !v.is_nan()).collect();
        let mean = valid.iter().map(|&v| f64::from(v)).sum::<f64>() / valid.len().max(1) as f64;
        println!(
            "{name}: shape {:?}, mean {mean:.4}, {} NaN",
            a.shape(),
            a.len() - valid.len()
        );
        write_npy(&args.out.join(format!("{name}.npy")), a)?;
    }
    println!(
        "mask: {} of {} pixels above {}",
        mask_u8.iter().filter(|&&m| m != 0).count(),
        mask_u8.len(),
        args.threshold
    );
    write_npy_mask(&args.out.join("mask.npy"), &mask_u8)?;

    // Quicklooks and GeoTIFFs of the area of interest.
    let t = s.spec.transform();
    let aoi_t = Affine::north_up(t.c + cols.start as f64 * t.a, t.f + rows.start as f64 * t.e, t.a, -t.e);
    let geo = GeoTiffOptions {
        nodata: Some(f64::NAN),
        ..GeoTiffOptions::new(aoi_t, s.spec.epsg)
    };
    write_png_rgb_grid(
        &args.out.join("monthly_rgb.png"),
        monthly.view().into_dimensionality()?,
        Stretch::ROBUST,
    )?;
    write_png_band(
        &args.out.join("ndvi_mean.png"),
        plane(&ndvi)?,
        Stretch::ROBUST,
        ColorMap::RdBuR,
    )?;
    write_png_band(
        &args.out.join("lum_median.png"),
        plane(&lum)?,
        Stretch::ROBUST,
        ColorMap::GreysR,
    )?;
    write_png_band(
        &args.out.join("smoothed.png"),
        plane(&smoothed)?,
        Stretch::ROBUST,
        ColorMap::Viridis,
    )?;
    write_png_mask(&args.out.join("mask.png"), mask_u8.view().into_dimensionality()?)?;
    write_geotiff(&args.out.join("ndvi_mean.tif"), &ndvi, &geo)?;
    write_geotiff(&args.out.join("smoothed.tif"), &smoothed, &geo)?;
    write_geotiff(
        &args.out.join("mask.tif"),
        &mask_u8,
        &GeoTiffOptions {
            nodata: None,
            ..geo.clone()
        },
    )?;
    // Coordinates of every output: pixel centres of the area of interest, month starts.
    let month_start = |m: usize| {
        let k = first.year() * 12 + first.month0() as i32 + m as i32;
        format!("{:04}-{:02}-01T00:00:00Z", k.div_euclid(12), k.rem_euclid(12) + 1)
    };
    let coords = serde_json::json!({
        "epsg": s.spec.epsg,
        "pixel": "centre",
        "transform": [aoi_t.a, aoi_t.b, aoi_t.c, aoi_t.d, aoi_t.e, aoi_t.f],
        "x": &s.coords.x[cols.clone()],
        "y": &s.coords.y[rows.clone()],
        "outputs": {
            "monthly_rgb": {"dims": ["time", "band", "y", "x"], "band": ["red", "green", "blue"],
                            "time": kept.iter().map(|&m| month_start(m)).collect::<Vec<_>>()},
            "ndvi_mean": {"dims": ["y", "x"]},
            "lum_median": {"dims": ["y", "x"]},
            "smoothed": {"dims": ["y", "x"]},
            "mask": {"dims": ["y", "x"], "dtype": "uint8"},
        },
    });
    std::fs::write(args.out.join("coords.json"), serde_json::to_string_pretty(&coords)?)?;
    std::fs::write(args.out.join("report.json"), report.to_json())?;
    println!("wrote results to {}", args.out.display());
    Ok(())
}

/// A 2-D view of a `(y, x)` result.
fn plane(a: &ArrayD<f32>) -> Result<ndarray::ArrayView2<'_, f32>, ndarray::ShapeError> {
    a.view().into_dimensionality()
}

/// Indices of the coordinates between `from` and `to` inclusive, in the coordinates' order
/// (ascending x, descending y), as xarray's label slices select.
fn index_range(coords: &[f64], from: f64, to: f64) -> std::ops::Range<usize> {
    let (lo, hi) = (from.min(to), from.max(to));
    let inside: Vec<usize> = (0..coords.len()).filter(|&i| (lo..=hi).contains(&coords[i])).collect();
    match (inside.first(), inside.last()) {
        (Some(&a), Some(&b)) => a..b + 1,
        _ => 0..0,
    }
}
