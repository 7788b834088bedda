//! The layout pass: which block tables the results need, in which grids, and how each is
//! produced. A node's natural grid (the one the planner finds best for it) is a question of
//! its own, answered without laying out its table, so a reduction that reads its input in
//! another grid never lays out the input's natural table for nothing.

use std::collections::HashMap;
use std::sync::Arc;

use super::grids::{
    block_edges_in_input, coarse_grid, cut_at_selection, group_layout, thin_grid, whole_axes_grid, whole_row_grid,
    window_grid, GroupSpan,
};
use super::{Layout, Production, TableId, TableSpec};
use crate::expr::{BoundaryMode, ChunkGrid, HostArray, Node, NodeId, Op, ReduceOp};
use crate::plan::fused::FusedBuilder;
use crate::plan::{gaussian_weights, PlanError, PlanOptions};

pub(super) struct LayoutBuilder<'o> {
    options: &'o PlanOptions,
    tables: Vec<TableSpec>,
    /// each node's table in its natural grid
    natural: HashMap<NodeId, TableId>,
    /// each node's table in another grid a reader asked for
    in_grid: HashMap<(NodeId, ChunkGrid), TableId>,
    /// natural grids answered before their tables were laid out
    grids: HashMap<NodeId, ChunkGrid>,
}

impl<'o> LayoutBuilder<'o> {
    /// One table per root, in the order given, and every table they read.
    pub(super) fn run(roots: &[Arc<Node>], options: &'o PlanOptions) -> Result<Layout, PlanError> {
        let mut b = LayoutBuilder {
            options,
            tables: Vec::new(),
            natural: HashMap::new(),
            in_grid: HashMap::new(),
            grids: HashMap::new(),
        };
        let mut outputs = Vec::with_capacity(roots.len());
        for root in roots {
            let table = match (whole_row_grid(root, options), &root.op) {
                (Some(grid), Op::Gaussian { .. }) => b.root_gaussian(root, grid)?,
                (Some(grid), _) => b.as_grid(root, &grid)?,
                (None, _) => b.natural(root)?,
            };
            outputs.push(table);
        }
        Ok(Layout {
            options: options.clone(),
            tables: b.tables,
            outputs,
        })
    }

    fn push(&mut self, node: &Arc<Node>, grid: ChunkGrid, how: Production) -> TableId {
        self.tables.push(TableSpec {
            node: node.clone(),
            grid,
            how,
        });
        TableId(self.tables.len() - 1)
    }

    fn grid_of(&self, t: TableId) -> &ChunkGrid {
        &self.tables[t.0].grid
    }

    /// A gaussian result in whole rows: shared as it is when another result laid it out
    /// already; else laid out in `grid`, and kept as its natural table for every later reader
    /// (another result's mask of it, the same root asked twice).
    fn root_gaussian(&mut self, root: &Arc<Node>, grid: ChunkGrid) -> Result<TableId, PlanError> {
        let key = (root.id, grid.clone());
        if let Some(&t) = self.in_grid.get(&key).or_else(|| self.natural.get(&root.id)) {
            return Ok(t);
        }
        let t = self.gaussian(root, Some(&grid))?;
        self.in_grid.insert(key, t);
        self.natural.entry(root.id).or_insert(t);
        Ok(t)
    }

