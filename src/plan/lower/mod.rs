//! The physical passes, in order, each over the previous one's output:
//!
//! 1. **layout** (`layout.rs`, rules in `grids.rs`): decides, for every block table the
//!    results need, the node it holds, the grid it is cut in and how it is produced (read,
//!    fused, regathered, a reduction's tree, strips or runs of groups, a filter's halo). The
//!    result is a [`Layout`]: plain data, printed by `explain`. It asks a node's grid without
//!    building its table, so no table is laid out that no result reads.
//! 2. **demand** (`demand.rs`): which blocks of each read table its readers touch (selections
//!    touch the blocks under their indices; any other reader, all).
//! 3. **emit** (`emit.rs`, `reduce.rs`, `halo.rs`): writes one task per wanted block of every
//!    table in layout order, deciding nothing the layout did not say.
//! 4. **cull** (`plan/prune.rs`): drops the blocks no result reads (blocks of a computed table
//!    a selection or concatenation reads part of), as dask's `cull` does.
//!
//! Placement (`plan/placement.rs`) then runs over the task graph.

use std::fmt;
use std::sync::Arc;

mod demand;
mod emit;
mod grids;
mod halo;
mod layout;
mod reduce;

use super::{FusedProgram, OutputTable, PlanError, PlanOptions, Task};
use crate::expr::{AlongOp, AxisMap, BlockFn, BoundaryMode, ChunkGrid, Node, ReduceOp};
use grids::GroupSpan;

/// Where a table is in its [`Layout`] (tables come after the tables they read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct TableId(usize);

/// One block table of the layout: a node's blocks in one grid, and how they are produced.
#[derive(Debug, Clone)]
pub(super) struct TableSpec {
    pub(super) node: Arc<Node>,
    pub(super) grid: ChunkGrid,
    pub(super) how: Production,
}

/// How the blocks of a table are produced, each from the tables named (which come before it).
#[derive(Debug, Clone)]
pub(super) enum Production {
    /// read or cut straight from the node (a source, an in-memory array, a constant)
    Read,
    /// the blocks `persist` computed
    Persisted,
    /// one fused program per block over the same block of each input
    Fused {
        program: Arc<FusedProgram>,
        inputs: Vec<TableId>,
    },
    /// the input's blocks reassembled into this grid
    Regather { input: TableId },
    /// a selection gathered from the input
    Select {
        input: TableId,
        maps: Vec<AxisMap>,
        fixed: Vec<(usize, usize)>,
    },
    /// the inputs laid end to end along `axis`
    Concat { inputs: Vec<TableId>, axis: usize },
    /// a reduction of no values: fills of its empty value
    Empty { op: ReduceOp },
    /// a tree of partial states and combines over the input's blocks
    Tree {
        input: TableId,
        op: ReduceOp,
        axes: Vec<usize>,
    },
    /// a holistic reduction over input blocks holding `axes` whole (`blocks`, the input's grid
    /// of them); `steps` > 1 when the input comes as that many separate steps along axis 0
    Holistic {
        input: TableId,
        op: ReduceOp,
        axes: Vec<usize>,
        blocks: ChunkGrid,
        steps: usize,
    },
    /// a group reduction over the input in `blocks` (the group axis in `runs`)
    Group {
        input: TableId,
        op: ReduceOp,
        axis: usize,
        labels: Arc<Vec<usize>>,
        blocks: ChunkGrid,
        runs: Vec<GroupSpan>,
    },
    /// a reduction of every window of the input's blocks (which hold whole windows)
    Coarsen {
        input: TableId,
        op: ReduceOp,
        windows: Vec<usize>,
    },
    /// a separable gaussian; `tiles`: its halo read straight from the neighbouring blocks
    Gaussian {
        input: TableId,
        sigma: Vec<f64>,
        mode: BoundaryMode,
        truncate: f64,
        tiles: bool,
    },
    /// work along `axis` of every block of the input (which holds it whole)
    Along {
        input: TableId,
        op: Arc<AlongOp>,
        axis: usize,
    },
    /// a user function per block, over the block extended by `depth`
    Map {
        input: TableId,
        f: BlockFn,
        depth: Vec<usize>,
        mode: BoundaryMode,
    },
}

