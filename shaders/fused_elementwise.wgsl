// A fused elementwise kernel: one invocation per element, a straight-line register program.
//
// Slots (written in double braces below) filled by `FusedKernel`'s Display
// (src/backend/gpu/kernel.rs):
//   WORKGROUP_SIZE  threads per workgroup (1-D)
//   INPUTS          one read-only storage binding of u32 words per input block: in0, in1, ...
//                   (f32 bit patterns, or a mask's bytes four to a word)
//   BINDING_OUT     binding number of the output, then constants, then params
//   BINDING_CONSTS
//   CONST_VEC4S     length of the constants' uniform array (constants / 4, rounded up, >= 1)
//   BINDING_PARAMS
//   BODY            `let rN: f32 = ...;` lines; loads read element `idx`
//   RESULT          the register stored
//   STORE           `store_f32` (one f32 per invocation) or `store_u8` (four u8 of a mask
//                   packed in one word, so masks come back as bytes)
//
// Constants live in a uniform buffer (four to a vec4, the uniform array stride), not in the
// source, so a new constant does not compile a new pipeline; only their count is structure. Dispatches are 2-D (at most 65535 workgroups per dimension) and the element
// index is linearised; invocations past the end return at once.
//
// WGSL lets implementations assume NaN never occurs, so every NaN rule of numpy is spelled out
// on the bit pattern rather than left to comparisons.
//
// Results are bitwise the CPU's (see the README's parity contract): every +, -, * is one
// rounded IEEE operation, and / and sqrt are correctly rounded here although WGSL allows 2.5
// ulps. Two things stand in the way on real drivers. Contraction: a driver may fuse a * b + c
// into one fma, which rounds once instead of twice; every product therefore goes through
// exact.wgsl's `opaque` (an xor of its bits with a zero the compiler cannot see, made from
// `params.one`): the product is rounded before anything can use it, and no fma or regrouping
// reaches across an integer operation. (A product multiplied by `one` was not enough: a
// compiler that reassociates may factor `one` out of two such terms and then contract.)
// Division and square root: the driver's approximation is corrected
// by its exact residual and checked against its neighbour (exact.wgsl, included before this).

{{INPUTS}}
@group(0) @binding({{BINDING_OUT}}) var<storage, read_write> out: array<u32>;
@group(0) @binding({{BINDING_CONSTS}}) var<uniform> consts: array<vec4<f32>, {{CONST_VEC4S}}>;

