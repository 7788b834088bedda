//! Lowering reductions: tree reductions over partial states, holistic reductions (medians,
//! quantiles) over whole axes, and group reductions by label (a resample in runs of whole
//! groups, empty groups as fills).

use std::ops::Range;
use std::sync::Arc;

use super::{block_shape, elems, thin_grid, Lowerer, Table};
use crate::expr::{ChunkGrid, Node, ReduceOp};
use crate::plan::{PlanError, TaskKind};

impl Lowerer<'_> {
    /// The result of reducing no values: one fill task per output block.
    pub(super) fn empty_reduction(&mut self, node: &Node, op: ReduceOp, out_grid: ChunkGrid) -> Table {
        let tasks = out_grid
            .block_indices()
            .into_iter()
            .map(|idx| self.empty_block(node, op, &out_grid, idx))
            .collect();
        Self::table(out_grid, node.dtype, tasks)
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

    pub(super) fn tree_reduce(&mut self, node: &Arc<Node>, op: ReduceOp, axes: &[usize]) -> Result<Table, PlanError> {
        if axes.iter().any(|&a| node.inputs[0].shape()[a] == 0) {
            return Ok(self.empty_reduction(node, op, node.grid.clone()));
        }
        let input = self.lower(&node.inputs[0])?;
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
        Ok(Self::table(out_grid, node.dtype, tasks))
    }

    /// A grid of the input with `whole` axes in one block and the other axes cut so one block
    /// holds at most the holistic block size.
    fn whole_axes_grid(&self, op: &str, input: &ChunkGrid, whole: &[usize]) -> Result<ChunkGrid, PlanError> {
        let extents: Vec<(usize, usize)> = whole.iter().map(|&a| (a, input.shape()[a])).collect();
        let block = self.kept_block(op, input, &extents)?;
        let mut grid = input.clone();
        for &a in whole {
            grid = grid.with_axis(a, vec![input.shape()[a]]);
        }
        Ok(cut_kept(&grid, &block, whole))
    }

    /// The most bytes one holistic task's input block holds.
    fn holistic_limit(&self) -> u64 {
        self.options
            .max_holistic_block
            .min(self.options.memory_budget / 8)
            .max(1)
    }

    /// The block shape for a holistic task over `input` whose reduced axes span the given
    /// extents: the other (kept) axes as the input's blocks, cut outermost first so the block
    /// holds at most the holistic block size.
    ///
    /// **Errors**: [`PlanError::ReductionTooLarge`] when one column of the reduced axes does
    /// not fit half the budget.
    fn kept_block(&self, op: &str, input: &ChunkGrid, extents: &[(usize, usize)]) -> Result<Vec<usize>, PlanError> {
        let column: u64 = extents.iter().map(|&(_, n)| n as u64).product::<u64>() * 4;
        let limit = self.holistic_limit();
        if column * 2 > self.options.memory_budget {
            return Err(PlanError::ReductionTooLarge {
                op: op.into(),
                axes: extents.iter().map(|&(a, _)| a).collect(),
                shape: input.shape().to_vec(),
                needed: column * 2,
                budget: self.options.memory_budget,
            });
        }
        let mut block = input.max_block_shape();
        for &(a, n) in extents {
            block[a] = n;
        }
        // Cut the outermost kept axes first, into even blocks: a block then covers whole runs
        // of the result's rows, so the result's pages fill as its blocks finish (column strips
        // would touch every page of the result with the first strip), and its sources read
        // windows as wide as their tiles rather than slivers of each.
        for a in (0..block.len()).filter(|a| !extents.iter().any(|&(w, _)| w == *a)) {
            let bytes = elems(&block) * 4;
            if bytes <= limit {
                break;
            }
            let per_unit = bytes / block[a].max(1) as u64;
            let fits = ((limit / per_unit.max(1)) as usize).clamp(1, block[a]);
            let pieces = input.shape()[a].div_ceil(fits);
            block[a] = input.shape()[a].div_ceil(pieces.max(1)).min(block[a]);
        }
        Ok(block)
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
    ) -> Result<Option<Table>, PlanError> {
        let median = matches!(op, ReduceOp::Median | ReduceOp::NanMedian);
        if !self.options.median_reads_steps || !median || axes != [0] || !input.op.is_elementwise() {
            return Ok(None);
        }
        // only the steps apart: blocks split on other axes too would need assembling again
        if thin_grid(input, grid).is_none() || grid.sizes(0).len() != 1 {
            return Ok(None);
        }
        let thin = grid.with_axis(0, input.grid.sizes(0).to_vec());
        Ok(Some(self.lower_as(input, &thin)?))
    }

    pub(super) fn holistic_blocks(
        &mut self,
        node: &Arc<Node>,
        op: ReduceOp,
        axes: &[usize],
    ) -> Result<Table, PlanError> {
        if axes.iter().any(|&a| node.inputs[0].shape()[a] == 0) {
            return Ok(self.empty_reduction(node, op, node.grid.clone()));
        }
        let natural = self.lower(&node.inputs[0])?;
        let grid = self.whole_axes_grid(op.name(), &natural.grid, axes)?;
        // Steps computed apart are read in place by the median (no gather of them first);
        // otherwise one input block per task.
        let (input, steps) = match self.step_parts(op, &node.inputs[0], &grid, axes)? {
            Some(parts) => {
                let steps = parts.grid.sizes(0).len();
                (parts, steps)
            }
            None => (self.lower_gathered(&node.inputs[0], &grid)?, 1),
        };
        let per_step = input.tasks.len() / steps;
        let out_grid = grid.without_axes(axes);
        let column: u64 = axes.iter().map(|&a| grid.shape()[a] as u64).product::<u64>() * 4;
        let tasks = grid
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
        Ok(Self::table(out_grid, node.dtype, tasks))
    }

    pub(super) fn group_blocks(
        &mut self,
        node: &Arc<Node>,
        op: ReduceOp,
        axis: usize,
        labels: &Arc<Vec<usize>>,
        groups: usize,
    ) -> Result<Table, PlanError> {
        if node.inputs[0].shape()[axis] == 0 {
            return Ok(self.empty_reduction(node, op, node.grid.clone()));
        }
        let natural = self.lower(&node.inputs[0])?;
        let (grid, runs) = match group_runs(labels, groups) {
            // Groups in order along the axis (a resample): a task reduces a run of whole
            // groups, so it holds only their steps. The kept axes are cut as for the whole
            // axis, so its sources are the blocks a holistic reduction over the same input
            // reads (the tutorial's luminance median shares the monthly median's reads).
            // Runs of groups without members read nothing: they become fills of the op's
            // empty value (NaN for a median), which `exec` runs last, so a resample's empty
            // months take memory only once the rest of the run has given its memory back.
            Some(spans) => {
                let steps = natural.grid.shape()[axis];
                let block = self.kept_block(op.name(), &natural.grid, &[(axis, steps)])?;
                let per_step = elems(&block) / steps.max(1) as u64 * 4;
                // Runs of a few months, not the whole axis: an eighth of the block the whole
                // axis could have, so a run holds little while tasks stay large enough to pay.
                let runs = merge_spans(spans, per_step, self.holistic_limit() / 8);
                let read = runs.iter().filter(|r| !r.steps.is_empty()).map(|r| r.steps.len());
                let grid = natural.grid.with_axis(axis, read.collect());
                (cut_kept(&grid, &block, &[axis]), runs)
            }
            // Groups interleaved (a groupby of the month): every task sees the whole axis.
            None => {
                let grid = self.whole_axes_grid(op.name(), &natural.grid, &[axis])?;
                let whole = GroupSpan {
                    groups: 0..groups,
                    steps: 0..grid.shape()[axis],
                };
                (grid, vec![whole])
            }
        };
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
        let input = self.lower_gathered(&node.inputs[0], &grid)?;
        let out_grid = grid.with_axis(axis, runs.iter().map(|r| r.groups.len()).collect());
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
                let input_task = input.tasks[grid.flat_index(&in_idx)];
                self.add(
                    node,
                    idx,
                    kind,
                    vec![input_task],
                    bytes,
                    column * self.options.threads as u64,
                )
            })
            .collect();
        Ok(Self::table(out_grid, node.dtype, tasks))
    }
}

