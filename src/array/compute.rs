//! Running an array: `compute`, `persist`, the plan and its picture.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewMutD, IxDyn};

use super::Array;
use crate::backend::ResultMemory;
use crate::exec::{execute, BlockCollector, ComputeOptions, DenseOutputs, ExecReport};
use crate::expr::{Block, ChunkGrid, DType, Node, Op};
use crate::plan::{Explain, LogicalPlan, PlanOptions, TaskGraph};

fn plan_options(options: &ComputeOptions) -> PlanOptions {
    PlanOptions {
        // planning cuts holistic blocks against a budget before the run's is chosen: the one
        // set, else the machine's ceiling for the default rule
        memory_budget: options
            .memory_budget
            .unwrap_or_else(|| crate::exec::options::total_memory() / 2),
        split_every: options.split_every,
        max_holistic_block: options.max_holistic_block,
        threads: options
            .threads
            .filter(|&t| t > 0)
            .unwrap_or_else(rayon::current_num_threads),
        optimize: options.optimize,
        dense_results: false,
        median_reads_steps: options.backend.resolves_to_cpu(),
        // the device's window reductions take blocks as large as a median's
        window_block_bytes: if options.backend.resolves_to_cpu() {
            PlanOptions::default().window_block_bytes
        } else {
            options.max_holistic_block
        },
    }
}

/// [`plan_options`] for results computed into whole in-memory arrays.
fn dense_plan_options(options: &ComputeOptions) -> PlanOptions {
    PlanOptions {
        dense_results: true,
        ..plan_options(options)
    }
}

/// Computes several arrays in one run, sharing the work they have in common; results come
/// back as f32 (masks as 0.0/1.0), in order, with the run's report. Output blocks are written
/// straight into the result arrays by the workers that compute them.
///
/// **Errors**: the first build, plan or execution error.
pub fn compute_many(arrays: &[&Array], options: &ComputeOptions) -> crate::Result<(Vec<ArrayD<f32>>, ExecReport)> {
    let roots: Vec<Arc<Node>> = arrays.iter().map(|a| a.node().cloned()).collect::<Result<_, _>>()?;
    let graph = TaskGraph::build(&roots, &dense_plan_options(options))?;
    let mut outs: Vec<ArrayD<MaybeUninit<f32>>> = graph.outputs.iter().map(|o| result_array(&o.grid)).collect();
    let views = outs.iter_mut().map(|o| o.view_mut()).collect();
    let report = execute_dense(&graph, views, ResultMemory::Fresh, options)?;
    // SAFETY: execution succeeded and every block of every output — together the whole array
    // — was leased to its one writer (`execute_dense` checked), which wrote all of it.
    let outs = outs.into_iter().map(|o| unsafe { o.assume_init() }).collect();
    Ok((outs, report))
}

/// Plans several arrays as one task graph (work they share is planned once), for a caller
/// that runs it with a sink of its own ([`execute_graph`]). Costs the planning.
///
/// **Errors**: a deferred build error or a plan error.
pub fn plan_many(arrays: &[&Array], options: &ComputeOptions) -> crate::Result<TaskGraph> {
    let roots: Vec<Arc<Node>> = arrays.iter().map(|a| a.node().cloned()).collect::<Result<_, _>>()?;
    Ok(TaskGraph::build(&roots, &plan_options(options))?)
}

/// Runs a planned graph on the backend `options` chooses, every finished output block going
/// to `sink` (a writer that streams results out block by block, as the Zarr output does).
///
/// **Errors**: no GPU when one was asked for; the first failing task.
pub fn execute_graph(
    graph: &TaskGraph,
    sink: &dyn crate::exec::OutputSink,
    options: &ComputeOptions,
) -> crate::Result<ExecReport> {
    let backend = backend_for(options)?;
    Ok(execute(graph, backend.as_ref(), options, sink)?)
}