    /// The grid the node's natural table is (or will be) cut in, without laying it out.
    fn natural_grid(&mut self, node: &Arc<Node>) -> Result<ChunkGrid, PlanError> {
        if let Some(&t) = self.natural.get(&node.id) {
            return Ok(self.grid_of(t).clone());
        }
        if let Some(g) = self.grids.get(&node.id) {
            return Ok(g.clone());
        }
        let grid = match &node.op {
            _ if node.op.is_elementwise() => self.elementwise_grid(node)?,
            Op::Reduce { .. } | Op::GroupReduce { .. } if empty_reduction(node) => node.grid.clone(),
            Op::Reduce { op, axes } if op.is_holistic() => self.holistic_blocks(node, *op, axes)?.without_axes(axes),
            Op::Reduce { axes, .. } => self.natural_grid(&node.inputs[0])?.without_axes(axes),
            Op::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => {
                let (blocks, runs) = self.group_blocks(node, *op, *axis, labels, *groups)?;
                group_grid(&blocks, *axis, &runs)
            }
            Op::Coarsen { windows, .. } => coarse_grid(&self.window_blocks(node, windows)?, windows),
            Op::Gaussian { .. } | Op::Along { .. } | Op::MapBlocks(_) | Op::MapOverlap { .. } => {
                self.natural_grid(&node.inputs[0])?
            }
            _ => node.grid.clone(),
        };
        self.grids.insert(node.id, grid.clone());
        Ok(grid)
    }

    /// The grid an elementwise node runs in: the common refinement of the grids its computed
    /// (non-source) leaves come in, so they are never regathered; sources follow that grid.
    fn elementwise_grid(&mut self, node: &Arc<Node>) -> Result<ChunkGrid, PlanError> {
        let mut grid: Option<ChunkGrid> = None;
        for leaf in computed_leaves(node) {
            let g = self.natural_grid(&leaf)?;
            grid = Some(match grid {
                None => g,
                Some(prev) => prev.refine(&g),
            });
        }
        Ok(grid.unwrap_or_else(|| node.grid.clone()))
    }

    /// The node's table in its natural grid.
    fn natural(&mut self, node: &Arc<Node>) -> Result<TableId, PlanError> {
        if let Some(&t) = self.natural.get(&node.id) {
            return Ok(t);
        }
        let t = match &node.op {
            Op::Fill(_) | Op::Host(_) | Op::Source(_) => self.push(node, node.grid.clone(), Production::Read),
            Op::Persisted(_) => self.push(node, node.grid.clone(), Production::Persisted),
            _ if node.op.is_elementwise() => {
                let grid = self.natural_grid(node)?;
                // the computed leaves, whose grids decide this one, come first
                for leaf in computed_leaves(node) {
                    self.natural(&leaf)?;
                }
                self.fused(node, &grid)?
            }
            Op::Select { maps, fixed } => self.select(node, maps, fixed, &node.grid)?,
            Op::Concat { axis } => {
                let inputs = node.inputs.iter().map(|i| self.natural(i)).collect::<Result<_, _>>()?;
                self.push(node, node.grid.clone(), Production::Concat { inputs, axis: *axis })
            }
            Op::Rechunk => self.as_grid(&node.inputs[0], &node.grid)?,
            Op::Reduce { op, .. } | Op::GroupReduce { op, .. } if empty_reduction(node) => {
                self.push(node, node.grid.clone(), Production::Empty { op: *op })
            }
            Op::Reduce { op, axes } if op.is_holistic() => self.holistic(node, *op, axes)?,
            Op::Reduce { op, axes } => {
                let input = self.natural(&node.inputs[0])?;
                let grid = self.grid_of(input).without_axes(axes);
                let how = Production::Tree {
                    input,
                    op: *op,
                    axes: axes.clone(),
                };
                self.push(node, grid, how)
            }
            Op::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => self.group(node, *op, *axis, labels, *groups)?,
            Op::Coarsen { op, windows } => self.coarsen(node, *op, windows)?,
            Op::Gaussian { .. } => self.gaussian(node, None)?,
            Op::Along { axis, op } => {
                let input = self.natural(&node.inputs[0])?;
                let grid = self.grid_of(input).clone();
                let how = Production::Along {
                    input,
                    op: op.clone(),
                    axis: *axis,
                };
                self.push(node, grid, how)
            }
            Op::MapBlocks(f) => self.map(node, f, vec![0; node.grid.ndim()], BoundaryMode::Constant(0.0))?,
            Op::MapOverlap { f, depth, mode } => self.map(node, f, depth.clone(), *mode)?,
            Op::Unary(_) | Op::Binary(_) | Op::BinaryScalar { .. } | Op::Where | Op::Cast => {
                unreachable!("elementwise")
            }
        };
        // the grid answered before the table was laid out is the table's
        debug_assert!(self.grids.get(&node.id).is_none_or(|g| g == self.grid_of(t)));
        self.natural.insert(node.id, t);
        Ok(t)
    }

