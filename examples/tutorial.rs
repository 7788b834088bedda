//! The seed tutorial's geoscience steps in strata, in the notebook's order: search a STAC API
//! for Landsat scenes, stack them lazily, take the monthly RGB median over the area of
//! interest and drop the empty months, the NDVI-style mean, the luminance median, its
//! gaussian and the threshold mask; written as `.npy`, GeoTIFF and PNG quicklooks, with the
//! coordinates of every output and the execution report.
//!
//! With no source flag it serves the embedded synthetic Landsat catalog on a loopback HTTP
//! server, so the whole cloud path runs offline.
//!
//! Run: `cargo run --release --example tutorial -- [--out DIR] [--backend auto|gpu|cpu]`
//! (`--help` lists every flag; the defaults are the tutorial's values).

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use strata::backend::gpu::BackendChoice;
use strata::exec::Dashboard;
use strata::expr::IoCounters;
use strata::geo::Crs;
use strata::io::{CogReader, Hedging, ObjectStore, StoreOptions};
use strata::job::{launch_slurm, Job, JobCompute, SlurmOptions};
use strata::labelled::{compute_all, to_zarr_all, DataArray, DropHow};
use strata::loopback::landsat::SyntheticLandsat;
use strata::loopback::{Fault, FaultPlan, LatencyProfile, Server};
use strata::output::zarr::ZarrOptions;
use strata::output::{write_bytes, ColorMap, FigureStyle, Stretch};
use strata::stac::{search, ItemCollection, SearchParams};
use strata::stack::{stack, StackOptions};
use strata::{BoundaryMode, ComputeOptions, ExecReport};

