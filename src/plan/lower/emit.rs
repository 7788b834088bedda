//! The emit pass: one task per block of every table of a [`Layout`], in its order. Each table
//! becomes a [`Table`] of task indices that the tables after it read by block.

use std::ops::Range;
use std::sync::Arc;

use super::demand::{demand, BlockMask};
use super::grids::elems;
use super::{Layout, Production, TableSpec};
use crate::expr::{AxisMap, ChunkGrid, DType, HostArray, Node, Op};
use crate::plan::gather::{gather_pieces, AxisIndex, DepList};
use crate::plan::{FusedProgram, OutputTable, PlanOptions, Task, TaskKind};

/// The tasks producing every block of a table (C order over its grid).
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) grid: ChunkGrid,
    pub(super) dtype: DType,
    pub(super) tasks: Arc<Vec<usize>>,
}

pub(super) struct Emitter<'l> {
    pub(super) options: &'l PlanOptions,
    pub(super) tasks: Vec<Task>,
    tables: Vec<Table>,
}

/// The task of a block nobody reads: the demand pass left it out, so no task produces it.
pub(super) const NO_TASK: usize = usize::MAX;

pub(super) fn block_shape(grid: &ChunkGrid, index: &[usize]) -> Vec<usize> {
    index.iter().enumerate().map(|(a, &i)| grid.sizes(a)[i]).collect()
}

/// The emit pass's output: all tasks, each table's tasks (in layout order) and each result's.
pub(super) struct Emitted {
    pub(super) tasks: Vec<Task>,
    // read by the tests' check that no table is laid out for nothing
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) tables: Vec<Table>,
    pub(super) outputs: Vec<OutputTable>,
}

impl<'l> Emitter<'l> {
    pub(super) fn run(layout: &'l Layout) -> Emitted {
        let mut e = Emitter {
            options: &layout.options,
            tasks: Vec::new(),
            tables: Vec::with_capacity(layout.tables.len()),
        };
        let wanted = demand(layout);
        for (spec, wanted) in layout.tables.iter().zip(&wanted) {
            let table = e.table_of(spec, wanted.as_ref());
            e.tables.push(table);
        }
        let outputs = layout
            .outputs
            .iter()
            .map(|t| {
                let table = &e.tables[t.0];
                OutputTable {
                    grid: table.grid.clone(),
                    dtype: table.dtype,
                    tasks: table.tasks.to_vec(),
                }
            })
            .collect();
        Emitted {
            tasks: e.tasks,
            tables: e.tables,
            outputs,
        }
    }

    /// An earlier table (the layout lists inputs first).
    fn input(&self, t: super::TableId) -> Table {
        self.tables[t.0].clone()
    }

    fn table_of(&mut self, spec: &TableSpec, wanted: Option<&BlockMask>) -> Table {
        let (node, grid) = (&spec.node, &spec.grid);
        match &spec.how {
            Production::Read => self.read_blocks(node, grid, wanted),
            Production::Persisted => self.persisted_blocks(node),
            Production::Fused { program, inputs } => {
                let inputs: Vec<Table> = inputs.iter().map(|&t| self.input(t)).collect();
                self.fused_blocks(node, grid, program, &inputs)
            }
            Production::Regather { input } => {
                let input = self.input(*input);
                self.regather(node, &input, grid)
            }
            Production::Select { input, maps, fixed } => {
                let input = self.input(*input);
                self.select_blocks(node, &input, maps, fixed, grid)
            }
            Production::Concat { inputs, axis } => {
                let inputs: Vec<Table> = inputs.iter().map(|&t| self.input(t)).collect();
                self.concat_blocks(node, &inputs, *axis)
            }
            Production::Empty { op } => self.empty_reduction(node, *op, grid),
            Production::Tree { input, op, axes } => {
                let input = self.input(*input);
                self.tree_reduce(node, &input, *op, axes)
            }
            Production::Holistic {
                input,
                op,
                axes,
                blocks,
                steps,
            } => {
                let input = self.input(*input);
                self.holistic_blocks(node, &input, *op, axes, blocks, *steps)
            }
            Production::Group {
                input,
                op,
                axis,
                labels,
                blocks,
                runs,
            } => {
                let input = self.input(*input);
                self.group_blocks(node, &input, *op, *axis, labels, blocks, runs)
            }
            Production::Gaussian {
                input,
                sigma,
                mode,
                truncate,
                tiles,
            } => {
                let input = self.input(*input);
                if *tiles {
                    self.gaussian_tiles(node, &input, sigma, *mode, *truncate)
                } else {
                    self.gaussian_blocks(node, &input, sigma, *mode, *truncate)
                }
            }
            Production::Along { input, op, axis } => {
                let input = self.input(*input);
                self.along_blocks(node, &input, op, *axis)
            }
            Production::Map { input, f, depth, mode } => {
                let input = self.input(*input);
                self.map_blocks(node, &input, f, depth, *mode)
            }
            Production::Coarsen { input, op, windows } => {
                let input = self.input(*input);
                self.coarsen_blocks(node, &input, *op, windows, grid)
            }
        }
    }

