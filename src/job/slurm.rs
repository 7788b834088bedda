//! Launching a job's missing shards on a cluster. Slurm: one `sbatch --array` of the shards
//! still to run, each task a small wrapper that runs `strata-worker run JOB` (the index comes
//! from `SLURM_ARRAY_TASK_ID`) and records its exit code beside the job; then the array is
//! watched with `squeue` (sbatch's own `--wait` backs off to half-minute polls) until it is
//! gone, and the job's status is reported. Run again, it submits only what is still missing.
//! Kubernetes: an Indexed Job manifest to apply.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{ranges, state_dir, Job, JobError, JobStatus};

/// How to submit to Slurm.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// most array tasks running at once (`--array=...%K`)
    pub max_parallel: Option<usize>,
    /// the partition
    pub partition: Option<String>,
    /// further `sbatch` options, passed as they are
    pub sbatch_args: Vec<String>,
    /// the `strata-worker` executable the tasks run (default: `STRATA_WORKER`, else this
    /// process's own executable, right when this is `strata-worker launch`)
    pub worker: Option<PathBuf>,
    /// the longest to wait for the array (default: no limit)
    pub timeout: Option<Duration>,
    /// the folder holding `sbatch` and `squeue` (default: found on `PATH`)
    pub bin_dir: Option<PathBuf>,
}

impl SlurmOptions {
    /// The command for the Slurm tool `name`: in `bin_dir` when set, else looked up on `PATH`.
    fn tool(&self, name: &str) -> Command {
        Command::new(
            self.bin_dir
                .as_ref()
                .map_or_else(|| PathBuf::from(name), |d| d.join(name)),
        )
    }
}

