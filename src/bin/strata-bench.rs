//! `strata-bench`: every GPU kernel family and the seed tutorial's three pipelines on
//! procedural data, on the GPU and on the CPU backend, in one run; the GPU's results are
//! checked against the CPU's and the run fails when they differ.
//!
//! ```text
//! cargo run --release --bin strata-bench -- --time 64 --height 2048 --width 2048 [--json out.json]
//! ```
//!
//! Per workload and backend it prints the median wall time of `--repeat` runs, input elements
//! per second, bytes moved per second (inputs read plus the result written, once), and for the
//! GPU per run: host time writing uploads into staging, the completion thread's time waiting
//! for the device, host time copying results out (summed over threads), host bytes copied per
//! uploaded byte, blocking waits by worker threads, and submissions per task.

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use serde::Serialize;
use strata::backend::gpu::{shared_context, BackendChoice, TransferStats};
use strata::exec::Progress;
use strata::{Array, BoundaryMode, ComputeOptions, MovingWindow, ReduceOp, Slice};

#[derive(Parser, Debug, Serialize)]
#[command(about = "GPU kernels and tutorial pipelines against the CPU backend, on procedural data")]
struct Args {
    /// time steps of the cube
    #[arg(long, default_value_t = 32)]
    time: usize,
    /// rows
    #[arg(long, default_value_t = 1024)]
    height: usize,
    /// columns
    #[arg(long, default_value_t = 1024)]
    width: usize,
    /// spatial chunk edge (blocks hold the whole time axis)
    #[arg(long, default_value_t = 512)]
    chunk: usize,
    /// timed runs per workload and backend, after an untimed one (the median is reported)
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// backends to run: gpu, cpu (the check needs both; anything else is refused)
    #[arg(long, value_delimiter = ',', value_parser = ["gpu", "cpu"], default_values_t = vec!["gpu".to_string(), "cpu".to_string()])]
    backends: Vec<String>,
    /// run only these workloads (names as printed)
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// worker threads (default: all cores)
    #[arg(long)]
    threads: Option<usize>,
    /// largest allowed |gpu - cpu| / max(1, |cpu|)
    #[arg(long, default_value_t = 1e-5)]
    tolerance: f64,
    /// also write the results as JSON to this file (`-` for stdout)
    #[arg(long)]
    json: Option<PathBuf>,
    /// time each GPU kernel by the device's own clock during the untimed first run (timestamp
    /// queries; the timed runs are not profiled) and print where the device time went
    #[arg(long)]
    profile: bool,
}

/// One workload: an expression and what it reads.
struct Workload {
    name: &'static str,
    kind: &'static str,
    expr: Array,
    /// elements read from the inputs
    elements: u64,
}

#[derive(Serialize)]
struct Timing {
    workload: &'static str,
    kind: &'static str,
    backend: String,
    median_s: f64,
    runs_s: Vec<f64>,
    melem_per_s: f64,
    gb_per_s: f64,
    upload_ms: f64,
    device_ms: f64,
    download_ms: f64,
    upload_mb: f64,
    download_mb: f64,
    /// host bytes copied per byte uploaded (at most 1 when producers write into staging)
    host_copies_per_byte: f64,
    /// blocking device waits by worker threads, per run
    worker_waits: f64,
    /// command buffers submitted per task, per run
    submissions_per_task: f64,
    /// tasks that ran on the device, per run
    device_tasks: f64,
    /// the device's own time by kernel in the untimed first run (`--profile`, GPU only)
    device_profile: Option<strata::backend::gpu::DeviceProfile>,
}

#[derive(Serialize)]
struct Check {
    workload: &'static str,
    max_abs: f64,
    max_rel: f64,
    nan_mismatches: usize,
    /// every value bit for bit the CPU's (NaN where the CPU has NaN)
    bitwise: bool,
    pass: bool,
}

#[derive(Serialize)]
struct Output<'a> {
    adapter: Option<strata::backend::gpu::AdapterReport>,
    threads: usize,
    args: &'a Args,
    timings: Vec<Timing>,
    checks: Vec<Check>,
}

