//! Selection pushdown, a rewrite of the expression DAG before lowering: a selection (a slice,
//! `loc`, `isel`, `sel`) moves below elementwise operations, reductions over other axes,
//! group reductions along a whole grouped axis, and gaussians (widened by their halo, cut back
//! above). Sources then read only what the result needs, the notebook's order (resample, then
//! cut the area) costs what cutting first costs, and a window of a huge array plans in time
//! proportional to the window. The values are the same: every kernel is independent of how
//! its input is cut.
//!
//! Only selections that keep their input's axis order and add no axis move (the slices and
//! label cuts users write); one rewritten per (node, selection) pair, so outputs that cut the
//! same node the same way still share it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::expr::{AxisMap, BoundaryMode, ChunkGrid, Node, NodeId, Op};

/// The roots with their selections pushed down.
pub(crate) fn push_selections(roots: &[Arc<Node>]) -> Vec<Arc<Node>> {
    let mut p = Pusher::default();
    roots.iter().map(|r| p.rewrite(r)).collect()
}

#[derive(Default)]
struct Pusher {
    rebuilt: HashMap<NodeId, Arc<Node>>,
    selected: HashMap<(NodeId, String), Arc<Node>>,
}

/// The grid of a selection of an input of grid `input`.
fn select_grid(input: &ChunkGrid, maps: &[AxisMap]) -> ChunkGrid {
    let sizes = maps
        .iter()
        .map(|m| match m {
            AxisMap::Strided { axis, start, step, len } => {
                input.cut_along(*axis, (0..*len).map(|i| (*start as isize + step * i as isize) as usize))
            }
            AxisMap::List { axis, indices } => input.cut_along(*axis, indices.iter().copied()),
            AxisMap::New { len } => vec![*len],
        })
        .map(|s| if s.is_empty() { vec![] } else { s })
        .collect();
    ChunkGrid::from_sizes(sizes)
}

/// Whether a selection keeps its input's axis order and adds no axis.
fn order_preserving(maps: &[AxisMap]) -> bool {
    let axes: Vec<Option<usize>> = maps.iter().map(AxisMap::input_axis).collect();
    axes.iter().all(Option::is_some) && axes.windows(2).all(|w| w[0] < w[1])
}

/// The whole of input axis `axis` of length `n`.
fn whole(axis: usize, n: usize) -> AxisMap {
    AxisMap::Strided {
        axis,
        start: 0,
        step: 1,
        len: n,
    }
}

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

fn select_node(input: Arc<Node>, maps: Vec<AxisMap>, fixed: Vec<(usize, usize)>) -> Arc<Node> {
    let grid = select_grid(&input.grid, &maps);
    let dtype = input.dtype;
    Node::new(Op::Select { maps, fixed }, vec![input], grid, dtype)
}

impl Pusher {
    fn rewrite(&mut self, node: &Arc<Node>) -> Arc<Node> {
        if let Some(done) = self.rebuilt.get(&node.id) {
            return done.clone();
        }
        let out = match &node.op {
            Op::Select { maps, fixed } => self.select(&node.inputs[0], maps, fixed, node),
            _ => {
                let inputs: Vec<Arc<Node>> = node.inputs.iter().map(|i| self.rewrite(i)).collect();
                if inputs.iter().zip(&node.inputs).all(|(a, b)| Arc::ptr_eq(a, b)) {
                    node.clone()
                } else {
                    Node::new(node.op.clone(), inputs, node.grid.clone(), node.dtype)
                }
            }
        };
        self.rebuilt.insert(node.id, out.clone());
        out
    }

    /// `x` selected by `maps` and `fixed`, the selection moved as far down as it goes;
    /// `original` is the selection node as built (kept where nothing moves).
    fn select(&mut self, x: &Arc<Node>, maps: &[AxisMap], fixed: &[(usize, usize)], original: &Arc<Node>) -> Arc<Node> {
        let key = (x.id, format!("{maps:?}{fixed:?}"));
        if let Some(done) = self.selected.get(&key) {
            return done.clone();
        }
        let out = self.push(x, maps, fixed).unwrap_or_else(|| {
            let input = self.rewrite(x);
            if Arc::ptr_eq(&input, x) {
                original.clone()
            } else {
                Node::new(
                    Op::Select {
                        maps: maps.to_vec(),
                        fixed: fixed.to_vec(),
                    },
                    vec![input],
                    original.grid.clone(),
                    original.dtype,
                )
            }
        });
        self.selected.insert(key, out.clone());
        out
    }

