//! Reads a stack window through strata, once per href base (an HTTP server, or a local folder
//! for the no-network decode ceiling), and prints median timings. Run by
//! `scripts/bench_stack.sh`, which makes the data, starts the servers and runs the peers.
//!
//! `cargo run --release --example stack_bench -- --items target/bench-stack/items.json \
//!     --window 545010,4170990,575730,4201710 --base http://127.0.0.1:PORT --base target/bench-stack`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use strata::exec::Progress;
use strata::geo::Bounds;
use strata::io::{CogReader, ObjectStore, StoreOptions};
use strata::stac::ItemCollection;
use strata::stack::{stack, StackOptions};
use strata::ComputeOptions;

/// Time strata reading a (time, band, y, x) window of a STAC stack.
#[derive(Parser)]
struct Args {
    /// ItemCollection whose asset hrefs are file names relative to each base
    #[arg(long)]
    items: PathBuf,
    /// where the files are: an http(s) URL or a local folder; repeat to measure several
    #[arg(long, required = true)]
    base: Vec<String>,
    /// window bounds in the stack's CRS: minx,miny,maxx,maxy
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true, required = true)]
    window: Vec<f64>,
    /// output CRS
    #[arg(long, default_value_t = 32610)]
    epsg: u32,
    /// asset names
    #[arg(long, value_delimiter = ',', default_value = "red,green,blue,nir08,swir16")]
    assets: Vec<String>,
    /// timed runs per base (the median is reported)
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// HTTP requests in flight per host
    #[arg(long, default_value_t = 32)]
    requests_per_host: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let template = ItemCollection::from_json(&std::fs::read(&args.items)?, &args.items.display().to_string())?;
    let w = &args.window;
    if w.len() != 4 {
        return Err(format!("--window needs minx,miny,maxx,maxy, got {} numbers", w.len()).into());
    }
    for base in &args.base {
        let mut items = template.clone();
        for item in &mut items.items {
            for asset in item.assets.values_mut() {
                asset.href = format!("{}/{}", base.trim_end_matches('/'), asset.href);
            }
        }
        let options = StackOptions {
            assets: args.assets.clone(),
            epsg: Some(args.epsg),
            bounds: Some(Bounds::new(w[0], w[1], w[2], w[3])),
            resolution: Some((30.0, 30.0)),
            ..Default::default()
        };
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..args.repeat {
            // A fresh reader per run: headers are fetched again, as a new dask compute does.
            let store = ObjectStore::new(StoreOptions {
                max_requests_per_host: args.requests_per_host,
                ..Default::default()
            })?;
            let reader = Arc::new(CogReader::new(store.clone()));
            let t = Instant::now();
            let s = stack(&items, &options, reader)?;
            let compute = ComputeOptions {
                progress: Progress::Off,
                ..Default::default()
            };
            let (out, _) = s.array.compute_with(&compute)?;
            times.push(t.elapsed().as_secs_f64());
            let valid = out.iter().filter(|v| !v.is_nan()).count();
            last = Some((out.shape().to_vec(), valid, store.stats()));
        }
        let (shape, valid, stats) = last.expect("at least one run");
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let pixels: usize = shape.iter().product();
        let report = serde_json::json!({
            "peer": "strata", "base": if base.starts_with("http") { "http" } else { "local" },
            "shape": shape, "valid_pixels": valid, "median_s": median, "times_s": times,
            "mpix_per_s": pixels as f64 / median / 1e6, "requests_per_run": stats.requests,
            "bytes_per_run": stats.bytes,
        });
        println!("{report}");
    }
    Ok(())
}
