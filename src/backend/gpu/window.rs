//! Window reductions (`coarsen`) on the device, so a coarsened block of a GPU pipeline stays
//! there for the next device task instead of coming back to the host first.
//!
//! The block's windows are laid side by side by the gather kernel (`shaders/gather.wgsl`, one
//! dispatch reading the block in order): value `i` of every window becomes one contiguous run
//! of the block's output pixels, the layout the CPU kernel copies into host memory. A window
//! reduction is then a reduction over those runs, the time reductions' own kernels at
//! `(1, window, outputs)`: `reduce.wgsl` + `finalize.wgsl` for counts, sums, means, extremes
//! and variances (sums as TwoSum pairs), `median.wgsl` for the median. Adjacent invocations
//! read adjacent words. Everything is one submission.

use super::gather::{strides, MAX_AXES};
use super::kernels::{KernelSource, MAX_MEDIAN_LEN};
use super::recording::{Bind, ConstantBuffer, Pending, Produced, Recording};
use super::{median, reduce, GpuContext, GpuError};
use crate::backend::{Value, ValueDesc};
use crate::expr::WindowOp;
use crate::expr::{DType, ReduceOp};

const GATHER: &str = include_str!("../../../shaders/gather.wgsl");

/// Whether the device runs this window reduction: an f32 block cut on window edges, an op of
/// the reduction kernels (a median of at most [`MAX_MEDIAN_LEN`] values a window), the block
/// and its reduction states within one binding each, and a block seen as windows (an axis and
/// its window apart) in at most the gather's [`MAX_AXES`] axes.
pub(super) fn fits(ctx: &GpuContext, op: ReduceOp, windows: &[usize], input: &ValueDesc) -> bool {
    let shape = &input.shape;
    let window: usize = windows.iter().product();
    let n: usize = shape.iter().product();
    let limit = ctx.adapter.max_storage_binding;
    let whole_windows = shape.len() == windows.len() && shape.iter().zip(windows).all(|(&s, &k)| k > 0 && s % k == 0);
    let axes = shape.len() + windows.iter().filter(|&&k| k > 1).count();
    let kernel = match op {
        ReduceOp::NanMedian => window <= MAX_MEDIAN_LEN,
        _ => reduce::mode(op).is_some(),
    };
    !input.partial
        && input.dtype == DType::F32
        && WindowOp::of(op).is_some()
        && kernel
        && whole_windows
        && n > 0
        && axes <= MAX_AXES
        && (n as u64) < limit.min(i32::MAX as u64) / 4
        // the reduction states: eight f32 lanes per output
        && (n / window * 32) as u64 <= limit
}