/// Submits the shards of the job at `job_path` that are not done as one Slurm array, waits for
/// it, and returns the job's status afterwards (nothing submitted when nothing is missing).
///
/// **Errors**: [`JobError::Slurm`] when `sbatch` is missing, refuses the array, or the wait
/// times out; [`JobError::File`] for the job file.
pub fn launch_slurm(job_path: &Path, options: &SlurmOptions) -> Result<(JobStatus, Option<String>), JobError> {
    let job = Job::load(job_path)?;
    let before = job.status(job_path);
    let to_run = before.to_run();
    if to_run.is_empty() {
        return Ok((before, None));
    }
    let job_path = job_path.canonicalize().map_err(|e| JobError::File {
        path: job_path.to_path_buf(),
        message: e.to_string(),
    })?;
    let state = state_dir(&job_path);
    for dir in ["exit", "logs", "slurm"] {
        std::fs::create_dir_all(state.join(dir)).map_err(|e| JobError::Slurm(format!("{}: {e}", state.display())))?;
    }
    // A rerun starts clean for the shards it runs: their old exit codes and failures go.
    for i in &to_run {
        let _ = std::fs::remove_file(state.join("exit").join(i.to_string()));
        let _ = std::fs::remove_file(state.join("failed").join(i.to_string()));
    }
    let worker = match (&options.worker, std::env::var_os("STRATA_WORKER")) {
        (Some(w), _) => w.clone(),
        (None, Some(w)) => PathBuf::from(w),
        (None, None) => std::env::current_exe().map_err(|e| JobError::Slurm(format!("cannot find the worker: {e}")))?,
    };
    let wrapper = state.join("slurm").join("task.sh");
    let script = format!(
        "#!/usr/bin/env bash\n\
         # One Slurm array task of a strata job: runs the shard, records its exit code.\n\
         i=${{SLURM_ARRAY_TASK_ID:?not in a Slurm array}}\n\
         {worker} run {job} --shard \"$i\"\n\
         rc=$?\n\
         echo \"$rc\" > {exit}/\"$i\"\n\
         exit \"$rc\"\n",
        worker = shell_quote(&worker),
        job = shell_quote(&job_path),
        exit = shell_quote(&state.join("exit")),
    );
    crate::output::write_bytes(&wrapper, script.as_bytes())?;
    let mut array = ranges(&to_run);
    if let Some(k) = options.max_parallel {
        array.push_str(&format!("%{k}"));
    }
    let mut sbatch = options.tool("sbatch");
    sbatch
        .arg("--parsable")
        .arg(format!("--array={array}"))
        .arg(format!(
            "--job-name=strata-{}",
            job_path.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default()
        ))
        .arg(format!("--output={}/%a.out", state.join("logs").display()));
    if let Some(p) = &options.partition {
        sbatch.arg(format!("--partition={p}"));
    }
    sbatch.args(&options.sbatch_args).arg(&wrapper);
    let out = sbatch.output().map_err(|e| {
        JobError::Slurm(format!(
            "cannot run {} ({e}): is Slurm installed and on PATH, or SlurmOptions::bin_dir set? (scripts/slurm_local.sh up starts a one-node cluster)",
            sbatch.get_program().to_string_lossy()
        ))
    })?;
    if !out.status.success() {
        return Err(JobError::Slurm(format!(
            "sbatch refused the array {array}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    wait_for(options, &id)?;
    Ok((job.status(&job_path), Some(id)))
}

/// Polls `squeue` until the array has no pending, running or completing task.
fn wait_for(options: &SlurmOptions, id: &str) -> Result<(), JobError> {
    let began = Instant::now();
    loop {
        let out = options
            .tool("squeue")
            .args(["-h", "-j", id, "-t", "PD,R,CG,CF,S", "-o", "%i"])
            .output()
            .map_err(|e| JobError::Slurm(format!("cannot run squeue: {e}")))?;
        let listed = String::from_utf8_lossy(&out.stdout);
        // squeue errs ("Invalid job id") once a finished job has been purged: gone too
        if listed.trim().is_empty() {
            return Ok(());
        }
        if options.timeout.is_some_and(|t| began.elapsed() > t) {
            return Err(JobError::Slurm(format!(
                "array {id} still running after {:?}",
                began.elapsed()
            )));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// A Kubernetes Indexed Job running every shard of the job at `job_path` with the image
/// `image` (which has `strata-worker` on its PATH), at most `parallelism` at once, each index
/// retried twice on its own (`backoffLimitPerIndex`). The job file and the store must be on a
/// volume every pod mounts at the same path: the manifest mounts the claim `strata-data` at
/// the job file's folder (edit it for your storage). YAML.
///
/// **Errors**: [`JobError::File`] for the job file.
pub fn kubernetes_manifest(job_path: &Path, image: &str, parallelism: usize) -> Result<String, JobError> {
    let job = Job::load(job_path)?;
    let name = job_path
        .file_stem()
        .map(|s| {
            s.to_string_lossy()
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
        })
        .unwrap_or_else(|| "job".into());
    let mount = job_path.parent().unwrap_or(Path::new("/")).display().to_string();
    Ok(format!(
        "apiVersion: batch/v1\n\
kind: Job\n\
metadata:\n\
\x20 name: strata-{name}\n\
spec:\n\
\x20 completionMode: Indexed\n\
\x20 completions: {shards}\n\
\x20 parallelism: {parallelism}\n\
\x20 backoffLimitPerIndex: 2\n\
\x20 template:\n\
\x20   spec:\n\
\x20     restartPolicy: Never\n\
\x20     containers:\n\
\x20     - name: worker\n\
\x20       image: {image}\n\
\x20       # the shard index comes from JOB_COMPLETION_INDEX, set by Kubernetes\n\
\x20       command: [\"strata-worker\", \"run\", \"{job}\"]\n\
\x20       volumeMounts:\n\
\x20       - name: data\n\
\x20         mountPath: {mount}\n\
\x20     volumes:\n\
\x20     - name: data\n\
\x20       persistentVolumeClaim:\n\
\x20         claimName: strata-data\n",
        shards = job.num_shards(),
        job = job_path.display(),
    ))
}
