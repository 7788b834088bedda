//! Assembling a block from pieces of input blocks (see `plan::GatherPiece`).

use ndarray::{ArcArray, ArrayD, ArrayViewD, Axis, IxDyn, SliceInfoElem};

use crate::backend::BackendError;
use crate::expr::{Block, DType};
use crate::plan::{GatherPiece, SrcAxis};

/// Copies every piece into a new block of `shape` pre-filled with `fill`.
///
/// **Errors**: [`BackendError::BadInput`] when input dtypes differ from `dtype`.
pub fn run_gather(
    shape: &[usize],
    dtype: DType,
    fill: f32,
    out_axes: &[Option<usize>],
    pieces: &[GatherPiece],
    inputs: &[&Block],
) -> Result<Block, BackendError> {
    match dtype {
        DType::F32 => {
            let views = inputs
                .iter()
                .map(|b| match b {
                    Block::F32(a) => Ok(a.clone()),
                    Block::U8(_) => Err(BackendError::BadInput {
                        task: "gather",
                        what: "a mask among f32 inputs".into(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Block::F32(assemble(shape, fill, out_axes, pieces, &views)))
        }
        DType::U8 => {
            let views = inputs
                .iter()
                .map(|b| match b {
                    Block::U8(a) => Ok(a.clone()),
                    Block::F32(_) => Err(BackendError::BadInput {
                        task: "gather",
                        what: "f32 among mask inputs".into(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Block::U8(assemble(shape, fill as u8, out_axes, pieces, &views)))
        }
    }
}

fn assemble<T: Clone>(
    shape: &[usize],
    fill: T,
    out_axes: &[Option<usize>],
    pieces: &[GatherPiece],
    inputs: &[ArcArray<T, IxDyn>],
) -> ArcArray<T, IxDyn> {
    // One piece reading a unit-step window with its axes in input order, indexed axes dropped,
    // is a view of the input: share its buffer and copy nothing (rechunks that split blocks,
    // contiguous slices, `index` of a band or a time step).
    if let [piece] = pieces {
        if is_view(piece, out_axes, shape) {
            return inputs[piece.dep].clone().slice_move(slice_info(piece).as_slice());
        }
    }
    let mut out = ArrayD::from_elem(IxDyn(shape), fill);
    for piece in pieces {
        let view = piece_view(piece, out_axes, &inputs[piece.dep].view());
        let dst: Vec<SliceInfoElem> = piece.dst.iter().map(|r| SliceInfoElem::from(r.clone())).collect();
        out.slice_mut(dst.as_slice()).assign(&view);
    }
    out.into_shared()
}

/// Whether `piece` fills the whole output as a view of its input: every output axis reads an
/// input axis (none new), in input order, with a unit step (or one index), and the input axes
/// it does not keep are single indices.
fn is_view(piece: &GatherPiece, out_axes: &[Option<usize>], shape: &[usize]) -> bool {
    let kept: Vec<usize> = piece
        .src
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, SrcAxis::Run { .. }))
        .map(|(a, _)| a)
        .collect();
    let in_order = out_axes.len() == kept.len() && out_axes.iter().zip(&kept).all(|(o, &k)| *o == Some(k));
    let unit = piece
        .src
        .iter()
        .filter(|s| matches!(s, SrcAxis::Run { .. }))
        .zip(&piece.dst)
        .all(|(s, d)| matches!(s, SrcAxis::Run { step, len, .. } if *step == 1 || (*len == 1 && d.len() == 1)));
    in_order && unit && piece.dst.len() == shape.len() && piece.dst.iter().zip(shape).all(|(d, &n)| d.len() == n)
}

fn slice_info(piece: &GatherPiece) -> Vec<SliceInfoElem> {
    piece
        .src
        .iter()
        .map(|s| match s {
            SrcAxis::Fixed(i) => SliceInfoElem::Index(*i as isize),
            SrcAxis::Run { .. } => s.slice().expect("a run slices").into(),
        })
        .collect()
}

/// The input region a piece reads, with its axes in output order (new axes of length 1).
fn piece_view<'a, T>(piece: &GatherPiece, out_axes: &[Option<usize>], input: &ArrayViewD<'a, T>) -> ArrayViewD<'a, T> {
    let view = input.clone().slice_move(slice_info(piece).as_slice());
    // The view's axes are the kept input axes in input order; reorder them to output order.
    let mut kept: Vec<usize> = out_axes.iter().flatten().copied().collect();
    kept.sort_unstable();
    let perm: Vec<usize> = out_axes
        .iter()
        .flatten()
        .map(|a| kept.binary_search(a).expect("kept axis"))
        .collect();
    let mut view = view.permuted_axes(perm);
    for (k, a) in out_axes.iter().enumerate() {
        if a.is_none() {
            view.insert_axis_inplace(Axis(k));
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `index(0, k)` of a block whose first axis is one step long: a view of the block, the
    /// buffer shared; a reversed axis still copies.
    #[test]
    fn an_index_that_drops_an_axis_is_a_view() {
        let block = ArrayD::from_shape_fn(IxDyn(&[1, 3, 4]), |ix| (ix[1] * 4 + ix[2]) as f32).into_shared();
        let input = Block::F32(block.clone());
        let piece = GatherPiece {
            dep: 0,
            src: vec![
                SrcAxis::Fixed(0),
                SrcAxis::Run {
                    start: 0,
                    step: 1,
                    len: 3,
                },
                SrcAxis::Run {
                    start: 0,
                    step: 1,
                    len: 4,
                },
            ],
            dst: vec![0..3, 0..4],
        };
        let out_axes = [Some(1), Some(2)];
        let Ok(Block::F32(got)) = run_gather(
            &[3, 4],
            DType::F32,
            f32::NAN,
            &out_axes,
            std::slice::from_ref(&piece),
            &[&input],
        ) else {
            panic!("an f32 block")
        };
        assert_eq!(got.shape(), &[3, 4]);
        assert_eq!(got.as_ptr(), block.as_ptr(), "the block's buffer, shared");
        assert_eq!(got[[2, 3]], 11.0);
        let reversed = GatherPiece {
            src: vec![
                SrcAxis::Fixed(0),
                SrcAxis::Run {
                    start: 2,
                    step: -1,
                    len: 3,
                },
                SrcAxis::Run {
                    start: 0,
                    step: 1,
                    len: 4,
                },
            ],
            ..piece
        };
        let Ok(Block::F32(flipped)) = run_gather(&[3, 4], DType::F32, f32::NAN, &out_axes, &[reversed], &[&input])
        else {
            panic!("an f32 block")
        };
        assert_ne!(flipped.as_ptr(), block.as_ptr());
        assert_eq!(flipped[[0, 3]], 11.0);
    }
}
