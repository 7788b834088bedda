//! A selection of a reduction over other axes selects the reduction's input.

use std::collections::HashMap;
use std::sync::Arc;

use super::{whole, Pushdown, Selection, SelectionRule};
use crate::expr::{AxisMap, ChunkGrid, Node, Op};

/// `x.median(t)[s]` → `x[s, whole t].median(t)`: the reduced axes are read whole, the kept
/// ones as the selection reads them.
pub(super) struct ThroughReduce;

/// A map reading another axis number (the same indices).
fn renumbered(m: &AxisMap, axis: usize) -> AxisMap {
    match m {
        AxisMap::Strided { start, step, len, .. } => AxisMap::Strided {
            axis,
            start: *start,
            step: *step,
            len: *len,
        },
        AxisMap::List { indices, .. } => AxisMap::List {
            axis,
            indices: indices.clone(),
        },
        AxisMap::New { len } => AxisMap::New { len: *len },
    }
}

impl SelectionRule for ThroughReduce {
    fn name(&self) -> &'static str {
        "through reduction"
    }

    fn push(&self, push: &mut Pushdown, x: &Arc<Node>, sel: &Selection) -> Option<Arc<Node>> {
        let Op::Reduce { op, axes } = &x.op else {
            return None;
        };
        let input = &x.inputs[0];
        let n = input.grid.ndim();
        let kept: Vec<usize> = (0..n).filter(|a| !axes.contains(a)).collect();
        let fixed_x: HashMap<usize, usize> = sel.fixed.iter().copied().collect();
        let mut inner_maps = Vec::new();
        let mut inner_fixed = Vec::new();
        let mut new_axes = Vec::new();
        for a in 0..n {
            if axes.contains(&a) {
                new_axes.push(inner_maps.len());
                inner_maps.push(whole(a, input.shape()[a]));
                continue;
            }
            let j = kept.iter().position(|&k| k == a).expect("a kept axis");
            if let Some(&i) = fixed_x.get(&j) {
                inner_fixed.push((a, i));
            } else {
                let m = sel.maps.iter().find(|m| m.input_axis() == Some(j))?;
                inner_maps.push(renumbered(m, a));
            }
        }
        let inner = push.below(input, inner_maps, inner_fixed);
        let sizes = (0..inner.grid.ndim())
            .filter(|a| !new_axes.contains(a))
            .map(|a| inner.grid.sizes(a).to_vec())
            .collect();
        let op = Op::Reduce {
            op: *op,
            axes: new_axes,
        };
        Some(Node::new(op, vec![inner], ChunkGrid::from_sizes(sizes), x.dtype))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{leaf, lines, optimized, slice};
    use crate::expr::{ChunkGrid, DType, Node, Op, ReduceOp};

    #[test]
    fn a_window_of_a_time_median_takes_the_median_of_the_window() {
        let x = leaf(&[6, 8, 8], &[6, 4, 4]);
        let grid = ChunkGrid::from_sizes(vec![vec![4, 4], vec![4, 4]]);
        let op = Op::Reduce {
            op: ReduceOp::NanMedian,
            axes: vec![0],
        };
        let median = Node::new(op, vec![x], grid, DType::F32);
        let (before, after, log) = optimized(&slice(&median, &[(2, 3), (5, 2)]));
        assert_eq!(
            lines(&before),
            [
                "  getitem [a0[2:5], a1[5:7]]  [3, 2] in [2, 2] float32",
                "    nanmedian over [0]  [8, 8] in [4, 4] float32",
                "      array  [6, 8, 8] in [6, 4, 4] float32",
            ]
        );
        assert_eq!(
            lines(&after),
            [
                "  nanmedian over [0]  [3, 2] in [2, 2] float32",
                "    getitem [a0[0:6], a1[2:5], a2[5:7]]  [6, 3, 2] in [6, 2, 2] float32",
                "      array  [6, 8, 8] in [6, 4, 4] float32",
            ]
        );
        assert_eq!(log.fired, [("selection pushdown", "through reduction", 1)]);
    }
}
