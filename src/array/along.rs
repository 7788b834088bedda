//! Work that needs one axis whole (gap fills, moving windows along time, running scans): the
//! axis is made whole in each block (as dask-backed xarray asks the user to do), then one
//! [`Op::Along`] node says what runs along it; a backend runs it block by block.

use std::sync::Arc;

use super::select::resolve_axis;
use super::Array;
use crate::expr::{split_regular, AlongOp, ChunkGrid, DType, Node, Op};

impl Array {
    /// `op` along `axis`, the axis whole in each block, as floats, once `op` checks against
    /// the axis length (its error is the array's). Lazy.
    pub(super) fn along_axis(&self, axis: isize, op: AlongOp) -> Array {
        let input = self.astype(DType::F32);
        let result = input.node().and_then(|node| {
            let axis = resolve_axis(op.name(), axis, node.grid.ndim())?;
            op.check(node.shape()[axis])?;
            let grid = along_grid(&node.grid, axis);
            let whole = Node::new(Op::Rechunk, vec![node.clone()], grid.clone(), DType::F32);
            let op = Op::Along { axis, op: Arc::new(op) };
            Ok(Node::new(op, vec![whole], grid, DType::F32))
        });
        input.same_dims(Array::from_result(result))
    }
}

/// A block's most bytes in work along an axis: a few MiB, so a large block (an in-memory array
/// of one block) becomes enough tasks for every core, each cache-friendly.
const ALONG_BLOCK_BYTES: usize = 2 << 20;

/// The blocks work along `axis` runs in: `axis` whole; the other axes' blocks kept, cut
/// further (outer axes first, never across a block's edge) while a block holds over
/// [`ALONG_BLOCK_BYTES`].
fn along_grid(grid: &ChunkGrid, axis: usize) -> ChunkGrid {
    let mut out = grid.with_axis(axis, vec![grid.shape()[axis]]);
    for a in (0..grid.ndim()).filter(|&a| a != axis) {
        let block = out.max_block_shape();
        let rest: usize = block
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != a)
            .map(|(_, &s)| s)
            .product();
        let fits = (ALONG_BLOCK_BYTES / 4 / rest.max(1)).max(1);
        if block[a] > fits {
            out = out.refine(&out.with_axis(a, split_regular(grid.shape()[a], fits)));
        }
    }
    out
}