/// A (time, y, x) band with cloud holes: NaN in discs that move with time, a few pixels NaN
/// in every scene, values like surface reflectance.
fn band(args: &Args, k: usize) -> ArrayD<f32> {
    let (t, h, w) = (args.time, args.height, args.width);
    let mut data = vec![0f32; t * h * w];
    data.par_chunks_mut(w).enumerate().for_each(|(row, out)| {
        let (ti, y) = (row / h, row % h);
        let (cy, cx) = ((ti * 97 + k * 13) % h.max(1), (ti * 61) % w.max(1));
        for (x, v) in out.iter_mut().enumerate() {
            let dy = y as f64 - cy as f64;
            let dx = x as f64 - cx as f64;
            let cloud = dy * dy + dx * dx < (h.min(w) as f64 / 6.0).powi(2);
            let dead = (x * 7 + y * 3) % 1009 == 0;
            *v = if cloud || dead {
                f32::NAN
            } else {
                let s = ((x as f32 * 0.013 + k as f32).sin() * (y as f32 * 0.007).cos()) * 0.15;
                0.2 + s + ((ti * 31 + x * 17 + y * 11 + k) % 101) as f32 * 1e-3
            };
        }
    });
    ArrayD::from_shape_vec(IxDyn(&[t, h, w]), data).expect("shape")
}

/// `a` cut to whole windows of `k` along its last two axes (itself at the usual sizes).
fn whole_windows(a: &Array, k: usize) -> Array {
    let shape = a.shape();
    let (h, w) = (shape[1], shape[2]);
    if h % k == 0 && w % k == 0 {
        return a.clone();
    }
    let upto = |n: usize| Slice::new(None, Some((n - n % k) as isize), 1);
    a.slice(&[Slice::all(), upto(h), upto(w)])
}

fn workloads(args: &Args) -> Vec<Workload> {
    let (t, h, w) = (args.time, args.height, args.width);
    let chunks = [t, args.chunk.min(h).max(1), args.chunk.min(w).max(1)];
    let cube = |k| Array::from_ndarray(band(args, k), chunks);
    let (red, green, blue, nir, swir) = (cube(0), cube(1), cube(2), cube(3), cube(4));
    let plane = |a: &Array| a.index(0, 0);
    let (a, b, c) = (plane(&red), plane(&green), plane(&blue));
    let months: Vec<usize> = (0..t).map(|i| i * 12 / t.max(1)).collect();
    let px = (h * w) as u64;
    let cube_px = (t * h * w) as u64;
    let lum = (&(&(&red * 0.2125) + &(&green * 0.7154)) + &(&blue * 0.0721)).nanmedian(0);
    vec![
        Workload {
            name: "bandmath",
            kind: "kernel",
            expr: &(&(&(&a - &b) / &(&a + &b)) * &c) + 0.5,
            elements: 3 * px,
        },
        Workload {
            name: "nanmedian",
            kind: "kernel",
            expr: red.nanmedian(0),
            elements: cube_px,
        },
        Workload {
            name: "nanmean",
            kind: "kernel",
            expr: red.nanmean(0),
            elements: cube_px,
        },
        Workload {
            name: "monthly-nanmedian",
            kind: "kernel",
            expr: red.group_reduce(ReduceOp::NanMedian, 0, &months, 12),
            elements: cube_px,
        },
        Workload {
            name: "monthly-nanmean",
            kind: "kernel",
            expr: red.group_reduce(ReduceOp::NanMean, 0, &months, 12),
            elements: cube_px,
        },
        Workload {
            name: "coarsen-nanmean",
            kind: "kernel",
            expr: whole_windows(&red, 4).coarsen(ReduceOp::NanMean, &[1, 4, 4]),
            elements: cube_px,
        },
        Workload {
            name: "gaussian",
            kind: "kernel",
            expr: a.gaussian(&[2.0, 2.0], BoundaryMode::Reflect),
            elements: px,
        },
        Workload {
            name: "threshold",
            kind: "kernel",
            expr: a.gt(0.25),
            elements: px,
        },
        Workload {
            name: "monthly-rgb",
            kind: "pipeline",
            expr: Array::stack(&[red.clone(), green.clone(), blue.clone()], 1).group_reduce(
                ReduceOp::NanMedian,
                0,
                &months,
                12,
            ),
            elements: 3 * cube_px,
        },
        Workload {
            name: "ndvi-nanmean",
            kind: "pipeline",
            expr: ((&swir - &nir) / (&swir + &nir)).nanmean(0),
            elements: 2 * cube_px,
        },
        Workload {
            name: "ndvi-fill-smooth-max",
            kind: "pipeline",
            // the greenest point of each pixel's gap-filled, 3-scene-smoothed NDVI series
            expr: ((&swir - &nir) / (&swir + &nir))
                .ffill(0, None)
                .rolling(ReduceOp::NanMean, 0, MovingWindow::trailing(3))
                .nanmax(0),
            elements: 2 * cube_px,
        },
        Workload {
            name: "lum-median-gauss-mask",
            kind: "pipeline",
            expr: lum.gaussian(&[0.0, 1.0], BoundaryMode::Reflect).gt(0.2),
            elements: 3 * cube_px,
        },
    ]
}

