//! The lowering pass: expression nodes → block tables of tasks.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

mod halo;
mod reduce;

use super::fused::FusedBuilder;
use super::gather::{gather_pieces, AxisIndex, DepList};
use super::{OutputTable, PlanError, PlanOptions, Task, TaskKind};
use crate::expr::{AxisMap, BoundaryMode, ChunkGrid, DType, HostArray, Node, NodeId, Op};

/// The tasks producing every block of a node in some grid (C order).
#[derive(Debug, Clone)]
struct Table {
    grid: ChunkGrid,
    dtype: DType,
    tasks: Arc<Vec<usize>>,
}

struct Lowerer<'o> {
    options: &'o PlanOptions,
    tasks: Vec<Task>,
    natural: HashMap<NodeId, Table>,
    regridded: HashMap<(NodeId, ChunkGrid), Table>,
}

/// `grid` with extra block edges where a selection's extent starts and ends on each input
/// axis (a `Strided`'s first and last index, a `List`'s smallest and largest, a fixed index).
fn cut_at_selection(grid: &ChunkGrid, maps: &[AxisMap], fixed: &[(usize, usize)]) -> ChunkGrid {
    let mut edges: Vec<Vec<usize>> = (0..grid.ndim()).map(|a| vec![0, grid.shape()[a]]).collect();
    let mut cut = |axis: usize, lo: usize, hi: usize| edges[axis].extend([lo, hi + 1]);
    for m in maps {
        match m {
            AxisMap::Strided { axis, start, step, len } if *len > 0 => {
                let last = (*start as isize + (*len as isize - 1) * step) as usize;
                cut(*axis, (*start).min(last), (*start).max(last));
            }
            AxisMap::List { axis, indices } => {
                if let (Some(&lo), Some(&hi)) = (indices.iter().min(), indices.iter().max()) {
                    cut(*axis, lo, hi);
                }
            }
            _ => {}
        }
    }
    for &(axis, i) in fixed {
        cut(axis, i, i);
    }
    grid.refine(&grid_of_edges(edges))
}

/// The input-axis positions of `grid`'s block edges under contiguous maps (step ±1), as a grid
/// of `input`'s shape: where a selection's blocks start and end in its input.
fn block_edges_in_input(input: &ChunkGrid, maps: &[AxisMap], grid: &ChunkGrid) -> ChunkGrid {
    let mut edges: Vec<Vec<usize>> = (0..input.ndim()).map(|a| vec![0, input.shape()[a]]).collect();
    for (k, m) in maps.iter().enumerate() {
        if let AxisMap::Strided { axis, start, step, len } = m {
            if step.unsigned_abs() == 1 && *len > 0 {
                for e in grid.offsets(k) {
                    let at = if *step > 0 {
                        start + e
                    } else {
                        start + 1 - e.min(start + 1)
                    };
                    edges[*axis].push(at.min(input.shape()[*axis]));
                }
            }
        }
    }
    grid_of_edges(edges)
}

/// The grid whose blocks lie between consecutive edges along each axis (edges unsorted,
/// repeats allowed; each axis lists 0 and its length).
fn grid_of_edges(edges: Vec<Vec<usize>>) -> ChunkGrid {
    let sizes = edges
        .into_iter()
        .map(|mut e| {
            e.sort_unstable();
            e.dedup();
            e.windows(2).map(|w| w[1] - w[0]).collect()
        })
        .collect();
    ChunkGrid::from_sizes(sizes)
}

/// Whether the node produces any block directly, with no regathering of computed blocks:
/// sources, constants, in-memory arrays, selections of sources, and elementwise expressions of
/// those (each block of them reads its sources' regions).
fn follows_any_grid(node: &Arc<Node>) -> bool {
    match &node.op {
        Op::Fill(_) | Op::Host(_) | Op::Source(_) => true,
        Op::Select { .. } => matches!(node.inputs[0].op, Op::Source(_) | Op::Fill(_) | Op::Host(_)),
        Op::Rechunk => follows_any_grid(&node.inputs[0]),
        op if op.is_elementwise() => node.inputs.iter().all(follows_any_grid),
        _ => false,
    }
}

