// Correctly rounded division and square root, and the exact residuals they rest on, for
// shaders whose uniform `params` has a field `one` (1.0, unknown to the compiler). Included
// ahead of fused_elementwise.wgsl and finalize.wgsl (see src/backend/gpu/kernels.rs).
//
// WGSL allows a / b and sqrt 2.5 ulps of error, lets fma be unfused (lavapipe lowers it to a
// multiply and an add) and lets a driver contract a * b + c into one fma. So the residuals
// below use Dekker's exact product with plain operations, every product rounded through
// `one` before an add can meet it.

// Whether |x| lies in [2^-60, 2^60]: products, splits and residuals of such values neither
// overflow nor lose bits to subnormals, so the residuals below are exact.
fn tame(x: f32) -> bool {
    let e = (bitcast<u32>(x) >> 23u) & 0xffu;
    return e >= 67u && e <= 187u;
}

// x as hi + lo, each of 12 significant bits (Veltkamp's split), exactly.
fn split(x: f32) -> vec2<f32> {
    let c = (4097.0 * x) * params.one;
    let hi = c - (c - x);
    return vec2<f32>(hi, x - hi);
}

// a - q b exactly, then rounded once (Dekker's product: q b = p + e exactly; a - p is exact
// when p is near a). Plain multiplies and adds, so it holds on drivers whose fma is not fused
// (lavapipe lowers fma to a multiply and an add); the products of halves are exact, so a
// driver contracting them changes nothing.
fn residual(a: f32, q: f32, b: f32) -> f32 {
    let p = (q * b) * params.one;
    let qs = split(q);
    let bs = split(b);
    let e = ((qs.x * bs.x - p) + qs.x * bs.y + qs.y * bs.x) + qs.y * bs.y;
    return (a - p) - e;
}

// The f32 next to x (finite, nonzero) toward +inf when `up`, else toward -inf.
fn next_toward(x: f32, up: bool) -> f32 {
    let bits = bitcast<u32>(x);
    if ((x > 0.0) == up) {
        return bitcast<f32>(bits + 1u);
    }
    return bitcast<f32>(bits - 1u);
}

// a / b correctly rounded, for finite nonzero operands (others: the driver's a / b).
fn div_rn(a: f32, b: f32) -> f32 {
    let q0 = a / b;
    if (!(tame(a) && tame(b) && tame(q0))) {
        return q0;
    }
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
    if (!(tame(x) && x > 0.0)) {
        return s0;
    }
    let s = s0 + residual(x, s0, s0) / (2.0 * s0);
    let r = residual(x, s, s);
    let c = next_toward(s, r > 0.0);
    if (abs(residual(x, c, c)) < abs(r)) {
        return c;
    }
    return s;
}
