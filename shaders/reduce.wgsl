// Partial reductions along one axis: sum, mean, count, min, max, their NaN-skipping forms,
// var/std and any/all. One invocation per output state; the host (src/backend/gpu/reduce.rs)
// turns the states into f64 partials and merges or finalizes them exactly as the CPU does.
//
// Layout as in median.wgsl: the block is (outer, len, inner) in C order around the reduced
// (flattened) axis; the states are (outer, groups, inner), STATE_LANES f32 each. State
// o = (oo, g, ii) reads x[(oo * len + t) * inner + ii] for t in group g: the indices
// starts[g] .. starts[g + 1] themselves when `contiguous` (segments of a whole axis, so a long
// axis spreads over many invocations), else members[starts[g] .. starts[g + 1]] (the months of
// a resample).
//
// The input is bound as u32 words: f32 bit patterns, or for masks four u8 per word, so masks
// go up as bytes.
//
// Sums are kept as an unevaluated pair hi + lo: hi the running f32 sum, lo the exact rounding
// error of every addition (Knuth's TwoSum) summed. The pair stays within a few f32 ulps of the
// f64 sum whatever the axis length; the host adds the two in f64. Var/std scale the values
// by the power of two of the largest magnitude, 2^-e (exact), so no sum or square leaves f32's
// range, then take a second pass: squared deviations from the first pass's f32 mean, again as
// a pair; finalize.wgsl or the host corrects for that mean's rounding
// (M2 = sum (x - m)^2 - n (mean - m)^2) and scales back. An infinity leaves the values
// unscaled (e = 0): its sum is not finite, and the variance NaN, as numpy's.
//
// Lanes by mode:
//   0 sums:     hi, lo, count of non-NaN (u32 bits), e (i32 bits): the pair holds the sum
//               times 2^-e, e = 64 where the plain f32 total left f32's range, else 0
//   1 extremes: smallest and largest non-NaN value, count of non-NaN
//   2 var:      hi, lo, count, m, m2 hi, m2 lo (all of values times 2^-e), e (i32 bits)
//   3 zeros:    count of values equal to 0 (any/all)
// A plain (NaN-propagating) reduction is told by the host from count < group length.

const STATE_LANES: u32 = 8u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;

struct Params {
    n_out: u32,
    len: u32,
    inner: u32,
    groups: u32,
    contiguous: u32,
    mode: u32,
    input_u8: u32,
    one: f32,
}
@group(0) @binding(2) var<uniform> params: Params;

// x, starts, members, is_nan and load: shaders/group_input.wgsl, prepended; opaque,
// is_finite, exponent and times_pow2: shaders/exact.wgsl, prepended.

// x index of the m-th value of a group.
fn index(base: u32, m: u32) -> u32 {
    var t = m;
    if (params.contiguous == 0u) {
        t = members[m];
    }
    return base + t * params.inner;
}

// hi + v as a new (hi, lo) pair, the addition's rounding error exactly added to lo
// (exact.wgsl's TwoSum, opaque at every step so no compiler regroups it away).
fn pair_add(acc: vec2<f32>, v: f32) -> vec2<f32> {
    let st = two_sum(acc.x, v);
    return vec2<f32>(st.x, opaque(acc.y + st.y));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let o = gid.x + gid.y * groups.x * 64u;
    if (o >= params.n_out) {
        return;
    }
    let ii = o % params.inner;
    let g = (o / params.inner) % params.groups;
    let oo = o / (params.inner * params.groups);
    let base = oo * params.len * params.inner + ii;
    let first = starts[g];
    let last = starts[g + 1u];
    let s = o * STATE_LANES;
    var n = 0u;
    switch (params.mode) {
        case 1u: {
            var lo = bitcast<f32>(0x7f800000u);
            var hi = bitcast<f32>(0xff800000u);
            for (var m = first; m < last; m++) {
                let v = load(index(base, m));
                if (!is_nan(v)) {
                    if (v < lo) { lo = v; }
                    if (v > hi) { hi = v; }
                    n += 1u;
                }
            }
            out[s] = lo;
            out[s + 1u] = hi;
            out[s + 2u] = bitcast<f32>(n);
        }
        case 3u: {
            for (var m = first; m < last; m++) {
                if (load(index(base, m)) == 0.0) { n += 1u; }
            }
            out[s] = bitcast<f32>(n);
        }
        case 2u: {
            var big = 0.0;
            for (var m = first; m < last; m++) {
                let v = load(index(base, m));
                if (!is_nan(v)) {
                    big = max(big, abs(v));
                }
            }
            var e = 0;
            if (is_finite(big)) {
                e = exponent(big);
            }
            var sum = vec2<f32>(0.0, 0.0);
            for (var m = first; m < last; m++) {
                let v = load(index(base, m));
                if (!is_nan(v)) {
                    sum = pair_add(sum, times_pow2(v, -e));
                    n += 1u;
                }
            }
            let mean = sum.x / f32(max(n, 1u));
            var m2 = vec2<f32>(0.0, 0.0);
            for (var m = first; m < last; m++) {
                let v = load(index(base, m));
                if (!is_nan(v)) {
                    let d = times_pow2(v, -e) - mean;
                    m2 = pair_add(m2, d * d);
                }
            }
            out[s] = sum.x;
            out[s + 1u] = sum.y;
            out[s + 2u] = bitcast<f32>(n);
            out[s + 3u] = mean;
            out[s + 4u] = m2.x;
            out[s + 5u] = m2.y;
            out[s + 6u] = bitcast<f32>(e);
        }
        default: {
            var sum = vec2<f32>(0.0, 0.0);
            for (var m = first; m < last; m++) {
                let v = load(index(base, m));
                if (!is_nan(v)) {
                    sum = pair_add(sum, v);
                    n += 1u;
                }
            }
            // A running f32 total past f32's largest (values near it, a float nodata of
            // -3.4e38 left in) where the CPU's f64 total comes back: the sum again of the
            // values times 2^-64 (exact; an infinity among them stays one, so its inf or NaN
            // is the CPU's too).
            var e = 0;
            if (!is_finite(sum.x)) {
                e = 64;
                sum = vec2<f32>(0.0, 0.0);
                for (var m = first; m < last; m++) {
                    let v = load(index(base, m));
                    if (!is_nan(v)) {
                        sum = pair_add(sum, times_pow2(v, -e));
                    }
                }
            }
            out[s] = sum.x;
            out[s + 1u] = sum.y;
            out[s + 2u] = bitcast<f32>(n);
            out[s + 3u] = bitcast<f32>(e);
        }
    }
}
