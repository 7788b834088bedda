//! Helpers of the GPU behaviour tests: the device (or a loud skip), GPU-vs-CPU runs counted
//! on the device, data with NaN patterns, comparisons.
#![allow(dead_code)]

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};
use strata::backend::gpu::{shared_context, BackendChoice, GpuContext};
use strata::exec::Progress;
use strata::{Array, ComputeOptions};

/// The device to one test at a time, in checking mode (released buffers poisoned), for as
/// long as this is held: its counters, budget and pools are process-wide.
pub struct Device {
    ctx: Arc<GpuContext>,
    _turn: Option<Turn>,
}

impl std::ops::Deref for Device {
    type Target = GpuContext;
    fn deref(&self) -> &GpuContext {
        &self.ctx
    }
}

/// The device, or `None` (after a loud notice) when the run asked to skip GPU tests.
pub fn device() -> Option<Device> {
    if std::env::var("STRATA_SKIP_GPU_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("\n*** STRATA_SKIP_GPU_TESTS=1: GPU tests SKIPPED, the GPU backend is untested in this run ***\n");
        return None;
    }
    match shared_context() {
        Ok(ctx) => {
            let turn = one_at_a_time();
            ctx.set_checks(true);
            Some(Device { ctx, _turn: turn })
        }
        Err(e) => panic!("{e}. (STRATA_SKIP_GPU_TESTS=1 skips the GPU tests; CI never sets it.)"),
    }
}

pub fn on(backend: BackendChoice) -> ComputeOptions {
    ComputeOptions {
        backend,
        progress: Progress::Off,
        ..Default::default()
    }
}

/// The result on the device and on the CPU. Fails when the device ran none of the tasks
/// (a silent fallback to the CPU would otherwise compare the CPU with itself). Serialised, so
/// the device's task counter only counts this computation.
pub fn on_gpu_and_cpu(e: &Array) -> (ArrayD<f32>, ArrayD<f32>) {
    let _turn = one_at_a_time();
    on_gpu_and_cpu_held(e)
}

/// A turn at the device: released when dropped.
pub struct Turn(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

impl Drop for Turn {
    fn drop(&mut self) {
        HOLDS.with(|h| h.set(false));
    }
}

thread_local! {
    static HOLDS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The device to this test alone (its counters and budget are process-wide); `None` when this
/// thread has it already.
pub fn one_at_a_time() -> Option<Turn> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if HOLDS.with(|h| h.get()) {
        return None;
    }
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    HOLDS.with(|h| h.set(true));
    Some(Turn(guard))
}

/// [`on_gpu_and_cpu`] for a caller holding [`one_at_a_time`].
pub fn on_gpu_and_cpu_held(e: &Array) -> (ArrayD<f32>, ArrayD<f32>) {
    let ctx = shared_context().expect("checked by device()");
    let before = ctx.device_tasks();
    let gpu = e.compute_with(&on(BackendChoice::Gpu)).unwrap().0;
    assert!(ctx.device_tasks() > before, "no task ran on the device");
    let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    (gpu, cpu)
}

/// The result on the GPU backend (wherever it placed the tasks) and on the CPU.
pub fn on_gpu_backend_and_cpu(e: &Array) -> (ArrayD<f32>, ArrayD<f32>) {
    let _turn = one_at_a_time();
    let gpu = e.compute_with(&on(BackendChoice::Gpu)).unwrap().0;
    let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
    (gpu, cpu)
}

pub fn cube(t: usize, rows: usize, cols: usize, nan_every: usize, seed: u32) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[t, rows, cols]), |ix| {
        let i = (ix[0] * rows + ix[1]) * cols + ix[2];
        // Pixel (r, 0) is all-NaN on odd rows; elsewhere one value in `nan_every` is NaN;
        // values repeat (a few distinct levels) so ties are common.
        if (ix[2] == 0 && ix[1] % 2 == 1) || (i as u32 ^ seed).is_multiple_of(nan_every as u32) {
            f32::NAN
        } else {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 17) as f32 - 8.0
        }
    })
}

/// Fails unless every value has the same bits on both (a zero's sign included; any NaN
/// matches any NaN).
pub fn assert_same_bits(gpu: &ArrayD<f32>, cpu: &ArrayD<f32>, what: &str) {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}");
    for ((i, g), c) in gpu.indexed_iter().zip(cpu.iter()) {
        assert!(
            g.to_bits() == c.to_bits() || (g.is_nan() && c.is_nan()),
            "{what} at {i:?}: gpu {g:?}, cpu {c:?}"
        );
    }
}

