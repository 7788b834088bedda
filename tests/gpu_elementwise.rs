//! Fused elementwise programs on the GPU backend against the CPU backend (the reference):
//! numpy's NaN rules, special values bit for bit, exp/ln/pow within an ulp, arithmetic over
//! many magnitudes and random programs over random shapes, chunkings and NaN patterns, on
//! whatever adapter the machine has (Mesa lavapipe in CI). Without an adapter these tests fail
//! and say how to get one; `STRATA_SKIP_GPU_TESTS=1` skips them with a notice.

mod common;

use common::gpu::*;
use ndarray::{ArrayD, IxDyn};
use proptest::prelude::*;
use strata::backend::gpu::BackendChoice;
use strata::expr::BinaryOp;
use strata::Array;

/// Equal as the CPU computes, to a few f32 ulps: exp, ln and pow are within an ulp of the
/// CPU's (`exp_ln_and_pow_are_within_an_ulp_of_the_cpus`), and a program goes on from them;
/// every other elementwise operation is bitwise.
fn assert_parity(gpu: &ArrayD<f32>, cpu: &ArrayD<f32>, what: &str) {
    assert_eq!(gpu.shape(), cpu.shape(), "{what}");
    for ((i, g), c) in gpu.indexed_iter().zip(cpu.iter()) {
        let ok = (g.is_nan() && c.is_nan())
            || g == c
            || (g - c).abs() <= 4.0 * f32::EPSILON * c.abs().max(f32::MIN_POSITIVE)
            || (g - c).abs() <= 1e-30;
        assert!(ok, "{what} at {i:?}: gpu {g}, cpu {c}");
    }
}

#[test]
fn bit_flags_of_stored_codes_match_numpy_on_both_backends() {
    let gpu = device();
    // Landsat QA_PIXEL-like codes (bit 3 cloud, bit 4 cloud shadow), a fraction and a
    // negative value (truncated, saturated at 0, as numpy's astype(uint32) of them), NaN.
    let codes = [
        0.0,
        8.0,
        24.0,
        16.0,
        21824.0,
        22280.0,
        55052.0,
        65535.0,
        7.9,
        -3.0,
        f32::NAN,
    ];
    let qa = Array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[11]), codes.to_vec()).unwrap(), [4]);
    let nan = f32::NAN;
    // by hand: 22280 = 0x5708 and 55052 = 0xD70C have bit 3 set, 21824 = 0x5540 neither
    let cases: Vec<(&str, Array, Vec<f32>)> = vec![
        (
            "& 24",
            qa.bitwise_and(24),
            vec![0., 8., 24., 16., 0., 8., 8., 24., 0., 0., nan],
        ),
        (
            "| 24",
            qa.bitwise_or(24),
            vec![24., 24., 24., 24., 21848., 22296., 55068., 65535., 31., 24., nan],
        ),
        (
            "& 0xFF00",
            qa.bitwise_and(0xFF00),
            vec![0., 0., 0., 0., 21760., 22272., 55040., 65280., 0., 0., nan],
        ),
        (
            "cloud or shadow",
            qa.bitwise_and(24).ne_scalar(0.0).astype(strata::DType::F32),
            vec![0., 1., 1., 1., 0., 1., 1., 1., 0., 0., 1.],
        ),
        (
            "codes & codes",
            qa.binary(BinaryOp::BitAnd, &(&qa + 8.0)),
            vec![0., 0., 0., 16., 21824., 22272., 55044., 7., 7., 0., nan],
        ),
    ];
    for (name, e, want) in cases {
        let cpu = e.compute_with(&on(BackendChoice::Cpu)).unwrap().0;
        let want = ArrayD::from_shape_vec(IxDyn(&[11]), want).unwrap();
        assert_same_bits(&cpu, &want, &format!("{name} on the CPU"));
        if gpu.is_some() {
            let (on_device, _) = on_gpu_and_cpu(&e);
            assert_same_bits(&on_device, &want, &format!("{name} on the GPU"));
        }
    }
}

