//! Computing arrays into a Zarr store: one run for all of them (shared work computed once),
//! each output streamed shard by shard into a fresh folder beside its final place, the folders
//! swapped in only when every shard is written. A failed run leaves the arrays that were there
//! before, and no new ones.

use std::path::{Path, PathBuf};

use super::{ShardAssembler, ZarrArraySpec, ZarrOptions, ZarrStore};
use crate::array::{execute_graph, plan_many, Array};
use crate::exec::{ComputeOptions, ExecReport};
use crate::output::OutputError;

/// What a Zarr write did.
#[derive(Debug, Clone)]
pub struct ZarrWrite {
    /// the computation's report
    pub report: ExecReport,
    /// shards written, over all arrays
    pub shards: usize,
}

/// Computes `arrays` (each with the spec of where it goes) in one run and writes them into
/// `store`, replacing arrays already at those paths only once all are written. The data
/// streams: a shard is written as soon as its blocks are computed.
///
/// **Errors**: a plan or execution error; [`OutputError`] for a shard or metadata that cannot
/// be written (the arrays then stay as they were).
pub fn write_arrays(
    store: &ZarrStore,
    arrays: &[(ZarrArraySpec, &Array)],
    options: &ComputeOptions,
) -> crate::Result<ZarrWrite> {
    let staged: Vec<ZarrArraySpec> = arrays
        .iter()
        .map(|(spec, _)| ZarrArraySpec {
            path: staging_path(&spec.path),
            ..spec.clone()
        })
        .collect();
    // Each array computed in blocks of its shards: a block then fills whole shards, written
    // and freed as it arrives, where blocks offset from the shard grid (an area cut at any
    // pixel) would keep every shard they straddle open until its neighbours came.
    let regular: Vec<Array> = arrays
        .iter()
        .map(|(spec, a)| {
            let aligned = a.grid().is_some_and(|g| {
                (0..g.ndim()).all(|k| {
                    let s = spec.shard_shape[k];
                    g.offsets(k).iter().all(|o| o % s == 0 || *o == g.shape()[k])
                })
            });
            if aligned {
                (*a).clone()
            } else {
                a.rechunk(crate::expr::Chunks::Block(spec.shard_shape.clone()))
            }
        })
        .collect();
    let result = (|| {
        let graph = plan_many(&regular.iter().collect::<Vec<_>>(), options)?;
        let mut outputs = Vec::with_capacity(staged.len());
        for (spec, out) in staged.iter().zip(&graph.outputs) {
            outputs.push(store.create_array(spec)?);
            if out.grid.shape() != spec.shape.as_slice() {
                return Err(OutputError::Unsupported {
                    path: spec.path.clone().into(),
                    reason: format!(
                        "an array of shape {:?} for a spec of {:?}",
                        out.grid.shape(),
                        spec.shape
                    ),
                }
                .into());
            }
        }
        let sink = ShardAssembler::new(outputs, graph.outputs.iter().map(|o| o.grid.clone()).collect());
        let report = execute_graph(&graph, &sink, options)?;
        let shards = sink.finish()?;
        Ok::<_, crate::Error>(ZarrWrite { report, shards })
    })();
    match result {
        Ok(done) => {
            for (spec, staged) in arrays.iter().map(|(s, _)| s).zip(&staged) {
                swap_in(store.root(), &staged.path, &spec.path)?;
            }
            Ok(done)
        }
        Err(e) => {
            for staged in &staged {
                let _ = std::fs::remove_dir_all(dir_of(store.root(), &staged.path));
            }
            Err(e)
        }
    }
}

/// The block shape each array is computed in (the planner's, after pushdown and the cuts of
/// its reductions), the default inner chunk of its Zarr array: blocks then map onto chunks
/// and shards with little straddling. Costs a planning.
///
/// **Errors**: a plan error.
pub(crate) fn planned_blocks(arrays: &[&Array], options: &ComputeOptions) -> crate::Result<Vec<Vec<usize>>> {
    let graph = plan_many(arrays, options)?;
    Ok(graph.outputs.iter().map(|o| o.grid.max_block_shape()).collect())
}

/// The folder an array path lives in.
fn dir_of(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Where an array is written before it is swapped in: a hidden sibling, unique to this
/// process and write.
fn staging_path(path: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let path = super::normalise(path);
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", &path));
    format!(
        "{parent}/.{name}.new-{}-{}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    )
}

/// Moves the written array at `staged` to `path`: an old array there is renamed aside first
/// and removed after, so a reader sees the old array or the new one at every moment but one
/// rename apart.
fn swap_in(root: &Path, staged: &str, path: &str) -> Result<(), OutputError> {
    let (from, to) = (dir_of(root, staged), dir_of(root, path));
    let io = |source| OutputError::Io {
        path: to.clone(),
        source,
    };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let old = to.with_file_name(format!(
        ".{}.old-{}",
        to.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let had_old = to.exists();
    if had_old {
        std::fs::rename(&to, &old).map_err(io)?;
    }
    std::fs::rename(&from, &to).map_err(io)?;
    if had_old {
        std::fs::remove_dir_all(&old).map_err(io)?;
    }
    Ok(())
}

impl Array {
    /// Computes the array into a Zarr v3 store at `root` (a folder, created if missing) as
    /// the array `path`, sharded and zstd-compressed as `options` say, streaming shard by
    /// shard (the whole result is never held). An array already there is replaced once the
    /// new one is whole. Floats are `float32` with NaN fill; masks `uint8`.
    ///
    /// **Errors**: as [`Array::compute`]; [`OutputError`] for what cannot be written.
    pub fn to_zarr(&self, root: impl AsRef<Path>, path: &str, options: &ZarrOptions) -> crate::Result<ZarrWrite> {
        self.to_zarr_with(root, path, options, &ComputeOptions::default())
    }

    /// [`Array::to_zarr`] with computation options.
    ///
    /// **Errors**: as [`Array::to_zarr`].
    pub fn to_zarr_with(
        &self,
        root: impl AsRef<Path>,
        path: &str,
        options: &ZarrOptions,
        compute: &ComputeOptions,
    ) -> crate::Result<ZarrWrite> {
        let store = ZarrStore::create(root.as_ref())?;
        let block = planned_blocks(&[self], compute)?.remove(0);
        let spec = ZarrArraySpec::new(path, self.shape(), self.dtype(), &block, options)?;
        write_arrays(&store, &[(spec, self)], compute)
    }
}
