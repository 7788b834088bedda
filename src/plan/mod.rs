//! Planning in passes, as data: an expression DAG becomes a chunk task graph that an
//! executor runs.
//!
//! 1. [`LogicalPlan::bind`] takes the requested results as the optimizer's plan.
//! 2. [`TaskGraph::optimize`] runs the rewrite passes in order (`rewrite/`, one rule per file:
//!    selection pushdown through selections, elementwise ops, constants, reductions, group
//!    reductions and gaussians), each returning a new plan and counting what fired.
//! 3. [`TaskGraph::layout`] settles how every node is cut into blocks (`lower/`), as a
//!    [`Layout`] of block tables: chains of elementwise operations fuse into one
//!    [`FusedProgram`] per block, chunkings are pushed into sources (a source produces any
//!    block directly, so "rechunk the input of a median" costs nothing when the input is
//!    elementwise over sources), reduced axes of holistic reductions (median) are made whole
//!    with blocks sized to the memory budget, group reductions read runs of whole groups,
//!    other reductions get split-every combine trees, filters read halos.
//! 4. [`TaskGraph::emit`] writes one task per block of every table, then the cull pass
//!    (`prune.rs`) drops the blocks no result reads.
//! 5. [`TaskGraph::place`] asks a backend where each task runs and lists the transfers.
//!
//! [`Explain`] prints the passes' results; [`TaskGraph::to_dot`] draws the graph.

mod dot;
mod explain;
mod fused;
mod gather;
mod logical;
mod lower;
mod placement;
mod prune;
mod rewrite;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use crate::expr::{
    AlongOp, Block, BlockFn, ChunkGrid, ChunkSource, DType, ExprError, HostArray, Node, NodeId, ReduceOp,
};

pub use explain::Explain;
pub use fused::{FusedProgram, Instr, Operand};
pub use gather::{GatherPiece, SrcAxis};
pub use logical::LogicalPlan;
pub use lower::Layout;
pub use placement::{KindCounts, Placement, Placements, Transfer, ValueDesc};
pub use rewrite::RewriteLog;

/// Errors found while lowering an expression.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The expression itself was invalid when built.
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// A result would have blocks no task produces (a planner bug, reported rather than
    /// returning uninitialised values).
    #[error("plan for shape {shape:?} has {tasks} tasks for {blocks} blocks")]
    Incomplete {
        /// the result's shape
        shape: Vec<usize>,
        /// blocks of its grid
        blocks: usize,
        /// tasks producing them
        tasks: usize,
    },
    /// A task reads a block the planner left out as unread (a planner bug, reported rather
    /// than run).
    #[error("{task} task at block {block:?} reads a block the plan left out")]
    Unplanned {
        /// the reading task's operation
        task: String,
        /// its block index
        block: Vec<usize>,
    },
    /// A holistic reduction cannot fit even one pixel column in the budget.
    #[error("{op} over axes {axes:?} of shape {shape:?} needs {needed} bytes for one pixel column, more than the memory budget of {budget} bytes")]
    ReductionTooLarge {
        /// the reduction
        op: String,
        /// reduced axes
        axes: Vec<usize>,
        /// input shape
        shape: Vec<usize>,
        /// bytes needed
        needed: u64,
        /// the budget
        budget: u64,
    },
}

/// Settings that shape the plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// the memory budget the executor will run under, in bytes (sizes median blocks)
    pub memory_budget: u64,
    /// how many partial results one combine step of a tree reduction merges (dask's `split_every`)
    pub split_every: usize,
    /// the most bytes one block of a holistic reduction (median) may hold
    pub max_holistic_block: u64,
    /// worker threads the executor will run (kernels' per-thread scratch is sized by it)
    pub threads: usize,
    /// run the rewrite passes before lowering (else plan the expression as written)
    pub optimize: bool,
    /// the results go into whole in-memory arrays (not block by block into a store): an
    /// elementwise result over sources may then run in blocks of whole rows, whatever its
    /// declared chunks, so each task reads and writes contiguous memory
    pub dense_results: bool,
    /// a median over the leading axis of an elementwise expression of two or more arrays
    /// takes that expression's steps as separate inputs and reads them in place, instead of
    /// a gather of them into one block first (the CPU backend's kernel does; the GPU's
    /// median binds one buffer, so plans for it leave this off)
    pub median_reads_steps: bool,
    /// the most bytes one window reduction's (`coarsen`) input block holds: a few MiB on the
    /// host, so every core has a task and each task's copy of its windows stays in cache; more
    /// on the GPU, so each submission moves enough to keep the device busy
    pub window_block_bytes: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            memory_budget: 4 << 30,
            split_every: 8,
            max_holistic_block: 16 << 20,
            threads: rayon::current_num_threads(),
            optimize: true,
            dense_results: false,
            median_reads_steps: false,
            window_block_bytes: 2 << 20,
        }
    }
}