#[test]
fn numpy_nan_rules_hold_on_the_device() {
    if device().is_none() {
        return;
    }
    let x = [f32::NAN, 1.0, -2.0, 0.0, f32::INFINITY, -0.0, 3.5, -7.25];
    let y = [2.0, f32::NAN, -2.0, -0.0, 1.0, 0.5, 3.0, 2.0];
    let a = Array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[8]), x.to_vec()).unwrap(), [3]);
    let b = Array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[8]), y.to_vec()).unwrap(), [3]);
    let exprs: Vec<(&str, Array)> = vec![
        ("minimum", a.minimum(&b)),
        ("maximum", a.maximum(&b)),
        ("pow", a.pow(&b)),
        ("lt", a.binary(BinaryOp::Lt, &b).astype(strata::DType::F32)),
        ("ne", a.binary(BinaryOp::Ne, &b).astype(strata::DType::F32)),
        ("eq", a.binary(BinaryOp::Eq, &b).astype(strata::DType::F32)),
        ("isnan", a.isnan().astype(strata::DType::F32)),
        ("fillna", a.fillna(-1.0)),
        ("where", a.binary(BinaryOp::Gt, &b).where_(&a, &b)),
        (
            "to u8",
            (&a * 100.0).astype(strata::DType::U8).astype(strata::DType::F32),
        ),
        ("div", &a / &b),
        ("sqrt exp ln", a.abs().sqrt() + a.exp() - b.abs().ln()),
    ];
    for (name, e) in exprs {
        let (gpu, cpu) = on_gpu_and_cpu(&e);
        if matches!(name, "pow" | "sqrt exp ln") {
            assert_parity(&gpu, &cpu, name);
        } else {
            assert_same_bits(&gpu, &cpu, name);
        }
    }
}

#[test]
fn conditions_powers_and_casts_of_special_values_keep_the_cpus_bits() {
    if device().is_none() {
        return;
    }
    // Bits, signs of zero included (`1 / x` tells them apart). A NaN condition is true, as the
    // CPU's `x != 0.0` (WGSL's float `!=` is ordered, so `where(NaN, a, b)` took b and
    // `NaN and 1` was 0); C's powf on zero and -inf bases (pow(-inf, 0.5) was NaN, pow(-0, -1)
    // +inf, pow(-0, 3) +0); astype(u8) of -0.5 is +0.
    let inf = f32::INFINITY;
    let x = [
        f32::NAN,
        -inf,
        -inf,
        -inf,
        -inf,
        -inf,
        -0.0,
        -0.0,
        -0.0,
        -0.0,
        -0.0,
        -0.0,
        0.0,
        0.0,
        -2.0,
        -0.5,
        -2.0,
        -8.0,
        -0.5,
        2.5,
    ];
    let y = [
        1.0,
        0.5,
        3.0,
        -3.0,
        2.0,
        -2.0,
        -1.0,
        3.0,
        -2.0,
        2.0,
        0.5,
        -0.5,
        -3.0,
        3.0,
        inf,
        inf,
        -inf,
        1.0 / 3.0,
        -0.25,
        f32::NAN,
    ];
    let n = x.len();
    let a = Array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[n]), x.to_vec()).unwrap(), [7]);
    let b = Array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[n]), y.to_vec()).unwrap(), [7]);
    let ones = Array::full(&[n], 1.0, [7]);
    let f32_of = |m: Array| m.astype(strata::DType::F32);
    let exprs: Vec<(&str, Array)> = vec![
        ("where(x, x, y)", a.where_(&a, &b)),
        ("where(y, x, y)", b.where_(&a, &b)),
        ("x and y", f32_of(a.binary(BinaryOp::And, &b))),
        ("x or 0", f32_of(a.binary(BinaryOp::Or, &(&b * 0.0)))),
        ("pow", a.pow(&b)),
        ("1 / pow", &ones / &a.pow(&b)),
        (
            "1 / u8 of x / 4",
            &ones / &f32_of((&a * 0.25).astype(strata::DType::U8)),
        ),
    ];
    for (name, e) in exprs {
        let (gpu, cpu) = on_gpu_and_cpu(&e);
        for ((i, g), c) in gpu.indexed_iter().zip(cpu.iter()) {
            let same = g.to_bits() == c.to_bits() || (g.is_nan() && c.is_nan());
            assert!(
                same,
                "{name} at {i:?} (x {}, y {}): gpu {g:?}, cpu {c:?}",
                x[i[0]], y[i[0]]
            );
        }
    }
}

