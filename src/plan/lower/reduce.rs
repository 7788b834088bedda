//! Emitting reductions: tree reductions over partial states, holistic reductions (medians,
//! quantiles) over blocks holding their axes whole, and group reductions by label in runs of
//! whole groups (runs without members as fills).

use std::sync::Arc;

use super::emit::{block_shape, Emitter, Table};
use super::grids::{elems, GroupSpan};
use crate::expr::{ChunkGrid, Node, ReduceOp};
use crate::plan::TaskKind;

impl Emitter<'_> {
    /// The result of reducing no values: one fill task per output block.
    pub(super) fn empty_reduction(&mut self, node: &Node, op: ReduceOp, grid: &ChunkGrid) -> Table {
        let tasks = grid
            .block_indices()
            .into_iter()
            .map(|idx| self.empty_block(node, op, grid, idx))
            .collect();
        Self::table(grid.clone(), node.dtype, tasks)
    }

    /// A fill of `op`'s value over no values (NaN where it has none) for block `idx` of `grid`.
    fn empty_block(&mut self, node: &Node, op: ReduceOp, grid: &ChunkGrid, idx: Vec<usize>) -> usize {
        let shape = block_shape(grid, &idx);
        let bytes = elems(&shape) * node.dtype.size() as u64;
        let fill = TaskKind::Fill {
            shape,
            value: op.empty_value().unwrap_or(f32::NAN),
            dtype: node.dtype,
        };
        self.add(node, idx, fill, vec![], bytes, 0)
    }

    pub(super) fn tree_reduce(&mut self, node: &Node, input: &Table, op: ReduceOp, axes: &[usize]) -> Table {
        let out_grid = input.grid.without_axes(axes);
        let counts = input.grid.blocks_per_axis();
        let split = self.options.split_every.max(2);
        let mut tasks = Vec::with_capacity(out_grid.num_blocks());
        for out_idx in out_grid.block_indices() {
            let out_shape = block_shape(&out_grid, &out_idx);
            let partial_bytes = elems(&out_shape) * 8 * op.partial_lanes() as u64;
            let final_bytes = elems(&out_shape) * node.dtype.size() as u64;
            // every input block that reduces into this output block
            let reduced_counts: Vec<usize> = axes.iter().map(|&a| counts[a]).collect();
            let n: usize = reduced_counts.iter().product();
            let inputs: Vec<usize> = (0..n)
                .map(|r| {
                    let ridx = crate::expr::unravel(r, &reduced_counts);
                    let mut in_idx = Vec::with_capacity(counts.len());
                    let (mut k, mut j) = (0, 0);
                    for a in 0..counts.len() {
                        if axes.contains(&a) {
                            in_idx.push(ridx[k]);
                            k += 1;
                        } else {
                            in_idx.push(out_idx[j]);
                            j += 1;
                        }
                    }
                    input.tasks[input.grid.flat_index(&in_idx)]
                })
                .collect();
            // Level 0 folds `group` input blocks into one state: enough blocks that the state
            // (f64 lanes per kept element) costs at most half the data folded into it, so thin
            // blocks along the reduced axes do not multiply memory traffic, nor states pile up
            // waiting for the combine; a state per block where states are small, so a full
            // reduction of a few blocks runs in parallel.
            let block_bytes = elems(&input.grid.max_block_shape()) * input.dtype.size() as u64;
            let group = ((2 * partial_bytes).div_ceil(block_bytes.max(1)) as usize).clamp(1, split);
            let single = n <= group;
            let mut level: Vec<usize> = inputs
                .chunks(group)
                .map(|group| {
                    let kind = TaskKind::ReducePartial {
                        op,
                        axes: axes.to_vec(),
                        finalize: single,
                    };
                    let bytes = if single { final_bytes } else { partial_bytes };
                    self.add(node, out_idx.clone(), kind, group.to_vec(), bytes, partial_bytes)
                })
                .collect();
            while level.len() > 1 {
                let last = level.len() <= split;
                level = level
                    .chunks(split)
                    .map(|group| {
                        let kind = TaskKind::ReduceCombine { op, finalize: last };
                        let bytes = if last { final_bytes } else { partial_bytes };
                        self.add(node, out_idx.clone(), kind, group.to_vec(), bytes, partial_bytes)
                    })
                    .collect();
            }
            tasks.push(level[0]);
        }
        Self::table(out_grid, node.dtype, tasks)
    }

    /// One holistic task per block of `blocks` (the input's grid with `axes` whole); its
    /// inputs are that block's `steps` parts along axis 0 (one part: the block itself).
    pub(super) fn holistic_blocks(
        &mut self,
        node: &Node,
        input: &Table,
        op: ReduceOp,
        axes: &[usize],
        blocks: &ChunkGrid,
        steps: usize,
    ) -> Table {
        let per_step = input.tasks.len() / steps;
        let out_grid = blocks.without_axes(axes);
        let column: u64 = axes.iter().map(|&a| blocks.shape()[a] as u64).product::<u64>() * 4;
        let tasks = blocks
            .block_indices()
            .into_iter()
            .enumerate()
            .map(|(flat, idx)| {
                let out_idx = crate::expr::without_axes(&idx, axes);
                let bytes = elems(&block_shape(&out_grid, &out_idx)) * node.dtype.size() as u64;
                let scratch = column * self.options.threads as u64;
                let kind = TaskKind::Holistic {
                    op,
                    axes: axes.to_vec(),
                };
                let deps = (0..steps).map(|i| input.tasks[i * per_step + flat]).collect();
                self.add(node, out_idx, kind, deps, bytes, scratch)
            })
            .collect();
        Self::table(out_grid, node.dtype, tasks)
    }

    /// One group reduction per block of the result: each run of groups with members reduces
    /// its block of `blocks` (the input's grid, the axis in runs); runs without are fills.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn group_blocks(
        &mut self,
        node: &Node,
        input: &Table,
        op: ReduceOp,
        axis: usize,
        labels: &Arc<Vec<usize>>,
        blocks: &ChunkGrid,
        runs: &[GroupSpan],
    ) -> Table {
        let groups = runs.last().map_or(0, |r| r.groups.end);
        // each run's block along the axis of the input grid (runs without members have none)
        let in_block: Vec<Option<usize>> = runs
            .iter()
            .scan(0, |next, r| {
                Some((!r.steps.is_empty()).then(|| {
                    *next += 1;
                    *next - 1
                }))
            })
            .collect();
        let out_grid = blocks.with_axis(axis, runs.iter().map(|r| r.groups.len()).collect());
        let tasks = out_grid
            .block_indices()
            .into_iter()
            .map(|idx| {
                let run = &runs[idx[axis]];
                let Some(k) = in_block[idx[axis]] else {
                    return self.empty_block(node, op, &out_grid, idx);
                };
                let bytes = elems(&block_shape(&out_grid, &idx)) * node.dtype.size() as u64;
                let kind = TaskKind::GroupReduce {
                    op,
                    axis,
                    labels: if run.groups == (0..groups) {
                        labels.clone()
                    } else {
                        Arc::new(
                            labels[run.steps.clone()]
                                .iter()
                                .map(|&l| l - run.groups.start)
                                .collect(),
                        )
                    },
                    groups: run.groups.len(),
                };
                let mut in_idx = idx.clone();
                in_idx[axis] = k;
                let column = run.steps.len() as u64 * 4;
                let input_task = input.tasks[blocks.flat_index(&in_idx)];
                let scratch = column * self.options.threads as u64;
                self.add(node, idx, kind, vec![input_task], bytes, scratch)
            })
            .collect();
        Self::table(out_grid, node.dtype, tasks)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::expr::{Node, Op};
    use crate::plan::rewrite::tests::leaf;
    use crate::plan::{PlanOptions, TaskGraph, TaskKind};

    #[test]
    fn a_resample_median_reads_only_the_steps_of_its_groups() {
        // (6, 32, 32) in (1, 32, 32) blocks (4 KiB a step), months of 1, 1, 0, 4 and 0 steps,
        // a 64 KiB holistic block: runs of months up to an eighth of it (8 KiB), so the first
        // two months go together and the third alone; no task holds all six steps, and the
        // empty months are fills of NaN that read nothing
        let x = leaf(&[6, 32, 32], &[1, 32, 32]);
        let grid = crate::expr::ChunkGrid::new(&[5, 32, 32], &crate::expr::Chunks::Block(vec![5, 32, 32])).unwrap();
        let op = Op::GroupReduce {
            op: crate::expr::ReduceOp::NanMedian,
            axis: 0,
            labels: Arc::new(vec![0, 1, 3, 3, 3, 3]),
            groups: 5,
        };
        let node = Node::new(op, vec![x], grid, crate::expr::DType::F32);
        let options = PlanOptions {
            max_holistic_block: 64 << 10,
            ..Default::default()
        };
        let g = TaskGraph::build(std::slice::from_ref(&node), &options).unwrap();
        let outputs: Vec<String> = g.outputs()[0]
            .tasks()
            .iter()
            .map(|&t| match g.tasks()[t].kind() {
                TaskKind::GroupReduce { labels, groups, .. } => format!("reduce {labels:?} into {groups}"),
                TaskKind::Fill { value, .. } => format!("fill {value}"),
                other => other.name().to_string(),
            })
            .collect();
        assert_eq!(
            outputs,
            [
                "reduce [0, 1] into 2",
                "fill NaN",
                "reduce [0, 0, 0, 0] into 1",
                "fill NaN"
            ],
            "{g}"
        );
        assert_eq!(g.outputs()[0].grid().sizes(0), [2, 1, 1, 1]);

        // every step in one month after an empty one: the labels are counted from the run's
        // first month (as a proptest found, a run of all the steps is not all the months)
        let x = leaf(&[2, 4, 4], &[1, 4, 4]);
        let grid = crate::expr::ChunkGrid::new(&[2, 4, 4], &crate::expr::Chunks::Block(vec![2, 4, 4])).unwrap();
        let op = Op::GroupReduce {
            op: crate::expr::ReduceOp::NanMedian,
            axis: 0,
            labels: Arc::new(vec![1, 1]),
            groups: 2,
        };
        let node = Node::new(op, vec![x], grid, crate::expr::DType::F32);
        let g = TaskGraph::build(std::slice::from_ref(&node), &PlanOptions::default()).unwrap();
        let kinds: Vec<String> = g.outputs()[0]
            .tasks()
            .iter()
            .map(|&t| match g.tasks()[t].kind() {
                TaskKind::GroupReduce { labels, groups, .. } => format!("reduce {labels:?} into {groups}"),
                other => other.name().to_string(),
            })
            .collect();
        assert_eq!(kinds, ["fill", "reduce [0, 0] into 1"], "{g}");
    }

    #[test]
    fn a_median_of_an_expression_reads_its_steps_in_place_when_asked() {
        // nanmedian over time of (a - b), both (8, 16, 16) in (1, 16, 16) blocks: with
        // `median_reads_steps` the one median task takes the 8 steps of the difference as its
        // inputs; without, it takes one gather of them
        let a = leaf(&[8, 16, 16], &[1, 16, 16]);
        let b = leaf(&[8, 16, 16], &[1, 16, 16]);
        let grid = a.grid.clone();
        let d = Node::new(
            Op::Binary(crate::expr::BinaryOp::Sub),
            vec![a, b],
            grid,
            crate::expr::DType::F32,
        );
        let op = Op::Reduce {
            op: crate::expr::ReduceOp::NanMedian,
            axes: vec![0],
        };
        let out = crate::expr::ChunkGrid::new(&[16, 16], &crate::expr::Chunks::Block(vec![16, 16])).unwrap();
        let median = Node::new(op, vec![d], out, crate::expr::DType::F32);
        for (reads_steps, inputs, gathers) in [(true, ["fused"; 8].to_vec(), 0), (false, vec!["gather"], 1)] {
            let options = PlanOptions {
                median_reads_steps: reads_steps,
                ..Default::default()
            };
            let g = TaskGraph::build(std::slice::from_ref(&median), &options).unwrap();
            let [t] = g.outputs()[0].tasks() else {
                panic!("one median task: {g}")
            };
            let task = &g.tasks()[*t];
            assert!(matches!(task.kind(), TaskKind::Holistic { .. }), "{g}");
            let deps: Vec<&str> = task.deps().iter().map(|&d| g.tasks()[d].kind().name()).collect();
            assert_eq!(deps, inputs, "{g}");
            let counted = g
                .counts()
                .into_iter()
                .find(|(k, _)| *k == "gather")
                .map_or(0, |(_, n)| n);
            assert_eq!(counted, gathers, "{g}");
        }
    }
}
