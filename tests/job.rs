//! Jobs without a cluster: the tutorial's results as a job over the embedded catalog, every
//! shard run in-process as a worker would (twice for some), the store equal to a local run
//! (window reductions and work along time too);
//! graphs that cannot travel refused by name; errors for a missing job file and a shard out of
//! range; the job file's size not growing with its shards.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ndarray::ArrayD;
use strata::job::{Job, JobCompute, JobError, SourceKinds};
use strata::labelled::DataArray;
use strata::Array;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-job-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(root: &Path, path: &str) -> Vec<f32> {
    let store = Arc::new(zarrs::filesystem::FilesystemStore::new(root).unwrap());
    let array = zarrs::array::Array::open(store, path).unwrap();
    match array.retrieve_array_subset::<Vec<f32>>(&array.subset_all()) {
        Ok(v) => v,
        Err(_) => {
            let v: Vec<u8> = array.retrieve_array_subset(&array.subset_all()).unwrap();
            v.into_iter().map(f32::from).collect()
        }
    }
}

#[test]
fn shards_run_anywhere_give_the_local_result() {
    let dir = scratch("stack");
    // Results over a stack of the embedded catalog (served on loopback) as a job whose every
    // shard runs here as a worker would, its sources made again from the job file.
    let (_server, arrays) = stack_results();
    let refs: Vec<&DataArray> = arrays.iter().collect();
    let job_path = dir.join("job.json");
    let job = Job::create(&job_path, &dir.join("job.zarr"), &refs, (40, 40), JobCompute::default()).unwrap();
    assert!(job.num_shards() >= 4, "{} shards", job.num_shards());
    let loaded = Job::load(&job_path).unwrap();
    assert_eq!(loaded, job, "the job file round-trips");
    assert_eq!(loaded.status(&job_path).missing.len(), job.num_shards());
    let kinds = SourceKinds::default();
    for i in 0..job.num_shards() {
        loaded.run_shard(&job_path, i, &kinds).unwrap();
    }
    // Running a shard again is harmless.
    loaded.run_shard(&job_path, 1, &kinds).unwrap();
    let status = loaded.status(&job_path);
    assert_eq!(
        (status.done.len(), status.failed.len(), status.missing.len()),
        (job.num_shards(), 0, 0)
    );
    // The same results computed here in one run.
    let cpu = strata::ComputeOptions {
        backend: strata::backend::gpu::BackendChoice::Cpu,
        ..Default::default()
    };
    strata::labelled::to_zarr_all(&refs, dir.join("local.zarr"), &Default::default(), &cpu).unwrap();
    for name in ["ndvi_mean", "red_median", "bright"] {
        stores_agree(&dir, name);
    }
    let err = loaded.run_shard(&job_path, job.num_shards(), &kinds).unwrap_err();
    assert!(matches!(err, JobError::ShardOutOfRange { .. }), "{err}");
    assert!(err.to_string().contains("out of range"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn window_reductions_travel_in_the_job_file() {
    // means of red's medians over 4 x 4 windows (a coarser raster), sharded and run as a
    // worker would, against the same result computed here
    let dir = scratch("coarse");
    let (_server, arrays) = stack_results();
    let coarse = arrays[1]
        .coarsen(&[("y", 4), ("x", 4)], strata::labelled::Boundary::Trim)
        .unwrap()
        .mean()
        .with_name("red_coarse");
    let values = sharded_equals_local(&dir, &[&coarse], (16, 16));
    assert_eq!(values[0].len(), 48 * 48);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn time_series_work_travels_in_the_job_file() {
    // Red's cloud gaps filled forward (at most 2 scenes) and linearly by date, a centred
    // 3-scene rolling median, and the running sum of the trailing 2-scene means: work along
    // time that needs the dim whole, sharded by pixel tiles and run as a worker would, against
    // the same results computed here.
    let dir = scratch("series");
    let (_server, red) = red_series();
    let filled = red.ffill("time", Some(2)).unwrap().with_name("filled");
    let smooth = red
        .interpolate_na("time", &Default::default())
        .unwrap()
        .rolling(&[("time", 3)])
        .unwrap()
        .center(true)
        .min_periods(1)
        .unwrap()
        .median()
        .with_name("smooth");
    let running = red
        .rolling(&[("time", 2)])
        .unwrap()
        .mean()
        .cumsum("time", true)
        .unwrap()
        .with_name("running");
    let values = sharded_equals_local(&dir, &[&filled, &smooth, &running], (64, 64));
    assert!(values
        .iter()
        .all(|v| v.len() == filled.shape().iter().product::<usize>()));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_series_op_over_a_cut_axis_is_refused_when_the_job_is_read() {
    // A job file edited (or written by another version) so that a fill's blocks cut the time
    // axis: each block would fill its own piece of the series. Reading it back says so.
    let dir = scratch("cut");
    let filled = Array::zeros(&[4, 6], [2, 3]).ffill(0, None);
    let job = Job::new(&dir, &[("x", &filled)], (6, 6), JobCompute::default()).unwrap();
    let mut spec = job.graph.clone();
    let along = spec
        .nodes
        .iter()
        .position(|n| matches!(n.op, strata::job::OpSpec::Along { .. }))
        .expect("an along node");
    assert_eq!(spec.nodes[along].chunks[0], vec![(4, 1)], "time whole");
    spec.nodes[along].chunks[0] = vec![(2, 2)];
    let err = spec.build(&SourceKinds::default()).unwrap_err();
    assert!(matches!(err, JobError::Format { .. }), "{err}");
    assert!(
        err.to_string().contains("ffill along axis 0") && err.to_string().contains("whole"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `outputs` as a job over `tile`s, every shard run here as a worker would, against the same
/// outputs computed here on the CPU: bit for bit (NaN where NaN). Returns the local values,
/// each output holding some that are not NaN.
fn sharded_equals_local(dir: &Path, outputs: &[&DataArray], tile: (usize, usize)) -> Vec<Vec<f32>> {
    let job_path = dir.join("job.json");
    let job = Job::create(&job_path, &dir.join("job.zarr"), outputs, tile, JobCompute::default()).unwrap();
    assert!(job.num_shards() >= 4, "{} shards", job.num_shards());
    let loaded = Job::load(&job_path).unwrap();
    for i in 0..job.num_shards() {
        loaded.run_shard(&job_path, i, &SourceKinds::default()).unwrap();
    }
    let cpu = strata::ComputeOptions {
        backend: strata::backend::gpu::BackendChoice::Cpu,
        ..Default::default()
    };
    strata::labelled::to_zarr_all(outputs, dir.join("local.zarr"), &Default::default(), &cpu).unwrap();
    outputs
        .iter()
        .map(|o| {
            let name = o.name().expect("outputs are named");
            let a = stores_agree(dir, name);
            assert!(a.iter().any(|v| !v.is_nan()), "{name} holds values");
            a
        })
        .collect()
}

/// Output `name` of `dir/local.zarr` and `dir/job.zarr`, bit for bit the same (NaN where
/// NaN); returns the local values.
fn stores_agree(dir: &Path, name: &str) -> Vec<f32> {
    let (a, b) = (
        read(&dir.join("local.zarr"), &format!("/{name}")),
        read(&dir.join("job.zarr"), &format!("/{name}")),
    );
    assert_eq!(a.len(), b.len(), "{name}");
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())),
        "{name} differs"
    );
    a
}

/// Red over time of a stack of the embedded catalog (6 scenes, some pixels NaN)
/// served on loopback (the server is returned: keep it).
fn red_series() -> (strata::loopback::Server, DataArray) {
    let (server, stack) = embedded_stack();
    (server, stack.sel("band", "red").unwrap())
}

/// NDVI's mean over time, red's median over time and a mask of bright red medians, over a
/// stack of the embedded catalog served on loopback (the server is returned: keep it).
fn stack_results() -> (strata::loopback::Server, Vec<DataArray>) {
    let (server, s) = embedded_stack();
    let band = |b: &str| s.sel("band", b).unwrap();
    let ndvi = (&(&band("swir16") - &band("nir08")) / &(&band("swir16") + &band("nir08")))
        .mean("time")
        .unwrap()
        .with_name("ndvi_mean");
    let red = band("red").median("time").unwrap().with_name("red_median");
    let bright = red.gt(0.1).with_name("bright");
    (server, vec![ndvi, red, bright])
}

/// The (time, band, y, x) stack of red, nir08 and swir16 of 6 embedded scenes of 192 x 192,
/// in 64 x 64 chunks, searched and stacked as a user would.
fn embedded_stack() -> (strata::loopback::Server, DataArray) {
    let server = strata::loopback::Server::start(None).unwrap();
    let embedded = strata::loopback::landsat::SyntheticLandsat {
        scenes: 6,
        size: 192,
        ..Default::default()
    };
    embedded.serve(&server).unwrap();
    let store = strata::io::ObjectStore::new(strata::io::StoreOptions::default()).unwrap();
    let options = strata::stack::StackOptions {
        assets: ["red", "nir08", "swir16"].map(String::from).to_vec(),
        resolution: Some((30.0, 30.0)),
        chunks_yx: (64, 64),
        ..Default::default()
    };
    // searched as a user would: the items come back with absolute hrefs
    let params = strata::stac::SearchParams {
        collections: vec!["landsat-c2-l2".into()],
        ..Default::default()
    };
    let items = strata::stac::search(&store, &server.url(), &params).unwrap().items;
    let reader = Arc::new(strata::io::CogReader::new(store));
    let s = strata::stack::stack(&items, &options, reader).unwrap().labelled();
    (server, s)
}

#[test]
fn graphs_holding_memory_or_user_functions_are_refused_by_name() {
    let dir = scratch("refused");
    let in_memory = Array::from_ndarray(ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 4])), [2, 2]);
    let err = Job::new(&dir, &[("x", &(&in_memory + 1.0))], (2, 2), JobCompute::default()).unwrap_err();
    assert!(matches!(err, JobError::NotPortable { .. }), "{err}");
    assert!(err.to_string().contains("memory"), "{err}");
    let f = Array::zeros(&[4, 4], [2, 2]).map_blocks("my closure", |b| b.to_owned());
    let err = Job::new(&dir, &[("x", &f)], (2, 2), JobCompute::default()).unwrap_err();
    assert!(
        err.to_string().contains("my closure") && err.to_string().contains("user function"),
        "{err}"
    );
    let err = Job::load(&dir.join("missing.json")).unwrap_err();
    assert!(
        matches!(err, JobError::File { .. }) && err.to_string().contains("missing.json"),
        "{err}"
    );
    std::fs::write(dir.join("bad.json"), b"{\"not\": \"a job\"}").unwrap();
    let err = Job::load(&dir.join("bad.json")).unwrap_err();
    assert!(err.to_string().contains("not a strata job"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_job_file_does_not_grow_with_its_shards() {
    // The same lazy array in tiles of 4096 and of 64 pixels: 1 shard or 4096 of them, one
    // job file size (a few bytes for the tile numbers).
    let dir = scratch("size");
    let source = Array::full(&[4096, 4096], 1.0, [1024, 1024]) * 2.0;
    let big = Job::new(&dir, &[("x", &source)], (4096, 4096), JobCompute::default()).unwrap();
    let small = Job::new(&dir, &[("x", &source)], (64, 64), JobCompute::default()).unwrap();
    assert_eq!((big.num_shards(), small.num_shards()), (1, 4096));
    let (a, b) = (
        serde_json::to_vec(&big).unwrap().len(),
        serde_json::to_vec(&small).unwrap().len(),
    );
    assert!(b.abs_diff(a) < 64, "{a} vs {b} bytes");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_absent_slurm_and_an_unreachable_store_say_so() {
    let dir = scratch("errors");
    let x = Array::full(&[64, 64], 1.0, [32, 32]) + 1.0;
    // A store under a regular file cannot be made: the error names the path, and no job
    // file is left behind.
    std::fs::write(dir.join("a-file"), b"").unwrap();
    let labelled = DataArray::new(x.clone(), &["y", "x"], vec![]).unwrap().with_name("x");
    let job_path = dir.join("job.json");
    let err = Job::create(
        &job_path,
        &dir.join("a-file/store"),
        &[&labelled],
        (32, 32),
        JobCompute::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("a-file"), "{err}");
    assert!(!job_path.exists());
    // With no sbatch on PATH, launching says Slurm is missing and how to get one.
    Job::create(
        &job_path,
        &dir.join("store"),
        &[&labelled],
        (32, 32),
        JobCompute::default(),
    )
    .unwrap();
    // (Slurm's folder is named in the options: a PATH changed here would race with the other
    // tests of this binary that spawn processes.)
    let options = strata::job::SlurmOptions {
        bin_dir: Some(dir.join("no-bin")),
        ..Default::default()
    };
    let err = strata::job::launch_slurm(&job_path, &options).unwrap_err();
    assert!(matches!(err, JobError::Slurm(_)), "{err}");
    assert!(err.to_string().contains("no-bin/sbatch"), "{err}");
    assert!(
        err.to_string().contains("sbatch") && err.to_string().contains("slurm_local.sh"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_worker_takes_its_index_from_the_cluster_and_prints_a_kubernetes_job() {
    let dir = scratch("worker");
    // A portable job: a procedural fill through arithmetic, 4 shards.
    let x = (Array::full(&[64, 64], 3.0, [32, 32]) * 2.0) - 1.0;
    let labelled = DataArray::new(x, &["y", "x"], vec![]).unwrap().with_name("x");
    let job_path = dir.join("job.json");
    let job = Job::create(
        &job_path,
        &dir.join("store"),
        &[&labelled],
        (32, 32),
        JobCompute::default(),
    )
    .unwrap();
    assert_eq!(job.num_shards(), 4);
    let worker = env!("CARGO_BIN_EXE_strata-worker");
    for (var, shard) in [
        ("JOB_COMPLETION_INDEX", "0"),
        ("AWS_BATCH_JOB_ARRAY_INDEX", "1"),
        ("SLURM_ARRAY_TASK_ID", "3"),
    ] {
        let out = std::process::Command::new(worker)
            .args(["run", &job_path.display().to_string()])
            .env(var, shard)
            .env("NODEVICE_SELECT", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{var}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let status = Job::load(&job_path).unwrap().status(&job_path);
    assert_eq!((status.done.clone(), status.missing.clone()), (vec![0, 1, 3], vec![2]));
    // status exits 3 while shards are missing, and names them
    let out = std::process::Command::new(worker)
        .args(["status", &job_path.display().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("missing: 2"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // no index at all: one clear message
    let out = std::process::Command::new(worker)
        .args(["run", &job_path.display().to_string()])
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("AWS_BATCH_JOB_ARRAY_INDEX")
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no shard index"));
    let out = std::process::Command::new(worker)
        .args([
            "launch",
            "k8s",
            &job_path.display().to_string(),
            "--image",
            "registry.example/strata:1",
            "--parallelism",
            "2",
        ])
        .output()
        .unwrap();
    let yaml = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "kind: Job",
        "completionMode: Indexed",
        "completions: 4",
        "parallelism: 2",
        "backoffLimitPerIndex: 2",
        "image: registry.example/strata:1",
        "\"strata-worker\", \"run\"",
    ] {
        assert!(yaml.contains(needle), "{needle} missing from:\n{yaml}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