/// `op` over every window of `input` (each axis a multiple of its window): the block's windows
/// laid side by side in a scratch buffer, then reduced into a result of the coarse shape left
/// on the device. The caller checked [`fits`].
///
/// Costs one device copy of the block and, per output, one invocation walking its window
/// (O(window); a median's quickselect O(window) expected).
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`] (a partial input);
/// [`GpuError::Mapping`] when a host input's staging buffer cannot be mapped.
pub(super) fn run<'c>(
    ctx: &'c GpuContext,
    op: ReduceOp,
    input: &Value,
    windows: &[usize],
) -> Result<Produced<'c>, GpuError> {
    let shape = input.shape().ok_or_else(super::buffers::partial_state)?.to_vec();
    let out_shape: Vec<usize> = shape.iter().zip(windows).map(|(n, k)| n / k).collect();
    let outputs: usize = out_shape.iter().product();
    let window: usize = windows.iter().product();
    let mut rec = Recording::new(ctx, "coarsen");
    let (input, _) = rec.input(input)?;
    let steps = rec.scratch("windows side by side", (outputs * window * 4) as u64);
    let steps = Bind::Held(steps);
    record_side_by_side(&mut rec, &input, &shape, windows, &steps)?;
    // one group: the window's values 0..window, each a contiguous run of the outputs
    let starts = [0, window as u32];
    let dims = (1, window, outputs);
    let result = if reduce::mode(op).is_some() {
        reduce::record_final(&mut rec, op, &steps, DType::F32, dims, (&starts, None))?
    } else {
        let members: Vec<u32> = (0..window as u32).collect();
        median::record_order(&mut rec, op, &steps, DType::F32, dims, (&starts, &members))?
    };
    Ok(Produced::Pending(Pending {
        rec,
        result,
        shape: out_shape,
        dtype: DType::F32,
    }))
}

/// The gather's box for laying `shape`'s windows side by side: per box axis (the block's axes
/// in order, each windowed one as its windows then its steps within one), the length, the
/// stride it moves in the laid-out buffer, and the stride it moves in the block. The buffer is
/// C order over (the windowed axes' steps..., the coarse shape...).
fn side_by_side_box(shape: &[usize], windows: &[usize]) -> Vec<(usize, usize, usize)> {
    let coarse: Vec<usize> = shape.iter().zip(windows).map(|(n, k)| n / k).collect();
    let outputs: usize = coarse.iter().product();
    let in_stride = strides(shape);
    let out_stride = strides(&coarse);
    let mut boxed = Vec::with_capacity(2 * shape.len());
    for a in 0..shape.len() {
        let k = windows[a];
        let s = in_stride[a] as usize;
        boxed.push((coarse[a], out_stride[a] as usize, k * s));
        if k > 1 {
            let later_steps: usize = windows[a + 1..].iter().product();
            boxed.push((k, outputs * later_steps, s));
        }
    }
    boxed
}

/// Records the gather that lays `input`'s windows side by side into `steps`.
///
/// **Errors**: [`GpuError::Shader`].
fn record_side_by_side(
    rec: &mut Recording<'_>,
    input: &Bind<'_>,
    shape: &[usize],
    windows: &[usize],
    steps: &Bind<'_>,
) -> Result<(), GpuError> {
    let ctx = rec.context();
    let boxed = side_by_side_box(shape, windows);
    let nd = boxed.len();
    let mut desc = vec![0i32; 3 * nd];
    for (k, &(len, out_stride, in_step)) in boxed.iter().enumerate() {
        desc[k] = len as i32;
        desc[nd + k] = out_stride as i32;
        desc[2 * nd + k] = in_step as i32;
    }
    let n: usize = shape.iter().product();
    let pipeline = ctx.pipeline(KernelSource::Fixed("gather.wgsl", GATHER))?;
    let desc = ConstantBuffer::storage(ctx, "windows box", bytemuck::cast_slice(&desc));
    let params = ConstantBuffer::uniform(ctx, "gather params", &[n as u32, nd as u32, 0, 0, 0, 0, 0, 0]);
    let binds = [*input, *steps, Bind::Constant(&desc), Bind::Constant(&params)];
    let group = rec.bind(&pipeline, "windows side by side", &binds)?;
    rec.dispatch(&pipeline, &group, "windows side by side", n, 256);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::side_by_side_box;

    /// Where the box puts every element of a block, walked as the gather kernel walks it.
    fn laid_out(shape: &[usize], windows: &[usize]) -> Vec<usize> {
        let boxed = side_by_side_box(shape, windows);
        let n: usize = shape.iter().product();
        let mut out = vec![usize::MAX; n];
        for o in 0..n {
            let (mut rem, mut w, mut i) = (o, 0, 0);
            for &(len, out_stride, in_step) in boxed.iter().rev() {
                let d = rem % len;
                rem /= len;
                w += d * out_stride;
                i += d * in_step;
            }
            out[w] = i;
        }
        out
    }

    #[test]
    fn a_plane_in_two_by_two_windows_lies_step_major() {
        // 4 x 4 plane, element (r, c) = 4r + c; windows 2 x 2 give 4 outputs; step (dr, dc) of
        // every window is one run of 4, in output order (0,0) (0,1) (1,0) (1,1).
        let got = laid_out(&[4, 4], &[2, 2]);
        let want = [
            0, 2, 8, 10, // step (0, 0)
            1, 3, 9, 11, // step (0, 1)
            4, 6, 12, 14, // step (1, 0)
            5, 7, 13, 15, // step (1, 1)
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn axes_without_a_window_keep_their_order() {
        // (2, 2, 3): windows of 2 along the middle axis only; outputs (2, 1, 3).
        let got = laid_out(&[2, 2, 3], &[1, 2, 1]);
        let want = [0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11];
        assert_eq!(got, want);
        // every element lands somewhere exactly once
        let mut seen = laid_out(&[3, 4, 6], &[3, 2, 3]);
        seen.sort_unstable();
        assert_eq!(seen, (0..72).collect::<Vec<_>>());
    }
}
