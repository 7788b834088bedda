//! The demand pass: which blocks of each read table some reader touches. A table read only by
//! selections needs only the blocks under the selections' indices on each axis (an area of
//! interest cut from a stack of hundreds of scenes touches a few of its blocks); the emit pass
//! writes no task for the others. Every other reader, and a result, wants every block.

use super::{Layout, Production};
use crate::expr::{AxisMap, ChunkGrid};

/// Per-axis block masks of a read table: a block is wanted when it is wanted on every axis.
pub(super) type BlockMask = Vec<Vec<bool>>;

/// For every table of `layout`, the blocks its readers want: `None` for all of them, else a
/// mask per axis (only read tables get masks). O(tables + the selections' index counts).
pub(super) fn demand(layout: &Layout) -> Vec<Option<BlockMask>> {
    // None: no reader seen yet; Some(None): every block; Some(Some(mask)): those blocks
    let mut wanted: Vec<Option<Option<BlockMask>>> = vec![None; layout.tables.len()];
    for t in &layout.outputs {
        wanted[t.0] = Some(None);
    }
    for spec in &layout.tables {
        match &spec.how {
            Production::Select { input, maps, fixed } if matches!(layout.tables[input.0].how, Production::Read) => {
                let mask = selected_blocks(&layout.tables[input.0].grid, maps, fixed);
                match &mut wanted[input.0] {
                    slot @ None => *slot = Some(Some(mask)),
                    Some(Some(have)) => {
                        for (h, m) in have.iter_mut().zip(&mask) {
                            h.iter_mut().zip(m).for_each(|(h, &m)| *h |= m);
                        }
                    }
                    Some(None) => {}
                }
            }
            how => {
                for t in how.inputs() {
                    wanted[t.0] = Some(None);
                }
            }
        }
    }
    wanted.into_iter().map(Option::flatten).collect()
}

/// The blocks of `grid` (the selected table's) holding an index the selection reads, per axis;
/// an axis the selection does not name keeps every block.
fn selected_blocks(grid: &ChunkGrid, maps: &[AxisMap], fixed: &[(usize, usize)]) -> BlockMask {
    let mut masks: Vec<Option<Vec<bool>>> = vec![None; grid.ndim()];
    let mut mark = |axis: usize, positions: &mut dyn Iterator<Item = usize>| {
        let offsets = grid.offsets(axis);
        let mask = masks[axis].get_or_insert_with(|| vec![false; offsets.len() - 1]);
        for p in positions {
            mask[offsets.partition_point(|&o| o <= p) - 1] = true;
        }
    };
    for m in maps {
        if let Some(axis) = m.input_axis() {
            mark(axis, &mut (0..m.len()).filter_map(|i| m.source(i).map(|(_, j)| j)));
        }
    }
    for &(axis, i) in fixed {
        mark(axis, &mut std::iter::once(i));
    }
    masks
        .into_iter()
        .enumerate()
        .map(|(a, m)| m.unwrap_or_else(|| vec![true; grid.sizes(a).len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::expr::{AxisMap, ChunkGrid, Chunks};

    #[test]
    fn a_selection_wants_the_blocks_under_its_indices() {
        // (4, 10, 10) in (1, 4, 4) blocks: steps 1 and 3 picked, rows 3..6, column 9 fixed
        let grid = ChunkGrid::new(&[4, 10, 10], &Chunks::Block(vec![1, 4, 4])).unwrap();
        let maps = [
            AxisMap::List {
                axis: 0,
                indices: Arc::new(vec![3, 1]),
            },
            AxisMap::Strided {
                axis: 1,
                start: 3,
                step: 1,
                len: 3,
            },
            AxisMap::New { len: 2 },
        ];
        let mask = super::selected_blocks(&grid, &maps, &[(2, 9)]);
        assert_eq!(
            mask,
            [
                vec![false, true, false, true],
                vec![true, true, false],
                vec![false, false, true]
            ]
        );
        // a reversed run with a step of 4 reads rows 9, 5, 1: every row block
        let maps = [AxisMap::Strided {
            axis: 1,
            start: 9,
            step: -4,
            len: 3,
        }];
        let mask = super::selected_blocks(&grid, &maps, &[]);
        assert_eq!(mask[1], [true, true, true]);
        assert_eq!(mask[0], [true; 4], "an axis not named keeps every block");
    }
}
