//! Runs one benchmark workload in a loop, for profilers: `profile_kernel median|bandmath|gaussian [iterations]`.
#[path = "../benches/data.rs"]
mod data;

use strata::{Array, BoundaryMode, ComputeOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("gaussian", String::as_str);
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let options = ComputeOptions {
        progress: strata::exec::Progress::Off,
        ..Default::default()
    };
    let expr = match what {
        "median" => Array::from_ndarray(data::cube(64, 2048, 2048), [64, 2048, 2048]).nanmedian(0),
        "bandmath" => {
            let p: Vec<Array> = (0..3)
                .map(|k| Array::from_ndarray(data::plane(k, 4096, 4096), strata::Chunks::auto()))
                .collect();
            (&p[0] - &p[1]) / (&p[0] + &p[1]) * &p[2] + 0.5
        }
        _ => Array::from_ndarray(data::plane(0, 4096, 4096), strata::Chunks::auto())
            .gaussian(&[2.0], BoundaryMode::Reflect),
    };
    let into = args.iter().any(|a| a == "--into");
    let mut out = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(expr.shape()));
    for _ in 0..iters {
        let t = std::time::Instant::now();
        let report = if into {
            expr.compute_into(out.view_mut(), &options).unwrap()
        } else {
            expr.compute_with(&options).unwrap().1
        };
        let mut kinds: Vec<(String, u64)> = Vec::new();
        for r in &report.tasks {
            match kinds.iter_mut().find(|(k, _)| k == r.kind) {
                Some((_, us)) => *us += r.end_us - r.start_us,
                None => kinds.push((r.kind.to_string(), r.end_us - r.start_us)),
            }
        }
        println!(
            "{what}: {:.1} ms; task time by kind (µs): {kinds:?}",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}
