//! Serves a folder over HTTP on loopback with strata's test server (Range reads, optional
//! latency), so peers (stackstac, async-tiff) and strata read the same files from the same
//! server in benchmarks. Prints the URL, then serves until stdin closes.
//!
//! `cargo run --release --example serve -- --root target/bench-stack --latency-ms 40`

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use strata::loopback::Server;

/// Serve a folder on 127.0.0.1.
#[derive(Parser)]
struct Args {
    /// folder to serve
    #[arg(long)]
    root: PathBuf,
    /// delay before every answer, in milliseconds
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server = Server::start(Some(args.root))?;
    server.set_latency(Duration::from_millis(args.latency_ms));
    println!("{}", server.url());
    // Serve until whoever started us closes our stdin.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    let log = server.log();
    eprintln!("served {} requests", log.len());
    Ok(())
}
