//! Planning a continental job: a (12, 1024000, 1024000) lazy cube (procedural), its nanmedian
//! over time cut into 10^6 shards of 1024 x 1024; time to plan and serialise the job, its size,
//! and the time to plan one shard's computation (its input footprint).
//!
//!   cargo run --release --example plan_scale
use std::time::Instant;

use strata::job::{Job, JobCompute, SourceKinds};
use strata::{Array, ComputeOptions, ReduceOp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = 1024 * 1000;
    let began = Instant::now();
    let cube = Array::full(&[12, n, n], 0.25, [12, 1024, 1024]);
    let result = (&cube * 2.0).reduce(ReduceOp::NanMedian, 0);
    let job = Job::new(
        std::path::Path::new("/tmp/continent.zarr"),
        &[("median", &result)],
        (1024, 1024),
        JobCompute::default(),
    )?;
    let json = serde_json::to_vec(&job)?;
    let planned = began.elapsed();
    println!(
        "{} shards; job planned and serialised in {:.1} ms, {} bytes",
        job.num_shards(),
        planned.as_secs_f64() * 1e3,
        json.len()
    );
    let kinds = SourceKinds::default();
    let options = ComputeOptions::default();
    let mut worst = 0f64;
    for i in [0usize, 1, 999_999, 500_500, 123_456] {
        let t = Instant::now();
        let arrays = job.shard_arrays(i, &kinds)?;
        let graph = strata::array::plan_many(&arrays.iter().collect::<Vec<_>>(), &options)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        worst = worst.max(ms);
        println!("shard {i}: {} tasks planned in {ms:.3} ms", graph.tasks().len());
    }
    println!("worst single-shard footprint: {worst:.3} ms");
    Ok(())
}
