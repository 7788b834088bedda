//! Selection and layout: slicing (numpy semantics, negative steps too), integer and list
//! indexing, concatenate/stack, expand_dims, rechunk.

use std::sync::Arc;

use super::Array;
use crate::expr::{compose_selects, AxisMap, ChunkGrid, Chunks, ExprError, Node, Op};

/// One axis of a slice, with numpy's `start:stop:step` semantics (negative indices count from
/// the end; a negative step walks backwards; `None` is the default end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// first index (default: the start, or the end for a negative step)
    pub start: Option<isize>,
    /// one past the last index (default: the end, or before the start for a negative step)
    pub stop: Option<isize>,
    /// step, non-zero
    pub step: isize,
}

impl Slice {
    /// `start:stop:step`
    pub fn new(start: Option<isize>, stop: Option<isize>, step: isize) -> Self {
        Slice { start, stop, step }
    }
    /// `:` — the whole axis.
    pub fn all() -> Self {
        Slice::new(None, None, 1)
    }
    /// `::-1` — the whole axis reversed.
    pub fn reverse() -> Self {
        Slice::new(None, None, -1)
    }
    /// `start:stop`
    pub fn range(start: isize, stop: isize) -> Self {
        Slice::new(Some(start), Some(stop), 1)
    }

    /// (first index, step, length) over an axis of length `n`, as Python's `slice.indices`.
    pub fn resolve(&self, n: usize) -> Result<(usize, isize, usize), String> {
        if self.step == 0 {
            return Err("slice step cannot be zero".into());
        }
        let n = n as isize;
        let step = self.step;
        let norm = |v: isize, lo: isize, hi: isize| {
            let v = if v < 0 { v + n } else { v };
            v.clamp(lo, hi)
        };
        let (start, stop) = if step > 0 {
            (
                self.start.map_or(0, |s| norm(s, 0, n)),
                self.stop.map_or(n, |s| norm(s, 0, n)),
            )
        } else {
            (
                self.start.map_or(n - 1, |s| norm(s, -1, n - 1)),
                self.stop.map_or(-1, |s| norm(s, -1, n - 1)),
            )
        };
        // in i128: steps near isize::MAX must not overflow
        let (lo, hi, st) = (start as i128, stop as i128, step as i128);
        let len = if st > 0 && hi > lo {
            (hi - lo - 1) / st + 1
        } else if st < 0 && lo > hi {
            (lo - hi - 1) / -st + 1
        } else {
            0
        };
        Ok((start.max(0) as usize, step, len as usize))
    }
}

impl From<std::ops::RangeFull> for Slice {
    fn from(_: std::ops::RangeFull) -> Self {
        Slice::all()
    }
}

impl From<std::ops::Range<isize>> for Slice {
    fn from(r: std::ops::Range<isize>) -> Self {
        Slice::range(r.start, r.end)
    }
}

/// Output chunks of a strided selection: a cut wherever the source block changes, so every
/// output block reads one input block along this axis (as dask slices).
fn strided_chunks(input: &ChunkGrid, axis: usize, start: usize, step: isize, len: usize) -> Vec<usize> {
    input.cut_along(axis, (0..len).map(|i| (start as isize + step * i as isize) as usize))
}

fn axis_error(op: &str, axis: isize, ndim: usize) -> ExprError {
    ExprError::AxisOutOfRange {
        op: op.into(),
        axis,
        ndim,
    }
}

/// Resolves a possibly negative axis against `ndim`.
pub(crate) fn resolve_axis(op: &str, axis: isize, ndim: usize) -> Result<usize, ExprError> {
    let a = if axis < 0 { axis + ndim as isize } else { axis };
    if a < 0 || a >= ndim as isize {
        return Err(axis_error(op, axis, ndim));
    }
    Ok(a as usize)
}

impl Array {
    fn select_node(
        &self,
        maps: Vec<AxisMap>,
        fixed: Vec<(usize, usize)>,
        sizes: Vec<Vec<usize>>,
    ) -> Result<Arc<Node>, ExprError> {
        let node = self.node()?;
        // A selection of a selection is one selection of the first one's input.
        if let Op::Select {
            maps: inner,
            fixed: inner_fixed,
        } = &node.op
        {
            let (maps, fixed) = compose_selects(&maps, &fixed, inner, inner_fixed);
            return Ok(Node::new(
                Op::Select { maps, fixed },
                vec![node.inputs[0].clone()],
                ChunkGrid::from_sizes(sizes),
                node.dtype,
            ));
        }
        Ok(Node::new(
            Op::Select { maps, fixed },
            vec![node.clone()],
            ChunkGrid::from_sizes(sizes),
            node.dtype,
        ))
    }

