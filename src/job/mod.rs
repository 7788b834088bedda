//! Jobs: a lazy computation as a file that workers on other machines run piece by piece, each
//! piece one static tile of the outputs written to shared storage as Zarr shards. This is the
//! model of Slurm job arrays, Kubernetes Indexed Jobs and AWS Batch array jobs: one index per
//! task, no scheduler of strata's own between them.
//!
//! A [`Job`] holds the output graph as data ([`GraphSpec`]: sources travel as their specs and
//! are made again by [`SourceKinds`]), the Zarr target, and the layout: tiles of the outputs'
//! last two (y, x) axes. Shard `i` is tile `i` of every output (all bands and times of it), so
//! a worker reads each source tile once for all outputs. Shards are derived from the layout,
//! never listed: the job file does not grow with their number.
//!
//! [`Job::create`] writes the job file and the store's metadata and coordinates; a worker
//! ([`Job::run_shard`], the `strata-worker` binary) computes one tile and writes its shards
//! atomically, then marks the shard done beside the job file (`JOB.d/done/I`). Running a shard
//! twice is harmless; a killed worker leaves no partial shard and no mark, so the shard is
//! run again. [`Job::status`] says what is done, failed and missing; `launch` submits the rest
//! (`slurm`).

mod graph;
mod slurm;
mod sources;

use std::ops::Range;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn, SliceInfoElem};
use serde::{Deserialize, Serialize};

pub use graph::{GraphSpec, NodeSpec, OpSpec};
pub use slurm::{kubernetes_manifest, launch_slurm, SlurmOptions};
pub use sources::{SourceKinds, SourceMaker};

use crate::array::{compute_many, Array, Slice};
use crate::exec::ComputeOptions;
use crate::expr::DType;
use crate::labelled::DataArray;
use crate::output::zarr::{ShardData, ZarrArraySpec, ZarrOptions, ZarrStore};
use crate::output::{write_bytes, OutputError};

/// What went wrong with a job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// A node of the graph cannot travel to another process.
    #[error("the graph cannot be sent to workers: node {node} (shape {shape:?}): {reason}")]
    NotPortable {
        /// the node's operation
        node: String,
        /// its shape
        shape: Vec<usize>,
        /// why
        reason: String,
    },
    /// A source kind no maker is registered for.
    #[error("no maker for sources of kind {kind:?} (known: {known:?})")]
    UnknownSource {
        /// the kind
        kind: String,
        /// the kinds registered
        known: Vec<String>,
    },
    /// A source could not be made again.
    #[error("making a {kind} source: {source}")]
    Source {
        /// its kind
        kind: String,
        /// what failed, as its own type (a `serde_json::Error` for a malformed spec, a
        /// [`crate::Error`] for a stack that cannot be made); downcast to match it
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The job file cannot be read or is not a job.
    #[error("job file {path}: {message}")]
    File {
        /// the file
        path: PathBuf,
        /// what is wrong
        message: String,
    },
    /// The job's content does not fit together.
    #[error("malformed job: {what}")]
    Format {
        /// what
        what: String,
    },
    /// A shard index beyond the job's shards.
    #[error("shard {shard} is out of range: the job has {shards} shards (0..{shards})")]
    ShardOutOfRange {
        /// the index asked for
        shard: usize,
        /// how many there are
        shards: usize,
    },
    /// Outputs that do not share the layout's (y, x) extent.
    #[error("output {name} has (y, x) extent {found:?}, the job's other outputs {expected:?}")]
    Extent {
        /// the output
        name: String,
        /// its extent
        found: (usize, usize),
        /// the others'
        expected: (usize, usize),
    },
    /// Slurm is missing, refused the job, or lost it.
    #[error("slurm: {0}")]
    Slurm(String),
    /// Computing or writing a shard failed.
    #[error("shard {shard}: {source}")]
    Shard {
        /// the shard
        shard: usize,
        /// the cause
        source: Box<crate::Error>,
    },
    /// Making the store ready (metadata, coordinates) failed.
    #[error("preparing the store: {0}")]
    Prepare(Box<crate::Error>),
    /// Writing the store or the job's state failed.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// How workers compute (each worker's own machine decides what it does not say).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobCompute {
    /// the memory budget of one worker in bytes (default: the worker's default)
    pub memory_budget: Option<u64>,
    /// worker threads (default: all the worker's cores)
    pub threads: Option<usize>,
    /// `auto`, `gpu` or `cpu` (default: the worker's `STRATA_BACKEND`, else `auto`)
    pub backend: Option<String>,
}