/// `grid` with the declared blocks of an elementwise `node` along the axes where `grid`'s
/// blocks are longer (the axes a holistic reduction gathers whole), when the node combines
/// two or more arrays; `None` when nothing would be gathered or one operand is all there is.
fn thin_grid(node: &Node, grid: &ChunkGrid) -> Option<ChunkGrid> {
    if node.inputs.len() < 2 || node.grid.shape() != grid.shape() {
        return None;
    }
    let own = node.grid.max_block_shape();
    let asked = grid.max_block_shape();
    let mut thin = grid.clone();
    for a in 0..grid.ndim() {
        if asked[a] > own[a] {
            thin = thin.with_axis(a, node.grid.sizes(a).to_vec());
        }
    }
    (thin != *grid).then_some(thin)
}

fn elems(shape: &[usize]) -> u64 {
    shape.iter().map(|&n| n as u64).product()
}

fn block_shape(grid: &ChunkGrid, index: &[usize]) -> Vec<usize> {
    index.iter().enumerate().map(|(a, &i)| grid.sizes(a)[i]).collect()
}

/// Lowers every root to tasks: one block table per root, in the order given. Tables it built
/// and then regridded stay in the task list for the prune pass to drop.
pub(super) fn lower_roots(
    roots: &[Arc<Node>],
    options: &PlanOptions,
) -> Result<(Vec<Task>, Vec<OutputTable>), PlanError> {
    let mut l = Lowerer {
        options,
        tasks: Vec::new(),
        natural: HashMap::new(),
        regridded: HashMap::new(),
    };
    let mut outputs = Vec::new();
    for root in roots {
        let table = match (l.whole_row_grid(root), &root.op) {
            (Some(grid), Op::Gaussian { sigma, mode, truncate }) => {
                let key = (root.id, grid.clone());
                // already lowered (for another result): shared as it is
                match l.regridded.get(&key).or_else(|| l.natural.get(&root.id)) {
                    Some(t) => t.clone(),
                    None => {
                        // kept for every later reader of this gaussian (another result's
                        // mask of it, the same root asked twice), as `lower` keeps tables
                        let t = l.gaussian_blocks(root, sigma, *mode, *truncate, Some(&grid))?;
                        l.regridded.insert(key, t.clone());
                        l.natural.entry(root.id).or_insert_with(|| t.clone());
                        t
                    }
                }
            }
            (Some(grid), _) => l.lower_as(root, &grid)?,
            (None, _) => l.lower(root)?,
        };
        outputs.push(OutputTable {
            grid: table.grid.clone(),
            dtype: table.dtype,
            tasks: table.tasks.to_vec(),
        });
    }
    Ok((l.tasks, outputs))
}

