//! Gathers on the device (`shaders/gather.wgsl`): an f32 block assembled from pieces of input
//! blocks in place, so a selection of bands or dates from a stack that was decoded on the
//! device stays there instead of coming back to the host for a copy.

use super::kernels::KernelSource;
use super::recording::{Bind, ConstantBuffer, Pending, Recording};
use super::{GpuContext, GpuError};
use crate::backend::{Value, ValueDesc};
use crate::expr::DType;
use crate::plan::{GatherPiece, SrcAxis};

const SHADER: &str = include_str!("../../../shaders/gather.wgsl");
/// Output axes the kernel walks at most.
pub(super) const MAX_AXES: usize = 8;

/// Whether the device runs this gather: f32 in and out, at most [`MAX_AXES`] axes, offsets
/// that fit the kernel's 32-bit indices.
pub(super) fn fits(ctx: &GpuContext, shape: &[usize], dtype: DType, inputs: &[ValueDesc]) -> bool {
    let limit = ctx.adapter.max_storage_binding / 4;
    let fits_index = |n: usize| (n as u64) < limit.min(i32::MAX as u64);
    dtype == DType::F32
        && shape.len() <= MAX_AXES
        && fits_index(shape.iter().product())
        && inputs.iter().all(|v| {
            !v.partial && v.dtype == DType::F32 && v.shape.len() <= MAX_AXES && fits_index(v.shape.iter().product())
        })
}

/// C-order strides of `shape`, in elements.
pub(super) fn strides(shape: &[usize]) -> Vec<i64> {
    let mut s = vec![1i64; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1] as i64;
    }
    s
}

/// The output block of `shape` from `pieces` of the inputs (positions no piece covers hold
/// `fill`), recorded.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`] (an input of the wrong kind);
/// [`GpuError::Mapping`] when a staging buffer cannot be mapped.
pub(super) fn run<'c>(
    ctx: &'c GpuContext,
    shape: &[usize],
    fill: f32,
    out_axes: &[Option<usize>],
    pieces: &[GatherPiece],
    inputs: &[&Value],
) -> Result<Pending<'c>, GpuError> {
    let n: usize = shape.iter().product();
    let pipeline = ctx.pipeline(KernelSource::Fixed("gather.wgsl", SHADER))?;
    let mut rec = Recording::new(ctx, "gather");
    let result = rec.result("gathered", (n * 4) as u64);
    let ostride = strides(shape);
    let covered: usize = pieces
        .iter()
        .map(|p| p.dst.iter().map(|r| r.len()).product::<usize>())
        .sum();
    // A fresh buffer holds zeros: the fill is written only when it is not 0.0 and some
    // position stays uncovered.
    if covered < n && fill.to_bits() != 0 {
        let desc = ConstantBuffer::storage(ctx, "gather fill", &[]);
        let params = ConstantBuffer::uniform(ctx, "gather params", &[n as u32, 0, 1, fill.to_bits(), 0, 0, 0, 0]);
        // The fill reads nothing: an empty buffer stands in for the input.
        let dummy = ConstantBuffer::storage(ctx, "unused", &[]);
        let group = rec.bind(
            &pipeline,
            "gather fill",
            &[
                Bind::Constant(&dummy),
                Bind::Result(&result),
                Bind::Constant(&desc),
                Bind::Constant(&params),
            ],
        )?;
        rec.dispatch(&pipeline, &group, "gather fill", n, 256);
    }
    let mut bound = Vec::with_capacity(inputs.len());
    for v in inputs {
        let (bind, _) = rec.input(v)?;
        bound.push(bind);
    }
    for piece in pieces {
        let input = inputs.get(piece.dep).ok_or_else(|| {
            GpuError::Internal(format!("a gather piece reads input {} of {}", piece.dep, inputs.len()))
        })?;
        let in_shape = input.shape().ok_or_else(super::buffers::partial_state)?;
        let istride = strides(in_shape);
        let mut base_in: i64 = 0;
        for (a, s) in piece.src.iter().enumerate() {
            base_in += match s {
                SrcAxis::Fixed(i) => *i as i64,
                SrcAxis::Run { start, .. } => *start as i64,
            } * istride[a];
        }
        let nd = shape.len();
        let mut desc = vec![0i32; 3 * nd];
        let mut base_out: i64 = 0;
        for k in 0..nd {
            let dst = &piece.dst[k];
            desc[k] = dst.len() as i32;
            desc[nd + k] = ostride[k] as i32;
            base_out += dst.start as i64 * ostride[k];
            desc[2 * nd + k] = match out_axes[k] {
                Some(a) => match piece.src[a] {
                    // a run of one index (or a step-0 run) broadcasts over the box
                    SrcAxis::Run { step, len, .. } if len > 1 => (step as i64 * istride[a]) as i32,
                    _ => 0,
                },
                None => 0,
            };
        }
        let elements: usize = piece.dst.iter().map(|r| r.len()).product();
        if elements == 0 {
            continue;
        }
        let desc = ConstantBuffer::storage(ctx, "gather piece", bytemuck::cast_slice(&desc));
        let params = ConstantBuffer::uniform(
            ctx,
            "gather params",
            &[
                elements as u32,
                nd as u32,
                0,
                0,
                base_in as i32 as u32,
                base_out as i32 as u32,
                0,
                0,
            ],
        );
        let group = rec.bind(
            &pipeline,
            "gather",
            &[
                bound[piece.dep],
                Bind::Result(&result),
                Bind::Constant(&desc),
                Bind::Constant(&params),
            ],
        )?;
        rec.dispatch(&pipeline, &group, "gather", elements, 256);
    }
    Ok(Pending {
        rec,
        result,
        shape: shape.to_vec(),
        dtype: DType::F32,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn c_order_strides() {
        assert_eq!(super::strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(super::strides(&[]), Vec::<i64>::new());
    }
}
