//! A selection of a constant is a smaller constant.

use std::sync::Arc;

use super::{select_grid, Pushdown, Selection, SelectionRule};
use crate::expr::{AxisMap, Node, Op};

/// `full(v)[s]` → `full(v)` of the selection's shape, when that is smaller (a flip of `ones`
/// stays a gather of it, as dask draws it).
pub(super) struct CutFill;

impl SelectionRule for CutFill {
    fn name(&self) -> &'static str {
        "cut constant"
    }

    fn push(&self, _: &mut Pushdown, x: &Arc<Node>, sel: &Selection) -> Option<Arc<Node>> {
        let smaller = sel.maps.iter().map(AxisMap::len).product::<usize>() < x.grid.shape().iter().product();
        if !matches!(x.op, Op::Fill(_)) || !smaller {
            return None;
        }
        Some(Node::new(
            x.op.clone(),
            vec![],
            select_grid(&x.grid, &sel.maps),
            x.dtype,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{lines, optimized, slice};
    use crate::expr::{ChunkGrid, Chunks, DType, Node, Op};

    #[test]
    fn a_window_of_ones_is_a_smaller_ones() {
        let grid = ChunkGrid::new(&[100, 100], &Chunks::Block(vec![50, 50])).unwrap();
        let ones = Node::new(Op::Fill(1.0), vec![], grid, DType::F32);
        let (before, after, log) = optimized(&slice(&ones, &[(40, 20), (0, 10)]));
        assert_eq!(
            lines(&before),
            [
                "  getitem [a0[40:60], a1[0:10]]  [20, 10] in [10, 10] float32",
                "    full(1)  [100, 100] in [50, 50] float32"
            ]
        );
        assert_eq!(lines(&after), ["  full(1)  [20, 10] in [10, 10] float32"]);
        assert_eq!(log.fired, [("selection pushdown", "cut constant", 1)]);
    }
}
