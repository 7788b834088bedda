//! The introduction of the seed tutorial ("Parallelized Cloud Computing with Dask for
//! Geoscientists"), in strata: ones, chunks, compute, visualize, and the mean of
//! `ones * ones[::-1, ::-1]`.
//!
//! Run: `cargo run --release --example intro -- [--out DIR]`

use strata::{Array, Axes, ComputeOptions, Slice};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out_dir = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or("intro-out", String::as_str);
    std::fs::create_dir_all(out_dir)?;

    // import numpy as np; shape = (1000, 4000); ones_np = np.ones(shape)
    let shape = [1000, 4000];
    let ones_np = ndarray::ArrayD::<f32>::ones(ndarray::IxDyn(&shape));
    println!(
        "numpy ones: shape {:?}, size in MB: {}",
        ones_np.shape(),
        (ones_np.len() * 4) as f64 / (1024.0 * 1024.0)
    );

    // ones = da.ones(shape): one chunk for the whole array
    let ones = Array::ones(&shape, strata::Chunks::auto());
    println!("{ones}");

    // ones = da.ones(shape, chunks=(1000, 1000))
    let ones = Array::ones(&shape, [1000, 1000]);
    println!("{ones}\nchunks: {:?}", ones.chunks());

    // ones.compute()
    let values = ones.compute()?;
    println!("computed: shape {:?}, sum {}", values.shape(), values.sum());

    // ones.visualize()
    let picture = ones.visualize(format!("{out_dir}/ones"))?;
    println!("task graph of `ones` written to {}", picture.display());

    // complex_calculation = (ones * ones[::-1, ::-1]).mean()
    let flipped = ones.slice(&[Slice::reverse(), Slice::reverse()]);
    let complex_calculation = (&ones * &flipped).mean(Axes::All);
    let graph = complex_calculation.plan()?;
    print!("{graph}");
    let picture = complex_calculation.visualize(format!("{out_dir}/complex_calculation"))?;
    println!("task graph of the mean written to {}", picture.display());
    let (mean, report) = complex_calculation.compute_with(&ComputeOptions::default())?;
    println!("(ones * ones[::-1, ::-1]).mean() = {}", mean.sum());
    println!(
        "{} tasks in {} µs on {} threads, peak {} held",
        report.tasks.len(),
        report.wall_us,
        report.threads,
        strata::array::human_bytes(report.peak_bytes)
    );
    std::fs::write(format!("{out_dir}/report.json"), report.to_json())?;
    Ok(())
}