/// What one task does. Inputs are the task's `deps`, in order.
#[derive(Debug, Clone)]
pub enum TaskKind {
    /// a block of one repeated value
    Fill {
        /// block shape
        shape: Vec<usize>,
        /// the value
        value: f32,
        /// block dtype
        dtype: DType,
    },
    /// a block cut from an in-memory array
    Host {
        /// the array
        array: HostArray,
        /// the block's region
        region: Vec<Range<usize>>,
    },
    /// a block read from a chunk source
    Source {
        /// the source
        source: Arc<dyn ChunkSource>,
        /// the block's region
        region: Vec<Range<usize>>,
    },
    /// a block computed earlier by `persist`
    Persisted {
        /// the block
        block: Block,
    },
    /// a fused elementwise program over same-shaped input blocks
    Fused {
        /// the program
        program: Arc<FusedProgram>,
        /// block shape
        shape: Vec<usize>,
    },
    /// a block assembled from pieces of input blocks
    Gather {
        /// block shape
        shape: Vec<usize>,
        /// block dtype
        dtype: DType,
        /// value of positions no piece writes (the constant of a boundary mode)
        fill: f32,
        /// for every output axis, the input axis it reads (`None`: broadcast)
        out_axes: Vec<Option<usize>>,
        /// the copies
        pieces: Vec<GatherPiece>,
    },
    /// partial reduction state of one block over `axes` (finalized when it is the only one)
    ReducePartial {
        /// the reduction
        op: ReduceOp,
        /// the reduced axes of the block
        axes: Vec<usize>,
        /// whether this is the last step
        finalize: bool,
    },
    /// merge of partial states
    ReduceCombine {
        /// the reduction
        op: ReduceOp,
        /// whether this is the last step
        finalize: bool,
    },
    /// a holistic reduction of a block holding the whole of `axes`
    Holistic {
        /// the reduction
        op: ReduceOp,
        /// reduced axes (whole in the block)
        axes: Vec<usize>,
    },
    /// a reduction by group labels along `axis` (whole in the block)
    GroupReduce {
        /// the reduction
        op: ReduceOp,
        /// grouped axis
        axis: usize,
        /// the group of each index
        labels: Arc<Vec<usize>>,
        /// number of groups
        groups: usize,
    },
    /// a reduction of every window of a block holding whole windows: the block's shape
    /// divided by `windows` (per axis)
    Coarsen {
        /// the reduction of each window's values
        op: ReduceOp,
        /// the window along every axis
        windows: Vec<usize>,
    },
    /// separable gaussian over an input block extended by the radius on every filtered axis
    Gaussian {
        /// (axis, normalised weights of length 2r+1) per filtered axis, in axis order
        passes: Vec<(usize, Arc<Vec<f32>>)>,
        /// for the constant mode: the constant and, per axis, the extended positions inside the array
        constant: Option<(f32, Vec<Range<usize>>)>,
    },
    /// separable gaussian over the last two axes of a block, reading its halo straight from
    /// the neighbouring blocks (deps: `ny` × `nx` of them, row-major) — no extended copy
    GaussianTiles(Arc<TileSpec>),
    /// work along `axis`, whole in the block (a scan, a gap fill, a moving window)
    Along {
        /// the work
        op: Arc<AlongOp>,
        /// the axis
        axis: usize,
    },
    /// a user function on a block, then `trim` removed from both ends of every axis
    Map {
        /// the function
        f: BlockFn,
        /// halo to remove per axis
        trim: Vec<usize>,
    },
}

impl TaskKind {
    /// A short name for graphs and reports.
    pub fn name(&self) -> &'static str {
        match self {
            TaskKind::Fill { .. } => "fill",
            TaskKind::Host { .. } => "array",
            TaskKind::Source { .. } => "source",
            TaskKind::Persisted { .. } => "persisted",
            TaskKind::Fused { .. } => "fused",
            TaskKind::Gather { .. } => "gather",
            TaskKind::ReducePartial { .. } => "reduce-chunk",
            TaskKind::ReduceCombine { .. } => "reduce-combine",
            TaskKind::Holistic { op, .. } => op.name(),
            TaskKind::GroupReduce { .. } => "group-reduce",
            TaskKind::Coarsen { .. } => "coarsen",
            TaskKind::Gaussian { .. } | TaskKind::GaussianTiles(_) => "gaussian",
            TaskKind::Along { op, .. } => op.name(),
            TaskKind::Map { .. } => "map-blocks",
        }
    }
}