    /// numpy basic slicing, one [`Slice`] per leading axis (missing axes are taken whole).
    /// `a.slice(&[Slice::reverse(), Slice::reverse()])` is numpy's `a[::-1, ::-1]`.
    pub fn slice(&self, slices: &[Slice]) -> Array {
        let result = self.node().and_then(|node| {
            if slices.len() > node.grid.ndim() {
                return Err(ExprError::InvalidArgument {
                    op: "slice".into(),
                    reason: format!("{} slices for {} axes", slices.len(), node.grid.ndim()),
                });
            }
            let mut maps = Vec::new();
            let mut sizes = Vec::new();
            for axis in 0..node.grid.ndim() {
                let s = slices.get(axis).copied().unwrap_or_else(Slice::all);
                let (start, step, len) =
                    s.resolve(node.shape()[axis])
                        .map_err(|reason| ExprError::InvalidArgument {
                            op: "slice".into(),
                            reason,
                        })?;
                sizes.push(strided_chunks(&node.grid, axis, start, step, len));
                maps.push(AxisMap::Strided { axis, start, step, len });
            }
            self.select_node(maps, vec![], sizes)
        });
        self.same_dims(Array::from_result(result))
    }

    /// Integer indexing: the element `index` of `axis` (negative counts from the end); the
    /// axis is dropped (numpy's `a[..., index, ...]`).
    pub fn index(&self, axis: isize, index: isize) -> Array {
        let result = self.node().and_then(|node| {
            let axis = resolve_axis("index", axis, node.grid.ndim())?;
            let n = node.shape()[axis];
            let i = if index < 0 { index + n as isize } else { index };
            if i < 0 || i >= n as isize {
                return Err(ExprError::IndexOutOfBounds {
                    op: "index".into(),
                    axis,
                    index,
                    len: n,
                });
            }
            let kept: Vec<usize> = (0..node.grid.ndim()).filter(|&a| a != axis).collect();
            let (maps, sizes) = whole_axes(node, &kept);
            self.select_node(maps, vec![(axis, i as usize)], sizes)
        });
        let out = Array::from_result(result);
        match (self.dims(), &out.node) {
            (Some(d), Ok(_)) => {
                let axis = resolve_axis("index", axis, d.len()).unwrap_or(0);
                let names: Vec<&String> = d
                    .iter()
                    .enumerate()
                    .filter(|(a, _)| *a != axis)
                    .map(|(_, n)| n)
                    .collect();
                out.with_dims(&names)
            }
            _ => out,
        }
    }