impl Lowerer<'_> {
    /// For a result computed into a whole in-memory array: the grid of whole rows (blocks
    /// merged along the last axis, at most the declared rows per block, within the holistic
    /// block size) when the result is elementwise over sources, which produce any block, or
    /// a gaussian of such an input (its halo then comes from the rows above and below). Square blocks of a large array make each task read and write rows a block
    /// wide, a page apart in memory (512² blocks of a 4096-wide array: 2 KB of every 16 KB),
    /// about half the speed of whole rows; whole rows stream. `None` to keep the node's grid.
    fn whole_row_grid(&self, root: &Arc<Node>) -> Option<ChunkGrid> {
        let free = match root.op {
            Op::Gaussian { .. } => follows_any_grid(&root.inputs[0]),
            ref op => op.is_elementwise() && follows_any_grid(root),
        };
        if !self.options.dense_results || !free {
            return None;
        }
        let grid = &root.grid;
        let nd = grid.ndim();
        if nd < 2 {
            return None; // a 1-d result is contiguous in any blocks
        }
        let last = nd - 1;
        if grid.sizes(last).len() <= 1 {
            return None; // rows are whole already
        }
        let limit = self.options.max_holistic_block.max(1);
        let mut merged = grid.with_axis(last, vec![grid.shape()[last]]);
        // rows per block: as many of the declared block's as fit the limit, at least one
        let row_bytes = grid.shape()[last] as u64 * 4;
        let axis = nd - 2;
        let declared = grid.max_block_shape()[axis].max(1);
        let outer: u64 = grid.max_block_shape()[..axis].iter().map(|&n| n as u64).product();
        let fit = (limit / (row_bytes * outer).max(1)).max(1) as usize;
        let rows = declared.min(fit);
        if rows < declared {
            merged = merged.with_axis(axis, crate::expr::split_regular(grid.shape()[axis], rows));
        }
        Some(merged)
    }

    fn add(
        &mut self,
        node: &Node,
        block: Vec<usize>,
        kind: TaskKind,
        deps: Vec<usize>,
        out_bytes: u64,
        scratch: u64,
    ) -> usize {
        self.tasks.push(Task {
            kind,
            deps,
            out_bytes,
            scratch_bytes: scratch,
            node: node.id,
            label: node.op.name(),
            dtype: node.dtype,
            block,
        });
        self.tasks.len() - 1
    }

    fn table(grid: ChunkGrid, dtype: DType, tasks: Vec<usize>) -> Table {
        Table {
            grid,
            dtype,
            tasks: Arc::new(tasks),
        }
    }

    /// The node's blocks in the grid the planner finds best for it.
    fn lower(&mut self, node: &Arc<Node>) -> Result<Table, PlanError> {
        if let Some(t) = self.natural.get(&node.id) {
            return Ok(t.clone());
        }
        let table = match &node.op {
            Op::Fill(_) | Op::Host(_) | Op::Source(_) => self.source_blocks(node, &node.grid),
            Op::Persisted(blocks) => {
                let tasks = node
                    .grid
                    .block_indices()
                    .into_iter()
                    .zip(blocks.iter())
                    .map(|(idx, b)| self.add(node, idx, TaskKind::Persisted { block: b.clone() }, vec![], 0, 0))
                    .collect();
                Self::table(node.grid.clone(), node.dtype, tasks)
            }
            _ if node.op.is_elementwise() => {
                let grid = self.elementwise_grid(node)?;
                self.fused_blocks(node, &grid)?
            }
            Op::Select { maps, fixed } => self.select_blocks(node, maps, fixed, &node.grid)?,
            Op::Concat { axis } => self.concat_blocks(node, *axis)?,
            Op::Rechunk => self.lower_as(&node.inputs[0], &node.grid)?,
            Op::Reduce { op, axes } if op.is_holistic() => self.holistic_blocks(node, *op, axes)?,
            Op::Reduce { op, axes } => self.tree_reduce(node, *op, axes)?,
            Op::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => self.group_blocks(node, *op, *axis, labels, *groups)?,
            Op::Gaussian { sigma, mode, truncate } => self.gaussian_blocks(node, sigma, *mode, *truncate, None)?,
            Op::MapBlocks(f) => {
                let zero = vec![0; node.grid.ndim()];
                self.map_blocks(node, f, &zero, BoundaryMode::Constant(0.0))?
            }
            Op::MapOverlap { f, depth, mode } => self.map_blocks(node, f, depth, *mode)?,
            Op::Unary(_) | Op::Binary(_) | Op::BinaryScalar { .. } | Op::Where | Op::Cast => {
                unreachable!("elementwise")
            }
        };
        self.natural.insert(node.id, table.clone());
        Ok(table)
    }

    /// The node's blocks in `grid`, produced directly where the node can be (sources and
    /// elementwise expressions follow any grid) and regathered otherwise.
    fn lower_as(&mut self, node: &Arc<Node>, grid: &ChunkGrid) -> Result<Table, PlanError> {
        if let Some(t) = self.natural.get(&node.id) {
            if &t.grid == grid {
                return Ok(t.clone());
            }
        }
        let key = (node.id, grid.clone());
        if let Some(t) = self.regridded.get(&key) {
            return Ok(t.clone());
        }
        let table = match &node.op {
            Op::Fill(_) | Op::Host(_) | Op::Source(_) => self.source_blocks(node, grid),
            _ if node.op.is_elementwise() => self.fused_blocks(node, grid)?,
            Op::Rechunk => self.lower_as(&node.inputs[0], grid)?,
            // A selection of a source reads any region too: each block in `grid` gathers from
            // source reads cut to it, never from whole source blocks around it (a median's
            // whole time axis over an area cut from a stack holds one block's worth).
            Op::Select { maps, fixed } if matches!(node.inputs[0].op, Op::Source(_) | Op::Fill(_) | Op::Host(_)) => {
                self.select_blocks(node, maps, fixed, grid)?
            }
            _ => {
                let natural = self.lower(node)?;
                if &natural.grid == grid {
                    natural
                } else {
                    self.regather(node, &natural, grid)
                }
            }
        };
        self.regridded.insert(key, table.clone());
        Ok(table)
    }

    /// The input of a holistic or group reduction in `grid`, whose blocks hold the reduced
    /// axes whole. An elementwise input of two or more arrays is computed in blocks as thin
    /// as its own along the axes `grid` gathers, then gathered: one gather of the result
    /// instead of one per operand, and each operand's block is freed once its thin block is
    /// computed (the median of the luminance holds the luminance steps of a strip, not three
    /// bands of them).
    fn lower_gathered(&mut self, node: &Arc<Node>, grid: &ChunkGrid) -> Result<Table, PlanError> {
        let thin = if node.op.is_elementwise() {
            thin_grid(node, grid)
        } else {
            None
        };
        let Some(thin) = thin else {
            return self.lower_as(node, grid);
        };
        let key = (node.id, grid.clone());
        if let Some(t) = self.regridded.get(&key) {
            return Ok(t.clone());
        }
        let computed = self.lower_as(node, &thin)?;
        let table = self.regather(node, &computed, grid);
        self.regridded.insert(key, table.clone());
        Ok(table)
    }

    fn source_blocks(&mut self, node: &Node, grid: &ChunkGrid) -> Table {
        let tasks = grid
            .block_indices()
            .into_iter()
            .map(|idx| {
                let region = grid.region(&idx);
                let shape = block_shape(grid, &idx);
                let bytes = elems(&shape) * node.dtype.size() as u64;
                let (kind, bytes) = match &node.op {
                    Op::Fill(v) => (
                        TaskKind::Fill {
                            shape,
                            value: *v,
                            dtype: node.dtype,
                        },
                        bytes,
                    ),
                    // f32 and mask host blocks are views: they cost no new memory.
                    Op::Host(a) => {
                        let view = matches!(a, crate::expr::HostArray::F32(_) | crate::expr::HostArray::Mask(_));
                        (
                            TaskKind::Host {
                                array: a.clone(),
                                region,
                            },
                            if view { 0 } else { bytes },
                        )
                    }
                    Op::Source(s) => (
                        TaskKind::Source {
                            source: s.clone(),
                            region,
                        },
                        bytes,
                    ),
                    _ => unreachable!("source op"),
                };
                self.add(node, idx, kind, vec![], bytes, 0)
            })
            .collect();
        Self::table(grid.clone(), node.dtype, tasks)
    }

    /// The grid an elementwise node runs in: the common refinement of the grids its computed
    /// (non-source) leaves come in, so they are never regathered; sources follow that grid.
    fn elementwise_grid(&mut self, node: &Arc<Node>) -> Result<ChunkGrid, PlanError> {
        let mut b = FusedBuilder::new();
        b.emit(node);
        let mut grid: Option<ChunkGrid> = None;
        for leaf in &b.leaves {
            if matches!(leaf.op, Op::Fill(_) | Op::Host(_) | Op::Source(_)) {
                continue;
            }
            let t = self.lower(leaf)?;
            grid = Some(match grid {
                None => t.grid.clone(),
                Some(g) => g.refine(&t.grid),
            });
        }
        Ok(grid.unwrap_or_else(|| node.grid.clone()))
    }

    fn fused_blocks(&mut self, node: &Arc<Node>, grid: &ChunkGrid) -> Result<Table, PlanError> {
        let mut b = FusedBuilder::new();
        let result = b.emit(node);
        let leaves = b.leaves.clone();
        let program = Arc::new(b.finish(node, result));
        let inputs: Vec<Table> = leaves
            .iter()
            .map(|leaf| self.lower_as(leaf, grid))
            .collect::<Result<_, _>>()?;
        let tasks = grid
            .block_indices()
            .into_iter()
            .enumerate()
            .map(|(flat, idx)| {
                let shape = block_shape(grid, &idx);
                let deps = inputs.iter().map(|t| t.tasks[flat]).collect();
                let bytes = elems(&shape) * node.dtype.size() as u64;
                self.add(
                    node,
                    idx,
                    TaskKind::Fused {
                        program: program.clone(),
                        shape,
                    },
                    deps,
                    bytes,
                    0,
                )
            })
            .collect();
        Ok(Self::table(grid.clone(), node.dtype, tasks))
    }

    /// Adds one gather task per block of `grid`, each reading the input positions `index_of`
    /// gives for its region.
    fn gather_blocks(
        &mut self,
        node: &Node,
        grid: &ChunkGrid,
        input: &Table,
        fill: f32,
        mut axes_of: impl FnMut(&[Range<usize>]) -> (Vec<AxisIndex>, Vec<(usize, usize)>),
    ) -> Table {
        let tasks = grid
            .block_indices()
            .into_iter()
            .map(|idx| {
                let region = grid.region(&idx);
                let (axes, fixed) = axes_of(&region);
                self.gather_task(node, idx, &region, input, fill, &axes, &fixed)
            })
            .collect();
        Self::table(grid.clone(), node.dtype, tasks)
    }

    #[allow(clippy::too_many_arguments)]
    fn gather_task(
        &mut self,
        node: &Node,
        idx: Vec<usize>,
        region: &[Range<usize>],
        input: &Table,
        fill: f32,
        axes: &[AxisIndex],
        fixed: &[(usize, usize)],
    ) -> usize {
        let mut deps = DepList::new(&input.tasks);
        let mut pieces = Vec::new();
        gather_pieces(axes, fixed, &input.grid, |b| deps.dep_of(b), &mut pieces);
        let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        let out_axes = axes
            .iter()
            .map(|a| {
                if let AxisIndex::Map { axis, .. } = a {
                    Some(*axis)
                } else {
                    None
                }
            })
            .collect();
        let bytes = elems(&shape) * input.dtype.size() as u64;
        let kind = TaskKind::Gather {
            shape,
            dtype: input.dtype,
            fill,
            out_axes,
            pieces,
        };
        self.add(node, idx, kind, deps.deps, bytes, 0)
    }

    fn regather(&mut self, node: &Node, natural: &Table, grid: &ChunkGrid) -> Table {
        let ndim = grid.ndim();
        self.gather_blocks(node, grid, natural, 0.0, |region| {
            let axes = (0..ndim)
                .map(|a| AxisIndex::Map {
                    axis: a,
                    idx: region[a].clone().map(Some).collect(),
                })
                .collect();
            (axes, vec![])
        })
    }

    /// The selection's blocks in `grid`.
    fn select_blocks(
        &mut self,
        node: &Arc<Node>,
        maps: &[AxisMap],
        fixed: &[(usize, usize)],
        grid: &ChunkGrid,
    ) -> Result<Table, PlanError> {
        // A source reads any region: cut its blocks at the selection's edges and at the edges
        // of the blocks asked for, so only the selected pixels are read (pruning drops the
        // blocks outside) and each block gathers from reads of about its own size.
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
            self.lower_as(source, &cut)?
        } else {
            self.lower(source)?
        };
        let table = self.gather_blocks(node, grid, &input, 0.0, |region| {
            let axes = maps
                .iter()
                .zip(region)
                .map(|(m, r)| match m {
                    AxisMap::New { .. } => AxisIndex::New(r.len()),
                    _ => AxisIndex::Map {
                        axis: m.input_axis().expect("mapped axis"),
                        idx: r.clone().map(|i| m.source(i).map(|(_, j)| j)).collect(),
                    },
                })
                .collect();
            (axes, fixed.to_vec())
        });
        Ok(table)
    }

    fn concat_blocks(&mut self, node: &Arc<Node>, axis: usize) -> Result<Table, PlanError> {
        let inputs: Vec<Table> = node.inputs.iter().map(|i| self.lower(i)).collect::<Result<_, _>>()?;
        let starts: Vec<usize> = node
            .inputs
            .iter()
            .scan(0, |acc, i| Some(std::mem::replace(acc, *acc + i.shape()[axis])))
            .collect();
        let grid = node.grid.clone();
        let ndim = grid.ndim();
        let tasks = grid
            .block_indices()
            .into_iter()
            .map(|idx| {
                let region = grid.region(&idx);
                let mut pieces = Vec::new();
                let mut deps = DepList::new(&inputs[0].tasks);
                for (k, input) in inputs.iter().enumerate() {
                    let (lo, hi) = (starts[k], starts[k] + node.inputs[k].shape()[axis]);
                    if region[axis].end <= lo || region[axis].start >= hi {
                        continue;
                    }
                    deps = deps.with_tasks(&input.tasks);
                    let axes: Vec<AxisIndex> = (0..ndim)
                        .map(|a| {
                            let idx = if a == axis {
                                region[a]
                                    .clone()
                                    .map(|i| (lo..hi).contains(&i).then(|| i - lo))
                                    .collect()
                            } else {
                                region[a].clone().map(Some).collect()
                            };
                            AxisIndex::Map { axis: a, idx }
                        })
                        .collect();
                    gather_pieces(&axes, &[], &input.grid, |b| deps.dep_of(b), &mut pieces);
                }
                let shape = block_shape(&grid, &idx);
                let bytes = elems(&shape) * node.dtype.size() as u64;
                let out_axes = (0..ndim).map(Some).collect();
                let kind = TaskKind::Gather {
                    shape,
                    dtype: node.dtype,
                    fill: 0.0,
                    out_axes,
                    pieces,
                };
                let deps = deps.deps;
                self.add(node, idx, kind, deps, bytes, 0)
            })
            .collect();
        Ok(Self::table(grid, node.dtype, tasks))
    }
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