impl Production {
    /// The tables it reads, in input order.
    fn inputs(&self) -> Vec<TableId> {
        match self {
            Production::Read | Production::Persisted | Production::Empty { .. } => vec![],
            Production::Fused { inputs, .. } | Production::Concat { inputs, .. } => inputs.clone(),
            Production::Regather { input }
            | Production::Select { input, .. }
            | Production::Tree { input, .. }
            | Production::Holistic { input, .. }
            | Production::Group { input, .. }
            | Production::Coarsen { input, .. }
            | Production::Gaussian { input, .. }
            | Production::Along { input, .. }
            | Production::Map { input, .. } => vec![*input],
        }
    }
}

/// The layout pass's result: every block table the requested results need (a node's blocks
/// in one grid, and how they are produced from the tables before it), and the table of each
/// result. Plain data: [`TaskGraph::emit`](super::TaskGraph::emit) writes its tasks, `Display`
/// prints one line per table. Built by [`TaskGraph::layout`](super::TaskGraph::layout).
#[derive(Debug, Clone)]
pub struct Layout {
    pub(super) options: PlanOptions,
    pub(super) tables: Vec<TableSpec>,
    pub(super) outputs: Vec<TableId>,
}

impl Layout {
    /// Number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether there are no tables (no results were asked for).
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The grid table `i` is cut in. Panics when `i` is out of range.
    pub fn grid(&self, i: usize) -> &ChunkGrid {
        &self.tables[i].grid
    }

    /// The tables table `i` reads (indices below `i`). Panics when `i` is out of range.
    pub fn inputs(&self, i: usize) -> Vec<usize> {
        self.tables[i].how.inputs().into_iter().map(|t| t.0).collect()
    }

    /// How table `i` is produced, in a word (`read`, `fused`, `regather`, `select`, `concat`,
    /// `empty`, `tree`, `holistic`, `steps`, `group`, `coarsen`, `gaussian`, `gaussian-tiles`, `map`).
    /// Panics when `i` is out of range.
    pub fn production(&self, i: usize) -> &'static str {
        match &self.tables[i].how {
            Production::Read => "read",
            Production::Persisted => "persisted",
            Production::Fused { .. } => "fused",
            Production::Regather { .. } => "regather",
            Production::Select { .. } => "select",
            Production::Concat { .. } => "concat",
            Production::Empty { .. } => "empty",
            Production::Tree { .. } => "tree",
            Production::Holistic { steps: 1, .. } => "holistic",
            Production::Holistic { .. } => "steps",
            Production::Group { .. } => "group",
            Production::Coarsen { .. } => "coarsen",
            Production::Gaussian { tiles: false, .. } => "gaussian",
            Production::Gaussian { tiles: true, .. } => "gaussian-tiles",
            Production::Along { .. } => "along",
            Production::Map { .. } => "map",
        }
    }

    /// The table of each requested result, in the order asked.
    pub fn outputs(&self) -> Vec<usize> {
        self.outputs.iter().map(|t| t.0).collect()
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wanted = demand::demand(self);
        for (i, t) in self.tables.iter().enumerate() {
            let inputs = t.how.inputs();
            let from = if inputs.is_empty() {
                String::new()
            } else {
                let names: Vec<String> = inputs.iter().map(|t| format!("t{}", t.0)).collect();
                format!(" of {}", names.join(", "))
            };
            let detail = match &t.how {
                Production::Holistic { blocks, steps, .. } => {
                    let mut s = format!(" in blocks {:?}", blocks.max_block_shape());
                    if *steps > 1 {
                        s += &format!(", {steps} steps read in place");
                    }
                    s
                }
                Production::Group { blocks, runs, .. } => {
                    format!(
                        " in blocks {:?}, {} runs of groups",
                        blocks.max_block_shape(),
                        runs.len()
                    )
                }
                Production::Read => match &wanted[i] {
                    Some(mask) => {
                        let read: usize = mask.iter().map(|axis| axis.iter().filter(|&&w| w).count()).product();
                        format!(", {read} of them under its selections")
                    }
                    None => String::new(),
                },
                _ => String::new(),
            };
            writeln!(
                f,
                "  t{i}: {} #{} {:?} in {} blocks of {:?}: {}{from}{detail}",
                t.node.op.name(),
                t.node.id.0,
                t.grid.shape(),
                t.grid.num_blocks(),
                t.grid.max_block_shape(),
                self.production(i),
            )?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|t| format!("t{}", t.0)).collect();
        writeln!(f, "  results: {}", outs.join(", "))
    }
}

