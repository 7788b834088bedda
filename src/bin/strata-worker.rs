//! `strata-worker`: runs a strata job's shards where a cluster puts them.
//!
//! ```text
//! strata-worker run JOB [--shard I]        # I, or SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX
//! strata-worker status JOB [--json]
//! strata-worker launch slurm JOB [--max-parallel K] [--partition P] [-- SBATCH_OPTIONS...]
//! strata-worker launch k8s JOB --image IMAGE [--parallelism K]
//! ```
//!
//! A job file comes from `strata::job::Job::create` (the tutorial's `--executor slurm` makes
//! one). `run` computes one shard and writes it atomically; `status` lists the shards done,
//! failed and missing; `launch slurm` submits the missing ones as one array, waits, and
//! reports; `launch k8s` prints an Indexed Job manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strata::job::{kubernetes_manifest, launch_slurm, ranges, Job, JobError, JobStatus, SlurmOptions, SourceKinds};

#[derive(Parser, Debug)]
#[command(about = "Runs strata job shards (Slurm arrays, Kubernetes Indexed Jobs, AWS Batch arrays)")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// compute one shard and write it (atomically)
    Run {
        /// the job file
        job: PathBuf,
        /// the shard (default: SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX)
        #[arg(long)]
        shard: Option<usize>,
    },
    /// list the shards done, failed and missing
    Status {
        /// the job file
        job: PathBuf,
        /// print JSON
        #[arg(long)]
        json: bool,
    },
    /// submit the missing shards to a cluster
    Launch {
        #[command(subcommand)]
        on: Launch,
    },
}

#[derive(Subcommand, Debug)]
enum Launch {
    /// one sbatch array of the missing shards; waits and reports
    Slurm {
        /// the job file
        job: PathBuf,
        /// most tasks at once
        #[arg(long)]
        max_parallel: Option<usize>,
        /// the partition
        #[arg(long)]
        partition: Option<String>,
        /// give up waiting after this many seconds
        #[arg(long)]
        timeout: Option<u64>,
        /// the folder holding sbatch and squeue (default: found on PATH)
        #[arg(long)]
        slurm_bin: Option<PathBuf>,
        /// further sbatch options (after --)
        #[arg(last = true)]
        sbatch: Vec<String>,
    },
    /// print a Kubernetes Indexed Job manifest
    K8s {
        /// the job file
        job: PathBuf,
        /// the container image (with strata-worker on its PATH)
        #[arg(long)]
        image: String,
        /// pods at once
        #[arg(long, default_value_t = 16)]
        parallelism: usize,
    },
}

/// The shard index a cluster gave this task.
fn index_from_env() -> Option<usize> {
    [
        "SLURM_ARRAY_TASK_ID",
        "JOB_COMPLETION_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

fn print_status(s: &JobStatus) {
    println!(
        "{} shards: {} done, {} failed, {} missing",
        s.shards,
        s.done.len(),
        s.failed.len(),
        s.missing.len()
    );
    for (i, why) in &s.failed {
        println!("  failed {i}: {why}");
    }
    if !s.missing.is_empty() {
        println!("  missing: {}", ranges(&s.missing));
    }
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    let result: Result<bool, JobError> = (|| match cli.command {
        Cmd::Run { job: path, shard } => {
            let job = Job::load(&path)?;
            let i = shard.or_else(index_from_env).ok_or_else(|| JobError::Format {
                what: "no shard index: give --shard or run as an array task (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX)".into(),
            })?;
            let loaded = started.elapsed();
            let run = job.run_shard(&path, i, &SourceKinds::default())?;
            eprintln!(
                "shard {i}: job loaded {:.1} ms after start, planned in {:.1} ms more, done {:.1} ms after start ({} tasks)",
                loaded.as_secs_f64() * 1e3,
                run.planning.as_secs_f64() * 1e3,
                started.elapsed().as_secs_f64() * 1e3,
                run.tasks
            );
            Ok(true)
        }
        Cmd::Status { job: path, json } => {
            let status = Job::load(&path)?.status(&path);
            if json {
                println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
            } else {
                print_status(&status);
            }
            Ok(status.to_run().is_empty())
        }
        Cmd::Launch {
            on:
                Launch::Slurm {
                    job,
                    max_parallel,
                    partition,
                    timeout,
                    slurm_bin,
                    sbatch,
                },
        } => {
            let options = SlurmOptions {
                max_parallel,
                partition,
                sbatch_args: sbatch,
                worker: None,
                timeout: timeout.map(std::time::Duration::from_secs),
                bin_dir: slurm_bin,
            };
            let (status, id) = launch_slurm(&job, &options)?;
            match id {
                Some(id) => println!("slurm array {id} finished"),
                None => println!("nothing to submit"),
            }
            print_status(&status);
            Ok(status.to_run().is_empty())
        }
        Cmd::Launch {
            on: Launch::K8s {
                job,
                image,
                parallelism,
            },
        } => {
            print!("{}", kubernetes_manifest(&job, &image, parallelism)?);
            Ok(true)
        }
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