/// `grid` with every axis but `skip` cut into blocks of at most `block`'s extent where its
/// blocks are longer (even pieces of the axis; blocks already smaller are kept).
fn cut_kept(grid: &ChunkGrid, block: &[usize], skip: &[usize]) -> ChunkGrid {
    let mut out = grid.clone();
    for (a, &b) in block.iter().enumerate() {
        if !skip.contains(&a) && out.max_block_shape()[a] > b {
            out = out.with_axis(a, crate::expr::split_regular(grid.shape()[a], b));
        }
    }
    out
}

/// Consecutive groups and the steps of the reduced axis they cover.
#[derive(Debug, Clone, PartialEq)]
struct GroupSpan {
    groups: Range<usize>,
    steps: Range<usize>,
}

/// The groups in order along the axis, when the labels never go back (each group's steps
/// are contiguous and in order): one span per group with members, and one per run of groups
/// without (no steps). `None` when labels interleave.
fn group_runs(labels: &[usize], groups: usize) -> Option<Vec<GroupSpan>> {
    if labels.windows(2).any(|w| w[1] < w[0]) || labels.last().is_some_and(|&l| l >= groups) {
        return None;
    }
    let mut spans: Vec<GroupSpan> = Vec::new();
    let mut step = 0;
    let mut group = 0;
    while group < groups {
        let members = labels[step..].iter().take_while(|&&l| l == group).count();
        if members == 0 {
            let end = labels.get(step).copied().unwrap_or(groups);
            spans.push(GroupSpan {
                groups: group..end,
                steps: step..step,
            });
            group = end;
        } else {
            spans.push(GroupSpan {
                groups: group..group + 1,
                steps: step..step + members,
            });
            step += members;
            group += 1;
        }
    }
    Some(spans)
}

