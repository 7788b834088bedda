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
    // One piece reading a unit-step window in the same axis order is a view of the input:
    // share its buffer and copy nothing (rechunks that split blocks, contiguous slices).
    if let [piece] = pieces {
        let identity = out_axes.iter().enumerate().all(|(k, a)| *a == Some(k));
        let unit = piece
            .src
            .iter()
            .zip(&piece.dst)
            .all(|(s, d)| matches!(s, SrcAxis::Run { step, len, .. } if *step == 1 || (*len == 1 && d.len() == 1)));
        if identity
            && unit
            && piece.src.len() == out_axes.len()
            && piece.dst.iter().zip(shape).all(|(d, &n)| d.len() == n)
        {
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
