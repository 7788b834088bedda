//! `strata-bench` at a tiny size (the CI smoke run): every workload runs on the GPU (the
//! software adapter in CI) and the CPU, and every GPU result passes the check against the CPU.

use std::process::Command;

#[test]
fn strata_bench_runs_and_the_gpu_matches_the_cpu() {
    if std::env::var("STRATA_SKIP_GPU_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("\n*** STRATA_SKIP_GPU_TESTS=1: the strata-bench smoke run is SKIPPED ***\n");
        return;
    }
    let json = std::env::temp_dir().join(format!("strata-bench-smoke-{}.json", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_strata-bench"))
        .args([
            "--time", "13", "--height", "70", "--width", "45", "--chunk", "32", "--repeat", "1", "--json",
        ])
        .arg(&json)
        .output()
        .expect("strata-bench starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "strata-bench failed (without a GPU adapter: apt-get install mesa-vulkan-drivers libvulkan1):\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).ok();
    assert!(
        report["adapter"]["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{report}"
    );
    let checks = report["checks"].as_array().unwrap();
    let timings = report["timings"].as_array().unwrap();
    assert_eq!(checks.len(), 12, "every workload is checked: {stdout}");
    assert_eq!(timings.len(), 24, "every workload on both backends: {stdout}");
    for c in checks {
        assert_eq!(c["pass"], true, "{c}");
        assert_eq!(c["nan_mismatches"], 0, "{c}");
    }
    for t in timings {
        assert!(t["median_s"].as_f64().is_some_and(|s| s > 0.0), "{t}");
    }
    assert!(stdout.contains("lum-median-gauss-mask"), "{stdout}");
}