    /// The node's table in `grid`: produced directly where the node can be (sources and
    /// elementwise expressions follow any grid), regathered from its natural table otherwise.
    fn as_grid(&mut self, node: &Arc<Node>, grid: &ChunkGrid) -> Result<TableId, PlanError> {
        if let Some(&t) = self.natural.get(&node.id) {
            if self.grid_of(t) == grid {
                return Ok(t);
            }
        }
        let key = (node.id, grid.clone());
        if let Some(&t) = self.in_grid.get(&key) {
            return Ok(t);
        }
        let t = match &node.op {
            Op::Fill(_) | Op::Host(_) | Op::Source(_) => self.push(node, grid.clone(), Production::Read),
            _ if node.op.is_elementwise() => self.fused(node, grid)?,
            Op::Rechunk => self.as_grid(&node.inputs[0], grid)?,
            // A selection of a source reads any region too: each block in `grid` gathers from
            // source reads cut to it, never from whole source blocks around it (a median's
            // whole time axis over an area cut from a stack holds one block's worth).
            Op::Select { maps, fixed } if matches!(node.inputs[0].op, Op::Source(_) | Op::Fill(_) | Op::Host(_)) => {
                self.select(node, maps, fixed, grid)?
            }
            _ => {
                let natural = self.natural(node)?;
                if self.grid_of(natural) == grid {
                    natural
                } else {
                    self.push(node, grid.clone(), Production::Regather { input: natural })
                }
            }
        };
        self.in_grid.insert(key, t);
        Ok(t)
    }

    /// The input of a holistic or group reduction in `grid`, whose blocks hold the reduced
    /// axes whole. An elementwise input of two or more arrays is computed in blocks as thin
    /// as its own along the axes `grid` gathers, then gathered: one gather of the result
    /// instead of one per operand, and each operand's block is freed once its thin block is
    /// computed (the median of the luminance holds the luminance steps of a strip, not three
    /// bands of them).
    fn gathered(&mut self, node: &Arc<Node>, grid: &ChunkGrid) -> Result<TableId, PlanError> {
        let thin = if node.op.is_elementwise() {
            thin_grid(node, grid)
        } else {
            None
        };
        let Some(thin) = thin else {
            return self.as_grid(node, grid);
        };
        let key = (node.id, grid.clone());
        if let Some(&t) = self.in_grid.get(&key) {
            return Ok(t);
        }
        let computed = self.as_grid(node, &thin)?;
        let t = self.push(node, grid.clone(), Production::Regather { input: computed });
        self.in_grid.insert(key, t);
        Ok(t)
    }

    fn fused(&mut self, node: &Arc<Node>, grid: &ChunkGrid) -> Result<TableId, PlanError> {
        let mut b = FusedBuilder::new();
        let result = b.emit(node);
        let leaves = b.leaves.clone();
        let program = Arc::new(b.finish(node, result));
        let inputs = leaves
            .iter()
            .map(|leaf| self.as_grid(leaf, grid))
            .collect::<Result<_, _>>()?;
        Ok(self.push(node, grid.clone(), Production::Fused { program, inputs }))
    }