/// One output of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutput {
    /// the Zarr array it is written to (shards: whole leading axes, one tile of y and x)
    pub array: ZarrArraySpec,
    /// its root in the graph
    pub root: usize,
}

/// A computation to run shard by shard on workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// format version (1)
    pub version: u32,
    /// the Zarr store's root, on storage every worker reaches
    pub store: PathBuf,
    /// the outputs' common extent over their last two axes
    pub extent: (usize, usize),
    /// tile shape over those axes: shard `i` is tile `i` in C order
    pub tile: (usize, usize),
    /// the outputs
    pub outputs: Vec<JobOutput>,
    /// the graph of every output
    pub graph: GraphSpec,
    /// how workers compute
    pub compute: JobCompute,
}

/// What [`Job::status`] finds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobStatus {
    /// shards in the job
    pub shards: usize,
    /// shards written and marked done
    pub done: Vec<usize>,
    /// shards whose last run failed (not done since), with the reason recorded
    pub failed: Vec<(usize, String)>,
    /// shards neither done nor failed
    pub missing: Vec<usize>,
}

impl JobStatus {
    /// The shards still to run: failed and missing, ascending.
    pub fn to_run(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .failed
            .iter()
            .map(|(i, _)| *i)
            .chain(self.missing.iter().copied())
            .collect();
        v.sort_unstable();
        v
    }
}

