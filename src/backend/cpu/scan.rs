//! Running sums and products along one axis (numpy's `nancumsum`/`nancumprod`, xarray's
//! `cumsum`/`cumprod`) over a run of pixels, every pixel's total in f64.

use std::mem::MaybeUninit;

use crate::expr::ScanOp as Scan;

/// The scan over a run: `steps[t]` is step `t` of every pixel, written to `outs[t]`.
/// Compiled for AVX2 where the CPU has it (the same arithmetic, 4 pixels a lane), one
/// instance per scan and NaN rule so the inner loop holds no choice but the NaN blend.
pub(super) fn running(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]], scan: Scan, skipna: bool) {
    match (scan, skipna) {
        (Scan::Sum, true) => running_on::<false, true>(steps, outs),
        (Scan::Sum, false) => running_on::<false, false>(steps, outs),
        (Scan::Prod, true) => running_on::<true, true>(steps, outs),
        (Scan::Prod, false) => running_on::<true, false>(steps, outs),
    }
}

fn running_on<const PROD: bool, const SKIPNA: bool>(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { running_avx2::<PROD, SKIPNA>(steps, outs) };
    }
    running_generic::<PROD, SKIPNA>(steps, outs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn running_avx2<const PROD: bool, const SKIPNA: bool>(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]]) {
    running_generic::<PROD, SKIPNA>(steps, outs)
}

/// One f64 total per pixel, carried from step to step; a skipped NaN adds the identity, chosen
/// without a branch so the loop vectorises.
#[inline(always)]
fn running_generic<const PROD: bool, const SKIPNA: bool>(steps: &[&[f32]], outs: &mut [&mut [MaybeUninit<f32>]]) {
    let Some(len) = outs.first().map(|o| o.len()) else {
        return;
    };
    let identity = if PROD { 1.0 } else { 0.0 };
    let mut total = vec![identity; len];
    for (src, dst) in steps.iter().zip(outs.iter_mut()) {
        let (src, dst) = (&src[..len], &mut dst[..len]);
        for k in 0..len {
            let v = f64::from(src[k]);
            let v = if SKIPNA && v.is_nan() { identity } else { v };
            let t = if PROD { total[k] * v } else { total[k] + v };
            total[k] = t;
            dst[k] = MaybeUninit::new(t as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_of(series: &[&[f32]], scan: Scan, skipna: bool) -> Vec<Vec<f32>> {
        let len = series[0].len();
        let mut outs = vec![vec![MaybeUninit::new(f32::NAN); len]; series.len()];
        let mut views: Vec<&mut [MaybeUninit<f32>]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        running(series, &mut views, scan, skipna);
        // SAFETY: `running` wrote every element (and they started initialised anyway).
        outs.into_iter()
            .map(|o| o.into_iter().map(|v| unsafe { v.assume_init() }).collect())
            .collect()
    }

    fn same(got: &[Vec<f32>], want: &[[f32; 2]]) -> bool {
        got.iter()
            .zip(want)
            .all(|(g, w)| g.iter().zip(w).all(|(a, b)| a == b || (a.is_nan() && b.is_nan())))
    }

    #[test]
    fn sums_and_products_by_hand() {
        let nan = f32::NAN;
        // two pixels: [1, NaN, 2, NaN, 3] and [NaN, NaN, 2, -4, 0.5]
        let series: [&[f32]; 5] = [&[1.0, nan], &[nan, nan], &[2.0, 2.0], &[nan, -4.0], &[3.0, 0.5]];
        let sums = scan_of(&series, Scan::Sum, true);
        assert!(
            same(&sums, &[[1.0, 0.0], [1.0, 0.0], [3.0, 2.0], [3.0, -2.0], [6.0, -1.5]]),
            "{sums:?}"
        );
        let prods = scan_of(&series, Scan::Prod, true);
        assert!(
            same(&prods, &[[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [2.0, -8.0], [6.0, -4.0]]),
            "{prods:?}"
        );
        let plain = scan_of(&series, Scan::Sum, false);
        assert!(
            same(&plain, &[[1.0, nan], [nan, nan], [nan, nan], [nan, nan], [nan, nan]]),
            "{plain:?}"
        );
    }

    #[test]
    fn long_sums_round_once() {
        // 0.1 added 10^6 times: an f32 running sum drifts to about 100958; the f64 total
        // rounds to the f32 nearest 100000.
        let step = [0.1f32];
        let series: Vec<&[f32]> = (0..1_000_000).map(|_| &step[..]).collect();
        let sums = scan_of(&series, Scan::Sum, true);
        let want = (1_000_000.0 * f64::from(0.1f32)) as f32;
        assert_eq!(sums.last().unwrap()[0], want);
        assert!((want - 100_000.0).abs() < 0.01);
    }
}