    /// Fancy indexing along one axis (numpy's `take`): output index `i` reads `indices[i]`
    /// (negative counts from the end; repeats allowed).
    pub fn take(&self, axis: isize, indices: &[isize]) -> Array {
        let result = self.node().and_then(|node| {
            let axis = resolve_axis("take", axis, node.grid.ndim())?;
            let n = node.shape()[axis];
            let idx = indices
                .iter()
                .map(|&i| {
                    let j = if i < 0 { i + n as isize } else { i };
                    if j < 0 || j >= n as isize {
                        Err(ExprError::IndexOutOfBounds {
                            op: "take".into(),
                            axis,
                            index: i,
                            len: n,
                        })
                    } else {
                        Ok(j as usize)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let block = node.grid.max_block_shape()[axis].max(1);
            let mut maps = Vec::new();
            let mut sizes = Vec::new();
            for a in 0..node.grid.ndim() {
                if a == axis {
                    sizes.push(crate::expr::split_regular(idx.len(), block));
                    maps.push(AxisMap::List {
                        axis,
                        indices: Arc::new(idx.clone()),
                    });
                } else {
                    sizes.push(node.grid.sizes(a).to_vec());
                    maps.push(AxisMap::Strided {
                        axis: a,
                        start: 0,
                        step: 1,
                        len: node.shape()[a],
                    });
                }
            }
            self.select_node(maps, vec![], sizes)
        });
        self.same_dims(Array::from_result(result))
    }

    /// The axes in the order `axes` gives (numpy's `transpose(axes)`: output axis `k` is input
    /// axis `axes[k]`); the blocks follow their axes. Lazy: one selection, which gathers each
    /// output block from its input block (on the device too); a selection of it composes.
    pub fn transpose(&self, axes: &[usize]) -> Array {
        let result = self.node().and_then(|node| {
            let nd = node.grid.ndim();
            let mut seen = vec![false; nd];
            let valid = axes.len() == nd && axes.iter().all(|&a| a < nd && !std::mem::replace(&mut seen[a], true));
            if !valid {
                return Err(ExprError::InvalidArgument {
                    op: "transpose".into(),
                    reason: format!("{axes:?} is not a permutation of the {nd} axes"),
                });
            }
            let (maps, sizes) = whole_axes(node, axes);
            self.select_node(maps, vec![], sizes)
        });
        let out = Array::from_result(result);
        match self.dims() {
            Some(d) if out.check().is_ok() => {
                let names: Vec<&String> = axes.iter().map(|&a| &d[a]).collect();
                out.with_dims(&names)
            }
            _ => out,
        }
    }

    /// A new axis of length 1 at `axis` (numpy's `expand_dims`).
    pub fn expand_dims(&self, axis: isize) -> Array {
        let result = self.node().and_then(|node| {
            let nd = node.grid.ndim() + 1;
            let axis = resolve_axis("expand_dims", axis, nd)?;
            let mut maps = Vec::new();
            let mut sizes = Vec::new();
            for k in 0..nd {
                if k == axis {
                    maps.push(AxisMap::New { len: 1 });
                    sizes.push(vec![1]);
                } else {
                    let a = if k < axis { k } else { k - 1 };
                    maps.push(AxisMap::Strided {
                        axis: a,
                        start: 0,
                        step: 1,
                        len: node.shape()[a],
                    });
                    sizes.push(node.grid.sizes(a).to_vec());
                }
            }
            self.select_node(maps, vec![], sizes)
        });
        Array::from_result(result)
    }

    /// Joins arrays along an existing axis (numpy's `concatenate`); blocks keep their sizes.
    pub fn concatenate(arrays: &[Array], axis: isize) -> Array {
        let result = (|| {
            let nodes: Vec<&Arc<Node>> = arrays.iter().map(|a| a.node()).collect::<Result<_, _>>()?;
            let first = nodes.first().ok_or_else(|| ExprError::InvalidArgument {
                op: "concatenate".into(),
                reason: "no arrays".into(),
            })?;
            let nd = first.grid.ndim();
            let axis = resolve_axis("concatenate", axis, nd)?;
            for n in &nodes {
                let same = n.grid.ndim() == nd && (0..nd).all(|a| a == axis || n.shape()[a] == first.shape()[a]);
                if !same || n.dtype != first.dtype {
                    return Err(ExprError::ShapeMismatch {
                        op: "concatenate".into(),
                        left: first.shape().to_vec(),
                        right: n.shape().to_vec(),
                    });
                }
            }
            let mut sizes: Vec<Vec<usize>> = first.grid.all_sizes().to_vec();
            sizes[axis] = nodes.iter().flat_map(|n| n.grid.sizes(axis).iter().copied()).collect();
            for n in &nodes[1..] {
                for (a, s) in sizes.iter_mut().enumerate() {
                    if a != axis {
                        *s = ChunkGrid::from_sizes(vec![s.clone()])
                            .refine(&ChunkGrid::from_sizes(vec![n.grid.sizes(a).to_vec()]))
                            .sizes(0)
                            .to_vec();
                    }
                }
            }
            let inputs = nodes.iter().map(|n| (*n).clone()).collect();
            Ok(Node::new(
                Op::Concat { axis },
                inputs,
                ChunkGrid::from_sizes(sizes),
                first.dtype,
            ))
        })();
        match arrays.first() {
            Some(a) => a.same_dims(Array::from_result(result)),
            None => Array::from_result(result),
        }
    }

    /// Joins arrays along a new axis (numpy's `stack`).
    pub fn stack(arrays: &[Array], axis: isize) -> Array {
        let expanded: Vec<Array> = arrays.iter().map(|a| a.expand_dims(axis)).collect();
        Array::concatenate(&expanded, axis)
    }

    /// The same values cut into other blocks. O(1) now; the planner regathers blocks only
    /// where a consumer cannot take the new chunking directly.
    pub fn rechunk(&self, chunks: impl Into<Chunks>) -> Array {
        let chunks = chunks.into();
        let result = self.node().and_then(|node| {
            let grid = ChunkGrid::new(node.shape(), &chunks)?;
            Ok(Node::new(Op::Rechunk, vec![node.clone()], grid, node.dtype))
        });
        self.same_dims(Array::from_result(result))
    }
}

/// Maps reading the whole of each of `axes` of `node`, in that order, and their block sizes.
fn whole_axes(node: &Node, axes: &[usize]) -> (Vec<AxisMap>, Vec<Vec<usize>>) {
    let maps = axes
        .iter()
        .map(|&a| AxisMap::Strided {
            axis: a,
            start: 0,
            step: 1,
            len: node.shape()[a],
        })
        .collect();
    let sizes = axes.iter().map(|&a| node.grid.sizes(a).to_vec()).collect();
    (maps, sizes)
}

#[cfg(test)]
mod tests {
    use super::Slice;

    #[test]
    fn resolves_like_python_slices() {
        // Python: slice(None, None, -1).indices(5) -> (4, -1, -1): 5 elements from 4.
        assert_eq!(Slice::reverse().resolve(5).unwrap(), (4, -1, 5));
        assert_eq!(Slice::new(Some(-2), None, 1).resolve(5).unwrap(), (3, 1, 2));
        assert_eq!(Slice::new(Some(1), Some(-1), 2).resolve(6).unwrap(), (1, 2, 2));
        assert_eq!(Slice::new(Some(3), Some(0), -2).resolve(6).unwrap(), (3, -2, 2));
        assert_eq!(Slice::new(Some(10), Some(20), 1).resolve(6).unwrap().2, 0);
        assert!(Slice::new(None, None, 0).resolve(3).is_err());
    }
}