/// Index ranges as `a-b,c,d-e` (Slurm's `--array` syntax).
pub fn ranges(indices: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        out.push(if end > start {
            format!("{start}-{end}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    out.join(",")
}

impl Job {
    /// A job computing the named `arrays` into the Zarr group at `store`, in tiles of `tile`
    /// over their last two axes, which all must share. Only builds the description: see
    /// [`Job::create`] for the files.
    ///
    /// **Errors**: [`JobError::Format`] for an array whose build failed; [`JobError::NotPortable`]
    /// for a graph holding in-memory data or user functions; [`JobError::Extent`] for outputs of
    /// different (y, x) extents; [`JobError::Output`] for a layout Zarr cannot take.
    pub fn new(
        store: &Path,
        arrays: &[(&str, &Array)],
        tile: (usize, usize),
        compute: JobCompute,
    ) -> Result<Job, JobError> {
        let roots = arrays
            .iter()
            .map(|(name, a)| {
                a.node().cloned().map_err(|e| JobError::Format {
                    what: format!("output {name}: {e}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let graph = GraphSpec::from_roots(&roots)?;
        let mut extent = None;
        let mut outputs = Vec::with_capacity(arrays.len());
        for (k, (name, a)) in arrays.iter().enumerate() {
            let shape = a.shape();
            let nd = shape.len();
            let here = match nd {
                0 => (1, 1),
                1 => (1, shape[0]),
                _ => (shape[nd - 2], shape[nd - 1]),
            };
            let expected = *extent.get_or_insert(here);
            if here != expected {
                return Err(JobError::Extent {
                    name: name.to_string(),
                    found: here,
                    expected,
                });
            }
            let mut shard: Vec<usize> = shape.iter().map(|&n| n.max(1)).collect();
            if nd >= 2 {
                shard[nd - 2] = tile.0.max(1).min(here.0.max(1));
            }
            if nd >= 1 {
                shard[nd - 1] = tile.1.max(1).min(here.1.max(1));
            }
            let spec = ZarrArraySpec::new(
                name,
                shape,
                a.dtype(),
                &shard,
                &ZarrOptions {
                    chunk_shape: Some(shard.clone()),
                    shard_shape: Some(shard.clone()),
                    ..Default::default()
                },
            )?;
            outputs.push(JobOutput {
                array: spec,
                root: graph.roots[k],
            });
        }
        let extent = extent.unwrap_or((1, 1));
        Ok(Job {
            version: 1,
            store: store.to_path_buf(),
            extent,
            tile: (tile.0.max(1).min(extent.0.max(1)), tile.1.max(1).min(extent.1.max(1))),
            outputs,
            graph,
            compute,
        })
    }

    /// A job for labelled arrays (each under its name) written to `job_path`, with the store
    /// made ready: the group, every array's metadata, the coordinates and CRS. Workers then
    /// only write shards. Costs the planning of the graph's description and a few small
    /// writes.
    ///
    /// **Errors**: as [`Job::new`]; [`JobError::Prepare`] when the group's metadata or
    /// coordinates cannot be made; [`JobError::Output`] for what cannot be written.
    pub fn create(
        job_path: &Path,
        store: &Path,
        arrays: &[&DataArray],
        tile: (usize, usize),
        compute: JobCompute,
    ) -> Result<Job, JobError> {
        let named: Vec<(&str, &Array)> = arrays.iter().map(|a| (a.name().unwrap_or("data"), a.data())).collect();
        let mut job = Job::new(store, &named, tile, compute)?;
        let zarr = ZarrStore::create(store)?;
        for (out, a) in job.outputs.iter_mut().zip(arrays) {
            out.array.dimension_names = Some(a.dims().to_vec());
        }
        let labelled_specs: Vec<ZarrArraySpec> = job.outputs.iter().map(|o| o.array.clone()).collect();
        let specs = crate::labelled::prepare_zarr_group(&zarr, arrays, &labelled_specs)
            .map_err(|e| JobError::Prepare(Box::new(e)))?;
        for (out, spec) in job.outputs.iter_mut().zip(specs) {
            out.array = spec;
        }
        job.save(job_path)?;
        std::fs::create_dir_all(state_dir(job_path).join("done")).map_err(|e| io_error(job_path, e))?;
        Ok(job)
    }

    /// The job as JSON in `path`, written atomically.
    ///
    /// **Errors**: [`JobError::Output`].
    pub fn save(&self, path: &Path) -> Result<(), JobError> {
        let json = serde_json::to_vec(self).map_err(|e| JobError::Format { what: e.to_string() })?;
        write_bytes(path, &json)?;
        Ok(())
    }

    /// The job in `path`.
    ///
    /// **Errors**: [`JobError::File`] for a missing, unreadable or malformed file.
    pub fn load(path: &Path) -> Result<Job, JobError> {
        let bytes = std::fs::read(path).map_err(|e| JobError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let job: Job = serde_json::from_slice(&bytes).map_err(|e| JobError::File {
            path: path.to_path_buf(),
            message: format!("not a strata job: {e}"),
        })?;
        if job.version != 1 {
            return Err(JobError::File {
                path: path.to_path_buf(),
                message: format!("job format version {} (this strata reads 1)", job.version),
            });
        }
        Ok(job)
    }

    /// Tiles per (y, x) axis.
    pub fn tiles(&self) -> (usize, usize) {
        (
            self.extent.0.div_ceil(self.tile.0).max(1),
            self.extent.1.div_ceil(self.tile.1).max(1),
        )
    }

    /// Number of shards (tiles; each holds one shard of every output).
    pub fn num_shards(&self) -> usize {
        let (ty, tx) = self.tiles();
        ty * tx
    }

    /// The (y, x) region of shard `i`. O(1): shards are derived, never listed.
    ///
    /// **Errors**: [`JobError::ShardOutOfRange`].
    pub fn shard_region(&self, i: usize) -> Result<(Range<usize>, Range<usize>), JobError> {
        let shards = self.num_shards();
        if i >= shards {
            return Err(JobError::ShardOutOfRange { shard: i, shards });
        }
        let (_, tx) = self.tiles();
        let (r, c) = (i / tx, i % tx);
        let y = r * self.tile.0..((r + 1) * self.tile.0).min(self.extent.0);
        let x = c * self.tile.1..((c + 1) * self.tile.1).min(self.extent.1);
        Ok((y, x))
    }

    /// The outputs restricted to shard `i`'s tile, as lazy arrays made again from the graph
    /// (sources through `kinds`): what a worker computes, and what planning it costs.
    ///
    /// **Errors**: [`JobError::ShardOutOfRange`]; the registry's errors.
    pub fn shard_arrays(&self, i: usize, kinds: &SourceKinds) -> Result<Vec<Array>, JobError> {
        let (y, x) = self.shard_region(i)?;
        let roots = self.graph.build(kinds)?;
        Ok(self
            .outputs
            .iter()
            .map(|out| {
                let root =
                    Array::from_node(roots[self.graph.roots.iter().position(|&r| r == out.root).unwrap_or(0)].clone());
                let nd = out.array.shape.len();
                let mut slices = vec![Slice::all(); nd];
                if nd >= 2 {
                    slices[nd - 2] = Slice::range(y.start as isize, y.end as isize);
                }
                if nd >= 1 {
                    slices[nd - 1] = Slice::range(x.start as isize, x.end as isize);
                }
                root.slice(&slices)
            })
            .collect())
    }

    /// Computes shard `i` (every output over tile `i`, in one run: the sources' tiles are read
    /// once) and writes its shards, each atomically, then marks it done beside `job_path`. A
    /// failure is recorded there too (`JOB.d/failed/I`), with nothing half-written.
    ///
    /// **Errors**: [`JobError::ShardOutOfRange`]; the registry's errors (as
    /// [`Job::shard_arrays`]); [`JobError::Shard`] with the cause of a failed computation or write.
    pub fn run_shard(&self, job_path: &Path, i: usize, kinds: &SourceKinds) -> Result<ShardRun, JobError> {
        let began = std::time::Instant::now();
        let shards = self.num_shards();
        if i >= shards {
            return Err(JobError::ShardOutOfRange { shard: i, shards });
        }
        let state = state_dir(job_path);
        let result = self.compute_shard(i, kinds, began);
        match &result {
            Ok(_) => {
                let _ = std::fs::remove_file(state.join("failed").join(i.to_string()));
                std::fs::create_dir_all(state.join("done")).map_err(|e| io_error(&state, e))?;
                write_bytes(&state.join("done").join(i.to_string()), b"done\n")?;
            }
            Err(e) => {
                let _ = std::fs::create_dir_all(state.join("failed"));
                let _ = write_bytes(&state.join("failed").join(i.to_string()), e.to_string().as_bytes());
            }
        }
        result
    }

    fn compute_shard(&self, i: usize, kinds: &SourceKinds, began: std::time::Instant) -> Result<ShardRun, JobError> {
        let fail = |source: crate::Error| JobError::Shard {
            shard: i,
            source: Box::new(source),
        };
        if std::env::var("STRATA_JOB_FAIL_SHARDS").is_ok_and(|v| v.split(',').any(|s| s.trim() == i.to_string())) {
            // a test hook: this shard fails as a broken read would
            return Err(fail(crate::Error::Job(Box::new(JobError::Format {
                what: "failure injected by STRATA_JOB_FAIL_SHARDS".into(),
            }))));
        }
        let arrays = self.shard_arrays(i, kinds)?;
        let planned = began.elapsed();
        let refs: Vec<&Array> = arrays.iter().collect();
        let (values, report) = compute_many(&refs, &self.compute_options()).map_err(fail)?;
        let store = ZarrStore::create(&self.store).map_err(|e| fail(e.into()))?;
        for (k, (out, v)) in self.outputs.iter().zip(&values).enumerate() {
            let array = store.array(&out.array).map_err(|e| fail(e.into()))?;
            let shard_index = self.output_shard(&out.array, i);
            write_padded(&array, shard_index, &out.array, v).map_err(|e| fail(e.into()))?;
            if k == 0 {
                if let Ok(pause) = std::env::var("STRATA_JOB_PAUSE_SHARD") {
                    // a test hook: stop between two outputs' shards until killed
                    if pause == i.to_string() {
                        let marker = std::env::temp_dir().join(format!("strata-paused-{i}"));
                        let _ = std::fs::write(marker, std::process::id().to_string());
                        std::thread::sleep(std::time::Duration::from_secs(3600));
                    }
                }
            }
        }
        Ok(ShardRun {
            shard: i,
            planning: planned,
            total: began.elapsed(),
            tasks: report.tasks.len(),
        })
    }

    /// The shard of output `spec` that tile `i` is (whole leading axes: the tile's index in
    /// the shard grid).
    fn output_shard(&self, spec: &ZarrArraySpec, i: usize) -> usize {
        let per = spec.shards_per_axis();
        let (_, tx) = self.tiles();
        let (r, c) = (i / tx, i % tx);
        let nd = per.len();
        match nd {
            0 => 0,
            1 => c,
            _ => r * per[nd - 1] + c,
        }
    }

    /// The computation options the job gives its workers.
    pub fn compute_options(&self) -> ComputeOptions {
        let mut o = ComputeOptions {
            progress: crate::exec::Progress::Off,
            threads: self.compute.threads,
            ..Default::default()
        };
        if let Some(b) = self.compute.memory_budget {
            o.memory_budget = Some(b);
        }
        o.backend = match self.compute.backend.as_deref() {
            Some("gpu") => crate::backend::gpu::BackendChoice::Gpu,
            Some("cpu") => crate::backend::gpu::BackendChoice::Cpu,
            Some(_) | None => o.backend,
        };
        o
    }

    /// Which shards are done, failed (and why) and missing, from the marks beside `job_path`
    /// (a Slurm wrapper's exit codes count as failures too). O(shards).
    pub fn status(&self, job_path: &Path) -> JobStatus {
        let state = state_dir(job_path);
        let shards = self.num_shards();
        let mut status = JobStatus {
            shards,
            ..Default::default()
        };
        let listed = |dir: &str| -> std::collections::HashSet<usize> {
            std::fs::read_dir(state.join(dir))
                .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
                .unwrap_or_default()
        };
        let done = listed("done");
        let failed = listed("failed");
        let exits = listed("exit");
        for i in 0..shards {
            if done.contains(&i) {
                status.done.push(i);
            } else if failed.contains(&i) {
                let why = std::fs::read_to_string(state.join("failed").join(i.to_string())).unwrap_or_default();
                status.failed.push((i, why.trim().to_string()));
            } else if exits.contains(&i) {
                let code = std::fs::read_to_string(state.join("exit").join(i.to_string())).unwrap_or_default();
                status
                    .failed
                    .push((i, format!("the worker exited with {}", code.trim())));
            } else {
                status.missing.push(i);
            }
        }
        status
    }
}

/// What one shard's run took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRun {
    /// the shard
    pub shard: usize,
    /// loading the job, making the graph and its sources again, slicing to the tile
    pub planning: std::time::Duration,
    /// everything: planning, computing, writing
    pub total: std::time::Duration,
    /// tasks the computation ran
    pub tasks: usize,
}

/// The folder of a job's state (`JOB.d` beside the job file `JOB`).
pub fn state_dir(job_path: &Path) -> PathBuf {
    let mut name = job_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".d");
    job_path.with_file_name(name)
}

fn io_error(path: &Path, source: std::io::Error) -> JobError {
    JobError::Output(OutputError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `values` (the tile, f32; masks as 0.0/1.0) as shard `index` of `array`, padded to the
/// whole shard with the fill value.
fn write_padded(
    array: &crate::output::zarr::ZarrArray,
    index: usize,
    spec: &ZarrArraySpec,
    values: &ArrayD<f32>,
) -> Result<(), OutputError> {
    let shape = IxDyn(&spec.shard_shape);
    let region: Vec<SliceInfoElem> = values.shape().iter().map(|&n| SliceInfoElem::from(0..n)).collect();
    let bad = |e: ndarray::ShapeError| OutputError::Encode {
        path: spec.path.clone().into(),
        message: e.to_string(),
    };
    match spec.dtype {
        DType::F32 => {
            let mut buf = ArrayD::from_elem(shape, f32::NAN);
            buf.slice_mut(region.as_slice()).assign(values);
            let (v, _) = buf.into_raw_vec_and_offset();
            array.write_shard(index, ShardData::F32(&v))
        }
        DType::U8 => {
            let mut buf = ArrayD::<u8>::zeros(shape);
            buf.slice_mut(region.as_slice())
                .zip_mut_with(values, |d, &s| *d = s as u8);
            let v = buf.into_raw_vec_and_offset().0;
            let _ = bad;
            array.write_shard(index, ShardData::U8(&v))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn shard_lists_print_as_slurm_ranges() {
        assert_eq!(super::ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(super::ranges(&[3]), "3");
        assert_eq!(super::ranges(&[]), "");
    }
}
