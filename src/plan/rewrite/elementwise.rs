//! A selection of an elementwise result is the elementwise result of its inputs' selections.

use std::sync::Arc;

use super::{Pushdown, Selection, SelectionRule};
use crate::expr::Node;

/// `f(a, b)[s]` → `f(a[s], b[s])`.
pub(super) struct ThroughElementwise;

impl SelectionRule for ThroughElementwise {
    fn name(&self) -> &'static str {
        "through elementwise"
    }

    fn push(&self, push: &mut Pushdown, x: &Arc<Node>, sel: &Selection) -> Option<Arc<Node>> {
        if !x.op.is_elementwise() {
            return None;
        }
        let inputs: Vec<Arc<Node>> = x
            .inputs
            .iter()
            .map(|i| push.below(i, sel.maps.clone(), sel.fixed.clone()))
            .collect();
        let grid = inputs[0].grid.clone();
        Some(Node::new(x.op.clone(), inputs, grid, x.dtype))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{leaf, lines, optimized, slice};
    use crate::expr::{BinaryOp, Node, Op};

    #[test]
    fn a_slice_of_a_difference_is_the_difference_of_slices() {
        let a = leaf(&[10, 8], &[5, 4]);
        let b = leaf(&[10, 8], &[5, 4]);
        let d = Node::new(Op::Binary(BinaryOp::Sub), vec![a, b], a_grid(), crate::expr::DType::F32);
        let (before, after, log) = optimized(&slice(&d, &[(4, 2), (0, 8)]));
        assert_eq!(
            lines(&before),
            [
                "  getitem [a0[4:6], a1[0:8]]  [2, 8] in [1, 4] float32",
                "    -  [10, 8] in [5, 4] float32",
                "      array  [10, 8] in [5, 4] float32",
                "      array  [10, 8] in [5, 4] float32",
            ]
        );
        assert_eq!(
            lines(&after),
            [
                "  -  [2, 8] in [1, 4] float32",
                "    getitem [a0[4:6], a1[0:8]]  [2, 8] in [1, 4] float32",
                "      array  [10, 8] in [5, 4] float32",
                "    getitem [a0[4:6], a1[0:8]]  [2, 8] in [1, 4] float32",
                "      array  [10, 8] in [5, 4] float32",
            ]
        );
        assert_eq!(log.fired, [("selection pushdown", "through elementwise", 1)]);
    }

    fn a_grid() -> crate::expr::ChunkGrid {
        crate::expr::ChunkGrid::new(&[10, 8], &crate::expr::Chunks::Block(vec![5, 4])).unwrap()
    }
}
