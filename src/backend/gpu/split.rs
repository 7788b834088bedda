//! Blocks larger than one storage binding, cut into pieces that fit: the kernels over an
//! `(outer, len, inner)` layout (medians, reductions) run piece by piece and their results are
//! put back together, so a large block is split, never refused.

use std::ops::Range;

use ndarray::{s, ArrayD, IxDyn};

use super::{buffers, GpuError};
use crate::backend::Value;
use crate::expr::Block;

/// One piece: a run of outer indices and a run of inner columns.
pub(super) type Piece = (Range<usize>, Range<usize>);

/// Pieces of an `(outer, len, inner)` block of at most `max` elements each: runs of whole
/// outer slabs when one `(len, inner)` slab fits, else runs of inner columns of one outer index;
/// `None` when not even one column of `len` values fits.
pub(super) fn pieces((outer, len, inner): (usize, usize, usize), max: usize) -> Option<Vec<Piece>> {
    let slab = len * inner;
    if slab <= max {
        let per = (max / slab.max(1)).max(1);
        return Some(
            (0..outer)
                .step_by(per)
                .map(|o| (o..(o + per).min(outer), 0..inner))
                .collect(),
        );
    }
    let per = max / len.max(1);
    if per == 0 {
        return None;
    }
    Some(
        (0..outer)
            .flat_map(|o| {
                (0..inner)
                    .step_by(per)
                    .map(move |i| (o..o + 1, i..(i + per).min(inner)))
            })
            .collect(),
    )
}

/// The elements of `piece` of a host block seen as `(outer, len, inner)`, as a contiguous 3-D
/// block (a copy).
fn piece_of(block: &Block, dims: (usize, usize, usize), piece: &Piece) -> Result<Block, GpuError> {
    fn cut<T: Clone>(
        a: &ndarray::ArcArray<T, IxDyn>,
        dims: (usize, usize, usize),
        (o, i): &Piece,
    ) -> Result<ndarray::ArcArray<T, IxDyn>, GpuError> {
        let v = a
            .view()
            .into_shape_with_order(dims)
            .map_err(|e| GpuError::Internal(format!("a block cut into pieces: {e}")))?;
        Ok(v.slice(s![o.clone(), .., i.clone()])
            .to_owned()
            .into_dyn()
            .into_shared())
    }
    Ok(match block {
        Block::F32(a) => Block::F32(cut(a, dims, piece)?),
        Block::U8(a) => Block::U8(cut(a, dims, piece)?),
    })
}

/// Whether a block of `elements` values of `bytes_each` bytes needs cutting to fit a binding
/// of `limit` bytes.
pub(super) fn too_big(elements: usize, bytes_each: usize, limit: u64) -> bool {
    (elements * bytes_each) as u64 > limit
}

/// Runs `f` on every piece of `value` (each a 3-D `(o, len, i)` host block) and puts its
/// results, `(o, groups, i)` of `lanes` f32 each, into one `(outer, groups, inner, lanes)`
/// vector. `f` gets the piece and its dims.
///
/// **Errors**: [`GpuError::Internal`] when one column does not fit; a device input's read-back
/// error; and `f`'s errors.
pub(super) fn map_pieces(
    value: &Value,
    dims: (usize, usize, usize),
    groups: usize,
    lanes: usize,
    limit: u64,
    mut f: impl FnMut(&Value, (usize, usize, usize)) -> Result<Vec<f32>, GpuError>,
) -> Result<Vec<f32>, GpuError> {
    let (outer, len, inner) = dims;
    let max = (limit / 4) as usize;
    let cut =
        pieces(dims, max).ok_or_else(|| GpuError::Internal(format!("one column of {len} values exceeds a binding")))?;
    let block = buffers::host_block(value)?;
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[outer, groups, inner, lanes]));
    for piece in &cut {
        let part = Value::Block(piece_of(block, dims, piece)?);
        let got = f(&part, (piece.0.len(), len, piece.1.len()))?;
        let got = ndarray::Array4::from_shape_vec((piece.0.len(), groups, piece.1.len(), lanes), got)
            .map_err(|e| GpuError::Internal(e.to_string()))?;
        out.slice_mut(s![piece.0.clone(), .., piece.1.clone(), ..]).assign(&got);
    }
    Ok(out.into_raw_vec_and_offset().0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_block_within_the_limit() {
        // whole slabs
        assert_eq!(
            pieces((5, 4, 3), 24),
            Some(vec![(0..2, 0..3), (2..4, 0..3), (4..5, 0..3)])
        );
        // columns of one outer index
        assert_eq!(
            pieces((2, 4, 5), 8),
            Some(vec![
                (0..1, 0..2),
                (0..1, 2..4),
                (0..1, 4..5),
                (1..2, 0..2),
                (1..2, 2..4),
                (1..2, 4..5)
            ])
        );
        // one column too long
        assert_eq!(pieces((1, 9, 1), 8), None);
    }
}
