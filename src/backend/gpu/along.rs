//! Work along one axis on the device (`shaders/along.wgsl`): forward and backward fills,
//! running sums and products, and moving-window counts, sums, means, extremes and medians, so
//! a gap-filled or smoothed series of a GPU pipeline stays on the device for the next device
//! task.
//! Linear gap interpolation, moving variances and medians of windows over 64 steps stay on
//! the host.
//!
//! One invocation per pixel walks the block's axis; fills, extremes and medians are the CPU's
//! bit for bit, sums, products and means within a few f32 ulps of its f64 totals.

use super::kernels::{AlongKernel, KernelSource, MAX_ROLLING_MEDIAN};
use super::recording::{Bind, ConstantBuffer, Pending, Produced, Recording};
use super::{GpuContext, GpuError};
use crate::backend::{Value, ValueDesc};
use crate::expr::{AlongOp, DType, ReduceOp, ScanOp};

/// What the kernel's `mode`, `flag` and `limit` words say for `op`, or `None` for work the
/// kernel does not do (linear interpolation; moving variances and deviations; medians of
/// windows over [`MAX_ROLLING_MEDIAN`] steps).
fn words(op: &AlongOp) -> Option<[u32; 3]> {
    // "no limit": the CPU's cap, so the run count never wraps
    let limit = |l: &Option<usize>| l.map_or(u32::MAX - 1, |l| l.min(u32::MAX as usize - 1) as u32);
    Some(match op {
        AlongOp::Carry { backward, limit: l } => [0, u32::from(*backward), limit(l)],
        AlongOp::Scan { op, skipna } => [1 + u32::from(*op == ScanOp::Prod), u32::from(*skipna), 0],
        AlongOp::Rolling { op, window } => {
            let which = match op {
                ReduceOp::Count => 0,
                ReduceOp::NanSum => 1,
                ReduceOp::NanMean => 2,
                ReduceOp::NanMin => 3,
                ReduceOp::NanMax => 4,
                ReduceOp::NanMedian if window.size <= MAX_ROLLING_MEDIAN => 5,
                _ => return None,
            };
            [3, which, window.min_periods.max(1) as u32]
        }
        AlongOp::Interpolate { .. } => return None,
    })
}

/// Whether the device runs `op` along `axis` of `input`: an f32 block (not a partial state)
/// within one binding, and work the kernel does (see [`words`]).
pub(super) fn fits(ctx: &GpuContext, op: &AlongOp, axis: usize, input: &ValueDesc) -> bool {
    let n: usize = input.shape.iter().product();
    let limit = ctx.adapter.max_storage_binding.min(i32::MAX as u64);
    !input.partial
        && input.dtype == DType::F32
        && axis < input.shape.len()
        && n > 0
        && (n as u64) * 4 <= limit
        && words(op).is_some()
}

/// `op` along `axis` of `input` into a result of its shape left on the device. The caller
/// checked [`fits`].
///
/// Costs one invocation per pixel, O(len) for fills and running work, O(len × window) for a
/// moving window; one read and one write of the block.
///
/// **Errors**: [`GpuError::Shader`]; [`GpuError::Internal`] for work the kernel does not do
/// or a partial input; [`GpuError::Mapping`] when a host input's staging buffer cannot be
/// mapped.
pub(super) fn run<'c>(ctx: &'c GpuContext, op: &AlongOp, input: &Value, axis: usize) -> Result<Produced<'c>, GpuError> {
    let shape = input.shape().ok_or_else(super::buffers::partial_state)?.to_vec();
    let [mode, flag, limit] =
        words(op).ok_or_else(|| GpuError::Internal(format!("{} does not run on the device", op.name())))?;
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let n: usize = shape.iter().product();
    let pixels = n / len.max(1);
    let (first, size) = match op {
        AlongOp::Rolling { window, .. } => (window.first() as i32, window.size as u32),
        _ => (0, 0),
    };
    let kernel = match op {
        AlongOp::Rolling {
            op: ReduceOp::NanMedian,
            window,
        } => AlongKernel::for_median(window.size),
        _ => AlongKernel::for_median(0),
    };
    let params: [u32; 12] = [
        pixels as u32,
        len as u32,
        inner.max(1) as u32,
        mode,
        flag,
        limit,
        first as u32,
        size,
        1.0f32.to_bits(),
        0,
        0,
        0,
    ];
    let mut rec = Recording::new(ctx, op.name());
    let (input, _) = rec.input(input)?;
    let result = rec.result(op.name(), (n * 4) as u64);
    let pipeline = ctx.pipeline(KernelSource::Along(kernel))?;
    let params = ConstantBuffer::uniform(ctx, "along params", &params);
    let binds = [input, Bind::Result(&result), Bind::Constant(&params)];
    let group = rec.bind(&pipeline, op.name(), &binds)?;
    rec.dispatch(&pipeline, &group, pixels, 64);
    Ok(Produced::Pending(Pending {
        rec,
        result,
        shape,
        dtype: DType::F32,
    }))
}

#[cfg(test)]
mod tests {
    use super::words;
    use crate::expr::{AlongOp, MovingWindow, ReduceOp, ScanOp};

    #[test]
    fn the_kernel_takes_fills_scans_and_windows_but_variances_and_long_medians() {
        let w = MovingWindow::trailing(3);
        let fill = AlongOp::Carry {
            backward: true,
            limit: Some(2),
        };
        assert_eq!(words(&fill), Some([0, 1, 2]));
        let none = AlongOp::Carry {
            backward: false,
            limit: None,
        };
        assert_eq!(words(&none), Some([0, 0, u32::MAX - 1]));
        let prod = AlongOp::Scan {
            op: ScanOp::Prod,
            skipna: true,
        };
        assert_eq!(words(&prod), Some([2, 1, 0]));
        let mean = AlongOp::Rolling {
            op: ReduceOp::NanMean,
            window: w,
        };
        assert_eq!(words(&mean), Some([3, 2, 3]));
        for op in [ReduceOp::NanVar { ddof: 1 }, ReduceOp::NanStd { ddof: 0 }] {
            assert_eq!(words(&AlongOp::Rolling { op, window: w }), None, "{op:?}");
        }
        let median = |size| AlongOp::Rolling {
            op: ReduceOp::NanMedian,
            window: MovingWindow::trailing(size),
        };
        assert_eq!(words(&median(64)), Some([3, 5, 64]));
        assert_eq!(words(&median(65)), None, "over the private array");
        let linear = AlongOp::Interpolate {
            positions: vec![0.0, 1.0, 2.0],
            limit: None,
            max_gap: None,
        };
        assert_eq!(words(&linear), None);
    }
}
