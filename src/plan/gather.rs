//! Gathers: an output block assembled from pieces of input blocks. One mechanism serves slicing
//! (any step, reversed too), `take`, broadcasting, `concatenate`, `rechunk` and the halos of
//! filters (boundary modes become index maps).

use std::collections::HashMap;
use std::ops::Range;

use ndarray::Slice;

use crate::expr::ChunkGrid;

/// How an input axis is read by a [`GatherPiece`], in the input block's local indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SrcAxis {
    /// one index; the axis is dropped
    Fixed(usize),
    /// `len` indices from `start` by `step` (step 0 reads one index and broadcasts it)
    Run {
        /// first local index
        start: usize,
        /// local step (may be negative or 0)
        step: isize,
        /// number of indices read (1 when step is 0)
        len: usize,
    },
}

impl SrcAxis {
    /// The ndarray slice selecting this run.
    pub fn slice(&self) -> Option<Slice> {
        match *self {
            SrcAxis::Fixed(_) => None,
            SrcAxis::Run { start, step, len } => Some(if step == 0 || len == 1 {
                Slice::new(start as isize, Some(start as isize + 1), 1)
            } else if step > 0 {
                Slice::new(
                    start as isize,
                    Some(start as isize + (len as isize - 1) * step + 1),
                    step,
                )
            } else {
                let lo = start as isize + (len as isize - 1) * step;
                Slice::new(lo, Some(start as isize + 1), step)
            }),
        }
    }
}

/// One rectangular copy from an input block into the output block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatherPiece {
    /// which of the task's inputs
    pub dep: usize,
    /// what to read, per input axis
    pub src: Vec<SrcAxis>,
    /// where it goes, per output axis
    pub dst: Vec<Range<usize>>,
}

/// How one output axis reads its input, as global indices of the input array.
#[derive(Debug, Clone)]
pub(crate) enum AxisIndex {
    /// An axis the input lacks: the piece broadcasts along it.
    New(usize),
    /// Output position `p` reads `idx[p]` of input axis `axis`; `None` reads nothing (the
    /// position keeps the fill value, or is written by another input).
    Map { axis: usize, idx: Vec<Option<usize>> },
}

/// Consecutive output positions reading one block with a constant local step.
pub(crate) struct Run {
    pub dst_start: usize,
    pub dst_len: usize,
    pub block: usize,
    pub src_start: usize,
    pub step: isize,
}

fn locate(offsets: &[usize], i: usize) -> (usize, usize) {
    let b = offsets.partition_point(|&o| o <= i) - 1;
    (b, i - offsets[b])
}

fn runs(idx: &[Option<usize>], offsets: &[usize]) -> Vec<Run> {
    runs_of(idx.iter().map(|g| g.map(|g| locate(offsets, g))))
}

/// Groups output positions (`Some((block, local index))`, or `None` for positions read from
/// nowhere) into runs: consecutive positions reading one block with a constant local step.
pub(crate) fn runs_of(located: impl IntoIterator<Item = Option<(usize, usize)>>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for (p, m) in located.into_iter().enumerate() {
        let Some((block, local)) = m else { continue };
        if let Some(run) = out.last_mut() {
            let contiguous = run.dst_start + run.dst_len == p && run.block == block;
            let last = run.src_start as isize + run.step * (run.dst_len as isize - 1);
            if contiguous && run.dst_len == 1 {
                run.step = local as isize - run.src_start as isize;
                run.dst_len = 2;
                continue;
            }
            if contiguous && local as isize == last + run.step {
                run.dst_len += 1;
                continue;
            }
        }
        out.push(Run {
            dst_start: p,
            dst_len: 1,
            block,
            src_start: local,
            step: 1,
        });
    }
    out
}