/// A contiguous run of extended columns read from one neighbour block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRun {
    /// first extended column written
    pub dst: usize,
    /// number of columns
    pub len: usize,
    /// which neighbour column of blocks (0..nx)
    pub block: usize,
    /// first local column read
    pub src: usize,
    /// local step per column (1, -1 for a reflected halo, 0 for `nearest`)
    pub step: isize,
}

/// How a [`TaskKind::GaussianTiles`] task reads and filters its block.
#[derive(Debug, Clone, PartialEq)]
pub struct TileSpec {
    /// weights along the second-to-last axis (length 2ry+1; `[1]` when unfiltered)
    pub wy: Vec<f32>,
    /// weights along the last axis (length 2rx+1)
    pub wx: Vec<f32>,
    /// for every extended row: (neighbour row of blocks, local row), or `None` for the constant
    pub rows: Vec<Option<(usize, usize)>>,
    /// the extended columns that read data; the others hold the constant
    pub cols: Vec<ColumnRun>,
    /// neighbour blocks per row of blocks
    pub nx: usize,
    /// the constant of a constant boundary
    pub fill: Option<f32>,
    /// extended columns inside the array (after the vertical pass, the others are reset to the constant)
    pub inside_cols: Range<usize>,
    /// the output block's shape
    pub shape: Vec<usize>,
}

/// One unit of work: produces one block (or one partial reduction state). Read through its
/// accessors; only the planner builds tasks.
#[derive(Debug, Clone)]
pub struct Task {
    /// what it does
    pub(crate) kind: TaskKind,
    /// tasks whose results it reads, in input order
    pub(crate) deps: Vec<usize>,
    /// bytes of its result
    pub(crate) out_bytes: u64,
    /// temporary bytes it allocates while running (beyond inputs and result)
    pub(crate) scratch_bytes: u64,
    /// the expression node it belongs to
    pub(crate) node: NodeId,
    /// the node's operation name (for graphs and reports)
    pub(crate) label: String,
    /// element type of its result (f32 for a partial reduction state)
    pub(crate) dtype: DType,
    /// the block index within that node's grid
    pub(crate) block: Vec<usize>,
}

impl Task {
    /// What it does.
    pub fn kind(&self) -> &TaskKind {
        &self.kind
    }

    /// The tasks whose results it reads, in input order (indices into [`TaskGraph::tasks`]).
    pub fn deps(&self) -> &[usize] {
        &self.deps
    }

    /// Bytes of its result.
    pub fn out_bytes(&self) -> u64 {
        self.out_bytes
    }

    /// Temporary bytes it allocates while running (beyond inputs and result).
    pub fn scratch_bytes(&self) -> u64 {
        self.scratch_bytes
    }

    /// The expression node it belongs to.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The node's operation name (for graphs and reports).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Element type of its result.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The block index within that node's grid.
    pub fn block(&self) -> &[usize] {
        &self.block
    }
}

/// The blocks of one requested result: their grid and the tasks producing them (C order).
#[derive(Debug, Clone)]
pub struct OutputTable {
    /// how the result is cut
    pub(crate) grid: ChunkGrid,
    /// element type
    pub(crate) dtype: DType,
    /// producing task of every block, in C order
    pub(crate) tasks: Vec<usize>,
}

impl OutputTable {
    /// How the result is cut.
    pub fn grid(&self) -> &ChunkGrid {
        &self.grid
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The producing task of every block, in C order.
    pub fn tasks(&self) -> &[usize] {
        &self.tasks
    }
}

/// A chunk task graph: tasks in a topological order (every dep comes before its consumer).
/// Built by the planner ([`TaskGraph::build`], `Array::plan`); read through its accessors.
#[derive(Debug, Clone)]
pub struct TaskGraph {
    /// all tasks
    pub(crate) tasks: Vec<Task>,
    /// one table per requested result
    pub(crate) outputs: Vec<OutputTable>,
}

impl TaskGraph {
    /// All tasks, in a topological order.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// One table per requested result, in the order asked.
    pub fn outputs(&self) -> &[OutputTable] {
        &self.outputs
    }

    /// Lowers `roots` to one graph sharing common work.
    ///
    /// **Errors**: the first deferred [`ExprError`] of an invalid expression, or a holistic
    /// reduction too large for the budget.
    pub fn build(roots: &[Arc<Node>], options: &PlanOptions) -> Result<TaskGraph, PlanError> {
        let (optimized, _) = Self::optimize(&LogicalPlan::bind(roots), options);
        Self::lower(&optimized, options)
    }

    /// The optimizer: runs the rewrite passes in order over `plan` (none when
    /// `options.optimize` is off) and says what each fired. O(nodes × selections).
    pub fn optimize(plan: &LogicalPlan, options: &PlanOptions) -> (LogicalPlan, RewriteLog) {
        if options.optimize {
            rewrite::optimize(plan)
        } else {
            (plan.clone(), RewriteLog::default())
        }
    }