/// Runs `graph`, its workers writing every output block into `views` (one standard-layout
/// view per output, of the output's shape, in memory of kind `memory`).
fn execute_dense(
    graph: &TaskGraph,
    views: Vec<ArrayViewMutD<'_, MaybeUninit<f32>>>,
    memory: ResultMemory,
    options: &ComputeOptions,
) -> crate::Result<ExecReport> {
    let grids = graph.outputs.iter().map(|o| o.grid.clone()).collect();
    let sink = DenseOutputs::new(views, grids, memory);
    let backend = backend_for(options)?;
    let report = execute(graph, backend.as_ref(), options, &sink)?;
    let missing = sink.unwritten_blocks();
    if missing > 0 {
        // A block nobody wrote would be read uninitialised: refuse the result instead.
        return Err(crate::exec::ExecError::Unwritten { blocks: missing }.into());
    }
    Ok(report)
}

/// An uninitialised result array, laid out for how its blocks will be written.
///
/// Where every block writes runs of at least two huge pages, it asks for transparent huge
/// pages, as numpy does for its arrays: the first write into a fresh 64 MiB result otherwise
/// takes 16k page faults, which cost as much as computing a band-math expression into it
/// (measured: numexpr's allocating band math takes 39 ms with numpy's huge-page advice and
/// 62 ms without). Where blocks write shorter runs (a block spanning every month of a
/// monthly cube writes one strip per month), it asks for small pages instead: one strip would
/// otherwise make a whole 2 MiB page resident, and the first few blocks the whole result
/// (measured on the tutorial's monthly cube: all 250 MB resident when 20 MB had been written).
fn result_array(grid: &ChunkGrid) -> ArrayD<MaybeUninit<f32>> {
    let mut a = ArrayD::uninit(IxDyn(grid.shape()));
    let run = shortest_written_run(grid) * std::mem::size_of::<f32>();
    advise_pages(a.as_mut_ptr().cast(), a.len() * std::mem::size_of::<f32>(), run);
    a
}

/// The fewest contiguous elements one block of `grid` writes in a row-major array of its
/// shape: the block's extent over the trailing axes up to the last axis the block does not
/// span whole.
fn shortest_written_run(grid: &ChunkGrid) -> usize {
    let mut run = 1;
    for axis in (0..grid.ndim()).rev() {
        let smallest = grid.sizes(axis).iter().copied().min().unwrap_or(0);
        run *= smallest;
        if smallest < grid.shape()[axis] {
            break;
        }
    }
    run
}

#[cfg(target_os = "linux")]
fn advise_pages(ptr: *mut u8, len: usize, run: usize) {
    const HUGE: usize = 2 << 20;
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + len) / HUGE * HUGE;
    if len >= 4 * HUGE && end > start {
        let advice = if run >= 2 * HUGE {
            libc::MADV_HUGEPAGE
        } else {
            libc::MADV_NOHUGEPAGE
        };
        // SAFETY: the range lies inside one live allocation; madvise only changes how the
        // kernel backs those pages (an error, e.g. huge pages disabled, leaves them as they were).
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, advice) };
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_pages(_: *mut u8, _: usize, _: usize) {}

impl Array {
    /// Lowers the array to the chunk task graph `compute` runs (no pixel is read), with
    /// default options. (A store's writer plans its blocks as declared: `plan_many`.)
    ///
    /// **Errors**: an error recorded while building, or a reduction too big for the budget.
    pub fn plan(&self) -> crate::Result<TaskGraph> {
        self.plan_with(&ComputeOptions::default())
    }

    /// [`Array::plan`] for the given options (the budget shapes median blocks).
    ///
    /// **Errors**: as [`Array::plan`].
    pub fn plan_with(&self, options: &ComputeOptions) -> crate::Result<TaskGraph> {
        Ok(TaskGraph::build(&[self.node()?.clone()], &dense_plan_options(options))?)
    }

    /// Computes the values as f32 (masks as 0.0/1.0) with default options.
    ///
    /// **Errors**: a build or plan error, a budget too small for one task, a failing source
    /// or user function, no GPU when one was asked for (`STRATA_BACKEND=gpu`).
    pub fn compute(&self) -> crate::Result<ArrayD<f32>> {
        Ok(self.compute_with(&ComputeOptions::default())?.0)
    }

