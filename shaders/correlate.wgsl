// One pass of a separable filter, and the constant boundary's reset between passes.
//
// mode 0, correlate in "valid" mode along one axis: the input is (outer, n_in, inner) in C
// order, the output (outer, n_out, inner) with n_out = n_in - (taps - 1); output (oo, i, ii)
// sums w[k] * x[oo, i + k, ii], in the order the CPU path it stands for sums: in k order, or
// with `symmetric` (a gaussian over the last two axes) pairing the taps as the CPU's tile
// kernel does, w[r] x[r] + sum over k < r of w[k] (x[k] + x[2r - k]).
//
// Rounding follows that CPU path too, so results are bitwise its own: with `fused` (the CPU's
// tile kernel on x86-64 with FMA) each tap is one fused multiply-add, exact.wgsl's fma_rn
// (the driver's fma need not be fused); otherwise each product is rounded and then added,
// the product passed through exact.wgsl's `opaque` (an xor with a zero the compiler cannot
// see) so that a driver can neither contract it into an fma with the sum nor regroup it.
//
// mode 1, fill outside: in place on `out`, seen as (outer, n_out, inner), every position whose
// index along the middle axis is outside [lo, hi) becomes `fill` (scipy pads each 1-D pass of
// a constant boundary with the constant itself, not with the filtered constant).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;

struct Params {
    n_total: u32,
    n_in: u32,
    n_out: u32,
    inner: u32,
    taps: u32,
    symmetric: u32,
    mode: u32,
    lo: u32,
    hi: u32,
    fill: f32,
    fused: u32,
    one: f32,
}
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let o = gid.x + gid.y * groups.x * 256u;
    if (o >= params.n_total) {
        return;
    }
    let ii = o % params.inner;
    let i = (o / params.inner) % params.n_out;
    if (params.mode == 1u) {
        if (i < params.lo || i >= params.hi) {
            out[o] = params.fill;
        }
        return;
    }
    let oo = o / (params.inner * params.n_out);
    let base = (oo * params.n_in + i) * params.inner + ii;
    let step = params.inner;
    if (params.symmetric != 0u) {
        let r = params.taps / 2u;
        var acc = opaque(w[r] * x[base + r * step]);
        for (var k = 0u; k < r; k++) {
            acc = madd(w[k], x[base + k * step] + x[base + (2u * r - k) * step], acc);
        }
        out[o] = acc;
    } else {
        var acc = 0.0;
        for (var k = 0u; k < params.taps; k++) {
            acc = madd(w[k], x[base + k * step], acc);
        }
        out[o] = acc;
    }
}

// a * b + c as the CPU path rounds it: one fma, or a rounded product then a rounded sum.
fn madd(a: f32, b: f32, c: f32) -> f32 {
    if (params.fused != 0u) {
        return fma_rn(a, b, c);
    }
    return c + opaque(a * b);
}
