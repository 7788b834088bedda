//! median / nanmedian along one axis, whole or by groups of its indices, on the device
//! (`shaders/median.wgsl`: per-value quickselect; see the shader for why).

use super::context::KernelSource;
use super::submit::{Pending, Produced, Recording};
use super::{buffers, split, GpuContext, GpuError};
use crate::backend::Value;
use crate::expr::{Block, DType, ReduceOp};

const TEMPLATE: &str = include_str!("../../../shaders/median.wgsl");
/// The longest axis (or group) the device takes (`MAX_LEN` in the shader at most).
pub const MAX_AXIS_LEN: usize = 1024;

/// The selection kernel for groups of at most `max_len` values: the template with its private
/// array sized to `max_len` (a power of two, 8..=[`MAX_AXIS_LEN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MedianKernel {
    /// length of the per-invocation array
    pub max_len: u32,
}

impl MedianKernel {
    /// The kernel for groups of up to `longest` values.
    pub fn for_groups(longest: usize) -> Self {
        MedianKernel {
            max_len: longest.next_power_of_two().clamp(8, MAX_AXIS_LEN) as u32,
        }
    }
}

impl std::fmt::Display for MedianKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&TEMPLATE.replace("{{MAX_LEN}}", &self.max_len.to_string()))
    }
}

/// Whether the device runs this reduction: median or nanmedian over one axis no longer than
/// [`MAX_AXIS_LEN`], the block within one storage binding.
pub(super) fn fits(op: ReduceOp, axes: &[usize], shape: &[usize]) -> bool {
    matches!(op, ReduceOp::Median | ReduceOp::NanMedian)
        && axes.len() == 1
        && shape.get(axes[0]).is_some_and(|&n| (1..=MAX_AXIS_LEN).contains(&n))
}

/// Whether the device runs this group-reduce: a median op, no group longer than
/// [`MAX_AXIS_LEN`], the block within one storage binding.
pub(super) fn fits_groups(op: ReduceOp, labels: &[usize], groups: usize) -> bool {
    let mut sizes = vec![0usize; groups];
    for &l in labels {
        if l >= groups {
            return false;
        }
        sizes[l] += 1;
    }
    matches!(op, ReduceOp::Median | ReduceOp::NanMedian) && sizes.iter().all(|&n| n <= MAX_AXIS_LEN)
}

/// The median (or nanmedian) of `input` along `axis`; the axis is removed from the shape.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Device`].
pub(super) fn run<'c>(ctx: &'c GpuContext, op: ReduceOp, input: &Value, axis: usize) -> Result<Produced<'c>, GpuError> {
    let shape = input.shape().unwrap_or(&[]).to_vec();
    let labels = vec![0usize; shape.get(axis).copied().unwrap_or(0)];
    // One group: (outer, 1, inner) is (outer, inner) in memory.
    Ok(match run_groups(ctx, op, input, axis, &labels, 1)? {
        Produced::Pending(mut p) => {
            p.shape.remove(axis);
            Produced::Pending(p)
        }
        Produced::Host(Block::F32(a)) => Produced::Host(Block::F32(a.index_axis_move(ndarray::Axis(axis), 0))),
        Produced::Host(_) => return Err(GpuError::Device("a median yields f32".into())),
    })
}

/// The median (or nanmedian) of each group of `axis` indices (`labels[t]` is index t's
/// group); the axis becomes `groups` long, an empty group gives NaN.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Device`].
pub(super) fn run_groups<'c>(
    ctx: &'c GpuContext,
    op: ReduceOp,
    input: &Value,
    axis: usize,
    labels: &[usize],
    groups: usize,
) -> Result<Produced<'c>, GpuError> {
    let shape = input.shape().ok_or_else(buffers::partial_state)?.to_vec();
    let len = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape = shape.clone();
    out_shape[axis] = groups;
    let limit = ctx.adapter.max_storage_binding;
    // The kernel reads f32 (masks are widened first).
    if split::too_big(outer * len * inner, 4, limit) {
        // Piece by piece, each read back: a block beyond one binding is split, not refused.
        let values = split::map_pieces(input, (outer, len, inner), groups, 1, limit, |piece, _| {
            let Produced::Pending(p) = run_groups(ctx, op, piece, 1, labels, groups)? else {
                return Err(GpuError::Device("a piece that fits was split again".into()));
            };
            let mut out = vec![0f32; p.shape.iter().product()];
            p.rec.submit_and_read(&p.buffer, &mut out)?;
            Ok(out)
        })?;
        let array = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&out_shape), values)
            .map_err(|e| GpuError::Device(e.to_string()))?;
        return Ok(Produced::Host(Block::F32(array.into_shared())));
    }
    let (starts, members) = super::reduce::group_members(labels, groups);
    let n_out: usize = out_shape.iter().product();
    let longest = starts.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(0);
    let pipeline = ctx.pipeline(KernelSource::Median(MedianKernel::for_groups(longest).max_len))?;
    let mut rec = Recording::new(ctx, "median");
    let input = rec.input_f32(input)?;
    let output = buffers::output(ctx, "median output", n_out);
    let params: [u32; 8] = [
        n_out as u32,
        len as u32,
        inner.max(1) as u32,
        u32::from(op == ReduceOp::NanMedian),
        groups as u32,
        0,
        0,
        0,
    ];
    let params = buffers::uniform(ctx, "median params", &params);
    let starts = buffers::storage(ctx, "group starts", &starts);
    let members = buffers::storage(ctx, "group members", &members);
    let bind_group = rec.bind(&pipeline, "median", &[&input, &output, &params, &starts, &members])?;
    rec.dispatch(&pipeline, &bind_group, n_out, 64);
    Ok(Produced::Pending(Pending {
        rec,
        buffer: output,
        shape: out_shape,
        dtype: DType::F32,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_array_fits_the_longest_group() {
        assert_eq!(MedianKernel::for_groups(1).max_len, 8);
        assert_eq!(MedianKernel::for_groups(64).max_len, 64);
        assert_eq!(MedianKernel::for_groups(65).max_len, 128);
        assert_eq!(MedianKernel::for_groups(1024).max_len, 1024);
        let src = MedianKernel::for_groups(30).to_string();
        assert!(src.contains("const MAX_LEN: u32 = 32u;"), "{src}");
        assert!(!src.contains("{{"), "unfilled slot in {src}");
    }
}
