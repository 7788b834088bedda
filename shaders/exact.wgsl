// Correctly rounded division and square root, and the exact residuals they rest on, for
// shaders whose uniform `params` has a field `one` (1.0, unknown to the compiler), and exact
// scaling by powers of two. Included ahead of elementary.wgsl and fused_elementwise.wgsl,
// correlate.wgsl, along.wgsl, median.wgsl, reduce.wgsl and finalize.wgsl (see
// src/backend/gpu/kernels.rs and reduce.rs).
//
// WGSL allows a / b and sqrt 2.5 ulps of error, lets fma be unfused (lavapipe lowers it to a
// multiply and an add) and lets a driver contract a * b + c into one fma. So the residuals
// below use Dekker's exact product with plain operations, every product rounded through
// `opaque` before an add can meet it.

// Whether |x| lies in [2^-60, 2^60]: products, splits and residuals of such values neither
// overflow nor lose bits to subnormals, so the residuals below are exact.
fn tame(x: f32) -> bool {
    let e = (bitcast<u32>(x) >> 23u) & 0xffu;
    return e >= 67u && e <= 187u;
}

// Every intermediate below goes through `opaque` (an xor of its bits with a zero the compiler
// cannot see): WGSL lets a compiler reassociate (lavapipe does), which would fold c - (c - x)
// to x and turn the error terms into noise. Products by `one` (a 1.0 it cannot see) stopped
// regrouping within one helper but not always across them: in shaders/elementary.wgsl's ln,
// TwoSum of e ln 2 and ln m, whose exact sum is a tie, came back with an error term of 0 on
// lavapipe. An xor leaves nothing to regroup.

// x as hi + lo, each of 12 significant bits (Veltkamp's split), exactly.
fn split(x: f32) -> vec2<f32> {
    let c = opaque(4097.0 * x);
    let hi = opaque(c - opaque(c - x));
    return vec2<f32>(hi, opaque(x - hi));
}

// a b as p + e exactly (Dekker): p the rounded product, e its error.
fn two_prod(a_in: f32, b_in: f32) -> vec2<f32> {
    let a = opaque(a_in);
    let b = opaque(b_in);
    let p = opaque(a * b);
    let x = split(a);
    let y = split(b);
    // products of 12-bit halves are exact, so contracting them into fmas changes nothing
    let e = opaque(opaque(opaque(opaque(x.x * y.x - p) + x.x * y.y) + x.y * y.x) + x.y * y.y);
    return vec2<f32>(p, e);
}

// a b as p + e for any finite a and b (two_prod's split overflows past 2^115, and the product
// of its halves can where a b nears f32's largest): past 2^100 in a factor or 2^120 in the
// product, the larger factor goes in scaled by 2^-40 and the error comes back scaled by 2^40,
// both exact (the scaled factor stays above 2^20 and the scaled product above 2^-89). An
// infinite p is returned as it is, for the caller to test.
fn two_prod_wide(a: f32, b: f32) -> vec2<f32> {
    let p = opaque(opaque(a) * opaque(b));
    if (!(max(abs(a), abs(b)) >= pow2(100) || abs(p) >= pow2(120))) {
        return two_prod(a, b);
    }
    let a_larger = abs(a) >= abs(b);
    let pe = two_prod(select(a, a * pow2(-40), a_larger), select(b * pow2(-40), b, a_larger));
    return vec2<f32>(p, opaque(pe.y * pow2(40)));
}

// x itself, through an integer operation the compiler cannot see through (an xor with the
// bits of `one` xor those of 1.0: zero, unknown to it). `* one` stops a compiler from
// regrouping the operations of one helper, but not from factoring `one` out of operands
// that both carry it (p * one + q * one into (p + q) * one) and cancelling a TwoSum's error
// term; an opaque value has no history to regroup.
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ (bitcast<u32>(params.one) ^ 0x3f800000u));
}

// x with a zero made +0, in integer operations (WGSL lets a compiler ignore a zero's sign in
// float ones): a median or quantile that is zero is +0 on every backend and path, whichever
// zero a selection or sort left in the middle (the CPU's `median::positive_zero`).
fn positive_zero(x: f32) -> f32 {
    let bits = bitcast<u32>(x);
    return bitcast<f32>(select(bits, 0u, (bits & 0x7fffffffu) == 0u));
}

// a + b as s + t exactly (Knuth's TwoSum).
fn two_sum(a_in: f32, b_in: f32) -> vec2<f32> {
    let a = opaque(a_in);
    let b = opaque(b_in);
    let s = opaque(a + b);
    let bb = opaque(s - a);
    let t = opaque(opaque(a - opaque(s - bb)) + opaque(b - bb));
    return vec2<f32>(s, t);
}

// a - q b exactly, then rounded once: a - p is exact when p is near a.
fn residual(a: f32, q: f32, b: f32) -> f32 {
    let pe = two_prod(q, b);
    return opaque(opaque(a - pe.x) - pe.y);
}

// fma(a, b, c) rounded once, whether or not the driver fuses its fma (lavapipe does not):
// c + p + e summed exactly, the low part rounded to odd, then the whole rounded to nearest
// (Boldo and Melquiond's emulation). Exact for tame a, b, c. Where b or c is not (a gaussian
// of values near 1e18 or 1e-25, whose pixels came out one ulp off), b and c go in scaled by
// the larger's power of two (exact) and the result comes back scaled; a weight a that is not
// tame, or a c far smaller than b, takes the driver's fma.
fn fma_rn(a: f32, b: f32, c: f32) -> f32 {
    if (tame_or_zero(a) && tame_or_zero(b) && tame_or_zero(c)) {
        return fma_tame(a, b, c);
    }
    if (!(tame_or_zero(a) && is_finite(b) && is_finite(c))) {
        return fma(a, b, c);
    }
    let k = exponent(max(abs(b), abs(c)));
    let bs = times_pow2(b, -k);
    let cs = times_pow2(c, -k);
    if (!(tame_or_zero(bs) && tame_or_zero(cs))) {
        return fma(a, b, c);
    }
    return times_pow2(fma_tame(a, bs, cs), k);
}

