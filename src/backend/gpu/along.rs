//! Work along one axis on the device (`shaders/along.wgsl`): forward and backward fills,
//! linear gap interpolation, running sums and products, and moving-window counts, sums,
//! means, extremes, variances, deviations and medians, so a gap-filled or smoothed series of a
//! GPU pipeline stays on the device for the next device task. Medians of windows over 64 steps
//! stay on the host.
//!
//! One invocation per pixel walks the block's axis; fills, extremes and medians are the CPU's
//! bit for bit, sums, products, means and variances within a few f32 ulps of its f64 totals.

use super::kernels::{AlongKernel, KernelSource, MAX_ROLLING_MEDIAN};
use super::recording::{Bind, ConstantBuffer, Pending, Produced, Recording};
use super::{GpuContext, GpuError};
use crate::backend::{Value, ValueDesc};
use crate::expr::{AlongOp, DType, ReduceOp, ScanOp, WindowOp};

/// What the kernel's `mode`, `flag` and `limit` words say for `op`, or `None` for work the
/// kernel does not do (medians of windows over [`MAX_ROLLING_MEDIAN`] steps).
fn words(op: &AlongOp) -> Option<[u32; 3]> {
    // "no limit": the CPU's cap, so the run count never wraps
    let limit = |l: &Option<usize>| l.map_or(u32::MAX - 1, |l| l.min(u32::MAX as usize - 1) as u32);
    Some(match op {
        AlongOp::Carry { backward, limit: l } => [0, u32::from(*backward), limit(l)],
        AlongOp::Scan { op, skipna } => [1 + u32::from(*op == ScanOp::Prod), u32::from(*skipna), 0],
        // the kernel's window offsets are i32 (a window of 2^31 steps would come out empty)
        AlongOp::Rolling { window, .. } if window.size > 1 << 30 => return None,
        AlongOp::Rolling { op, window } => {
            let which = match op {
                ReduceOp::Count => 0,
                ReduceOp::NanSum => 1,
                ReduceOp::NanMean => 2,
                ReduceOp::NanMin => 3,
                ReduceOp::NanMax => 4,
                ReduceOp::NanMedian if window.size <= MAX_ROLLING_MEDIAN => 5,
                ReduceOp::NanVar { .. } => 6,
                ReduceOp::NanStd { .. } => 7,
                _ => return None,
            };
            [3, which, WindowOp::of(*op)?.need(window)]
        }
        AlongOp::Interpolate { limit: l, .. } => [4, 0, limit(l)],
    })
}

/// The loop iterations one invocation of the kernel may run for `op` over `len` steps (see
/// [`AdapterReport::loop_limit`](super::AdapterReport)), counted as llvmpipe counts them:
/// every loop the invocation reaches costs one iteration more than it runs, even one inside a
/// branch not taken (llvmpipe runs both sides of a branch under a mask), so the loops of the
/// other modes cost a few. llvmpipe runs adjacent invocations as one vector and counts per
/// vector, a loop running as long as any of them needs, so each count here is a worst case per
/// loop, never a total over the data (a loop per NaN gap, at most n steps in all for one pixel,
/// cost a vector the longest of its pixels' gaps at every step). A fill or a running total
/// walks the axis once, an interpolation twice; a moving window reads each step's window (two
/// per value: the median's insertion loop is reached for every value), a median shifts at
/// most k (k + 1) / 2 values into place, a variance reads the window twice more.
/// `tests/gpu_along.rs` finds the longest series each op runs on lavapipe and checks the
/// values there. O(1).
pub(super) fn trips(op: &AlongOp, len: usize) -> u64 {
    let n = len as u64;
    // the other modes' loops, reached under a mask
    let modes = 16;
    match op {
        AlongOp::Carry { .. } | AlongOp::Scan { .. } => n + modes,
        AlongOp::Interpolate { .. } => 2 * n + modes,
        AlongOp::Rolling { op, window } => {
            let k = window.size as u64;
            let more = match op {
                ReduceOp::NanMedian => k * (k + 1) / 2,
                ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } => 2 * (k + 1),
                _ => 0,
            };
            n.saturating_mul(6 + 2 * k + more).saturating_add(modes)
        }
    }
}

/// Whether the device runs `op` along `axis` of `input`: an f32 block (not a partial state)
/// within one binding, and work the kernel does (see [`words`]); an interpolation over fewer
/// than 2^24 steps (the kernel keeps step indices as f32 between its passes).
pub(super) fn fits(ctx: &GpuContext, op: &AlongOp, axis: usize, input: &ValueDesc) -> bool {
    let n: usize = input.shape.iter().product();
    let limit = ctx.adapter.max_storage_binding.min(i32::MAX as u64);
    !input.partial
        && input.dtype == DType::F32
        && axis < input.shape.len()
        && n > 0
        && (n as u64) * 4 <= limit
        && words(op).is_some()
        && !(matches!(op, AlongOp::Interpolate { .. }) && input.shape[axis] >= 1 << 24)
}

