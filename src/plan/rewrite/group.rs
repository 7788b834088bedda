//! A selection of a group reduction that keeps the grouped axis whole selects its input.

use std::sync::Arc;

use super::{whole, Pushdown, Selection, SelectionRule};
use crate::expr::{AxisMap, Node, Op};

/// `x.resample(time).median()[all months, s]` → `x[all times, s].resample(time).median()`.
pub(super) struct ThroughGroupReduce;

impl SelectionRule for ThroughGroupReduce {
    fn name(&self) -> &'static str {
        "through group reduction"
    }

    fn push(&self, push: &mut Pushdown, x: &Arc<Node>, sel: &Selection) -> Option<Arc<Node>> {
        let Op::GroupReduce {
            op,
            axis,
            labels,
            groups,
        } = &x.op
        else {
            return None;
        };
        let input = &x.inputs[0];
        // the grouped axis must stay whole
        let on_axis = sel.maps.iter().find(|m| m.input_axis() == Some(*axis))?;
        if on_axis != &whole(*axis, *groups) {
            return None;
        }
        let inner_maps: Vec<AxisMap> = sel
            .maps
            .iter()
            .map(|m| match m.input_axis() {
                Some(a) if a == *axis => whole(a, input.shape()[a]),
                _ => m.clone(),
            })
            .collect();
        let new_axis = inner_maps.iter().position(|m| m.input_axis() == Some(*axis))?;
        let inner = push.below(input, inner_maps, sel.fixed.clone());
        let grid = inner
            .grid
            .with_axis(new_axis, crate::expr::split_regular(*groups, *groups));
        let op = Op::GroupReduce {
            op: *op,
            axis: new_axis,
            labels: labels.clone(),
            groups: *groups,
        };
        Some(Node::new(op, vec![inner], grid, x.dtype))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{leaf, lines, optimized, slice};
    use crate::expr::{ChunkGrid, DType, Node, Op, ReduceOp};

    fn monthly(x: Arc<Node>) -> Arc<Node> {
        let op = Op::GroupReduce {
            op: ReduceOp::NanMedian,
            axis: 0,
            labels: Arc::new(vec![0, 0, 1, 1, 1, 2]),
            groups: 3,
        };
        let grid = ChunkGrid::from_sizes(vec![vec![3], vec![4, 4], vec![4, 4]]);
        Node::new(op, vec![x], grid, DType::F32)
    }

    #[test]
    fn an_area_of_monthly_medians_is_the_monthly_median_of_the_area() {
        let x = leaf(&[6, 8, 8], &[6, 4, 4]);
        let (before, after, log) = optimized(&slice(&monthly(x), &[(0, 3), (1, 6), (3, 2)]));
        assert_eq!(
            lines(&before),
            [
                "  getitem [a0[0:3], a1[1:7], a2[3:5]]  [3, 6, 2] in [3, 3, 1] float32",
                "    group-nanmedian of axis 0 into 3  [3, 8, 8] in [3, 4, 4] float32",
                "      array  [6, 8, 8] in [6, 4, 4] float32",
            ]
        );
        assert_eq!(
            lines(&after),
            [
                "  group-nanmedian of axis 0 into 3  [3, 6, 2] in [3, 3, 1] float32",
                "    getitem [a0[0:6], a1[1:7], a2[3:5]]  [6, 6, 2] in [6, 3, 1] float32",
                "      array  [6, 8, 8] in [6, 4, 4] float32",
            ]
        );
        assert_eq!(log.fired, [("selection pushdown", "through group reduction", 1)]);
    }

    #[test]
    fn a_cut_of_the_grouped_axis_stays_above() {
        let x = leaf(&[6, 8, 8], &[6, 4, 4]);
        let (before, after, log) = optimized(&slice(&monthly(x), &[(1, 2), (0, 8), (0, 8)]));
        assert_eq!(before, after);
        assert!(log.fired.is_empty());
    }
}
