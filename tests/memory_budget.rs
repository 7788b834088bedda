//! A 16 GiB procedural cube reduced over time under a 512 MiB budget: the result matches its
//! closed form and the process never holds more than 1 GiB (VmHWM, measured in a child
//! process so other tests cannot disturb the figure).

use std::ops::Range;
use std::process::Command;

use ndarray::{ArrayD, IxDyn};
use strata::{Array, ComputeOptions};

const CHILD: &str = "STRATA_MEMORY_BUDGET_CHILD";
const T: usize = 64;
const N: usize = 8192;

/// Every pixel sees the values 0..64 once over time (37 is odd, so t -> 37 t + c mod 64 is a
/// bijection), with those ≡ 3 (mod 4) set to NaN, plus an offset that depends on the pixel.
/// 48 valid values remain: their mean and their median are both 31 + offset. Pixels with
/// x % 997 == 5 are NaN at every time.
fn cube_region(region: &[Range<usize>]) -> ArrayD<f32> {
    let (ts, ys, xs) = (region[0].clone(), region[1].clone(), region[2].clone());
    let mut out = vec![0f32; ts.len() * ys.len() * xs.len()];
    let mut rows = out.chunks_exact_mut(xs.len());
    for t in ts {
        for y in ys.clone() {
            let row = rows.next().unwrap();
            // Running residues instead of a division per element: this loop is most of the test.
            let mut v = (37 * t + 7 * y + 13 * xs.start) % 64;
            let mut offset = (3 * y + xs.start) % 100;
            let mut m997 = xs.start % 997;
            for out in row {
                let nan = v & 3 == 3 || m997 == 5;
                *out = if nan { f32::NAN } else { (v + offset) as f32 };
                v = (v + 13) & 63;
                offset = if offset == 99 { 0 } else { offset + 1 };
                m997 = if m997 == 996 { 0 } else { m997 + 1 };
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[region[0].len(), region[1].len(), region[2].len()]), out).unwrap()
}

fn expected(y: usize, x: usize) -> f32 {
    if x % 997 == 5 {
        f32::NAN
    } else {
        31.0 + ((3 * y + x) % 100) as f32
    }
}

fn check(result: &ArrayD<f32>, what: &str) {
    assert_eq!(result.shape(), &[N, N]);
    for ((y, x), &v) in result
        .view()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap()
        .indexed_iter()
    {
        let e = expected(y, x);
        assert!(
            (v.is_nan() && e.is_nan()) || v == e,
            "{what} at ({y}, {x}): got {v}, expected {e}"
        );
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn child() {
    let cube = Array::from_fn(&[T, N, N], [1, 1024, 1024], "procedural-cube", cube_region);
    assert_eq!(cube.nbytes(), 16 << 30);
    let options = ComputeOptions {
        memory_budget: Some(512 << 20),
        progress: strata::exec::Progress::Off,
        ..Default::default()
    };
    let began = std::time::Instant::now();
    let (mean, report) = cube.nanmean(0).compute_with(&options).unwrap();
    println!(
        "nanmean: {:.1} s, {} tasks",
        began.elapsed().as_secs_f64(),
        report.tasks.len()
    );
    check(&mean, "nanmean");
    assert!(
        report.peak_bytes <= 512 << 20,
        "scheduler held {} bytes",
        report.peak_bytes
    );
    drop(mean);
    let began = std::time::Instant::now();
    let (median, report) = cube.nanmedian(0).compute_with(&options).unwrap();
    println!(
        "nanmedian: {:.1} s, {} tasks",
        began.elapsed().as_secs_f64(),
        report.tasks.len()
    );
    check(&median, "nanmedian");
    assert!(
        report.peak_bytes <= 512 << 20,
        "scheduler held {} bytes",
        report.peak_bytes
    );
    println!("PEAK_RSS_KIB={}", peak_rss_kib());
}

#[test]
fn sixteen_gib_cube_reduces_over_time_in_under_one_gib() {
    if std::env::var_os(CHILD).is_some() {
        child();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sixteen_gib_cube_reduces_over_time_in_under_one_gib",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.split("PEAK_RSS_KIB=").nth(1))
        .expect("child reports its peak")
        .trim()
        .parse()
        .unwrap();
    for line in stdout
        .lines()
        .filter(|l| l.contains("nanmean:") || l.contains("nanmedian:"))
    {
        println!(
            "{}",
            line.trim_start_matches("test sixteen_gib_cube_reduces_over_time_in_under_one_gib ... ")
        );
    }
    println!("peak resident memory: {} MiB", peak / 1024);
    assert!(
        peak < 1024 * 1024,
        "peak resident memory {} MiB is over 1 GiB",
        peak / 1024
    );
}

/// Without a budget set, a run gets what its parallelism can use: each of the
/// `threads × (1 + lookahead)` tasks in flight as much as the largest task needs, at least
/// 64 MiB; a budget set is kept as it is.
#[test]
fn the_default_budget_follows_the_parallelism_not_the_machine() {
    // six 16 MiB blocks; `* 2 + 1` fuses into one task per block that reads its source block
    // (16 MiB) and writes 16 MiB: the largest task needs 32 MiB
    let block = 2048 * 2048 * 4u64;
    let a = Array::from_fn(&[6, 2048, 2048], [1, 2048, 2048], "blocks", |r| {
        ndarray::ArrayD::from_elem(ndarray::IxDyn(&[r[0].len(), r[1].len(), r[2].len()]), 3.0)
    });
    let expr = &a * 2.0 + 1.0;
    let options = ComputeOptions {
        threads: Some(2),
        progress: strata::exec::Progress::Off,
        ..Default::default()
    };
    assert_eq!(
        options.memory_budget, None,
        "no STRATA_MEMORY_BUDGET in the test's environment"
    );
    let (out, report) = expr.compute_with(&options).unwrap();
    assert!(out.iter().all(|&v| v == 7.0));
    // 2 threads x (1 + 2 ahead) = 6 tasks of 32 MiB
    assert_eq!(report.memory_budget, 6 * 2 * block);
    assert!(report.peak_bytes <= report.memory_budget);
    // a small graph gets the 64 MiB floor; a budget set is used as set
    let small = Array::ones(&[64, 64], [32, 32]) + 1.0;
    assert_eq!(small.compute_with(&options).unwrap().1.memory_budget, 64 << 20);
    let set = ComputeOptions {
        memory_budget: Some(40 << 20),
        ..options.clone()
    };
    assert_eq!(expr.compute_with(&set).unwrap().1.memory_budget, 40 << 20);
    // the rule, as strata::exec::default_budget gives it for the planned graph
    let graph = expr.plan().unwrap();
    assert_eq!(strata::exec::default_budget(&graph, 2, &options), 6 * 2 * block);
}
