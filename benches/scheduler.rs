//! Scheduler overhead: 100,000 one-element blocks, each a fused `ones + 1`, summed — the
//! per-task cost of planning plus running, compared with dask's local schedulers by
//! `scripts/bench_compare.sh` (dask's figure is from `scripts/bench_baselines.py`).
//!
//! `run_only_untimed` is the same run with the timeline off (`ComputeOptions::timeline`): the
//! difference is what recording a span per task for the dashboard and `report.html` costs.
//!
//! Run: `cargo bench --bench scheduler` (`STRATA_BENCH_QUICK=1`: 10,000 blocks).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use strata::{Array, Axes, ComputeOptions};

fn overhead(c: &mut Criterion) {
    let n = if std::env::var_os("STRATA_BENCH_QUICK").is_some() {
        10_000
    } else {
        100_000
    };
    let expr = (Array::ones(&[n], [1]) + 1.0).sum(Axes::All);
    let tasks = expr.plan().unwrap().tasks().len();
    eprintln!("scheduler bench: {tasks} tasks per run");
    let options = ComputeOptions {
        progress: strata::exec::Progress::Off,
        ..Default::default()
    };
    let mut g = c.benchmark_group("scheduler_100k");
    g.sample_size(10).throughput(Throughput::Elements(tasks as u64));
    g.bench_function("plan_and_run", |b| {
        b.iter(|| assert_eq!(expr.compute_with(&options).unwrap().0.sum(), 2.0 * n as f32))
    });
    let graph = expr.plan().unwrap();
    g.bench_function("run_only", |b| {
        b.iter(|| {
            let sink = strata::exec::BlockCollector::new(&[1]);
            strata::exec::execute(&graph, &strata::backend::CpuBackend, &options, &sink).unwrap();
        })
    });
    let untimed = ComputeOptions {
        timeline: false,
        ..options.clone()
    };
    g.bench_function("run_only_untimed", |b| {
        b.iter(|| {
            let sink = strata::exec::BlockCollector::new(&[1]);
            strata::exec::execute(&graph, &strata::backend::CpuBackend, &untimed, &sink).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
