//! Benchmark data: the same integer formulas as `scripts/bench_baselines.py`, so strata and
//! its Python peers time the same values.
#![allow(dead_code)]

use ndarray::{ArrayD, IxDyn};

/// `cube(T, H, W)`: `((t*7919 + y*104729 + x*1299709) % 1000) / 10`, NaN where
/// `(t*31 + y*17 + x*13) % 10 == 0`.
pub fn cube(t: usize, h: usize, w: usize) -> ArrayD<f32> {
    let mut out = Vec::with_capacity(t * h * w);
    for ti in 0..t as i64 {
        for y in 0..h as i64 {
            for x in 0..w as i64 {
                let nan = (ti * 31 + y * 17 + x * 13) % 10 == 0;
                let v = ((ti * 7919 + y * 104_729 + x * 1_299_709) % 1000) as f64 / 10.0;
                out.push(if nan { f32::NAN } else { v as f32 });
            }
        }
    }
    ArrayD::from_shape_vec(IxDyn(&[t, h, w]), out).unwrap()
}

/// `plane(k, H, W)`: `((k*7 + y*131 + x*197) % 1009) / 1009 + 0.01`, computed in f64.
pub fn plane(k: usize, h: usize, w: usize) -> ArrayD<f32> {
    let k = k as i64;
    ArrayD::from_shape_fn(IxDyn(&[h, w]), |i| {
        let (y, x) = (i[0] as i64, i[1] as i64);
        (((k * 7 + y * 131 + x * 197) % 1009) as f64 / 1009.0 + 0.01) as f32
    })
}

/// `dates(T)`: uneven acquisition days, `t*16 + (t*7) % 5` (days since the first scene).
pub fn dates(t: usize) -> Vec<f64> {
    (0..t).map(|i| (i * 16 + (i * 7) % 5) as f64).collect()
}
