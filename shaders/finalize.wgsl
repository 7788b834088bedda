// Final values of reduction states (the lanes reduce.wgsl writes), on the device, so a
// reduction whose states cover whole groups (the time axis whole in the block, a monthly
// resample) comes back as its result, four bytes a value, instead of eight lanes a state
// merged on the host. The rules are the CPU's `finalize` (src/backend/partial.rs), in f32 with
// the pair arithmetic below where the CPU has f64:
//
//   op 0 sum, 1 nansum, 2 count, 3 mean, 4 nanmean, 5 min, 6 max, 7 nanmin, 8 nanmax,
//   9 nanvar, 10 nanstd, 11 any, 12 all
//
// A NaN-propagating op gives NaN when a group held fewer valid values than members (the
// count lane against starts[g + 1] - starts[g]). Masks (any, all) are written as bytes, four
// to a word: one invocation per output word either way.
//
// Layout: states are (outer, groups, inner) of STATE_LANES f32; output o = (oo, g, ii).

const STATE_LANES: u32 = 8u;

@group(0) @binding(0) var<storage, read> states: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

struct Params {
    n_out: u32,
    inner: u32,
    groups: u32,
    op: u32,
    ddof: f32,
    out_u8: u32,
    one: f32,
    _pad0: u32,
}
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> starts: array<u32>;

const NAN_BITS: u32 = 0x7fc00000u;

fn is_nan(a: f32) -> bool {
    return (bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u;
}

// The pair hi + lo rounded once (hi alone once it is not finite: lo is then NaN).
fn pair(hi: f32, lo: f32) -> f32 {
    if (!is_finite(hi)) {
        return hi;
    }
    return (hi + lo) * params.one;
}

// (hi + lo) / n for a count n > 0: the quotient of hi, corrected by the residual of the whole
// pair (exact.wgsl's residual of hi, plus lo), so the f32 result is within an ulp of the f64
// quotient the CPU rounds. The pair goes in scaled by hi's power of two (exact), so the
// residual is exact at any magnitude (outside [2^-60, 2^60] it dropped lo: a mean of 2^60 and
// 999 values of 0.4 2^37 was 4.8e-5 off).
fn pair_div(hi_in: f32, lo_in: f32, n: f32) -> f32 {
    if (!is_finite(hi_in) || hi_in == 0.0) {
        return div_rn(hi_in, n);
    }
    let k = exponent(hi_in);
    let hi = times_pow2(hi_in, -k);
    let lo = times_pow2(lo_in, -k);
    let q = div_rn(hi, n);
    if (!tame(q)) {
        return times_pow2(q, k);
    }
    return times_pow2(q + opaque(opaque(residual(hi, q, n) + lo) / n), k);
}

// The sum lanes' pair scaled back by their 2^e (reduce.wgsl's lane 3).
fn scale(o: u32, v: f32) -> f32 {
    return times_pow2(v, bitcast<i32>(states[o * STATE_LANES + 3u]));
}

fn value(o: u32) -> f32 {
    let s = o * STATE_LANES;
    let g = (o / params.inner) % params.groups;
    let all = starts[g + 1u] - starts[g];
    let valid = bitcast<u32>(states[s + 2u]);
    let nan = bitcast<f32>(NAN_BITS);
    let partial = valid < all;
    switch (params.op) {
        case 0u: {
            if (partial) { return nan; }
            return scale(o, pair(states[s], states[s + 1u]));
        }
        case 1u: { return scale(o, pair(states[s], states[s + 1u])); }
        case 2u: { return f32(valid); }
        case 3u: {
            if (partial || all == 0u) { return nan; }
            return scale(o, pair_div(states[s], states[s + 1u], f32(all)));
        }
        case 4u: {
            if (valid == 0u) { return nan; }
            return scale(o, pair_div(states[s], states[s + 1u], f32(valid)));
        }
        case 5u: {
            if (partial || all == 0u) { return nan; }
            return states[s];
        }
        case 6u: {
            if (partial || all == 0u) { return nan; }
            return states[s + 1u];
        }
        case 7u: {
            if (valid == 0u) { return nan; }
            return states[s];
        }
        case 8u: {
            if (valid == 0u) { return nan; }
            return states[s + 1u];
        }
        case 9u, 10u: {
            let n = f32(valid);
            let dof = n - params.ddof;
            // an infinity among the values: NaN, as numpy's (values are scaled by 2^-e)
            if (valid == 0u || dof <= 0.0 || !is_finite(states[s])) { return nan; }
            let e = bitcast<i32>(states[s + 6u]);
            // M2 about the f32 mean m, corrected for m's distance from the pair's mean.
            let m = states[s + 3u];
            var shift = 0.0;
            if (tame(m) && tame(states[s])) {
                shift = (residual(states[s], m, n) + states[s + 1u]) / n;
            }
            let m2 = max(pair(states[s + 4u], states[s + 5u]) - (n * shift) * shift * params.one, 0.0);
            let v = div_rn(m2, dof);
            if (params.op == 10u) { return times_pow2(sqrt_rn(v), e); }
            return times_pow2(v, 2 * e);
        }
        case 11u: { return select(0.0, 1.0, all > bitcast<u32>(states[s])); }
        default: { return select(0.0, 1.0, bitcast<u32>(states[s]) == 0u); }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let w = gid.x + gid.y * groups.x * 64u;
    if (params.out_u8 == 0u) {
        if (w < params.n_out) {
            out[w] = bitcast<u32>(value(w));
        }
        return;
    }
    let first = w * 4u;
    if (first >= params.n_out) {
        return;
    }
    var word = 0u;
    for (var k = 0u; k < 4u && first + k < params.n_out; k++) {
        word |= u32(value(first + k)) << (k * 8u);
    }
    out[w] = word;
}