struct Params {
    n: u32,
    // 1.0, unknown to the compiler (see ieee_mul)
    one: f32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding({{BINDING_PARAMS}}) var<uniform> params: Params;

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_inf(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

const NAN_BITS: u32 = 0x7fc00000u;

// IEEE arithmetic spelled out where a compiler assuming no NaN/Inf would fold: x - x to 0,
// x / x to 1 (both NaN for NaN or infinite x on the CPU).
fn ieee_add(a: f32, b: f32) -> f32 {
    if (either_nan(a, b) || (is_inf(a) && is_inf(b) && bitcast<u32>(a) != bitcast<u32>(b))) {
        return bitcast<f32>(NAN_BITS);
    }
    return a + b;
}

fn ieee_sub(a: f32, b: f32) -> f32 {
    if (either_nan(a, b) || (is_inf(a) && bitcast<u32>(a) == bitcast<u32>(b))) {
        return bitcast<f32>(NAN_BITS);
    }
    return a - b;
}

fn ieee_mul(a: f32, b: f32) -> f32 {
    if (either_nan(a, b)) {
        return bitcast<f32>(NAN_BITS);
    }
    return opaque(a * b);
}

fn ieee_div(a: f32, b: f32) -> f32 {
    let zero_a = (bitcast<u32>(a) & 0x7fffffffu) == 0u;
    let zero_b = (bitcast<u32>(b) & 0x7fffffffu) == 0u;
    if (either_nan(a, b) || (is_inf(a) && is_inf(b)) || (zero_a && zero_b)) {
        return bitcast<f32>(NAN_BITS);
    }
    return div_rn(a, b);
}

fn ieee_sqrt(x: f32) -> f32 {
    return sqrt_rn(x);
}

fn mask(c: bool) -> f32 {
    return select(0.0, 1.0, c);
}

fn either_nan(x: f32, y: f32) -> bool {
    return is_nan(x) || is_nan(y);
}

// numpy's minimum/maximum: NaN if either operand is NaN.
fn np_min(x: f32, y: f32) -> f32 {
    if (is_nan(x)) { return x; }
    if (is_nan(y)) { return y; }
    return select(y, x, x < y);
}

fn np_max(x: f32, y: f32) -> f32 {
    if (is_nan(x)) { return x; }
    if (is_nan(y)) { return y; }
    return select(y, x, x > y);
}

// numpy's bitwise_and/or on the integer values: truncated toward zero and saturated to u32
// (WGSL's u32(f32) conversion, as Rust's `as u32`), NaN propagated.
fn bit_and(x: f32, y: f32) -> f32 {
    if (is_nan(x)) { return x; }
    if (is_nan(y)) { return y; }
    return f32(u32(x) & u32(y));
}

fn bit_or(x: f32, y: f32) -> f32 {
    if (is_nan(x)) { return x; }
    if (is_nan(y)) { return y; }
    return f32(u32(x) | u32(y));
}

// A value as a condition, as the CPU's `x != 0.0`: NaN is true. WGSL's `!=` on floats is
// ordered (naga emits FOrdNotEqual), false for NaN, so `where(NaN, a, b)` took b.
fn truthy(x: f32) -> bool {
    return is_nan(x) || x != 0.0;
}

// Whether y is an odd integer (every f32 of 2^24 or more is even).
fn odd_integer(y: f32) -> bool {
    return trunc(y) == y && abs(y) < 16777216.0 && (i32(abs(y)) & 1) == 1;
}

// C's powf (Rust's f32::powf, the CPU's): the special cases spelled out (a zero or -inf base
// keeps its sign for odd integer powers, pow(-0, -1) = -inf, pow(-inf, 0.5) = inf), the rest
// elementary.wgsl's exp(y ln x).
fn np_pow(x: f32, y: f32) -> f32 {
    if (y == 0.0 || x == 1.0) { return 1.0; }
    if (x == -1.0 && is_inf(y)) { return 1.0; }
    if (is_nan(x) || is_nan(y)) { return bitcast<f32>(NAN_BITS); }
    let inf = bitcast<f32>(0x7f800000u);
    let negative = (bitcast<u32>(x) & 0x80000000u) != 0u;
    if (x == 0.0 || (is_inf(x) && negative)) {
        // pow(-inf, y) is pow(-0, -y)
        let m = select(inf, 0.0, (y > 0.0) == (x == 0.0));
        return select(m, -m, negative && odd_integer(y));
    }
    if (is_inf(x)) {
        return select(0.0, inf, y > 0.0);
    }
    if (x < 0.0) {
        if (trunc(y) != y) { return bitcast<f32>(NAN_BITS); }
        let m = pow_positive(-x, y);
        return select(m, -m, odd_integer(y));
    }
    return pow_positive(x, y);
}

// Element i of a mask bound as words.
fn byte_of(word: u32, i: u32) -> f32 {
    return f32((word >> ((i & 3u) * 8u)) & 0xffu);
}

// astype(uint8) and back: truncate toward zero, saturate, NaN → 0 (+0 always: clamp may keep
// trunc(-0.5)'s sign, and 1 / x would tell).
fn to_u8(x: f32) -> f32 {
    if (!(x >= 1.0)) { return 0.0; }
    return min(trunc(x), 255.0);
}

fn element(idx: u32) -> f32 {
{{BODY}}
    return {{RESULT}};
}

fn store_f32(w: u32) {
    if (w < params.n) {
        out[w] = bitcast<u32>(element(w));
    }
}

fn store_u8(w: u32) {
    let first = w * 4u;
    if (first >= params.n) {
        return;
    }
    var word = 0u;
    for (var k = 0u; k < 4u && first + k < params.n; k++) {
        word |= u32(to_u8(element(first + k))) << (k * 8u);
    }
    out[w] = word;
}

@compute @workgroup_size({{WORKGROUP_SIZE}})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let w = gid.x + gid.y * groups.x * {{WORKGROUP_SIZE}}u;
    _ = consts[0]; // keeps the binding in the layout when the program has no constants
    {{STORE}}(w);
}