    /// Computes with `options`, returning the values and the execution report.
    ///
    /// **Errors**: as [`Array::compute`].
    pub fn compute_with(&self, options: &ComputeOptions) -> crate::Result<(ArrayD<f32>, ExecReport)> {
        let (mut outs, report) = compute_many(&[self], options)?;
        Ok((outs.pop().expect("one output"), report))
    }

    /// Computes into `out` (shape of the array), reusing its memory: no result allocation and
    /// no copy, as numpy's `out=`. Masks are written as 0.0/1.0.
    ///
    /// **Errors**: as [`Array::compute`], or [`crate::ExprError::ShapeMismatch`] when `out`
    /// has another shape.
    pub fn compute_into(&self, mut out: ArrayViewMutD<'_, f32>, options: &ComputeOptions) -> crate::Result<ExecReport> {
        let node = self.node()?.clone();
        if out.shape() != node.shape() {
            return Err(crate::ExprError::ShapeMismatch {
                op: "compute_into".into(),
                left: node.shape().to_vec(),
                right: out.shape().to_vec(),
            }
            .into());
        }
        if !out.is_standard_layout() {
            let (values, report) = self.compute_with(options)?;
            out.assign(&values);
            return Ok(report);
        }
        let graph = TaskGraph::build(std::slice::from_ref(&node), &dense_plan_options(options))?;
        let shape = out.shape().to_vec();
        // SAFETY: f32 and MaybeUninit<f32> have the same layout, and only initialised f32
        // values are ever written through the view.
        let view = unsafe { ArrayViewMutD::from_shape_ptr(IxDyn(&shape), out.as_mut_ptr().cast::<MaybeUninit<f32>>()) };
        execute_dense(&graph, vec![view], ResultMemory::Reused, options)
    }

    /// Computes a mask as u8 (0/1); an f32 array is cast (truncated, NaN → 0).
    ///
    /// **Errors**: as [`Array::compute`].
    pub fn compute_mask(&self) -> crate::Result<ArrayD<u8>> {
        Ok(self.astype(DType::U8).compute()?.mapv(|v| v as u8))
    }

    /// Computes a zero-dimensional result (a reduction over all axes) as one number.
    ///
    /// **Errors**: as [`Array::compute`], or [`crate::ExprError::InvalidArgument`] when the
    /// array has more than one element.
    pub fn compute_scalar(&self) -> crate::Result<f32> {
        let a = self.compute()?;
        if a.len() != 1 {
            return Err(crate::ExprError::InvalidArgument {
                op: "compute_scalar".into(),
                reason: format!("shape {:?} is not a scalar", a.shape()),
            }
            .into());
        }
        Ok(a.iter().next().copied().expect("one element"))
    }

    /// Computes the blocks and keeps them in memory: the returned array reads them instead of
    /// recomputing (dask's `persist`). Costs the array's `nbytes` of memory while it lives.
    ///
    /// **Errors**: as [`Array::compute`].
    pub fn persist(&self) -> crate::Result<Array> {
        self.persist_with(&ComputeOptions::default())
    }

    /// [`Array::persist`] with options.
    ///
    /// **Errors**: as [`Array::compute`].
    pub fn persist_with(&self, options: &ComputeOptions) -> crate::Result<Array> {
        let node = self.node()?.clone();
        let graph = TaskGraph::build(std::slice::from_ref(&node), &plan_options(options))?;
        let out = &graph.outputs[0];
        let sink = BlockCollector::new(&[out.tasks.len()]);
        let backend = backend_for(options)?;
        execute(&graph, backend.as_ref(), options, &sink)?;
        let blocks: Vec<Block> = sink
            .into_blocks()
            .remove(0)
            .into_iter()
            .map(|b| b.expect("every block computed"))
            .collect();
        let persisted = Node::new(Op::Persisted(Arc::new(blocks)), vec![], out.grid.clone(), node.dtype);
        Ok(self.same_dims(Array::from_node(persisted)))
    }

