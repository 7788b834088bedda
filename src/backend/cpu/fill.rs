//! Gap filling over a run of pixels: forward and backward fill (bottleneck's `push`, xarray's
//! `ffill`/`bfill`) and linear interpolation of NaN (xarray's `interpolate_na`).

use std::mem::MaybeUninit;

/// bottleneck's `push` over a run (backwards for `bfill`): each NaN takes the last valid value
/// seen when at most `limit` NaN (itself included) lie since it. Compiled for AVX2 where the
/// CPU has it (8-wide; the same bits: nothing is computed, only chosen).
pub(super) fn carry(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]], limit: Option<usize>, backwards: bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { carry_avx2(steps, outs, limit, backwards) };
    }
    carry_generic(steps, outs, limit, backwards)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn carry_avx2(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]], limit: Option<usize>, backwards: bool) {
    carry_generic(steps, outs, limit, backwards)
}

/// Branch-free per step: a NaN count since the last valid value (capped, so it never wraps)
/// and that value, per pixel.
#[inline(always)]
fn carry_generic(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]], limit: Option<usize>, backwards: bool) {
    let limit = limit.map_or(u32::MAX - 1, |l| l.min(u32::MAX as usize - 1) as u32);
    let len = outs[0].len();
    let (mut last, mut run) = (vec![f32::NAN; len], vec![0u32; len]);
    let n = steps.len();
    for i in 0..n {
        let t = if backwards { n - 1 - i } else { i };
        let (src, dst) = (&steps[t][..len], &mut outs[t][..len]);
        for k in 0..len {
            let v = src[k];
            #[allow(clippy::eq_op)] // v != v: NaN, in a form that vectorises
            let nan = v != v;
            let r = if nan { (run[k] + 1).min(limit + 1) } else { 0 };
            let l = if nan { last[k] } else { v };
            run[k] = r;
            last[k] = l;
            dst[k] = MaybeUninit::new(if r <= limit { l } else { v });
        }
    }
}

/// xarray's linear `interpolate_na` over a run: each NaN between valid values at steps `p` and
/// `q` becomes `numpy.interp`'s value there, in f64 with numpy's formula, unless it lies more
/// than `limit` after `p` or the gap is wider than `max_gap`. NaN outside the valid range
/// stay (numpy's NaN left and right), so a pixel with under two valid values stays as it is.
pub(super) fn linear(
    steps: &[&[f32]],
    outs: &mut [&mut [MaybeUninit<f32>]],
    x: &[f64],
    limit: Option<usize>,
    max_gap: Option<f64>,
) {
    const NONE: u32 = u32::MAX;
    let (n, len) = (steps.len(), outs[0].len());
    // forward: the last valid step at or before each step, per pixel
    let mut before = vec![NONE; n * len];
    let mut last = vec![NONE; len];
    for t in 0..n {
        for ((b, l), &v) in before[t * len..(t + 1) * len].iter_mut().zip(&mut last).zip(steps[t]) {
            if !v.is_nan() {
                *l = t as u32;
            }
            *b = *l;
        }
    }
    // backward: the next valid step, and the value at each NaN
    let mut next = vec![NONE; len];
    for t in (0..n).rev() {
        for k in 0..len {
            let v = steps[t][k];
            if !v.is_nan() {
                next[k] = t as u32;
                outs[t][k] = MaybeUninit::new(v);
                continue;
            }
            let (p, q) = (before[t * len + k], next[k]);
            outs[t][k] = MaybeUninit::new(f32::NAN);
            if p == NONE || q == NONE {
                continue;
            }
            let (p, q) = (p as usize, q as usize);
            if limit.is_some_and(|l| t - p > l) || max_gap.is_some_and(|g| x[q] - x[p] > g) {
                continue;
            }
            let (fp, fq) = (f64::from(steps[p][k]), f64::from(steps[q][k]));
            let slope = (fq - fp) / (x[q] - x[p]);
            let mut v = slope * (x[t] - x[p]) + fp;
            if v.is_nan() {
                v = slope * (x[t] - x[q]) + fq;
            }
            outs[t][k] = MaybeUninit::new(v as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use super::{carry, linear};

    const NAN: f32 = f32::NAN;

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// A one-pixel run: each value its own step.
    fn lane(values: &[f32], f: impl FnOnce(&[&[f32]], &mut [&mut [MaybeUninit<f32>]])) -> Vec<f32> {
        let steps: Vec<&[f32]> = values.iter().map(std::slice::from_ref).collect();
        let mut out = vec![MaybeUninit::new(-1.0f32); values.len()];
        let mut outs: Vec<&mut [MaybeUninit<f32>]> = out.iter_mut().map(std::slice::from_mut).collect();
        f(&steps, &mut outs);
        // SAFETY: initialised above (and every step written by the kernel)
        out.iter().map(|v| unsafe { v.assume_init() }).collect()
    }

    #[test]
    fn carries_fill_from_the_last_valid_value_within_the_limit() {
        let a = [NAN, 1.0, NAN, NAN, NAN, 2.0, NAN];
        let all = lane(&a, |s, o| carry(s, o, None, false));
        assert_eq!(bits(&all), bits(&[NAN, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]));
        let two = lane(&a, |s, o| carry(s, o, Some(2), false));
        assert_eq!(bits(&two), bits(&[NAN, 1.0, 1.0, 1.0, NAN, 2.0, 2.0]));
        let back = lane(&a, |s, o| carry(s, o, Some(1), true));
        assert_eq!(bits(&back), bits(&[1.0, 1.0, NAN, NAN, 2.0, 2.0, NAN]));
    }

    #[test]
    fn linear_interpolation_by_hand() {
        // positions 0, 1, 3, 4, 10, 11: the NaN at index 2 lies between 1 (10) and 4 (40)
        let x = [0.0, 1.0, 3.0, 4.0, 10.0, 11.0];
        let a = [NAN, 10.0, NAN, 40.0, NAN, 100.0];
        let got = lane(&a, |s, o| linear(s, o, &x, None, None));
        // index 2: 10 + (40 - 10) / 3 * 2 = 30; index 4: 40 + 60 / 7 * 6
        assert_eq!(got[2], 30.0);
        assert_eq!(got[4], (40.0 + 60.0 / 7.0 * 6.0) as f32);
        assert!(got[0].is_nan(), "before the first valid value");
        // a gap 7 wide (positions 4 to 11) is over max_gap 5; one 3 wide is not
        let short = lane(&a, |s, o| linear(s, o, &x, None, Some(5.0)));
        assert_eq!(short[2], 30.0);
        assert!(short[4].is_nan());
        // limit 1 fills only the first NaN of a gap
        let c = lane(&[1.0, NAN, NAN, 4.0], |s, o| {
            linear(s, o, &[0.0, 1.0, 2.0, 3.0], Some(1), None)
        });
        assert_eq!(bits(&c), bits(&[1.0, 2.0, NAN, 4.0]));
        // one valid value: left as it is
        let d = lane(&[NAN, 5.0, NAN], |s, o| linear(s, o, &[0.0, 1.0, 2.0], None, None));
        assert_eq!(bits(&d), bits(&[NAN, 5.0, NAN]));
    }
}