/// Joins neighbouring spans with members while a block of their steps stays within `limit`
/// bytes; spans without members stay apart.
fn merge_spans(spans: Vec<GroupSpan>, per_step: u64, limit: u64) -> Vec<GroupSpan> {
    let mut out: Vec<GroupSpan> = Vec::new();
    for span in spans {
        match out.last_mut() {
            Some(last)
                if !last.steps.is_empty()
                    && !span.steps.is_empty()
                    && (last.steps.len() + span.steps.len()) as u64 * per_step <= limit =>
            {
                last.groups.end = span.groups.end;
                last.steps.end = span.steps.end;
            }
            _ => out.push(span),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::Arc;

    use crate::expr::{Node, Op};
    use crate::plan::rewrite::tests::leaf;
    use crate::plan::{PlanOptions, TaskGraph, TaskKind};

    fn span(groups: Range<usize>, steps: Range<usize>) -> super::GroupSpan {
        super::GroupSpan { groups, steps }
    }

    #[test]
    fn ordered_groups_become_spans_and_runs_of_empty_groups_spans_of_their_own() {
        // months 0..6 of 7 steps; months 1 and 3 have no scene, nor do 5 and 6 at the end
        let labels = [0, 0, 2, 2, 2, 4, 4];
        assert_eq!(
            super::group_runs(&labels, 7).unwrap(),
            [
                span(0..1, 0..2),
                span(1..2, 2..2),
                span(2..3, 2..5),
                span(3..4, 5..5),
                span(4..5, 5..7),
                span(5..7, 7..7)
            ]
        );
        assert_eq!(
            super::group_runs(&[1, 1], 2).unwrap(),
            [span(0..1, 0..0), span(1..2, 0..2)]
        );
        // interleaved labels (a groupby of the month) need the whole axis
        assert_eq!(super::group_runs(&[0, 1, 0], 2), None);
    }

    #[test]
    fn spans_merge_while_their_steps_fit_the_block() {
        let spans = vec![span(0..1, 0..2), span(1..2, 2..5), span(2..3, 5..5), span(3..4, 5..7)];
        // 10 bytes a step, 50 a block: 2 + 3 steps fit; the empty span stays apart, and
        // the last span does not join it
        assert_eq!(
            super::merge_spans(spans.clone(), 10, 50),
            [span(0..2, 0..5), span(2..3, 5..5), span(3..4, 5..7)]
        );
        // a span longer than the block stays whole
        assert_eq!(super::merge_spans(spans.clone(), 100, 50), spans);
    }

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
