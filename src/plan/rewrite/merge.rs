//! A selection of a selection reads its source through one composed selection.

use std::sync::Arc;

use super::{Pushdown, Selection, SelectionRule};
use crate::expr::{Node, Op};

/// `x[a][b]` → `x[a∘b]`, then moved on down as one.
pub(super) struct MergeSelections;

impl SelectionRule for MergeSelections {
    fn name(&self) -> &'static str {
        "merge selections"
    }

    fn push(&self, push: &mut Pushdown, x: &Arc<Node>, sel: &Selection) -> Option<Arc<Node>> {
        let Op::Select { maps, fixed } = &x.op else {
            return None;
        };
        let (maps, fixed) = crate::expr::compose_selects(&sel.maps, &sel.fixed, maps, fixed);
        Some(push.below(&x.inputs[0], maps, fixed))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{leaf, lines, optimized, slice};

    #[test]
    fn two_slices_become_one() {
        let x = leaf(&[10, 8], &[5, 4]);
        let cut = slice(&slice(&x, &[(2, 6), (0, 8)]), &[(1, 3), (2, 4)]);
        let (before, after, log) = optimized(&cut);
        assert_eq!(
            lines(&before),
            [
                "  getitem [a0[1:4], a1[2:6]]  [3, 4] in [2, 2] float32",
                "    getitem [a0[2:8], a1[0:8]]  [6, 8] in [3, 4] float32",
                "      array  [10, 8] in [5, 4] float32",
            ]
        );
        assert_eq!(
            lines(&after),
            [
                "  getitem [a0[3:6], a1[2:6]]  [3, 4] in [2, 2] float32",
                "    array  [10, 8] in [5, 4] float32"
            ]
        );
        assert_eq!(log.fired, [("selection pushdown", "merge selections", 1)]);
    }
}