/// The tutorial's flags; every default is the notebook's value.
#[derive(Parser, Debug, Clone)]
#[command(about = "The seed tutorial's Landsat analysis, in strata")]
pub struct Args {
    /// a STAC API (default: the embedded synthetic catalog on a loopback server)
    #[arg(long)]
    pub stac_api: Option<String>,
    /// the collection to search
    #[arg(long, default_value = "landsat-c2-l2")]
    pub collection: String,
    /// an ItemCollection file or URL instead of a search (relative hrefs resolve against it)
    #[arg(long)]
    pub items: Option<String>,
    /// west,south,east,north in degrees: the search box and the stack's bounds_latlon
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, default_values_t = [-124.031297, 36.473972, -120.831297, 39.073972])]
    pub bbox: Vec<f64>,
    /// search interval
    #[arg(long, default_value = "2020-01-31/2021-01-31")]
    pub datetime: String,
    /// keep scenes with eo:cloud_cover below this
    #[arg(long, default_value_t = 20.0)]
    pub cloud_lt: f64,
    /// assets to stack
    #[arg(long, value_delimiter = ',', default_values_t = ["red", "green", "blue", "nir08", "swir16"].map(String::from))]
    pub assets: Vec<String>,
    /// pixel size in metres
    #[arg(long, default_value_t = 30.0)]
    pub resolution: f64,
    /// output CRS (default: the first item's)
    #[arg(long)]
    pub epsg: Option<u32>,
    /// centre of the area of interest
    #[arg(long, default_value_t = -122.4312, allow_hyphen_values = true)]
    pub lon: f64,
    /// centre of the area of interest
    #[arg(long, default_value_t = 37.7739)]
    pub lat: f64,
    /// half-width of the area of interest in metres
    #[arg(long, default_value_t = 6000.0)]
    pub buffer: f64,
    /// gaussian sigma over y,x in pixels
    #[arg(long, value_delimiter = ',', default_values_t = [0.0, 0.1])]
    pub sigma: Vec<f64>,
    /// luminance threshold of the mask
    #[arg(long, default_value_t = 0.175)]
    pub threshold: f32,
    /// auto, gpu or cpu
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// where results go
    #[arg(long, default_value = "tutorial-out")]
    pub out: PathBuf,
    /// scenes in the embedded catalog
    #[arg(long, default_value_t = 16)]
    pub scenes: usize,
    /// pixels per side of the embedded catalog's scenes
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    /// write the embedded catalog (GeoTIFFs and items.json) into this folder and stop
    #[arg(long)]
    pub write_catalog: Option<PathBuf>,
    /// no progress bar
    #[arg(long)]
    pub quiet: bool,
    /// compute the five results straight into one Zarr group in this folder (streamed shard
    /// by shard, never held in memory) instead of `.npy` files and quicklooks
    #[arg(long)]
    pub zarr: Option<PathBuf>,
    /// with --zarr: `local` computes in this process; `slurm` writes a job (OUT/job.json) and
    /// runs its shards as one Slurm array of strata-worker tasks
    #[arg(long, default_value = "local")]
    pub executor: String,
    /// `notebook`: resample the stack, then cut the area (the seed's order); `cut-first`: cut
    /// the area, then resample (the same reads and values: the planner moves the cut down)
    #[arg(long, default_value = "notebook")]
    pub order: String,
    /// with --executor slurm: about this many shards (tiles of the area, each holding every
    /// output's pixels of it)
    #[arg(long, default_value_t = 16)]
    pub shards: usize,
    /// the embedded server's delay before each answer, in milliseconds (a WAN round trip)
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// the embedded server's long tail: this share of answers (0 to 1) waits --slow-ms instead
    #[arg(long, default_value_t = 0.0)]
    pub slow_share: f64,
    /// the long tail's delay, in milliseconds
    #[arg(long, default_value_t = 2000)]
    pub slow_ms: u64,
    /// the embedded server stalls this share (0 to 1) of its GeoTIFF answers after sending
    /// their headers: nothing more for --stall-ms, then the connection closes
    #[arg(long, default_value_t = 0.0)]
    pub stall_share: f64,
    /// how long a stalled answer stalls, in milliseconds
    #[arg(long, default_value_t = 60_000)]
    pub stall_ms: u64,
    /// the embedded server sends at most this many bytes per second on each connection (0: no
    /// limit)
    #[arg(long, default_value_t = 0)]
    pub bandwidth: u64,
    /// never send hedged (duplicate) requests for slow reads
    #[arg(long)]
    pub no_hedge: bool,
    /// print what the planner makes of the monthly median (the plan as written, the rewrite
    /// rules that fired, the optimized plan, the tasks and their placement), draw its task
    /// graph before and after the optimizer into OUT/plan-{as-written,optimized}.svg, and stop
    #[arg(long)]
    pub explain: bool,
    /// serve a live dashboard of the computation on this address (e.g. 127.0.0.1:8787) and
    /// open it in a browser while it runs (default: STRATA_DASHBOARD, else none)
    #[arg(long)]
    pub dashboard: Option<String>,
}