    /// The selection in `grid`.
    fn select(
        &mut self,
        node: &Arc<Node>,
        maps: &[crate::expr::AxisMap],
        fixed: &[(usize, usize)],
        grid: &ChunkGrid,
    ) -> Result<TableId, PlanError> {
        // A source reads any region: cut its blocks at the selection's edges and at the edges
        // of the blocks asked for, so only the selected pixels are read (the cull pass drops
        // the blocks outside) and each block gathers from reads of about its own size.
        let source = &node.inputs[0];
        let input = if matches!(source.op, Op::Source(_) | Op::Host(_)) {
            // an in-memory array gives any region as a view: cut it only where the blocks
            // asked for need, so each block is one view (a source keeps its own edges too)
            let base = match &source.op {
                Op::Host(HostArray::F32(_) | HostArray::Mask(_)) => ChunkGrid::single(source.shape()),
                // other in-memory types convert per block: keep their blocks, as a source's
                _ => source.grid.clone(),
            };
            let cut = cut_at_selection(&base, maps, fixed).refine(&block_edges_in_input(&source.grid, maps, grid));
            self.as_grid(source, &cut)?
        } else {
            self.natural(source)?
        };
        let how = Production::Select {
            input,
            maps: maps.to_vec(),
            fixed: fixed.to_vec(),
        };
        Ok(self.push(node, grid.clone(), how))
    }

    /// The input of a median over axis 0, computed step by step in `grid`'s blocks of the
    /// other axes, when it is elementwise over two or more arrays (the luminance of three
    /// bands) and the plan asks for it: each median task then takes its steps as they are,
    /// and the gather of them into one block (a copy, and both held at once) goes away.
    /// Quantiles keep the gather (their kernel reorders a copy anyway).
    fn step_parts(
        &mut self,
        op: ReduceOp,
        input: &Arc<Node>,
        grid: &ChunkGrid,
        axes: &[usize],
    ) -> Result<Option<TableId>, PlanError> {
        let median = matches!(op, ReduceOp::Median | ReduceOp::NanMedian);
        if !self.options.median_reads_steps || !median || axes != [0] || !input.op.is_elementwise() {
            return Ok(None);
        }
        // only the steps apart: blocks split on other axes too would need assembling again
        if thin_grid(input, grid).is_none() || grid.sizes(0).len() != 1 {
            return Ok(None);
        }
        let thin = grid.with_axis(0, input.grid.sizes(0).to_vec());
        Ok(Some(self.as_grid(input, &thin)?))
    }

    /// The input blocks of a holistic reduction: its input's natural grid with `axes` whole.
    fn holistic_blocks(&mut self, node: &Arc<Node>, op: ReduceOp, axes: &[usize]) -> Result<ChunkGrid, PlanError> {
        let natural = self.natural_grid(&node.inputs[0])?;
        whole_axes_grid(self.options, op.name(), &natural, axes)
    }

    /// The input blocks of a group reduction (the axis in runs of groups) and those runs.
    fn group_blocks(
        &mut self,
        node: &Arc<Node>,
        op: ReduceOp,
        axis: usize,
        labels: &[usize],
        groups: usize,
    ) -> Result<(ChunkGrid, Vec<GroupSpan>), PlanError> {
        let natural = self.natural_grid(&node.inputs[0])?;
        group_layout(self.options, op.name(), &natural, axis, labels, groups)
    }

    fn holistic(&mut self, node: &Arc<Node>, op: ReduceOp, axes: &[usize]) -> Result<TableId, PlanError> {
        let blocks = self.holistic_blocks(node, op, axes)?;
        // Steps computed apart are read in place by the median (no gather of them first);
        // otherwise one input block per task.
        let (input, steps) = match self.step_parts(op, &node.inputs[0], &blocks, axes)? {
            Some(parts) => (parts, self.grid_of(parts).sizes(0).len()),
            None => (self.gathered(&node.inputs[0], &blocks)?, 1),
        };
        let grid = blocks.without_axes(axes);
        let how = Production::Holistic {
            input,
            op,
            axes: axes.to_vec(),
            blocks,
            steps,
        };
        Ok(self.push(node, grid, how))
    }

    fn group(
        &mut self,
        node: &Arc<Node>,
        op: ReduceOp,
        axis: usize,
        labels: &Arc<Vec<usize>>,
        groups: usize,
    ) -> Result<TableId, PlanError> {
        let (blocks, runs) = self.group_blocks(node, op, axis, labels, groups)?;
        let input = self.gathered(&node.inputs[0], &blocks)?;
        let grid = group_grid(&blocks, axis, &runs);
        let how = Production::Group {
            input,
            op,
            axis,
            labels: labels.clone(),
            blocks,
            runs,
        };
        Ok(self.push(node, grid, how))
    }