/// The layout pass over `roots`. **Errors**: a holistic reduction too large for the budget.
pub(super) fn layout(roots: &[Arc<Node>], options: &PlanOptions) -> Result<Layout, PlanError> {
    layout::LayoutBuilder::run(roots, options)
}

/// The demand and emit passes: the tasks of every wanted block of `layout`'s tables, in its
/// order, and each result's table of tasks. Blocks of computed tables nobody reads are left
/// for the cull pass.
///
/// **Errors**: [`PlanError::Unplanned`] when a task reads a block the demand pass left out (a
/// planner bug, reported rather than run).
pub(super) fn emit(layout: &Layout) -> Result<(Vec<Task>, Vec<OutputTable>), PlanError> {
    let emitted = emit::Emitter::run(layout);
    let unplanned = emitted
        .tasks
        .iter()
        .find(|t| t.deps.contains(&emit::NO_TASK))
        .map(|t| (t.label.clone(), t.block.clone()))
        .or_else(|| {
            let out = emitted.outputs.iter().find(|o| o.tasks.contains(&emit::NO_TASK))?;
            Some(("result".to_string(), out.grid.shape().to_vec()))
        });
    if let Some((task, block)) = unplanned {
        return Err(PlanError::Unplanned { task, block });
    }
    Ok((emitted.tasks, emitted.outputs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::expr::{AxisMap, BinaryOp, Node, Op};
    use crate::plan::rewrite::tests::leaf;
    use crate::plan::{PlanOptions, TaskGraph, TaskKind};

    fn difference(a: Arc<Node>, b: Arc<Node>) -> Arc<Node> {
        let grid = a.grid.clone();
        Node::new(Op::Binary(BinaryOp::Sub), vec![a, b], grid, crate::expr::DType::F32)
    }

    fn plan(root: &Arc<Node>, dense_results: bool) -> TaskGraph {
        let options = PlanOptions {
            dense_results,
            ..Default::default()
        };
        TaskGraph::build(std::slice::from_ref(root), &options).unwrap()
    }

    /// Lays out and emits `roots` (no cull): every table must have a block some result reads.
    fn assert_no_table_is_dead(roots: &[Arc<Node>], options: &PlanOptions) {
        let plan = crate::plan::LogicalPlan::bind(roots);
        let layout = super::layout(&plan.roots, options).unwrap();
        let emitted = super::emit::Emitter::run(&layout);
        let mut live = vec![false; emitted.tasks.len()];
        let mut stack: Vec<usize> = emitted.outputs.iter().flat_map(|o| o.tasks.clone()).collect();
        while let Some(t) = stack.pop() {
            if !std::mem::replace(&mut live[t], true) {
                stack.extend(emitted.tasks[t].deps.iter().copied());
            }
        }
        for (i, table) in emitted.tables.iter().enumerate() {
            let read = table.tasks.iter().any(|&t| t != super::emit::NO_TASK && live[t]);
            assert!(read, "table t{i} is read by no result:\n{layout}");
        }
    }

    #[test]
    fn no_table_is_laid_out_that_no_result_reads() {
        // a median of an elementwise expression reads it in whole-time blocks: its natural
        // (1, 16, 16) table is never laid out, only asked its grid
        let a = leaf(&[8, 32, 32], &[1, 16, 16]);
        let b = leaf(&[8, 32, 32], &[1, 16, 16]);
        let scaled = Node::new(
            Op::BinaryScalar {
                op: BinaryOp::Mul,
                scalar: 2.0,
                scalar_left: false,
            },
            vec![a.clone()],
            a.grid.clone(),
            crate::expr::DType::F32,
        );
        let out = crate::expr::ChunkGrid::new(&[32, 32], &crate::expr::Chunks::Block(vec![16, 16])).unwrap();
        let median = |x: Arc<Node>| {
            let op = Op::Reduce {
                op: crate::expr::ReduceOp::NanMedian,
                axes: vec![0],
            };
            Node::new(op, vec![x], out.clone(), crate::expr::DType::F32)
        };
        let options = PlanOptions::default();
        assert_no_table_is_dead(&[median(scaled.clone())], &options);
        assert_no_table_is_dead(&[median(difference(a.clone(), b.clone()))], &options);
        // the expression beside its median, and a mean of it: each table read by someone
        let mean = Node::new(
            Op::Reduce {
                op: crate::expr::ReduceOp::NanMean,
                axes: vec![0],
            },
            vec![scaled.clone()],
            out.clone(),
            crate::expr::DType::F32,
        );
        assert_no_table_is_dead(&[median(scaled.clone()), scaled.clone(), mean], &options);
        let steps = PlanOptions {
            median_reads_steps: true,
            dense_results: true,
            ..Default::default()
        };
        assert_no_table_is_dead(&[median(difference(a, b))], &steps);
    }

    #[test]
    fn a_selection_of_a_source_has_only_the_blocks_under_it_emitted() {
        // a 10 x 10 area (rows 20..30, columns 40..50) of a (32, 64, 64) source in (1, 16, 16)
        // blocks: the source's table is cut at the area's edges and at the block edge the area
        // crosses (column 48), 32 x 6 x 6 blocks, and only the 32 x 1 x 2 under the area get a
        // read task; nothing is left for the cull pass
        let source = crate::Array::from_fn(&[32, 64, 64], [1, 16, 16], "zeros", |r: &[std::ops::Range<usize>]| {
            ndarray::ArrayD::zeros(r.iter().map(|r| r.len()).collect::<Vec<_>>())
        });
        let source = source.node().unwrap().clone();
        let strided = |axis, start, len| AxisMap::Strided {
            axis,
            start,
            step: 1,
            len,
        };
        let area = crate::plan::rewrite::select_node(
            source,
            vec![strided(0, 0, 32), strided(1, 20, 10), strided(2, 40, 10)],
            vec![],
        );
        let plan = crate::plan::LogicalPlan::bind(&[area]);
        let layout = TaskGraph::layout(&plan, &PlanOptions::default()).unwrap();
        assert_eq!(layout.grid(0).num_blocks(), 32 * 6 * 6, "{layout}");
        assert!(
            layout.to_string().contains("read, 64 of them under its selections"),
            "{layout}"
        );
        let emitted = super::emit::Emitter::run(&layout);
        let reads = |tasks: &[crate::plan::Task]| {
            tasks
                .iter()
                .filter(|t| matches!(t.kind(), TaskKind::Source { .. }))
                .count()
        };
        assert_eq!(reads(&emitted.tasks), 64);
        let graph = TaskGraph::emit(&layout).unwrap();
        assert_eq!(reads(graph.tasks()), 64);
        assert_eq!(
            graph.tasks().len(),
            emitted.tasks.len(),
            "the cull found nothing to drop"
        );
    }

    #[test]
    fn a_layout_lists_each_table_with_its_grid_and_production() {
        // the median over time of (a - b), both (8, 32, 32) in (1, 16, 16) blocks, with the
        // steps read in place: a and b read in the median's strips of one step, their
        // difference fused per step, the median over the 8 steps of each strip
        let a = leaf(&[8, 32, 32], &[1, 16, 16]);
        let b = leaf(&[8, 32, 32], &[1, 16, 16]);
        let out = crate::expr::ChunkGrid::new(&[32, 32], &crate::expr::Chunks::Block(vec![16, 16])).unwrap();
        let op = Op::Reduce {
            op: crate::expr::ReduceOp::NanMedian,
            axes: vec![0],
        };
        let median = Node::new(op, vec![difference(a, b)], out, crate::expr::DType::F32);
        let options = PlanOptions {
            median_reads_steps: true,
            ..Default::default()
        };
        let plan = crate::plan::LogicalPlan::bind(&[median]);
        let layout = TaskGraph::layout(&plan, &options).unwrap();
        let productions: Vec<&str> = (0..layout.len()).map(|i| layout.production(i)).collect();
        assert_eq!(productions, ["read", "read", "fused", "steps"], "{layout}");
        assert_eq!(layout.inputs(2), [0, 1]);
        assert_eq!(layout.inputs(3), [2]);
        assert_eq!(layout.outputs(), [3]);
        // the kept axes as the input's blocks (16², well within the holistic block size):
        // four strips of 8 steps each
        assert_eq!(layout.grid(2).max_block_shape(), [1, 16, 16]);
        assert_eq!(layout.grid(3).max_block_shape(), [16, 16]);
        let text = layout.to_string();
        assert!(text.contains("t3: nanmedian"), "{text}");
        assert!(
            text.contains("steps of t2 in blocks [8, 16, 16], 8 steps read in place"),
            "{text}"
        );
        // the emitted graph: 8 fused steps per strip, each reading one block of a and of b
        let graph = TaskGraph::emit(&layout).unwrap();
        assert_eq!(
            graph.counts(),
            [("array", 64), ("fused", 32), ("nanmedian", 4)],
            "{graph}"
        );
    }

    #[test]
    fn a_dense_elementwise_result_runs_in_whole_rows() {
        // (64, 256) in 16² blocks: 64 blocks as declared, 4 blocks of 16 whole rows when the
        // result goes into one array
        let d = difference(leaf(&[64, 256], &[16, 16]), leaf(&[64, 256], &[16, 16]));
        let declared = plan(&d, false);
        assert_eq!(declared.counts(), [("array", 128), ("fused", 64)]);
        let rows = plan(&d, true);
        assert_eq!(rows.counts(), [("array", 8), ("fused", 4)]);
        assert_eq!(rows.outputs()[0].grid().max_block_shape(), [16, 256]);
    }

    #[test]
    fn a_dense_gaussian_of_an_in_memory_array_filters_whole_rows() {
        let x = leaf(&[64, 256], &[16, 16]);
        let grid = x.grid.clone();
        let op = Op::Gaussian {
            sigma: vec![1.0, 1.0],
            mode: crate::expr::BoundaryMode::Reflect,
            truncate: 4.0,
        };
        let g = Node::new(op, vec![x], grid, crate::expr::DType::F32);
        let count = |graph: &TaskGraph| {
            graph
                .counts()
                .into_iter()
                .find(|(k, _)| *k == "gaussian")
                .map(|(_, n)| n)
        };
        assert_eq!(count(&plan(&g, false)), Some(64));
        let rows = plan(&g, true);
        assert_eq!(count(&rows), Some(4), "{rows}");
        assert_eq!(rows.outputs()[0].grid().max_block_shape(), [16, 256]);
        // a mask of it beside it, in either order, or the same result twice: one gaussian
        let op = Op::BinaryScalar {
            op: BinaryOp::Gt,
            scalar: 0.5,
            scalar_left: false,
        };
        let mask = Node::new(op, vec![g.clone()], g.grid.clone(), crate::expr::DType::U8);
        let options = PlanOptions {
            dense_results: true,
            ..Default::default()
        };
        for (roots, want) in [
            (vec![g.clone(), mask.clone()], 4),
            (vec![mask.clone(), g.clone()], 64),
            (vec![g.clone(), g.clone()], 4),
        ] {
            let graph = TaskGraph::build(&roots, &options).unwrap();
            assert_eq!(count(&graph), Some(want), "{graph}");
        }
    }

    #[test]
    fn a_plane_of_an_in_memory_cube_is_read_as_views() {
        // index(0, 0) of a (2, 32, 64) cube in (1, 16, 16) blocks, the result in whole rows:
        // every gather reads one view of the cube (a region of any shape), never pieces of
        // its declared blocks
        let cube = leaf(&[2, 32, 64], &[1, 16, 16]);
        let maps = vec![
            AxisMap::Strided {
                axis: 1,
                start: 0,
                step: 1,
                len: 32,
            },
            AxisMap::Strided {
                axis: 2,
                start: 0,
                step: 1,
                len: 64,
            },
        ];
        let plane = crate::plan::rewrite::select_node(cube, maps, vec![(0, 0)]);
        let d = difference(plane.clone(), plane);
        let rows = plan(&d, true);
        let gathers: Vec<_> = rows
            .tasks()
            .iter()
            .filter(|t| matches!(t.kind(), TaskKind::Gather { .. }))
            .collect();
        assert_eq!(gathers.len(), 2, "{rows}");
        assert!(gathers.iter().all(|t| t.deps().len() == 1), "{rows}");
    }
}
