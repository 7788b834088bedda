//! The grid rules of the layout pass: how a node's blocks are cut for whoever reads them.
//! Each rule is a pure function of grids and options; none writes a task.

use std::ops::Range;
use std::sync::Arc;

use crate::expr::{AxisMap, ChunkGrid, Node, Op};
use crate::plan::{PlanError, PlanOptions};

pub(super) fn elems(shape: &[usize]) -> u64 {
    shape.iter().map(|&n| n as u64).product()
}

/// `grid` with extra block edges where a selection's extent starts and ends on each input
/// axis (a `Strided`'s first and last index, a `List`'s smallest and largest, a fixed index).
pub(super) fn cut_at_selection(grid: &ChunkGrid, maps: &[AxisMap], fixed: &[(usize, usize)]) -> ChunkGrid {
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
pub(super) fn block_edges_in_input(input: &ChunkGrid, maps: &[AxisMap], grid: &ChunkGrid) -> ChunkGrid {
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
pub(super) fn follows_any_grid(node: &Arc<Node>) -> bool {
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
pub(super) fn thin_grid(node: &Node, grid: &ChunkGrid) -> Option<ChunkGrid> {
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

/// For a result computed into a whole in-memory array: the grid of whole rows (blocks merged
/// along the last axis, at most the declared rows per block, within the holistic block size)
/// when the result is elementwise over sources, which produce any block, or a gaussian of
/// such an input (its halo then comes from the rows above and below). Square blocks of a
/// large array make each task read and write rows a block wide, a page apart in memory (512²
/// blocks of a 4096-wide array: 2 KB of every 16 KB), about half the speed of whole rows;
/// whole rows stream. `None` to keep the node's grid.
pub(super) fn whole_row_grid(root: &Arc<Node>, options: &PlanOptions) -> Option<ChunkGrid> {
    let free = match root.op {
        Op::Gaussian { .. } => follows_any_grid(&root.inputs[0]),
        ref op => op.is_elementwise() && follows_any_grid(root),
    };
    if !options.dense_results || !free {
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
    let limit = options.max_holistic_block.max(1);
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

/// The most bytes one holistic task's input block holds.
pub(super) fn holistic_limit(options: &PlanOptions) -> u64 {
    options.max_holistic_block.min(options.memory_budget / 8).max(1)
}

/// The block shape for a holistic task over `input` whose reduced axes span the given
/// extents: the other (kept) axes as the input's blocks, cut outermost first so the block
/// holds at most the holistic block size.
///
/// **Errors**: [`PlanError::ReductionTooLarge`] when one column of the reduced axes does not
/// fit half the budget.
pub(super) fn kept_block(
    options: &PlanOptions,
    op: &str,
    input: &ChunkGrid,
    extents: &[(usize, usize)],
) -> Result<Vec<usize>, PlanError> {
    let column: u64 = extents.iter().map(|&(_, n)| n as u64).product::<u64>() * 4;
    let limit = holistic_limit(options);
    if column * 2 > options.memory_budget {
        return Err(PlanError::ReductionTooLarge {
            op: op.into(),
            axes: extents.iter().map(|&(a, _)| a).collect(),
            shape: input.shape().to_vec(),
            needed: column * 2,
            budget: options.memory_budget,
        });
    }
    let mut block = input.max_block_shape();
    for &(a, n) in extents {
        block[a] = n;
    }
    // Cut the outermost kept axes first, into even blocks: a block then covers whole runs of
    // the result's rows, so the result's pages fill as its blocks finish (column strips would
    // touch every page of the result with the first strip), and its sources read windows as
    // wide as their tiles rather than slivers of each.
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

/// A grid of the input with `whole` axes in one block and the other axes cut so one block
/// holds at most the holistic block size.
pub(super) fn whole_axes_grid(
    options: &PlanOptions,
    op: &str,
    input: &ChunkGrid,
    whole: &[usize],
) -> Result<ChunkGrid, PlanError> {
    let extents: Vec<(usize, usize)> = whole.iter().map(|&a| (a, input.shape()[a])).collect();
    let block = kept_block(options, op, input, &extents)?;
    let mut grid = input.clone();
    for &a in whole {
        grid = grid.with_axis(a, vec![input.shape()[a]]);
    }
    Ok(cut_kept(&grid, &block, whole))
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

/// The grid a window reduction (`coarsen`) reads its input in: the input's block edges moved
/// down to window edges (so every block holds whole windows, at least one), then blocks over
/// `max_bytes` (`PlanOptions::window_block_bytes`) cut, outermost axis first, into whole
/// windows.
pub(super) fn window_grid(input: &ChunkGrid, windows: &[usize], max_bytes: usize) -> ChunkGrid {
    let sizes = (0..input.ndim())
        .map(|a| {
            let k = windows[a];
            if input.shape()[a] == 0 || k == 1 {
                return input.sizes(a).to_vec();
            }
            let mut edges: Vec<usize> = input.offsets(a).into_iter().map(|e| e / k * k).collect();
            edges.dedup();
            edges.windows(2).map(|w| w[1] - w[0]).collect()
        })
        .collect();
    let mut grid = ChunkGrid::from_sizes(sizes);
    for (a, &k) in windows.iter().enumerate() {
        let block = grid.max_block_shape();
        let bytes = elems(&block) as usize * 4;
        if bytes <= max_bytes || block[a] <= k {
            continue;
        }
        let per_unit = bytes / block[a].max(1);
        let fits = (max_bytes / per_unit.max(1) / k * k).max(k);
        if fits < block[a] {
            grid = grid.refine(&grid.with_axis(a, crate::expr::split_regular(grid.shape()[a], fits)));
        }
    }
    grid
}

/// The grid of a window reduction's result read in `blocks` (from [`window_grid`]): each
/// block's extent divided by its axis's window.
pub(super) fn coarse_grid(blocks: &ChunkGrid, windows: &[usize]) -> ChunkGrid {
    ChunkGrid::from_sizes(
        (0..blocks.ndim())
            .map(|a| blocks.sizes(a).iter().map(|n| n / windows[a]).collect())
            .collect(),
    )
}

/// How a group reduction is cut: the grid its input is read in (the group axis in runs of
/// whole groups, the kept axes as a holistic reduction's), and the runs of groups, one per
/// block of the result along the axis.
///
/// **Errors**: as [`kept_block`].
pub(super) fn group_layout(
    options: &PlanOptions,
    op: &str,
    input: &ChunkGrid,
    axis: usize,
    labels: &[usize],
    groups: usize,
) -> Result<(ChunkGrid, Vec<GroupSpan>), PlanError> {
    Ok(match group_runs(labels, groups) {
        // Groups in order along the axis (a resample): a task reduces a run of whole groups,
        // so it holds only their steps. The kept axes are cut as for the whole axis, so its
        // sources are the blocks a holistic reduction over the same input reads (the
        // tutorial's luminance median shares the monthly median's reads). Runs of groups
        // without members read nothing: they become fills of the op's empty value (NaN for a
        // median), which `exec` runs last, so a resample's empty months take memory only once
        // the rest of the run has given its memory back.
        Some(spans) => {
            let steps = input.shape()[axis];
            let block = kept_block(options, op, input, &[(axis, steps)])?;
            let per_step = elems(&block) / steps.max(1) as u64 * 4;
            // Runs of a few months, not the whole axis: an eighth of the block the whole axis
            // could have, so a run holds little while tasks stay large enough to pay.
            let runs = merge_spans(spans, per_step, holistic_limit(options) / 8);
            let read = runs.iter().filter(|r| !r.steps.is_empty()).map(|r| r.steps.len());
            let grid = input.with_axis(axis, read.collect());
            (cut_kept(&grid, &block, &[axis]), runs)
        }
        // Groups interleaved (a groupby of the month): every task sees the whole axis.
        None => {
            let grid = whole_axes_grid(options, op, input, &[axis])?;
            let whole = GroupSpan {
                groups: 0..groups,
                steps: 0..grid.shape()[axis],
            };
            (grid, vec![whole])
        }
    })
}

/// Consecutive groups and the steps of the reduced axis they cover.
#[derive(Debug, Clone, PartialEq)]
pub(in crate::plan) struct GroupSpan {
    pub(in crate::plan) groups: Range<usize>,
    pub(in crate::plan) steps: Range<usize>,
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

    use super::GroupSpan;

    fn span(groups: Range<usize>, steps: Range<usize>) -> GroupSpan {
        GroupSpan { groups, steps }
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
}