    /// What the planner makes of the array under `options`, pass by pass: the logical plan as
    /// written, the rewrite rules that fired, the optimized plan, the task graph and where
    /// each task runs on the backend `options` choose (polars' `explain`). Nothing is read;
    /// choosing a GPU backend starts its adapter.
    ///
    /// **Errors**: a build or plan error, or no GPU when one was asked for.
    pub fn explain(&self, options: &ComputeOptions) -> crate::Result<Explain> {
        let plan_options = dense_plan_options(options);
        let written = LogicalPlan::bind(&[self.node()?.clone()]);
        let (optimized, rewrites) = TaskGraph::optimize(&written, &plan_options);
        let layout = TaskGraph::layout(&optimized, &plan_options)?;
        let graph = TaskGraph::emit(&layout)?;
        let backend = backend_for(options)?;
        let placements = graph.place(&backend.name(), &|kind, inputs| backend.place(kind, inputs));
        Ok(Explain {
            written,
            rewrites,
            optimized,
            layout,
            graph,
            placements,
        })
    }

    /// Writes the task graph as Graphviz DOT to `path`, and beside it an SVG when the `dot`
    /// program is installed (dask's `visualize`), with default options. Returns the path of
    /// the SVG, or of the DOT file when no SVG was made.
    ///
    /// **Errors**: a plan error, an I/O error writing the file, or no GPU when the default
    /// options ask for one (`STRATA_BACKEND=gpu`).
    pub fn visualize(&self, path: impl AsRef<Path>) -> crate::Result<PathBuf> {
        self.visualize_with(path, &ComputeOptions::default())
    }

    /// [`Array::visualize`] of the plan `options` make, each task marked where it runs on
    /// their backend (device tasks outlined in red) and transfers drawn as dashed edges;
    /// `optimize: false` draws the plan as written, for a before/after pair.
    ///
    /// **Errors**: as [`Array::visualize`], or no GPU when one was asked for.
    pub fn visualize_with(&self, path: impl AsRef<Path>, options: &ComputeOptions) -> crate::Result<PathBuf> {
        let explained = self.explain(options)?;
        let graph = explained.graph.to_dot_placed(&explained.placements);
        let dot_path = path.as_ref().with_extension("dot");
        std::fs::write(&dot_path, graph).map_err(|e| crate::output::OutputError::Io {
            path: dot_path.clone(),
            source: e,
        })?;
        let svg = dot_path.with_extension("svg");
        let made = std::process::Command::new("dot")
            .arg("-Tsvg")
            .arg(&dot_path)
            .arg("-o")
            .arg(&svg)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        Ok(if made { svg } else { dot_path })
    }
}

/// The backend `options` ask for, once strata's environment variables are known to parse (a
/// bad one is [`ExecError::Setting`](crate::exec::ExecError::Setting), raised before a device
/// is opened, so it is never remembered as the device's failure).
fn backend_for(options: &ComputeOptions) -> crate::Result<std::sync::Arc<dyn crate::backend::Backend>> {
    crate::settings::check().map_err(crate::exec::ExecError::from)?;
    Ok(crate::backend::gpu::select(options.backend)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Chunks;

    fn grid(shape: &[usize], block: &[usize]) -> ChunkGrid {
        ChunkGrid::new(shape, &Chunks::Block(block.to_vec())).unwrap()
    }

    #[test]
    fn a_block_writes_runs_as_long_as_its_trailing_whole_axes() {
        // Whole rows: a block of 64 rows of a 1024-wide plane is one run of 64 * 1024.
        assert_eq!(shortest_written_run(&grid(&[1024, 1024], &[64, 1024])), 64 * 1024);
        // A block spanning every month writes one strip per month; the last, shortest strip
        // (1024 - 14 * 69 = 58 rows) decides.
        assert_eq!(
            shortest_written_run(&grid(&[21, 3, 1024, 1024], &[21, 1, 69, 1024])),
            58 * 1024
        );
        // Square blocks write one block row at a time; the shortest block decides.
        assert_eq!(shortest_written_run(&grid(&[1000, 1000], &[512, 512])), 488);
        // One block: the whole array.
        assert_eq!(shortest_written_run(&grid(&[4, 5], &[4, 5])), 20);
    }
}