/// Values with fractions (sums round), NaNs as in `cube`, and a few large magnitudes so a
/// plain f32 running sum would drift from the f64 reference.
pub fn rough_cube(t: usize, rows: usize, cols: usize, nan_every: usize, seed: u32) -> ArrayD<f32> {
    cube(t, rows, cols, nan_every, seed).mapv(|v| {
        if v.is_nan() {
            v
        } else {
            v * 1234.567 + v * v / 7.0 + 0.1
        }
    })
}

/// Equal to the CPU's f64-accumulated result within 2e-6 relative (the 1e-6 for sums,
/// plus the final rounding to f32), bitwise for NaN positions.
pub fn assert_close(gpu: &ArrayD<f32>, cpu: &ArrayD<f32>, what: &str) {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}");
    for ((i, g), c) in gpu.indexed_iter().zip(cpu.iter()) {
        let ok = (g.is_nan() && c.is_nan()) || g == c || (g - c).abs() <= 2e-6 * c.abs().max(1.0);
        assert!(ok, "{what} at {i:?}: gpu {g}, cpu {c}");
    }
}

/// Gaussian results within 1e-6 relative of the CPU's (the bound for filters),
/// relative to `scale` (the largest magnitude the filter reads) where that is larger than the
/// result: rounding in a weighted sum grows with its terms, and a sum that cancels to near zero
/// keeps their absolute error. The device and the CPU's FMA path round differently.
pub fn assert_filter_close(gpu: &ArrayD<f32>, cpu: &ArrayD<f32>, scale: f32, what: &str) {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}");
    for ((i, g), c) in gpu.indexed_iter().zip(cpu.iter()) {
        let ok = (g.is_nan() && c.is_nan()) || (g - c).abs() <= 1e-6 * c.abs().max(scale).max(1.0);
        assert!(ok, "{what} at {i:?}: gpu {g}, cpu {c}");
    }
}

/// How many f32 steps apart `a` and `b` are (0 for equal values, both NaN or both infinite
/// alike; `u32::MAX` when only one is NaN).
pub fn ulps_apart(a: f32, b: f32) -> u32 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() { 0 } else { u32::MAX };
    }
    // the bits of a float ordered as integers: negatives mirrored below zero
    let key = |v: f32| {
        let bits = v.to_bits() as i32;
        if bits < 0 {
            i32::MIN - bits
        } else {
            bits
        }
    };
    key(a).abs_diff(key(b))
}

/// Eight series of six steps whose variances an f32 one-pass or unscaled computation gets
/// wrong: a constant (exactly 0), a large mean with a small spread, values whose f32 sums and
/// squares overflow, values whose squares underflow (a variance below f32's range, a deviation
/// within it), NaN gaps, an infinity (NaN, as numpy's), a single value, and the ordinary.
pub fn spread_series() -> [[f32; 6]; 8] {
    let nan = f32::NAN;
    let m = 1.0e6;
    [
        [1000.1; 6],
        [m + 0.25, m + 0.5, m, m + 0.75, m + 0.125, m + 0.375],
        [3.0e38, 2.0e38, 3.3e38, -3.0e38, 1.0e38, 2.5e38],
        [1.0e-30, 2.0e-30, 4.0e-30, 3.0e-30, 1.5e-30, 2.5e-30],
        [nan, 7.25, nan, nan, 3.5, 0.1],
        [1.0, f32::INFINITY, 2.0, 3.0, 4.0, 5.0],
        [nan, nan, nan, 42.0, nan, nan],
        [0.3, -1.7, 2.9, 0.01, -0.5, 1.1],
    ]
}

/// Asserts every value within one ulp of the CPU's (NaN where it is NaN), and returns how
/// many are bitwise.
pub fn within_an_ulp(gpu: &ArrayD<f32>, cpu: &ArrayD<f32>, what: &str) -> usize {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}");
    let mut exact = 0;
    for ((i, g), c) in gpu.indexed_iter().zip(cpu.iter()) {
        let apart = ulps_apart(*g, *c);
        assert!(apart <= 1, "{what} at {i:?}: gpu {g}, cpu {c}");
        exact += usize::from(apart == 0);
    }
    exact
}

/// The largest magnitude in `a`, NaN skipped.
pub fn magnitude(a: &ArrayD<f32>) -> f32 {
    a.iter().filter(|v| !v.is_nan()).fold(0.0, |m, v| m.max(v.abs()))
}