/// Ulps between the GPU's and the CPU's values, asserted at most 1; the count at 1 ulp.
fn within_one_ulp(name: &str, inputs: &[f32], gpu: &ArrayD<f32>, cpu: &ArrayD<f32>) -> usize {
    let mut off = 0;
    for (i, (g, c)) in gpu.iter().zip(cpu.iter()).enumerate() {
        let apart = ulps_apart(*g, *c);
        assert!(apart <= 1, "{name} of {:?}: gpu {g:?}, cpu {c:?}", inputs[i]);
        off += usize::from(apart == 1);
    }
    println!(
        "{name}: {off} of {} values one ulp from the CPU's, the rest bitwise",
        inputs.len()
    );
    off
}

#[test]
fn exp_ln_and_pow_are_within_an_ulp_of_the_cpus() {
    if device().is_none() {
        return;
    }
    // The drivers' own exp and log are far from libm's (the CPU's): on lavapipe ln(0.99997)
    // was 35,032 ulps off and exp(-84.6) 64; WGSL allows log 2^-21 absolute near 1. The
    // device computes them from exact pairs (shaders/elementary.wgsl). Inputs: ln just either
    // side of 1, over every binade from subnormals up, and of random bit patterns; exp over
    // its whole finite range; pow of random bases and powers whose result stays finite, and of
    // bases near the reduction's edge (sqrt 2) to powers near the range's ends.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let array = |v: &[f32]| Array::from_ndarray(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap(), [4096]);
    let mut xs: Vec<f32> = (0..4096).map(|i| 0.98 + 0.04 * i as f32 / 4096.0).collect();
    xs.extend((0..8192).map(|i| 1e-44f32 * 1.02f32.powi(i)));
    xs.extend((0..8192).map(|_| f32::from_bits((uniform() * f64::from(0x7f7f_ffffu32)) as u32)));
    let (gpu, cpu) = on_gpu_and_cpu(&array(&xs).ln());
    within_one_ulp("ln", &xs, &gpu, &cpu);
    let mut es: Vec<f32> = (0..16384).map(|i| -104.0 + 193.0 * i as f32 / 16384.0).collect();
    es.extend((0..4096).map(|_| (uniform() * 2.0 - 1.0) as f32 * 1e-3));
    let (gpu, cpu) = on_gpu_and_cpu(&array(&es).exp());
    within_one_ulp("exp", &es, &gpu, &cpu);
    let (mut base, mut power) = (Vec::new(), Vec::new());
    for _ in 0..16384 {
        let x = (uniform() * 60.0 - 30.0).exp2() as f32;
        let reach = 85.0 / f64::from(x).ln().abs().max(1e-6);
        base.push(x);
        power.push(((uniform() * 2.0 - 1.0) * reach.min(1e4)) as f32);
    }
    for _ in 0..4096 {
        base.push((0.7 + 0.72 * uniform()) as f32);
        power.push(((uniform() * 2.0 - 1.0) * 240.0) as f32);
    }
    let (gpu, cpu) = on_gpu_and_cpu(&array(&base).pow(&array(&power)));
    within_one_ulp("pow", &base, &gpu, &cpu);
}

