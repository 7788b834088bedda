//! Reading a tile's halo from its neighbour blocks, shared by both backends: the CPU's tile
//! gaussian assembles each extended row just before filtering it, and the GPU writes the
//! extended tile straight into staging memory when the neighbours are on the host.

use std::ops::Range;

use super::layout::{contiguous, rows};
use crate::expr::Block;
use crate::plan::TileSpec;

/// One neighbour block as borrowed rows of its last axis.
pub(crate) struct Neighbour<'a> {
    rows: Vec<&'a [f32]>,
    rows_per_batch: usize,
}

impl Neighbour<'_> {
    /// Row `y` of plane `batch`.
    pub(crate) fn row(&self, batch: usize, y: usize) -> &[f32] {
        self.rows[batch * self.rows_per_batch + y]
    }
}

/// The inputs as f32 with contiguous rows (rare reversed or transposed views are copied).
pub(crate) fn with_contiguous_rows(inputs: &[&Block]) -> Vec<ndarray::ArcArray<f32, ndarray::IxDyn>> {
    inputs
        .iter()
        .map(|b| {
            let a = b.to_f32();
            if rows(a.view()).is_some() {
                a
            } else {
                ndarray::ArrayD::from_shape_vec(a.shape(), contiguous(a.view()).into_owned())
                    .expect("shape")
                    .into_shared()
            }
        })
        .collect()
}

/// The neighbour blocks as rows.
pub(crate) fn neighbours(owned: &[ndarray::ArcArray<f32, ndarray::IxDyn>]) -> Vec<Neighbour<'_>> {
    owned
        .iter()
        .map(|a| Neighbour {
            rows: rows(a.view()).expect("contiguous rows"),
            rows_per_batch: a.shape()[a.ndim() - 2],
        })
        .collect()
}

/// Where an extended row is written: host memory, or mapped staging memory (write-only).
pub(crate) trait RowOut {
    /// `self[at..at + src.len()] = src`
    fn copy(&mut self, at: usize, src: &[f32]);
    /// every element of `range` becomes `value`
    fn fill(&mut self, range: Range<usize>, value: f32);
    /// element `at` becomes `value`
    fn set(&mut self, at: usize, value: f32);
}

impl RowOut for [f32] {
    fn copy(&mut self, at: usize, src: &[f32]) {
        self[at..at + src.len()].copy_from_slice(src);
    }

    fn fill(&mut self, range: Range<usize>, value: f32) {
        self[range].fill(value);
    }

    fn set(&mut self, at: usize, value: f32) {
        self[at] = value;
    }
}

/// Writes extended row `e` (block rows plus halo, the boundary mode applied through the plan's
/// index maps) of batch `batch` into `row`, which holds the constant (or anything, for modes
/// without one) beforehand.
pub(crate) fn assemble_row<W: RowOut + ?Sized>(
    spec: &TileSpec,
    neighbours: &[Neighbour<'_>],
    batch: usize,
    e: usize,
    row: &mut W,
) {
    let Some((iy, ly)) = spec.rows[e] else { return };
    for run in &spec.cols {
        let src = neighbours[iy * spec.nx + run.block].row(batch, ly);
        match run.step {
            1 => row.copy(run.dst, &src[run.src..run.src + run.len]),
            0 => row.fill(run.dst..run.dst + run.len, src[run.src]),
            step => {
                (0..run.len).for_each(|k| row.set(run.dst + k, src[(run.src as isize + step * k as isize) as usize]))
            }
        }
    }
}