    /// The physical passes in order: [`TaskGraph::layout`] of an optimized plan, then
    /// [`TaskGraph::emit`] of its tasks.
    ///
    /// **Errors**: as [`TaskGraph::build`].
    pub fn lower(plan: &LogicalPlan, options: &PlanOptions) -> Result<TaskGraph, PlanError> {
        Self::emit(&Self::layout(plan, options)?)
    }

    /// The layout pass: every block table the plan's results need, the grid each is cut in
    /// and how it is produced, as data. O(nodes × grids asked of them); writes no task.
    ///
    /// **Errors**: as [`TaskGraph::build`].
    pub fn layout(plan: &LogicalPlan, options: &PlanOptions) -> Result<Layout, PlanError> {
        lower::layout(&plan.roots, options)
    }

    /// The demand, emit and cull passes: one task per block of every table of `layout` that a
    /// reader touches (a selection of a source reads only the blocks under it), then the
    /// blocks no result reads dropped, and a check that every result block has its task.
    /// O(tasks).
    ///
    /// **Errors**: [`PlanError::Incomplete`] when a result lacks a block's task,
    /// [`PlanError::Unplanned`] when a task reads a block left out.
    pub fn emit(layout: &Layout) -> Result<TaskGraph, PlanError> {
        let (tasks, outputs) = lower::emit(layout)?;
        let graph = prune::prune(tasks, outputs);
        for out in &graph.outputs {
            if out.tasks.len() != out.grid.num_blocks() {
                return Err(PlanError::Incomplete {
                    shape: out.grid.shape().to_vec(),
                    blocks: out.grid.num_blocks(),
                    tasks: out.tasks.len(),
                });
            }
        }
        Ok(graph)
    }

    /// Number of tasks of each kind, sorted by kind name.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        count_kinds(self.tasks.iter())
    }

    /// The largest number of bytes one task needs at once (inputs + scratch + result).
    pub fn task_need(&self, task: usize) -> u64 {
        let t = &self.tasks[task];
        t.out_bytes + t.scratch_bytes + t.deps.iter().map(|&d| self.tasks[d].out_bytes).sum::<u64>()
    }

    /// Renders the graph in Graphviz DOT, one ellipse per task and one box per result block,
    /// like dask's `visualize`.
    pub fn to_dot(&self) -> String {
        dot::render(self, None)
    }

    /// [`TaskGraph::to_dot`] with where each task is placed: device tasks outlined in red and
    /// marked `[device]`, transfers drawn as dashed edges (`upload`, `read back`).
    pub fn to_dot_placed(&self, placed: &Placements) -> String {
        dot::render(self, Some(placed))
    }
}

impl fmt::Display for TaskGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskGraph: {} tasks (", self.tasks.len())?;
        for (i, (name, n)) in self.counts().into_iter().enumerate() {
            write!(f, "{}{name}: {n}", if i > 0 { ", " } else { "" })?;
        }
        writeln!(f, ")")?;
        for (i, out) in self.outputs.iter().enumerate() {
            writeln!(
                f,
                "  output {i}: shape {:?} in blocks {:?}, {}",
                out.grid.shape(),
                out.grid.max_block_shape(),
                out.dtype
            )?;
        }
        let mut shown = std::collections::HashSet::new();
        for t in &self.tasks {
            if let TaskKind::Fused { program, .. } = &t.kind {
                if shown.insert(t.node) {
                    writeln!(f, "  fused kernel of node {}:", t.node.0)?;
                    for line in program.to_string().lines() {
                        writeln!(f, "    {line}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Number of tasks of each kind, sorted by kind name.
fn count_kinds<'a>(tasks: impl Iterator<Item = &'a Task>) -> KindCounts {
    let mut counts = std::collections::BTreeMap::new();
    for t in tasks {
        *counts.entry(t.kind.name()).or_insert(0) += 1;
    }
    counts.into_iter().collect()
}

/// Normalised 1-D gaussian weights with scipy's radius `int(truncate * sigma + 0.5)`, computed
/// in f64 as `scipy.ndimage._gaussian_kernel1d` does, then rounded to f32.
pub fn gaussian_weights(sigma: f64, truncate: f64) -> Vec<f32> {
    let radius = (truncate * sigma + 0.5) as i64;
    if sigma <= 0.0 || radius == 0 {
        return vec![1.0];
    }
    let phi: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 / (sigma * sigma) * (x * x) as f64).exp())
        .collect();
    let total: f64 = phi.iter().sum();
    phi.iter().map(|p| (p / total) as f32).collect()
}