#[test]
fn arithmetic_is_bitwise_the_cpus_over_many_magnitudes() {
    if device().is_none() {
        return;
    }
    // Operands over 2^-100 .. 2^100, both signs, with the values reflectance band math sees
    // (0.05 .. 1): division and square root are correctly rounded on the device (operands and
    // quotients outside [2^-60, 2^60] scaled into range first), and products are rounded
    // before any sum (no contraction), so every result is the CPU's bit for bit.
    let n = 1 << 18;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut operand = |wide: bool| {
        let r = next();
        let m = 1.0 + (r >> 41) as f32 / (1u64 << 23) as f32;
        if wide {
            let e = (r >> 8) % 201;
            let sign = if r & 1 == 0 { 1.0 } else { -1.0 };
            sign * m * 2f32.powi(e as i32 - 100)
        } else {
            0.05 + (m - 1.0) * 0.95
        }
    };
    let mut data = |wide| ArrayD::from_shape_fn(IxDyn(&[n]), |_| operand(wide));
    let (a, b, c) = (data(true), data(true), data(false));
    let (r, g) = (data(false), data(false));
    let [a, b, c, r, g] = [a, b, c, r, g].map(|d| Array::from_ndarray(d, [n / 4]));
    for (name, e) in [
        ("a / b", &a / &b),
        ("sqrt |a|", a.abs().sqrt()),
        ("(r - g) / (r + g)", (&r - &g) / (&r + &g)),
        ("a * b + c", &(&a * &b) + &c),
        ("luminance", &(&(&r * 0.2125) + &(&g * 0.7154)) + &(&c * 0.0721)),
        ("(a * c - b) / c", (&(&a * &c) - &b) / &c),
    ] {
        let (gpu, cpu) = on_gpu_and_cpu(&e);
        assert_same_bits(&gpu, &cpu, name);
    }
}

/// A random elementwise expression over three inputs.
#[derive(Debug, Clone)]
enum Expr {
    Input(usize),
    Binary(u8, Box<Expr>, Box<Expr>),
    ScaleAbs(f32, Box<Expr>),
    FillNa(Box<Expr>),
}

impl Expr {
    fn build(&self, xs: &[Array]) -> Array {
        match self {
            Expr::Input(i) => xs[*i].clone(),
            Expr::Binary(op, a, b) => {
                let (a, b) = (a.build(xs), b.build(xs));
                match op {
                    0 => &a + &b,
                    1 => &a - &b,
                    2 => &a * &b,
                    3 => a.minimum(&b),
                    4 => a.maximum(&b),
                    5 => &a / &b,
                    6 => (&a * &b).abs().sqrt() - &b,
                    _ => a.binary(BinaryOp::Lt, &b).where_(&a, &b),
                }
            }
            Expr::ScaleAbs(c, a) => (&a.build(xs) * *c + 0.5).abs(),
            Expr::FillNa(a) => a.build(xs).fillna(0.25),
        }
    }
}

fn expr(depth: u32) -> impl Strategy<Value = Expr> {
    (0usize..3).prop_map(Expr::Input).prop_recursive(depth, 16, 2, |inner| {
        prop_oneof![
            (0u8..8, inner.clone(), inner.clone()).prop_map(|(op, a, b)| Expr::Binary(op, Box::new(a), Box::new(b))),
            (-3.0f32..3.0, inner.clone()).prop_map(|(c, a)| Expr::ScaleAbs(c, Box::new(a))),
            inner.prop_map(|a| Expr::FillNa(Box::new(a))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn fused_programs_match_the_cpu(
        // A lone input has no task for the device to run.
        e in expr(4).prop_filter("an operation", |e| !matches!(e, Expr::Input(_))),
        (rows, cols) in (1usize..40, 1usize..70),
        (cr, cc) in (1usize..20, 1usize..40),
        nan_every in 2usize..9,
        seed in 0u32..1000,
    ) {
        if device().is_none() {
            return Ok(());
        }
        let xs: Vec<Array> = (0..3u32)
            .map(|k| {
                let data = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |ix| {
                    let i = ix[0] * cols + ix[1];
                    if (i + k as usize).is_multiple_of(nan_every) { f32::NAN } else {
                        ((i as u32).wrapping_mul(2654435761).wrapping_add(seed + k) % 2001) as f32 / 100.0 - 10.0
                    }
                });
                Array::from_ndarray(data, [cr, cc])
            })
            .collect();
        let out = e.build(&xs);
        let (gpu, cpu) = on_gpu_and_cpu(&out);
        // +, -, *, /, sqrt, min/max, where, fillna: bitwise (the parity contract)
        assert_same_bits(&gpu, &cpu, "random program");
    }
}