    /// One window reduction per block of `grid`, over the same block of `input` (whose blocks
    /// hold whole windows); its copy of the windows is scratch.
    fn coarsen_blocks(
        &mut self,
        node: &Node,
        input: &Table,
        op: crate::expr::ReduceOp,
        windows: &[usize],
        grid: &ChunkGrid,
    ) -> Table {
        let tasks = grid
            .block_indices()
            .into_iter()
            .zip(input.tasks.iter())
            .map(|(idx, &source)| {
                let bytes = elems(&block_shape(grid, &idx)) * 4;
                let scratch = bytes * windows.iter().product::<usize>() as u64;
                let kind = TaskKind::Coarsen {
                    op,
                    windows: windows.to_vec(),
                };
                self.add(node, idx, kind, vec![source], bytes, scratch)
            })
            .collect();
        Self::table(grid.clone(), node.dtype, tasks)
    }

    pub(super) fn add(
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

    pub(super) fn table(grid: ChunkGrid, dtype: DType, tasks: Vec<usize>) -> Table {
        Table {
            grid,
            dtype,
            tasks: Arc::new(tasks),
        }
    }

    /// One read per block of `grid` that `wanted` keeps (all without a mask); the others get
    /// [`NO_TASK`].
    fn read_blocks(&mut self, node: &Node, grid: &ChunkGrid, wanted: Option<&BlockMask>) -> Table {
        let tasks = grid
            .block_indices()
            .into_iter()
            .map(|idx| {
                if wanted.is_some_and(|w| idx.iter().zip(w).any(|(&i, axis)| !axis[i])) {
                    return NO_TASK;
                }
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
                        let view = matches!(a, HostArray::F32(_) | HostArray::Mask(_));
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
                    _ => unreachable!("the layout reads only sources, constants and arrays"),
                };
                self.add(node, idx, kind, vec![], bytes, 0)
            })
            .collect();
        Self::table(grid.clone(), node.dtype, tasks)
    }

    fn persisted_blocks(&mut self, node: &Node) -> Table {
        let Op::Persisted(blocks) = &node.op else {
            unreachable!("a persisted node")
        };
        let tasks = node
            .grid
            .block_indices()
            .into_iter()
            .zip(blocks.iter())
            .map(|(idx, b)| self.add(node, idx, TaskKind::Persisted { block: b.clone() }, vec![], 0, 0))
            .collect();
        Self::table(node.grid.clone(), node.dtype, tasks)
    }

    fn fused_blocks(&mut self, node: &Node, grid: &ChunkGrid, program: &Arc<FusedProgram>, inputs: &[Table]) -> Table {
        let tasks = grid
            .block_indices()
            .into_iter()
            .enumerate()
            .map(|(flat, idx)| {
                let shape = block_shape(grid, &idx);
                let deps = inputs.iter().map(|t| t.tasks[flat]).collect();
                let bytes = elems(&shape) * node.dtype.size() as u64;
                let kind = TaskKind::Fused {
                    program: program.clone(),
                    shape,
                };
                self.add(node, idx, kind, deps, bytes, 0)
            })
            .collect();
        Self::table(grid.clone(), node.dtype, tasks)
    }

    /// Adds one gather task per block of `grid`, each reading the input positions `axes_of`
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
    pub(super) fn gather_task(
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

    /// The selection's blocks in `grid`, gathered from `input`.
    fn select_blocks(
        &mut self,
        node: &Node,
        input: &Table,
        maps: &[AxisMap],
        fixed: &[(usize, usize)],
        grid: &ChunkGrid,
    ) -> Table {
        self.gather_blocks(node, grid, input, 0.0, |region| {
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
        })
    }

    fn concat_blocks(&mut self, node: &Node, inputs: &[Table], axis: usize) -> Table {
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
        Self::table(grid, node.dtype, tasks)
    }
}