    /// A window reduction over its input cut on window edges (one task per block).
    /// The blocks a window reduction reads its input in ([`window_grid`], within the plan's
    /// `window_block_bytes`).
    fn window_blocks(&mut self, node: &Arc<Node>, windows: &[usize]) -> Result<ChunkGrid, PlanError> {
        let max_bytes = usize::try_from(self.options.window_block_bytes).unwrap_or(usize::MAX);
        Ok(window_grid(&self.natural_grid(&node.inputs[0])?, windows, max_bytes))
    }

    fn coarsen(&mut self, node: &Arc<Node>, op: ReduceOp, windows: &[usize]) -> Result<TableId, PlanError> {
        let blocks = self.window_blocks(node, windows)?;
        let input = self.as_grid(&node.inputs[0], &blocks)?;
        let how = Production::Coarsen {
            input,
            op,
            windows: windows.to_vec(),
        };
        Ok(self.push(node, coarse_grid(&blocks, windows), how))
    }

    /// The gaussian in the grid asked for (its input follows any), else in its input's own.
    fn gaussian(&mut self, node: &Arc<Node>, grid: Option<&ChunkGrid>) -> Result<TableId, PlanError> {
        let Op::Gaussian { sigma, mode, truncate } = &node.op else {
            unreachable!("a gaussian node")
        };
        let input = match grid {
            Some(g) => self.as_grid(&node.inputs[0], g)?,
            None => self.natural(&node.inputs[0])?,
        };
        let grid = self.grid_of(input).clone();
        // Filtering only the last two axes: each block reads its halo straight from its
        // neighbours; otherwise each block gathers its extended block first.
        let nd = grid.ndim();
        let filtered = sigma
            .iter()
            .enumerate()
            .filter(|&(_, &s)| gaussian_weights(s, *truncate).len() > 1);
        let tiles = nd >= 2 && filtered.into_iter().all(|(a, _)| a + 2 >= nd);
        let how = Production::Gaussian {
            input,
            sigma: sigma.clone(),
            mode: *mode,
            truncate: *truncate,
            tiles,
        };
        Ok(self.push(node, grid, how))
    }

    fn map(
        &mut self,
        node: &Arc<Node>,
        f: &crate::expr::BlockFn,
        depth: Vec<usize>,
        mode: BoundaryMode,
    ) -> Result<TableId, PlanError> {
        let input = self.natural(&node.inputs[0])?;
        let grid = self.grid_of(input).clone();
        let how = Production::Map {
            input,
            f: f.clone(),
            depth,
            mode,
        };
        Ok(self.push(node, grid, how))
    }
}

/// The grid of a group reduction's result: its input blocks, the axis one block per run.
fn group_grid(blocks: &ChunkGrid, axis: usize, runs: &[GroupSpan]) -> ChunkGrid {
    blocks.with_axis(axis, runs.iter().map(|r| r.groups.len()).collect())
}

/// The leaves of `node`'s fused program that are computed (not sources, constants or arrays,
/// which follow any grid).
fn computed_leaves(node: &Arc<Node>) -> Vec<Arc<Node>> {
    let mut b = FusedBuilder::new();
    b.emit(node);
    b.leaves
        .into_iter()
        .filter(|l| !matches!(l.op, Op::Fill(_) | Op::Host(_) | Op::Source(_)))
        .collect()
}

/// Whether a reduction reduces an empty axis (its result is its op's empty value).
fn empty_reduction(node: &Node) -> bool {
    let shape = node.inputs[0].shape();
    match &node.op {
        Op::Reduce { axes, .. } => axes.iter().any(|&a| shape[a] == 0),
        Op::GroupReduce { axis, .. } => shape[*axis] == 0,
        _ => false,
    }
}
