//! The tutorial as a Slurm job array on a real cluster (one node, started by
//! `scripts/slurm_local.sh up`, as `.ci/run` does): one shard made to fail and one worker
//! killed with SIGKILL between two of its writes; the status names both, nothing half-written
//! is visible, and a second launch runs only those two and completes the store, equal to a
//! local run bit for bit. Without a cluster these tests fail and say how to start one.

#[allow(dead_code)]
#[path = "../examples/tutorial.rs"]
mod tutorial;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use strata::job::{launch_slurm, Job, JobError, SlurmOptions};

fn require_slurm() {
    let up = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    assert!(
        up,
        "no Slurm cluster answers: start a one-node cluster with `bash scripts/slurm_local.sh up` (as root; .ci/run does)"
    );
}

/// The tutorial over the catalog written in `catalog` (local files: workers read them
/// whenever they run, with no server to keep alive).
fn args(catalog: &Path, zarr: &Path, out: &Path, executor: &str) -> tutorial::Args {
    tutorial::Args::parse_from([
        "tutorial",
        "--quiet",
        "--items",
        &catalog.join("items.json").display().to_string(),
        "--backend",
        "cpu",
        "--scenes",
        "6",
        "--size",
        "192",
        "--buffer",
        "2500",
        "--zarr",
        &zarr.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--executor",
        executor,
        "--shards",
        "9",
    ])
}

fn read(root: &Path, path: &str) -> Vec<u32> {
    let store = Arc::new(zarrs::filesystem::FilesystemStore::new(root).unwrap());
    let array = zarrs::array::Array::open(store, path).unwrap();
    match array.retrieve_array_subset::<Vec<f32>>(&array.subset_all()) {
        Ok(v) => v
            .into_iter()
            .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
            .collect(),
        Err(_) => {
            let v: Vec<u8> = array.retrieve_array_subset(&array.subset_all()).unwrap();
            v.into_iter().map(u32::from).collect()
        }
    }
}

#[test]
fn a_failed_and_a_killed_shard_are_named_and_rerun_alone() {
    require_slurm();
    let base: PathBuf = std::env::temp_dir().join(format!("strata-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::env::set_var("STRATA_WORKER", env!("CARGO_BIN_EXE_strata-worker"));
    let catalog = base.join("catalog");
    let write = tutorial::Args::parse_from([
        "tutorial",
        "--scenes",
        "6",
        "--size",
        "192",
        "--write-catalog",
        &catalog.display().to_string(),
    ]);
    tutorial::run(&write).unwrap();
    // The local run to compare with.
    tutorial::run(&args(&catalog, &base.join("local.zarr"), &base.join("local"), "local")).unwrap();

    // The Slurm run: shard 3 fails, shard 5's worker stops after its first output's shard
    // and is killed with SIGKILL. (Array tasks inherit this environment: sbatch --export=ALL.)
    std::env::set_var("STRATA_JOB_FAIL_SHARDS", "3");
    std::env::set_var("STRATA_JOB_PAUSE_SHARD", "5");
    let marker = std::env::temp_dir().join("strata-paused-5");
    let _ = std::fs::remove_file(&marker);
    let killer = std::thread::spawn(move || {
        for _ in 0..1200 {
            if let Ok(pid) = std::fs::read_to_string(&marker) {
                let _ = std::fs::remove_file(&marker);
                let pid: i32 = pid.trim().parse().unwrap();
                // SAFETY: kill only signals a process id.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    });
    let out = base.join("slurm");
    let Err(err) = tutorial::run(&args(&catalog, &base.join("slurm.zarr"), &out, "slurm")) else {
        panic!("the run with a failed and a killed shard succeeded")
    };
    assert!(killer.join().unwrap(), "shard 5's worker never paused");
    std::env::remove_var("STRATA_JOB_FAIL_SHARDS");
    std::env::remove_var("STRATA_JOB_PAUSE_SHARD");
    assert!(err.to_string().contains("shards 3,5 did not finish"), "{err}");

    let job_path = out.join("job.json");
    let job = Job::load(&job_path).unwrap();
    let status = job.status(&job_path);
    assert_eq!(status.failed.len(), 2, "{status:?}");
    assert!(status.failed[0].1.contains("injected"), "{status:?}");
    assert!(status.failed[1].1.contains("137"), "SIGKILL's exit code: {status:?}");
    // Nothing half-written: no staged arrays or temporary files in the store.
    for entry in walk(&base.join("slurm.zarr")) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains(".new-") && !name.contains("tmp"), "{}", entry.display());
    }

    // Again: only the two shards run, and the store is whole.
    let logs = strata::job::state_dir(&job_path).join("logs");
    std::fs::remove_dir_all(&logs).unwrap();
    let (status, id) = launch_slurm(&job_path, &SlurmOptions::default()).unwrap();
    assert!(id.is_some() && status.to_run().is_empty(), "{status:?}");
    let mut ran: Vec<String> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ran.sort();
    assert_eq!(ran, vec!["3.out", "5.out"]);
    for name in ["monthly_rgb", "ndvi_mean", "lum_median", "smoothed", "mask"] {
        let path = format!("/{name}");
        assert_eq!(
            read(&base.join("slurm.zarr"), &path),
            read(&base.join("local.zarr"), &path),
            "{name}"
        );
    }
    // A third launch finds nothing to do.
    let (_, id) = launch_slurm(&job_path, &SlurmOptions::default()).unwrap();
    assert!(id.is_none());

    // A Slurm that refuses the array says so, with its reason.
    std::fs::remove_dir_all(strata::job::state_dir(&job_path).join("done")).unwrap();
    let refused = launch_slurm(
        &job_path,
        &SlurmOptions {
            partition: Some("no-such-partition".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(matches!(refused, JobError::Slurm(_)), "{refused}");
    assert!(
        refused.to_string().contains("refused") && refused.to_string().contains("partition"),
        "{refused}"
    );
    std::fs::remove_dir_all(&base).ok();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}