/// `op` along `axis` of `input` into a result of its shape left on the device. The caller
/// checked [`fits`].
///
/// Costs one invocation per pixel, O(len) for fills and running work, O(len × window) for a
/// moving window (three passes over each window for a variance); one read and one write of
/// the block.
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
    let ddof = match op {
        AlongOp::Rolling {
            op: ReduceOp::NanVar { ddof } | ReduceOp::NanStd { ddof },
            ..
        } => *ddof,
        _ => 0,
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
        ddof,
        0,
        0,
    ];
    let (pos, reach) = match op {
        AlongOp::Interpolate { positions, max_gap, .. } => (position_pairs(positions), reach(positions, *max_gap)),
        _ => (vec![0, 0], vec![0]),
    };
    let mut rec = Recording::new(ctx, op.name());
    let (input, _) = rec.input(input)?;
    let result = rec.result(op.name(), (n * 4) as u64);
    let pipeline = ctx.pipeline(KernelSource::Along(kernel))?;
    let params = ConstantBuffer::uniform(ctx, "along params", &params);
    let pos = ConstantBuffer::storage(ctx, "positions", &pos);
    let reach = ConstantBuffer::storage(ctx, "gap reach", &reach);
    let binds = [
        input,
        Bind::Result(&result),
        Bind::Constant(&params),
        Bind::Constant(&pos),
        Bind::Constant(&reach),
    ];
    let group = rec.bind(&pipeline, op.name(), &binds)?;
    rec.dispatch(&pipeline, &group, op.name(), pixels, 64);
    Ok(Produced::Pending(Pending {
        rec,
        result,
        shape,
        dtype: DType::F32,
    }))
}

/// Each position less the first, as the f32 pair (hi, lo) whose sum is the f64 difference
/// (to 48 bits): the kernel takes differences of positions from these exactly.
fn position_pairs(positions: &[f64]) -> Vec<u32> {
    let first = positions.first().copied().unwrap_or(0.0);
    positions
        .iter()
        .flat_map(|&x| {
            let d = x - first;
            let hi = d as f32;
            let lo = (d - f64::from(hi)) as f32;
            [hi.to_bits(), lo.to_bits()]
        })
        .collect()
}

/// For each step `p`, the last step `q` whose position lies at most `max_gap` past `p`'s (the
/// CPU's test of a gap, in f64): a gap from `p` to `q` is filled when `q <= reach[p]`. O(n).
fn reach(positions: &[f64], max_gap: Option<f64>) -> Vec<u32> {
    let n = positions.len();
    let mut out = Vec::with_capacity(n);
    let mut q = 0;
    for p in 0..n {
        q = q.max(p);
        while q + 1 < n && max_gap.is_none_or(|g| positions[q + 1] - positions[p] <= g) {
            q += 1;
        }
        out.push(q as u32);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{position_pairs, reach, words};
    use crate::expr::{AlongOp, MovingWindow, ReduceOp, ScanOp};

    #[test]
    fn the_kernel_takes_fills_scans_and_windows_but_long_medians() {
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
        // a variance needs more values than its ddof, whatever min_periods says
        let var = |op, min_periods| AlongOp::Rolling {
            op,
            window: MovingWindow {
                size: 5,
                center: false,
                min_periods,
            },
        };
        assert_eq!(words(&var(ReduceOp::NanVar { ddof: 1 }, 1)), Some([3, 6, 2]));
        assert_eq!(words(&var(ReduceOp::NanStd { ddof: 0 }, 3)), Some([3, 7, 3]));
        let median = |size| AlongOp::Rolling {
            op: ReduceOp::NanMedian,
            window: MovingWindow::trailing(size),
        };
        assert_eq!(words(&median(64)), Some([3, 5, 64]));
        assert_eq!(words(&median(65)), None, "over the private array");
        // window offsets are i32 on the device: a window of 2^31 or 2^32 + 3 steps (which
        // would wrap to 3) stays on the host
        for size in [1 << 31, (1 << 32) + 3] {
            let wide = AlongOp::Rolling {
                op: ReduceOp::NanSum,
                window: MovingWindow::trailing(size),
            };
            assert_eq!(words(&wide), None, "a window of {size} steps");
        }
        let widest = AlongOp::Rolling {
            op: ReduceOp::NanSum,
            window: MovingWindow::trailing(1 << 30),
        };
        assert!(words(&widest).is_some());
        let linear = AlongOp::Interpolate {
            positions: vec![0.0, 1.0, 2.0],
            limit: Some(3),
            max_gap: None,
        };
        assert_eq!(words(&linear), Some([4, 0, 3]));
    }

    #[test]
    fn gaps_reach_as_far_as_max_gap_allows() {
        let x = [0.0, 1.0, 3.0, 4.0, 10.0, 11.0];
        assert_eq!(reach(&x, Some(3.0)), [2, 3, 3, 3, 5, 5]);
        assert_eq!(reach(&x, None), [5; 6]);
        assert_eq!(reach(&x, Some(0.0)), [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn positions_travel_as_exact_pairs() {
        // seconds since 1970 of two scenes 16 days apart: each difference is hi + lo exactly
        let x = [1.5778368e9, 1.5778368e9 + 16.0 * 86400.0 + 0.25];
        let words = position_pairs(&x);
        let pair = |i: usize| f64::from(f32::from_bits(words[2 * i])) + f64::from(f32::from_bits(words[2 * i + 1]));
        assert_eq!(pair(0), 0.0);
        assert_eq!(pair(1), 16.0 * 86400.0 + 0.25);
    }
}
