// exp, ln and pow in software for the fused elementwise kernel, within about an ulp of the
// CPU's (libm's expf, logf and powf). The drivers' own are far from that: lavapipe computes
// ln x as log2(x) ln 2 with a log2 whose polynomial cancels just below 1 (ln 0.99997 was 35,032
// ulps off) and exp x as exp2(x log2 e) (64 ulps off near -85), and WGSL allows log an absolute
// error of 2^-21 near 1 and exp 3 + 2|x| ulps. Built on exact.wgsl's pairs (included before):
//
// - ln(m 2^e) = e ln 2 + 2 atanh(s), s = (m - 1) / (m + 1), m in [sqrt(1/2), sqrt(2)): s as
//   a pair from its exact residual, the series' leading term 2 s^3 / 3 as a pair too, e ln 2
//   from a 15-bit head (exact times any e) and a tail. Kept as a pair for pow.
// - exp(h + l) = 2^k exp(r), k = round((h + l) / ln 2), r = h - k ln 2 + l as a pair (h - k
//   times the head is exact), exp(r) = 1 + r + r^2 P(r), rounded once, scaled exactly.
// - pow(x, y) = exp(y ln x), the product of y and the pair ln x kept as a pair: its error, times
//   y, is the result's relative error.

// ln 2 as a head of 15 significant bits (k times it is exact for |k| < 512) and a tail.
const LN2_HI: f32 = 0.693145751953125;
const LN2_LO: f32 = 1.4286068e-6;

// exp(h + l), for a pair whose tail l is far smaller than an ulp of h.
fn exp_pair(h: f32, l: f32) -> f32 {
    if (is_nan(h)) {
        return h;
    }
    // exp(88.73) overflows f32 and exp(-103.98) is below its smallest subnormal
    if (h > 89.0) {
        return bitcast<f32>(0x7f800000u);
    }
    if (h < -104.0) {
        return 0.0;
    }
    let k = round(h * 1.44269504);
    // h - k LN2_HI is exact: k LN2_HI has at most 23 significant bits and lies within a
    // factor of two of h (or k is 0)
    let a = opaque(h - opaque(k * LN2_HI));
    let b = two_sum(a, -opaque(k * LN2_LO));
    let r = two_sum(b.x, opaque(b.y + l));
    let x = r.x;
    // exp(x) - 1 - x for |x| <= 0.35: Taylor to x^8 (the next term is under 2^-31)
    let poly = 0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0
        + x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))));
    let p = opaque(opaque(x * x) * poly);
    // 1 + x exactly, then the small terms (the tail's own, (1 + x) r.y, and p) added once
    let s = two_sum(1.0, x);
    let small = opaque(opaque(r.y + opaque(x * r.y)) + p);
    return times_pow2(s.x + opaque(s.y + small), i32(k));
}

// ln x as a pair, for finite x > 0.
fn ln_pair(x_in: f32) -> vec2<f32> {
    var x = x_in;
    var e = 0;
    if (x < pow2(-126)) {
        // a subnormal: scaled up first, exactly
        x = x * pow2(24);
        e = -24;
    }
    e += exponent(x);
    var m = bitcast<f32>((bitcast<u32>(x) & 0x007fffffu) | 0x3f800000u);
    if (m > 1.41421356) {
        m = m * 0.5;
        e += 1;
    }
    // e ln 2 = e LN2_HI (exact) + e LN2_LO
    let ef = f32(e);
    let f = opaque(m - 1.0);
    if (f == 0.0) {
        return two_sum(opaque(ef * LN2_HI), opaque(ef * LN2_LO));
    }
    // s = f / (m + 1) as a pair: the quotient by the exact sum's head, then the residual's
    // share (f - q d.x - q d.y) / d.x; f is exact (m within a factor of two of 1)
    let d = two_sum(m, 1.0);
    let q = f / d.x;
    let q_lo = opaque(opaque(residual(f, q, d.x) - opaque(q * d.y)) / d.x);
    let s = two_sum(q, q_lo);
    // 2 atanh(s) = 2 s + 2 s^3 / 3 + 2 s^3 (s^2 / 5 + s^4 / 7 + ...): the first two as pairs,
    // the rest (under 2^-14 of the result) in plain f32
    let z = s.x * s.x;
    let s2 = two_prod(s.x, s.x);
    let s3 = two_prod(s.x, s2.x);
    let s3_lo = opaque(s3.y + opaque(s.x * s2.y));
    // s^3 / 1.5 as a pair (1.5 is exact)
    let c = s3.x / 1.5;
    let c_lo = opaque(opaque(residual(s3.x, c, 1.5) + s3_lo) / 1.5);
    let rest = opaque(opaque(z * z) * (0.4 + z * (2.0 / 7.0 + z * (2.0 / 9.0 + z * (2.0 / 11.0
        + z * (2.0 / 13.0 + z * (2.0 / 15.0)))))) * s.x);
    // ln m = 2 s + c + (2 s.y + c_lo + rest); the first-order effect of s.y on the series is
    // 2 s^2 s.y
    let head = two_sum(2.0 * s.x, c);
    let tail = opaque(opaque(opaque(2.0 * s.y) + opaque(opaque(2.0 * z) * s.y)) + opaque(c_lo + rest));
    let lnm = two_sum(head.x, opaque(head.y + tail));
    let t = two_sum(opaque(ef * LN2_HI), lnm.x);
    return two_sum(t.x, opaque(t.y + opaque(lnm.y + opaque(ef * LN2_LO))));
}

// exp(x) as libm's expf.
fn np_exp(x: f32) -> f32 {
    return exp_pair(x, 0.0);
}

// ln(x) as libm's logf: NaN below 0, -inf at ±0, inf at inf.
fn np_ln(x: f32) -> f32 {
    if (is_nan(x) || x < 0.0) {
        return bitcast<f32>(NAN_BITS);
    }
    if (x == 0.0) {
        return bitcast<f32>(0xff800000u);
    }
    if (is_inf(x)) {
        return x;
    }
    let l = ln_pair(x);
    return l.x + l.y;
}

// x^y for finite x > 0 (not 1) and y not 0 or NaN: exp(y ln x) with y ln x as a pair.
fn pow_positive(x: f32, y: f32) -> f32 {
    let l = ln_pair(x);
    let p = two_prod_wide(y, l.x);
    if (!is_finite(p.x)) {
        return exp_pair(p.x, 0.0);
    }
    return exp_pair(p.x, opaque(p.y + opaque(y * l.y)));
}