    /// The selection of `x` below `x`'s operation, or `None` when it does not move.
    fn push(&mut self, x: &Arc<Node>, maps: &[AxisMap], fixed: &[(usize, usize)]) -> Option<Arc<Node>> {
        if !order_preserving(maps) {
            return None;
        }
        let pushed_select = |p: &mut Pusher, input: &Arc<Node>, maps: Vec<AxisMap>, fixed: Vec<(usize, usize)>| {
            let grid = select_grid(&input.grid, &maps);
            let probe = Node::new(
                Op::Select {
                    maps: maps.clone(),
                    fixed: fixed.clone(),
                },
                vec![input.clone()],
                grid,
                input.dtype,
            );
            p.select(input, &maps, &fixed, &probe)
        };
        match &x.op {
            Op::Select {
                maps: inner,
                fixed: inner_fixed,
            } => {
                let (maps, fixed) = crate::expr::compose_selects(maps, fixed, inner, inner_fixed);
                Some(pushed_select(self, &x.inputs[0], maps, fixed))
            }
            op if op.is_elementwise() => {
                let inputs: Vec<Arc<Node>> = x
                    .inputs
                    .iter()
                    .map(|i| pushed_select(self, i, maps.to_vec(), fixed.to_vec()))
                    .collect();
                let grid = inputs[0].grid.clone();
                Some(Node::new(x.op.clone(), inputs, grid, x.dtype))
            }
            // A fill is cut only when the selection is smaller (a flip of `ones` stays a
            // gather of it, as dask draws it).
            Op::Fill(_) if maps.iter().map(AxisMap::len).product::<usize>() < x.grid.shape().iter().product() => {
                let grid = select_grid(&x.grid, maps);
                Some(Node::new(x.op.clone(), vec![], grid, x.dtype))
            }
            Op::Reduce { op, axes } => {
                let input = &x.inputs[0];
                let n = input.grid.ndim();
                let kept: Vec<usize> = (0..n).filter(|a| !axes.contains(a)).collect();
                let fixed_x: HashMap<usize, usize> = fixed.iter().copied().collect();
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
                        let m = maps.iter().find(|m| m.input_axis() == Some(j))?;
                        inner_maps.push(renumbered(m, a));
                    }
                }
                let inner = pushed_select(self, input, inner_maps, inner_fixed);
                let sizes = (0..inner.grid.ndim())
                    .filter(|a| !new_axes.contains(a))
                    .map(|a| inner.grid.sizes(a).to_vec())
                    .collect();
                let grid = ChunkGrid::from_sizes(sizes);
                Some(Node::new(
                    Op::Reduce {
                        op: *op,
                        axes: new_axes,
                    },
                    vec![inner],
                    grid,
                    x.dtype,
                ))
            }
            Op::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => {
                let input = &x.inputs[0];
                // the grouped axis must stay whole
                let on_axis = maps.iter().find(|m| m.input_axis() == Some(*axis))?;
                if on_axis != &whole(*axis, *groups) {
                    return None;
                }
                let inner_maps: Vec<AxisMap> = maps
                    .iter()
                    .map(|m| match m.input_axis() {
                        Some(a) if a == *axis => whole(a, input.shape()[a]),
                        _ => m.clone(),
                    })
                    .collect();
                let new_axis = inner_maps.iter().position(|m| m.input_axis() == Some(*axis))?;
                let inner = pushed_select(self, input, inner_maps, fixed.to_vec());
                let grid = inner
                    .grid
                    .with_axis(new_axis, crate::expr::split_regular(*groups, *groups));
                Some(Node::new(
                    Op::GroupReduce {
                        op: *op,
                        axis: new_axis,
                        labels: labels.clone(),
                        groups: *groups,
                    },
                    vec![inner],
                    grid,
                    x.dtype,
                ))
            }
            Op::Gaussian { sigma, mode, truncate } if !matches!(mode, BoundaryMode::Wrap) => {
                let input = &x.inputs[0];
                let radius = |s: f64| (truncate * s + 0.5) as usize;
                let mut inner_maps = Vec::new();
                let mut outer_maps = Vec::new();
                for (k, m) in maps.iter().enumerate() {
                    let a = m.input_axis()?;
                    let r = if sigma[a] > 0.0 { radius(sigma[a]) } else { 0 };
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
                    let n = input.shape()[a];
                    let lo = start.saturating_sub(r);
                    let hi = (start + len + r).min(n);
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
                // a fixed index on a filtered axis does not move
                if fixed.iter().any(|&(a, _)| sigma[a] > 0.0 && radius(sigma[a]) > 0) {
                    return None;
                }
                let kept_sigma: Vec<f64> = (0..sigma.len())
                    .filter(|a| !fixed.iter().any(|&(f, _)| f == *a))
                    .map(|a| sigma[a])
                    .collect();
                let inner = pushed_select(self, input, inner_maps, fixed.to_vec());
                let filtered = Node::new(
                    Op::Gaussian {
                        sigma: kept_sigma,
                        mode: *mode,
                        truncate: *truncate,
                    },
                    vec![inner.clone()],
                    inner.grid.clone(),
                    x.dtype,
                );
                // cut back to the selection: a selection no rewrite visits again
                Some(select_node(filtered, outer_maps, vec![]))
            }
            _ => None,
        }
    }
}