/// What a run computed, labelled and in memory.
pub struct Outputs {
    /// (time, band, y, x): monthly nanmedian of red/green/blue over the area, empty months dropped
    pub monthly_rgb: DataArray,
    /// (y, x): `(swir16 - nir08) / (swir16 + nir08)`, nanmean over time
    pub ndvi_mean: DataArray,
    /// (y, x): luminance, nanmedian over time
    pub lum_median: DataArray,
    /// (y, x): the gaussian of `lum_median`
    pub smoothed: DataArray,
    /// (y, x) u8: `smoothed > threshold`
    pub mask: DataArray,
    /// the run's execution report
    pub report: ExecReport,
    /// every read of the run (search, headers, tiles): requests, retries by cause, hedges
    pub io: IoCounters,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Runs the tutorial as `args` say, printing what the notebook shows and writing every output
/// into `args.out`. Returns `None` after `--write-catalog`, and after `--zarr` (the results
/// went to the store, never into memory).
///
/// **Errors**: any search, stack, compute or write error, with its context.
pub fn run(args: &Args) -> Result<Option<Outputs>, Box<dyn Error>> {
    let embedded = SyntheticLandsat {
        scenes: args.scenes,
        size: args.size,
        ..Default::default()
    };
    if let Some(dir) = &args.write_catalog {
        let cat = embedded.write(dir)?;
        println!("wrote {} files and items.json to {}", cat.files.len(), dir.display());
        return Ok(None);
    }
    let backend = match args.backend.as_str() {
        "gpu" => BackendChoice::Gpu,
        "cpu" => BackendChoice::Cpu,
        "auto" => BackendChoice::Auto,
        other => return Err(format!("--backend {other}: expected auto, gpu or cpu").into()),
    };
    if args.bbox.len() != 4 {
        return Err(format!("--bbox needs west,south,east,north, got {:?}", args.bbox).into());
    }
    let bbox = [args.bbox[0], args.bbox[1], args.bbox[2], args.bbox[3]];
    std::fs::create_dir_all(&args.out)?;
    let store = ObjectStore::new(StoreOptions {
        hedging: if args.no_hedge {
            Hedging::off()
        } else {
            Hedging::default()
        },
        ..Default::default()
    })?;

    // catalog = pystac_client.Client.open(...); items = catalog.search(...).item_collection()
    let _server; // keeps the embedded catalog served until the end
    let items = if let Some(src) = &args.items {
        ItemCollection::load(&store, src)?
    } else {
        let api = match &args.stac_api {
            Some(api) => api.clone(),
            None => {
                let server = Server::start(None)?;
                misbehave(&server, args);
                let began = std::time::Instant::now();
                let cat = embedded.serve(&server)?;
                println!(
                    "serving the embedded synthetic Landsat catalog ({} scenes, {} COGs) at {} [{:.1} s]",
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
            bbox: Some(bbox),
            datetime: Some(args.datetime.clone()),
            query: Some(serde_json::json!({"eo:cloud_cover": {"lt": args.cloud_lt}})),
            ..Default::default()
        };
        search(&store, &api, &params)?.items
    };
    println!("There are {} images that fit your search criteria", items.len());

    // stack = stackstac.stack(items, epsg=epsg, assets=[...], bounds_latlon=bbox, resolution=30)
    let options = StackOptions {
        assets: args.assets.clone(),
        epsg: args.epsg,
        bounds_latlon: Some(strata::geo::Bounds::new(bbox[0], bbox[1], bbox[2], bbox[3])),
        resolution: Some((args.resolution, args.resolution)),
        ..Default::default()
    };
    let stack = stack(&items, &options, Arc::new(CogReader::new(store.clone())))?.labelled();
    println!("{stack}");
    println!("projected dataset size (GB): {:.3}", stack.nbytes() as f64 / 1e9);

    // x_utm, y_utm = pyproj.Proj(stack.crs)(lon, lat)
    // area_of_interest = stack.loc[..., y_utm+buffer:y_utm-buffer, x_utm-buffer:x_utm+buffer]
    let epsg = stack.attrs().epsg.ok_or("the stack has no CRS")?;
    let (x, y) = Crs::from_epsg(epsg)?.project_lonlat(args.lon, args.lat)?;
    let b = args.buffer;
    let aoi = stack.loc("y", y + b, y - b)?.loc("x", x - b, x + b)?;

    // rgb = stack.sel(band=['red', 'green', 'blue'])
    // monthly = rgb.resample(time="MS").median("time", keep_attrs=True)
    // area_of_interest = monthly.loc[..., y_utm+buffer:y_utm-buffer, x_utm-buffer:x_utm+buffer]
    // (The notebook's order. strata's planner moves the area's cut below the resample, so the
    // stack's reads cover the area only, as if it had been cut first.)
    let monthly_aoi = match args.order.as_str() {
        "notebook" => stack
            .sel_many("band", &["red", "green", "blue"])?
            .resample("time", "MS")?
            .median()
            .loc("y", y + b, y - b)?
            .loc("x", x - b, x + b)?,
        "cut-first" => aoi
            .sel_many("band", &["red", "green", "blue"])?
            .resample("time", "MS")?
            .median(),
        other => return Err(format!("--order {other}: expected notebook or cut-first").into()),
    };
    println!("{monthly_aoi}");

    // NDVI = (aoi.sel(band='swir16') - aoi.sel(band='nir08')) / (... + ...); av_NDVI = NDVI.mean(dim='time')
    let (swir, nir) = (aoi.sel("band", "swir16")?, aoi.sel("band", "nir08")?);
    let ndvi = (&(&swir - &nir) / &(&swir + &nir)).mean("time")?;

    // lum = 0.2125 red + 0.7154 green + 0.0721 blue; av_lum = lum.median(dim='time')
    let lum = &(&(&aoi.sel("band", "red")? * 0.2125) + &(&aoi.sel("band", "green")? * 0.7154))
        + &(&aoi.sel("band", "blue")? * 0.0721);
    let av_lum = lum.median("time")?;

    // smoothed = gaussian(av_lum, sigma=(0, 0.1), mode='reflect'); smoothed > 0.175
    let smoothed = av_lum.gaussian(&args.sigma, BoundaryMode::Reflect);
    let mask = smoothed.gt(args.threshold);

    // One run for everything: the stack's tiles are read once for all five results.
    let mut opts = ComputeOptions {
        backend,
        progress: if args.quiet {
            strata::exec::Progress::Off
        } else {
            Default::default()
        },
        ..Default::default()
    };
    if let Some(addr) = &args.dashboard {
        opts.dashboard = Some(Dashboard::at(addr.clone()));
    }
    if args.explain {
        println!("{}", monthly_aoi.data().explain(&opts)?);
        std::fs::create_dir_all(&args.out)?;
        for (name, optimize) in [("plan-as-written", false), ("plan-optimized", true)] {
            let drawn = ComputeOptions {
                optimize,
                ..opts.clone()
            };
            let path = monthly_aoi.data().visualize_with(args.out.join(name), &drawn)?;
            println!("drew {}", path.display());
        }
        return Ok(None);
    }
    let began = std::time::Instant::now();
    if let Some(dir) = &args.zarr {
        // Streamed into Zarr: the monthly cube keeps every month of the resample (an empty
        // month is NaN, as xarray's resample gives it; `dropna` needs the values, so a reader
        // applies it: `ds.monthly_rgb.dropna("time", how="all")`).
        let named = [
            monthly_aoi.with_name("monthly_rgb"),
            ndvi.with_name("ndvi_mean"),
            av_lum.with_name("lum_median"),
            smoothed.with_name("smoothed"),
            mask.with_name("mask"),
        ];
        let refs: Vec<&DataArray> = named.iter().collect();
        if args.executor == "slurm" {
            return run_on_slurm(args, dir, &refs, began).map(|()| None);
        }
        if args.executor != "local" {
            return Err(format!("--executor {}: expected local or slurm", args.executor).into());
        }
        let written = to_zarr_all(&refs, dir, &ZarrOptions::default(), &opts)?;
        println!(
            "computed on {} into {} ({} shards) in {:.2} s",
            written.report.backend,
            dir.display(),
            written.shards,
            began.elapsed().as_secs_f64()
        );
        print_reads(&store.stats());
        write_bytes(&args.out.join("report.json"), written.report.to_json().as_bytes())?;
        write_bytes(&args.out.join("report.html"), written.report.to_html().as_bytes())?;
        return Ok(None);
    }
    let (outs, report) = compute_all(&[&monthly_aoi, &ndvi, &av_lum, &smoothed, &mask], &opts)?;
    println!(
        "computed on {} in {:.3} s: task time {:.2} s summed, {:.2} s of it waiting on reads; \
         held at most {:.0} MB, process peak {}",
        report.backend,
        began.elapsed().as_secs_f64(),
        report.task_us as f64 / 1e6,
        report.io.wait_us as f64 / 1e6,
        report.peak_bytes as f64 / 1e6,
        report
            .peak_rss_bytes
            .map_or("unknown".into(), |b| format!("{:.0} MB resident", b as f64 / 1e6)),
    );
    let [monthly_aoi, ndvi, av_lum, smoothed, mask]: [DataArray; 5] = outs.try_into().map_err(|_| "five results")?;

    // data = data.dropna(dim='time', how='all'): in memory now, so this costs a count, and
    // taking the array compacts the kept months where they lie (no second copy of the cube)
    let monthly_rgb = monthly_aoi.into_dropna("time", DropHow::All)?;
    let io = store.stats();
    print_reads(&io);
    let out = Outputs {
        monthly_rgb,
        ndvi_mean: ndvi,
        lum_median: av_lum,
        smoothed,
        mask,
        report,
        io,
    };
    write_outputs(args, &out)?;
    Ok(Some(out))
}

/// Sets the embedded server's latency, bandwidth and stalls from the flags.
fn misbehave(server: &Server, args: &Args) {
    server.set_latency_profile(LatencyProfile {
        typical: std::time::Duration::from_millis(args.latency_ms),
        slow: std::time::Duration::from_millis(args.slow_ms),
        slow_share: args.slow_share,
    });
    server.set_bandwidth(args.bandwidth);
    if args.stall_share > 0.0 {
        let every = (1.0 / args.stall_share).round().max(1.0) as u64;
        let stall = Fault::StallAfterHeaders { millis: args.stall_ms };
        server.set_faults(FaultPlan::new(vec![stall], every).on_paths(".tif"));
    }
}

/// One line on the run's reads, with the retries by cause and the hedges.
fn print_reads(io: &IoCounters) {
    let r = &io.retries;
    println!(
        "reads: {} requests, {:.1} MB; {} retries ({} timeout, {} status, {} network, {} re-signed); \
         {} stalled transfers abandoned; {} hedges, {} won",
        io.requests,
        io.bytes as f64 / 1e6,
        r.total(),
        r.timeout,
        r.status,
        r.network,
        r.resign,
        io.timeouts,
        io.hedges,
        io.hedges_won
    );
}

/// Writes the results as a job (`OUT/job.json`) of about `--shards` tiles and runs it as one
/// Slurm array of `strata-worker` tasks; fails naming the shards that did not finish.
fn run_on_slurm(
    args: &Args,
    dir: &std::path::Path,
    arrays: &[&DataArray],
    began: std::time::Instant,
) -> Result<(), Box<dyn Error>> {
    let (h, w) = {
        let shape = arrays[arrays.len() - 1].shape();
        (shape[shape.len() - 2], shape[shape.len() - 1])
    };
    let per_axis = (args.shards.max(1) as f64).sqrt().ceil() as usize;
    let tile = (h.div_ceil(per_axis).max(1), w.div_ceil(per_axis).max(1));
    let job_path = args.out.join("job.json");
    let compute = JobCompute {
        backend: Some(args.backend.clone()),
        ..Default::default()
    };
    let job = Job::create(&job_path, dir, arrays, tile, compute)?;
    println!(
        "job {} with {} shards of {}x{} pixels: submitting to slurm",
        job_path.display(),
        job.num_shards(),
        tile.0,
        tile.1
    );
    let options = SlurmOptions {
        worker: Some(worker_binary()?),
        ..Default::default()
    };
    let (status, id) = launch_slurm(&job_path, &options)?;
    println!(
        "slurm array {} wrote {} of {} shards into {} in {:.2} s",
        id.unwrap_or_default(),
        status.done.len(),
        status.shards,
        dir.display(),
        began.elapsed().as_secs_f64()
    );
    if !status.to_run().is_empty() {
        return Err(format!(
            "shards {} did not finish ({} failed): see strata-worker status {}",
            strata::job::ranges(&status.to_run()),
            status.failed.len(),
            job_path.display()
        )
        .into());
    }
    Ok(())
}

/// The `strata-worker` executable: `STRATA_WORKER`, else beside this program (or one folder
/// up, as cargo puts examples), else on PATH.
fn worker_binary() -> Result<PathBuf, Box<dyn Error>> {
    if let Ok(p) = std::env::var("STRATA_WORKER") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors().skip(1).take(3) {
        let candidate = dir.join("strata-worker");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Ok(PathBuf::from("strata-worker"))
}

/// Prints each result's summary and writes the `.npy` files, quicklooks, GeoTIFFs,
/// `coords.json`, `report.json` and `report.html` (the run's dashboard, self-contained).
fn write_outputs(args: &Args, o: &Outputs) -> Result<(), Box<dyn Error>> {
    let dir = &args.out;
    let mut values = Vec::new();
    for (name, a) in [
        ("monthly_rgb", &o.monthly_rgb),
        ("ndvi_mean", &o.ndvi_mean),
        ("lum_median", &o.lum_median),
        ("smoothed", &o.smoothed),
    ] {
        let v = a.held().ok_or("computed results hold their values")?;
        let (sum, valid) = v
            .iter()
            .filter(|x| !x.is_nan())
            .fold((0f64, 0usize), |(s, n), &x| (s + f64::from(x), n + 1));
        let mean = sum / valid.max(1) as f64;
        println!(
            "{name}: dims {:?} shape {:?}, mean {mean:.6}, {} NaN",
            a.dims(),
            v.shape(),
            v.len() - valid
        );
        a.to_npy(dir.join(format!("{name}.npy")))?;
        values.push(v);
    }
    let mask = o.mask.mask_values()?;
    println!(
        "mask: {} of {} pixels above {}",
        mask.iter().filter(|&&m| m != 0).count(),
        mask.len(),
        args.threshold
    );
    o.mask.to_npy(dir.join("mask.npy"))?;

    // data.plot.imshow(row='time', rgb='band', robust=True): a grid of panels titled by month,
    // axes in the CRS; av_NDVI.plot.imshow(cmap='RdBu_r'), ...: figures, and bare images
    o.monthly_rgb
        .plot(dir.join("monthly_rgb.png"), &FigureStyle::default())?;
    o.ndvi_mean.clone().with_name("mean NDVI").plot(
        dir.join("ndvi_mean_figure.png"),
        &FigureStyle {
            stretch: Stretch::Range { vmin: -0.3, vmax: 0.3 },
            cmap: ColorMap::RdBuR,
            ..FigureStyle::default()
        },
    )?;
    let ndvi_stretch = Stretch::Range { vmin: -0.3, vmax: 0.3 };
    o.ndvi_mean
        .to_png(dir.join("ndvi_mean.png"), ndvi_stretch, ColorMap::RdBuR)?;
    o.lum_median
        .to_png(dir.join("lum_median.png"), Stretch::ROBUST, ColorMap::GreysR)?;
    o.smoothed
        .to_png(dir.join("smoothed.png"), Stretch::ROBUST, ColorMap::Viridis)?;
    o.mask.to_png(dir.join("mask.png"), Stretch::ROBUST, ColorMap::GreysR)?;

    // da.rio.to_raster(...): CRS, transform and NaN nodata come from each array.
    o.ndvi_mean.to_geotiff(dir.join("ndvi_mean.tif"))?;
    o.lum_median.to_geotiff(dir.join("lum_median.tif"))?;
    o.smoothed.to_geotiff(dir.join("smoothed.tif"))?;
    o.mask.to_geotiff(dir.join("mask.tif"))?;
    let epsg = o.ndvi_mean.attrs().epsg.ok_or("no CRS")?;
    let transform = o.ndvi_mean.transform().ok_or("no x/y coordinates")?;

    let times: Vec<String> = o
        .monthly_rgb
        .times()
        .ok_or("no time")?
        .iter()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .collect();
    let coords = serde_json::json!({
        "epsg": epsg,
        "pixel": "centre",
        "transform": [transform.a, transform.b, transform.c, transform.d, transform.e, transform.f],
        "x": o.ndvi_mean.xs().ok_or("no x")?,
        "y": o.ndvi_mean.ys().ok_or("no y")?,
        "outputs": {
            "monthly_rgb": {"dims": o.monthly_rgb.dims(), "band": ["red", "green", "blue"], "time": times},
            "ndvi_mean": {"dims": o.ndvi_mean.dims()},
            "lum_median": {"dims": o.lum_median.dims()},
            "smoothed": {"dims": o.smoothed.dims()},
            "mask": {"dims": o.mask.dims(), "dtype": "uint8"},
        },
    });
    write_bytes(
        &dir.join("coords.json"),
        serde_json::to_string_pretty(&coords)?.as_bytes(),
    )?;
    write_bytes(&dir.join("report.json"), o.report.to_json().as_bytes())?;
    write_bytes(&dir.join("report.html"), o.report.to_html().as_bytes())?;
    println!("wrote results to {}", dir.display());
    Ok(())
}