// fma_rn for tame (or zero) a, b and c.
fn fma_tame(a: f32, b: f32, c: f32) -> f32 {
    let pe = two_prod(a, b);
    let st = two_sum(c, pe.x);
    let uw = two_sum(st.y, pe.y);
    var u = uw.x;
    if (uw.y != 0.0 && (bitcast<u32>(u) & 1u) == 0u) {
        u = next_toward_any(u, uw.y > 0.0);
    }
    return (st.x + u) * params.one;
}

fn tame_or_zero(x: f32) -> bool {
    return tame(x) || (bitcast<u32>(x) & 0x7fffffffu) == 0u;
}

// The f32 next to x toward +inf when `up`, else toward -inf (zero included).
fn next_toward_any(x: f32, up: bool) -> f32 {
    if ((bitcast<u32>(x) & 0x7fffffffu) == 0u) {
        return select(bitcast<f32>(0x80000001u), bitcast<f32>(1u), up);
    }
    return next_toward(x, up);
}

// The f32 next to x (finite, nonzero) toward +inf when `up`, else toward -inf.
fn next_toward(x: f32, up: bool) -> f32 {
    let bits = bitcast<u32>(x);
    if ((x > 0.0) == up) {
        return bitcast<f32>(bits + 1u);
    }
    return bitcast<f32>(bits - 1u);
}

// a / b correctly rounded, for finite nonzero operands (others: the driver's a / b, which
// WGSL allows 2.5 ulps). Operands or a quotient outside [2^-60, 2^60] go in scaled by their
// powers of two (exact) and the quotient comes back scaled, exact unless it is subnormal.
fn div_rn(a: f32, b: f32) -> f32 {
    let q0 = a / b;
    if (tame(a) && tame(b) && tame(q0)) {
        return div_tame(a, b, q0);
    }
    if (!(is_finite(a) && is_finite(b)) || a == 0.0 || b == 0.0) {
        return q0;
    }
    let ka = exponent(a);
    let kb = exponent(b);
    let sa = times_pow2(a, -ka);
    let sb = times_pow2(b, -kb);
    let q = times_pow2(div_tame(sa, sb, sa / sb), ka - kb);
    // a subnormal quotient would be rounded twice
    if (abs(q) < pow2(-126)) {
        return q0;
    }
    return q;
}

// div_rn for tame a, b and first quotient q0.
fn div_tame(a: f32, b: f32, q0: f32) -> f32 {
    // One correction by the exact residual, then the neighbour on the residual's side if it
    // is nearer (|a - q b| / |b| is q's distance to a / b; a quotient is never a midpoint).
    let q = q0 + residual(a, q0, b) / b;
    let r = residual(a, q, b);
    let c = next_toward(q, (r > 0.0) == (b > 0.0));
    if (abs(residual(a, c, b)) < abs(r)) {
        return c;
    }
    return q;
}

// sqrt(x) correctly rounded the same way (a root is never a midpoint either, and the
// residuals x - s s order the candidates as their distances do).
fn sqrt_rn(x: f32) -> f32 {
    let s0 = sqrt(x);
    if (tame(x) && x > 0.0) {
        return sqrt_tame(x, s0);
    }
    if (!(is_finite(x) && x > 0.0)) {
        return s0;
    }
    // outside [2^-60, 2^60]: scaled by an even power of two, exactly, and back by its half
    let k = exponent(x) & ~1;
    let sx = times_pow2(x, -k);
    return times_pow2(sqrt_tame(sx, sqrt(sx)), k / 2);
}

// sqrt_rn for tame x > 0 and first root s0.
fn sqrt_tame(x: f32, s0: f32) -> f32 {
    let s = s0 + residual(x, s0, s0) / (2.0 * s0);
    let r = residual(x, s, s);
    let c = next_toward(s, r > 0.0);
    if (abs(residual(x, c, c)) < abs(r)) {
        return c;
    }
    return s;
}

fn is_finite(a: f32) -> bool {
    return (bitcast<u32>(a) & 0x7fffffffu) < 0x7f800000u;
}

// 2^k for k in -126..=127.
fn pow2(k: i32) -> f32 {
    return bitcast<f32>(u32(k + 127) << 23u);
}

// x 2^k for k in -254..=254, exact while the result stays normal: three factors of at most
// 2^85 each (every one normal, all of k's sign, so the partial products lie between x and the
// result), each product opaque so no compiler folds two factors into one that overflows. No
// loops: Mesa's llvmpipe stops a shader's loops after 65535 iterations, all loops together.
fn times_pow2(x: f32, k: i32) -> f32 {
    let a = k / 3;
    let b = (k - a) / 2;
    return opaque(opaque(x * pow2(a)) * pow2(b)) * pow2(k - a - b);
}

// The exponent of |x| (x = m 2^e, 1 <= m < 2), -126 for subnormals and zero.
fn exponent(x: f32) -> i32 {
    return max(i32((bitcast<u32>(x) >> 23u) & 0xffu), 1) - 127;
}