/// Appends to `pieces` the copies that fill one output block from the blocks of one input.
///
/// `fixed` pins input axes to one global index (they are dropped); `dep_of` turns an input
/// block's flat index into the position of that block in the task's inputs.
pub(crate) fn gather_pieces(
    out_axes: &[AxisIndex],
    fixed: &[(usize, usize)],
    in_grid: &ChunkGrid,
    mut dep_of: impl FnMut(usize) -> usize,
    pieces: &mut Vec<GatherPiece>,
) {
    let offsets: Vec<Vec<usize>> = (0..in_grid.ndim()).map(|a| in_grid.offsets(a)).collect();
    let per_axis: Vec<Vec<Run>> = out_axes
        .iter()
        .map(|ax| match ax {
            AxisIndex::New(len) => vec![Run {
                dst_start: 0,
                dst_len: *len,
                block: 0,
                src_start: 0,
                step: 0,
            }],
            AxisIndex::Map { axis, idx } => runs(idx, &offsets[*axis]),
        })
        .collect();
    if per_axis.iter().any(Vec::is_empty) {
        return;
    }
    let counts: Vec<usize> = per_axis.iter().map(Vec::len).collect();
    let total: usize = counts.iter().product();
    let blocks_per_axis = in_grid.blocks_per_axis();
    for flat in 0..total {
        let choice = crate::expr::unravel(flat, &counts);
        let mut in_block = vec![0usize; in_grid.ndim()];
        let mut src = vec![SrcAxis::Fixed(0); in_grid.ndim()];
        for &(axis, g) in fixed {
            let (b, local) = locate(&offsets[axis], g);
            in_block[axis] = b;
            src[axis] = SrcAxis::Fixed(local);
        }
        let mut dst = Vec::with_capacity(out_axes.len());
        for (k, ax) in out_axes.iter().enumerate() {
            let run = &per_axis[k][choice[k]];
            dst.push(run.dst_start..run.dst_start + run.dst_len);
            if let AxisIndex::Map { axis, .. } = ax {
                in_block[*axis] = run.block;
                let len = if run.step == 0 { 1 } else { run.dst_len };
                src[*axis] = SrcAxis::Run {
                    start: run.src_start,
                    step: run.step,
                    len,
                };
            }
        }
        let flat_block = in_block
            .iter()
            .zip(&blocks_per_axis)
            .fold(0, |acc, (&i, &n)| acc * n + i);
        pieces.push(GatherPiece {
            dep: dep_of(flat_block),
            src,
            dst,
        });
    }
}

/// Maps positions into the deps of one task, adding each input block once.
pub(crate) struct DepList<'a> {
    pub deps: Vec<usize>,
    seen: HashMap<usize, usize>,
    tasks: &'a [usize],
}

impl<'a> DepList<'a> {
    pub fn new(tasks: &'a [usize]) -> Self {
        DepList {
            deps: Vec::new(),
            seen: HashMap::new(),
            tasks,
        }
    }

    /// Switches to another input's block table, keeping the deps gathered so far.
    pub fn with_tasks(self, tasks: &'a [usize]) -> Self {
        DepList { tasks, ..self }
    }

    pub fn dep_of(&mut self, flat_block: usize) -> usize {
        let task = self.tasks[flat_block];
        *self.seen.entry(task).or_insert_with(|| {
            self.deps.push(task);
            self.deps.len() - 1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Chunks;

    #[test]
    fn reversed_axis_reads_mirrored_blocks() {
        let grid = ChunkGrid::new(&[10], &Chunks::Block(vec![4])).unwrap();
        // output positions 0..4 read 9, 8, 7, 6: block 2 (8..10) then block 1 (4..8).
        let idx = (0..4).map(|p| Some(9 - p)).collect();
        let mut pieces = Vec::new();
        gather_pieces(&[AxisIndex::Map { axis: 0, idx }], &[], &grid, |b| b, &mut pieces);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].dep, 2);
        assert_eq!(
            pieces[0].src,
            vec![SrcAxis::Run {
                start: 1,
                step: -1,
                len: 2
            }]
        );
        assert_eq!(pieces[0].dst, vec![0..2]);
        assert_eq!(pieces[1].dep, 1);
        assert_eq!(
            pieces[1].src,
            vec![SrcAxis::Run {
                start: 3,
                step: -1,
                len: 2
            }]
        );
    }

    #[test]
    fn negative_step_slices_select_the_run() {
        let data: Vec<i32> = (0..10).collect();
        let a = ndarray::Array1::from(data);
        let run = SrcAxis::Run {
            start: 7,
            step: -3,
            len: 3,
        };
        let v = a.slice_axis(ndarray::Axis(0), run.slice().unwrap());
        assert_eq!(v.to_vec(), vec![7, 4, 1]);
        let run = SrcAxis::Run {
            start: 2,
            step: 2,
            len: 3,
        };
        assert_eq!(
            a.slice_axis(ndarray::Axis(0), run.slice().unwrap()).to_vec(),
            vec![2, 4, 6]
        );
    }
}
