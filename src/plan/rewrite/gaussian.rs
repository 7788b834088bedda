//! A selection of a gaussian filters a window widened by the filter's halo, then cuts the
//! halo off again.

use std::sync::Arc;

use super::{select_node, whole, Pushdown, Selection, SelectionRule};
use crate::expr::{AxisMap, BoundaryMode, Node, Op};

/// `gaussian(x)[s]` → `gaussian(x[s widened by r])[r..r+len]` on every filtered axis, where the
/// window is contiguous there; the widening stops at the array's edge, where the boundary
/// mode applies as before. A wrapped boundary reads the far edge, so it does not move.
pub(super) struct ThroughGaussian;

impl SelectionRule for ThroughGaussian {
    fn name(&self) -> &'static str {
        "through gaussian, widened by its halo"
    }

    fn push(&self, push: &mut Pushdown, x: &Arc<Node>, sel: &Selection) -> Option<Arc<Node>> {
        let Op::Gaussian { sigma, mode, truncate } = &x.op else {
            return None;
        };
        if matches!(mode, BoundaryMode::Wrap) {
            return None;
        }
        let input = &x.inputs[0];
        let radius = |a: usize| {
            if sigma[a] > 0.0 {
                (truncate * sigma[a] + 0.5) as usize
            } else {
                0
            }
        };
        // a fixed index on a filtered axis does not move
        if sel.fixed.iter().any(|&(a, _)| radius(a) > 0) {
            return None;
        }
        let mut inner_maps = Vec::new();
        let mut outer_maps = Vec::new();
        for (k, m) in sel.maps.iter().enumerate() {
            let a = m.input_axis()?;
            let r = radius(a);
            if r == 0 {
                inner_maps.push(m.clone());
                outer_maps.push(whole(k, m.len()));
                continue;
            }
            // a filtered axis: a contiguous range, widened by the halo
            let AxisMap::Strided {
                start, step: 1, len, ..
            } = m
            else {
                return None;
            };
            let lo = start.saturating_sub(r);
            let hi = (start + len + r).min(input.shape()[a]);
            inner_maps.push(AxisMap::Strided {
                axis: a,
                start: lo,
                step: 1,
                len: hi - lo,
            });
            outer_maps.push(AxisMap::Strided {
                axis: k,
                start: start - lo,
                step: 1,
                len: *len,
            });
        }
        let kept_sigma: Vec<f64> = (0..sigma.len())
            .filter(|a| !sel.fixed.iter().any(|&(f, _)| f == *a))
            .map(|a| sigma[a])
            .collect();
        let inner = push.below(input, inner_maps, sel.fixed.clone());
        let op = Op::Gaussian {
            sigma: kept_sigma,
            mode: *mode,
            truncate: *truncate,
        };
        let filtered = Node::new(op, vec![inner.clone()], inner.grid.clone(), x.dtype);
        // cut back to the selection: a selection no rewrite visits again
        Some(select_node(filtered, outer_maps, vec![]))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::tests::{leaf, lines, optimized, slice};
    use crate::expr::{BoundaryMode, DType, Node, Op};

    fn gaussian(x: Arc<Node>, mode: BoundaryMode) -> Arc<Node> {
        let op = Op::Gaussian {
            sigma: vec![0.0, 1.0],
            mode,
            truncate: 4.0,
        };
        let grid = x.grid.clone();
        Node::new(op, vec![x], grid, DType::F32)
    }

    #[test]
    fn a_window_of_a_gaussian_filters_the_window_and_its_halo() {
        // radius int(4 * 1 + 0.5) = 4 on axis 1; axis 0 is not filtered
        let x = leaf(&[4, 40], &[4, 10]);
        let g = gaussian(x, BoundaryMode::Reflect);
        let (before, after, log) = optimized(&slice(&g, &[(1, 2), (2, 10)]));
        assert_eq!(
            lines(&before),
            [
                "  getitem [a0[1:3], a1[2:12]]  [2, 10] in [2, 8] float32",
                "    gaussian sigma [0.0, 1.0] Reflect  [4, 40] in [4, 10] float32",
                "      array  [4, 40] in [4, 10] float32",
            ]
        );
        // widened to 0..16 on the filtered axis (cut at the array's edge on the left), then
        // cut back to 2..12 of it
        assert_eq!(
            lines(&after),
            [
                "  getitem [a0[0:2], a1[2:12]]  [2, 10] in [2, 8] float32",
                "    gaussian sigma [0.0, 1.0] Reflect  [2, 16] in [2, 10] float32",
                "      getitem [a0[1:3], a1[0:16]]  [2, 16] in [2, 10] float32",
                "        array  [4, 40] in [4, 10] float32",
            ]
        );
        assert_eq!(
            log.fired,
            [("selection pushdown", "through gaussian, widened by its halo", 1)]
        );
    }

    #[test]
    fn a_wrapped_boundary_stays_above() {
        let x = leaf(&[4, 40], &[4, 10]);
        let g = gaussian(x, BoundaryMode::Wrap);
        let (before, after, log) = optimized(&slice(&g, &[(1, 2), (2, 10)]));
        assert_eq!(before, after);
        assert!(log.fired.is_empty());
    }
}