fn options(args: &Args, backend: &str) -> ComputeOptions {
    ComputeOptions {
        backend: if backend == "gpu" {
            BackendChoice::Gpu
        } else {
            BackendChoice::Cpu
        },
        threads: args.threads,
        progress: Progress::Off,
        ..Default::default()
    }
}

fn compare(workload: &'static str, gpu: &ArrayD<f32>, cpu: &ArrayD<f32>, tolerance: f64) -> Check {
    let (mut max_abs, mut max_rel, mut nan_mismatches, mut pass) = (0f64, 0f64, 0usize, gpu.shape() == cpu.shape());
    let bitwise = pass
        && gpu
            .iter()
            .zip(cpu.iter())
            .all(|(g, c)| g.to_bits() == c.to_bits() || (g.is_nan() && c.is_nan()));
    for (&g, &c) in gpu.iter().zip(cpu.iter()) {
        if g.is_nan() || c.is_nan() {
            nan_mismatches += usize::from(g.is_nan() != c.is_nan());
            continue;
        }
        let d = (f64::from(g) - f64::from(c)).abs();
        max_abs = max_abs.max(d);
        max_rel = max_rel.max(d / f64::from(c).abs().max(1e-30));
        pass &= d <= tolerance * f64::from(c).abs().max(1.0);
    }
    Check {
        workload,
        max_abs,
        max_rel,
        nan_mismatches,
        bitwise,
        pass: pass && nan_mismatches == 0,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let adapter = if args.backends.iter().any(|b| b == "gpu") {
        Some(shared_context()?)
    } else {
        None
    };
    let threads = args.threads.unwrap_or_else(rayon::current_num_threads);
    match &adapter {
        Some(ctx) => {
            let a = &ctx.adapter;
            println!("adapter: {} ({}, {}, {})", a.name, a.backend, a.device_type, a.driver);
        }
        None => println!("adapter: none (CPU only)"),
    }
    println!(
        "data: {} time steps of {}x{} f32, {} MiB per band, blocks of {}x{} pixels by the whole time axis, {threads} threads",
        args.time,
        args.height,
        args.width,
        (args.time * args.height * args.width * 4) >> 20,
        args.chunk,
        args.chunk
    );
    let zero = TransferStats::default();
    let mut timings = Vec::new();
    let mut checks = Vec::new();
    println!(
        "{:<24}{:<6}{:>10}{:>10}{:>8}{:>11}{:>12}{:>13}{:>9}{:>7}{:>7}",
        "workload",
        "on",
        "median s",
        "Melem/s",
        "GB/s",
        "upload ms",
        "device ms",
        "download ms",
        "copies/B",
        "waits",
        "subm/t"
    );
    for w in workloads(&args) {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == w.name) {
            continue;
        }
        let mut results: Vec<(String, ArrayD<f32>)> = Vec::new();
        for backend in &args.backends {
            let opts = options(&args, backend);
            // An untimed first run compiles the kernels; its result is the one checked, and
            // with --profile its kernels are timed on the device (compiling is host work).
            let profiling = match &adapter {
                Some(c) if args.profile && backend == "gpu" => {
                    c.settle();
                    if !c.set_profiling(true) {
                        eprintln!("--profile: {} has no timestamp queries", c.adapter.name);
                    }
                    Some((c, c.profile()))
                }
                _ => None,
            };
            let (out, _) = w.expr.compute_with(&opts)?;
            let device_profile = profiling.map(|(c, before)| {
                c.settle();
                c.set_profiling(false);
                c.profile().since(&before)
            });
            let mut runs = Vec::new();
            let mut moved = Vec::new();
            let mut tasks = Vec::new();
            for _ in 0..args.repeat.max(1) {
                if let Some(c) = &adapter {
                    c.settle();
                }
                let before = adapter.as_ref().map_or(zero, |c| c.transfer_stats());
                let tasks_before = adapter.as_ref().map_or(0, |c| c.device_tasks());
                let began = Instant::now();
                let (_, report) = w.expr.compute_with(&opts)?;
                runs.push(began.elapsed().as_secs_f64());
                if let Some(c) = &adapter {
                    c.settle();
                }
                moved.push(adapter.as_ref().map_or(zero, |c| c.transfer_stats().since(&before)));
                let on_device = adapter.as_ref().map_or(0, |c| c.device_tasks()) - tasks_before;
                tasks.push((report.tasks.len() as f64, on_device as f64));
            }
            let mut sorted = runs.clone();
            sorted.sort_by(f64::total_cmp);
            let median = sorted[sorted.len() / 2];
            let per_run = |f: fn(&TransferStats) -> u64| moved.iter().map(f).sum::<u64>() as f64 / moved.len() as f64;
            let (up, comp, down) = if backend == "gpu" {
                (
                    per_run(|s| s.upload_ns) / 1e6,
                    per_run(|s| s.device_wait_ns) / 1e6,
                    per_run(|s| s.download_ns) / 1e6,
                )
            } else {
                (0.0, 0.0, 0.0)
            };
            let bytes = w.elements * 4 + out.len() as u64 * 4;
            let t = Timing {
                workload: w.name,
                kind: w.kind,
                backend: backend.clone(),
                median_s: median,
                runs_s: runs,
                melem_per_s: w.elements as f64 / median / 1e6,
                gb_per_s: bytes as f64 / median / 1e9,
                upload_ms: up,
                device_ms: comp,
                download_ms: down,
                upload_mb: per_run(|s| s.upload_bytes) / 1e6,
                download_mb: per_run(|s| s.download_bytes) / 1e6,
                host_copies_per_byte: per_run(|s| s.host_copy_bytes) / per_run(|s| s.upload_bytes).max(1.0),
                worker_waits: per_run(|s| s.worker_waits),
                submissions_per_task: per_run(|s| s.submissions)
                    / (tasks.iter().map(|t| t.0).sum::<f64>() / tasks.len() as f64).max(1.0),
                device_tasks: tasks.iter().map(|t| t.1).sum::<f64>() / tasks.len() as f64,
                device_profile,
            };
            println!(
                "{:<24}{:<6}{:>10.4}{:>10.1}{:>8.2}{:>11.1}{:>12.1}{:>13.1}{:>9.2}{:>7.0}{:>7.2}",
                t.workload,
                t.backend,
                t.median_s,
                t.melem_per_s,
                t.gb_per_s,
                t.upload_ms,
                t.device_ms,
                t.download_ms,
                t.host_copies_per_byte,
                t.worker_waits,
                t.submissions_per_task
            );
            if let Some(p) = &t.device_profile {
                println!("{:<24}{}", "", profile_line(p));
            }
            timings.push(t);
            results.push((backend.clone(), out));
        }
        let gpu = results.iter().find(|(b, _)| b == "gpu");
        let cpu = results.iter().find(|(b, _)| b == "cpu");
        if let (Some((_, g)), Some((_, c))) = (gpu, cpu) {
            let check = compare(w.name, g, c, args.tolerance);
            println!(
                "{:<24}check: {}max abs {:.3e}, max rel {:.3e}, NaN mismatches {}: {}",
                "",
                if check.bitwise { "bitwise, " } else { "" },
                check.max_abs,
                check.max_rel,
                check.nan_mismatches,
                if check.pass { "ok" } else { "FAIL" }
            );
            checks.push(check);
        }
    }
    let failed = checks.iter().filter(|c| !c.pass).count();
    let out = Output {
        adapter: adapter.as_ref().map(|c| c.adapter.clone()),
        threads,
        args: &args,
        timings,
        checks,
    };
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&out)?;
        if path.as_os_str() == "-" {
            println!("{json}");
        } else {
            std::fs::write(path, json)?;
        }
    }
    if failed > 0 {
        return Err(format!("{failed} GPU results differ from the CPU's").into());
    }
    Ok(())
}

/// A device profile in one line: the command buffers' device time, then each kernel's share.
fn profile_line(p: &strata::backend::gpu::DeviceProfile) -> String {
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut kernels: Vec<_> = p.kernels.iter().collect();
    kernels.sort_by_key(|k| std::cmp::Reverse(k.device_ns));
    let each: Vec<String> = kernels
        .iter()
        .map(|k| format!("{} {:.2} ms ({}x)", k.kernel, ms(k.device_ns), k.dispatches))
        .collect();
    format!(
        "device clock, first run: {} command buffers {:.2} ms, kernels {:.2} ms: {}{}",
        p.submissions,
        ms(p.submission_ns),
        ms(p.kernel_ns()),
        each.join(", "),
        if p.untimed > 0 {
            format!(" ({} dispatches untimed)", p.untimed)
        } else {
            String::new()
        }
    )
}
