// Work along one axis held whole in the block (strata's AlongOp on the device): forward and
// backward fill (bottleneck's push), linear gap interpolation (xarray's interpolate_na),
// running sums and products (nancumsum, cumprod), and moving-window counts, sums, means,
// extremes, variances, deviations and medians (xarray's rolling). One invocation
// per pixel walks the pixel's steps in order, so adjacent invocations read adjacent words.
//
// Slot (double braces, filled by `AlongKernel`'s Display, src/backend/gpu/kernels.rs):
//   MEDIAN_LEN  the private array a moving median sorts each window's values in (the window's
//               steps rounded up to a power of two; 1 for every other op)
//
// Layout: the block is (outer, len, inner) in C order around the axis; pixel p = (oo, ii)
// reads and writes x[(oo * len + t) * inner + ii] for t in 0..len.
//
// Fills, extremes and medians only choose values (a median of an even count adds its middle
// two and halves, as the CPU does): bit for bit the CPU's. Sums and products are kept as
// an unevaluated pair hi + lo (TwoSum, and exact.wgsl's Dekker product), which stays within a
// few f32 ulps of the CPU's f64 totals; each output is the pair rounded once. A mean divides
// that sum by the count, correctly rounded (exact.wgsl's div_rn): within an ulp of the CPU's
// f64 quotient. A variance (or deviation) scales the window's values by the power of two of
// the largest, so no square or sum leaves f32's range, and takes two passes: the mean and the
// squared deviations from it as pairs, their quotients corrected by exact residuals, so it is
// the CPU's f64 two-pass value rounded but for a rare ulp. An interpolated value keeps positions, their differences, the weight dt / dq
// and the rise fq - fp as pairs, so it is the CPU's f64 numpy.interp rounded but for rare
// values an ulp away (tests/gpu_along.rs counts them).

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

struct Params {
    n_pixels: u32,
    len: u32,
    inner: u32,
    // 0 fill, 1 running sum, 2 running product, 3 moving window, 4 linear gap interpolation
    mode: u32,
    // fill: 1 backward; running: 1 NaN skipped; window: 0 count, 1 sum, 2 mean, 3 min, 4 max,
    // 5 median, 6 variance, 7 standard deviation
    flag: u32,
    // fill, interpolation: the most NaN in a row filled; window: the non-NaN values a result
    // needs
    limit: u32,
    // window: the offset from a step to its window's first step, and the window's steps
    first: i32,
    size: u32,
    // 1.0, unknown to the compiler (exact.wgsl)
    one: f32,
    // window: a variance's delta degrees of freedom
    ddof: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(2) var<uniform> params: Params;
// interpolation (one word for the other modes): each step's position less the first's, as an
// f32 pair hi + lo of the f64 value; and for each step p, the last step q whose position lies
// at most max_gap past p's (computed in f64 on the host, so the gap test is the CPU's)
@group(0) @binding(3) var<storage, read> pos: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> reach: array<u32>;

// opaque, is_finite, two_sum, two_prod, div_rn, sqrt_rn, exponent and times_pow2:
// shaders/exact.wgsl, prepended.

fn is_nan(a: f32) -> bool {
    return (bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u;
}

fn nan() -> f32 {
    return bitcast<f32>(0x7fc00000u);
}

// Pairs: hi is the running f32 total, lo the exact rounding errors of its steps summed; the
// value is hi + lo, rounded once when it is written. The pair is never renormalised, and each
// error term comes from exact.wgsl, whose every step goes through `opaque`: a compiler allowed
// to reassociate (lavapipe is) otherwise cancels TwoSum's error term. An infinite or NaN total
// stands alone (its error terms would be NaN).

// acc + v as a pair (Knuth's TwoSum of the step).
fn pair_add(acc: vec2<f32>, v: f32) -> vec2<f32> {
    let st = two_sum(acc.x, v);
    if (!is_finite(st.x)) {
        return vec2<f32>(st.x, 0.0);
    }
    return vec2<f32>(st.x, opaque(acc.y + st.y));
}

// acc * v as a pair (Dekker's exact product of hi, lo scaled), at any finite magnitude (a
// running product past 2^115 overflowed two_prod's split: cumprod([1e35]) gave NaN).
fn pair_mul(acc: vec2<f32>, v: f32) -> vec2<f32> {
    let p = two_prod_wide(acc.x, v);
    if (!is_finite(p.x)) {
        return vec2<f32>(p.x, 0.0);
    }
    return vec2<f32>(p.x, opaque(p.y + opaque(acc.y * v)));
}

// The pair's value, rounded once.
fn value(acc: vec2<f32>) -> f32 {
    if (!is_finite(acc.x)) {
        return acc.x;
    }
    return acc.x + acc.y;
}

// pos[a] - pos[b] as a pair: the hi parts' difference exactly, the lo parts' added to its
// error term.
fn gap(a: u32, b: u32) -> vec2<f32> {
    let pa = pos[a];
    let pb = pos[b];
    let h = two_sum(pa.x, -pb.x);
    return vec2<f32>(h.x, opaque(h.y + opaque(pa.y - pb.y)));
}

// numpy.interp's value between (0, fp) and (dq, fq) at dt (pairs): fp + (fq - fp) (dt / dq),
// the weight, the difference and their product kept as pairs, rounded once at the end.
// Ends of 2^100 or more go in scaled by 2^-32 (see median.wgsl's lerp for why that is exact
// where it matters), so their difference and its split stay in f32's range.
fn lerp(fp_in: f32, fq_in: f32, dt: vec2<f32>, dq: vec2<f32>) -> f32 {
    let w = div_rn(dt.x, dq.x);
    if (!(is_finite(fp_in) && is_finite(fq_in))) {
        return fp_in + (fq_in - fp_in) * w;
    }
    let k = select(0, 32, max(abs(fp_in), abs(fq_in)) >= pow2(100));
    let fp = times_pow2(fp_in, -k);
    let fq = times_pow2(fq_in, -k);
    let d = two_sum(fq, -fp);
    // the weight's remainder: (dt - w dq) / dq, the hi parts' residual exact
    let r = opaque(opaque(residual(dt.x, w, dq.x) + dt.y) - opaque(w * dq.y));
    let w_lo = opaque(r / dq.x);
    let p = two_prod(d.x, w);
    let e = opaque(opaque(p.y + opaque(d.x * w_lo)) + opaque(d.y * w));
    let s = two_sum(fp, p.x);
    return times_pow2((s.x + opaque(s.y + e)) * params.one, k);
}

// xarray's linear interpolate_na: each NaN between valid steps p and q becomes numpy.interp's
// value there unless it lies more than `limit` past p or the gap is wider than max_gap; NaN
// before the first or after the last valid step stay. Two passes of n steps each, whatever
// the NaNs: a backward one writes at each NaN the index of the next valid step (as an f32,
// exact below 2^24, which `fits` in along.rs requires; -1 for none), a forward one the values.
// Loops whose trip counts depend on each pixel's data (a loop over each gap) cost llvmpipe,
// which runs 8 adjacent pixels as one vector and counts its loop limit per vector, the
// longest gap among them at every step: up to 9 n iterations instead of 2 n.
fn interpolate(base: u32) {
    let n = params.len;
    var next = -1.0;
    for (var i = 0u; i < n; i++) {
        let t = n - 1u - i;
        if (is_nan(x[at(base, t)])) {
            out[at(base, t)] = next;
        } else {
            next = f32(t);
        }
    }
    let none = 0xffffffffu;
    var p = none;
    var fp = 0.0;
    for (var s = 0u; s < n; s++) {
        let fs = x[at(base, s)];
        if (!is_nan(fs)) {
            out[at(base, s)] = fs;
            p = s;
            fp = fs;
            continue;
        }
        let q = out[at(base, s)];
        var v = nan();
        if (p != none && q >= 0.0 && s - p <= params.limit && u32(q) <= reach[p]) {
            v = lerp(fp, x[at(base, u32(q))], gap(s, p), gap(u32(q), p));
        }
        out[at(base, s)] = v;
    }
}

// The pair s divided by k: the quotient of s's rounded value, correctly rounded, and the
// remainder's share (that quotient's exact residual plus s's own rounding error, over k).
fn pair_div(s: vec2<f32>, k: f32) -> vec2<f32> {
    let v = two_sum(s.x, s.y);
    let q = div_rn(v.x, k);
    let r = opaque(residual(v.x, q, k) + v.y);
    return vec2<f32>(q, opaque(r / k));
}

// The NaN-skipping variance over n - ddof (or its root) of the window's steps lo..hi, which
// hold n values, the largest in magnitude `big`: two passes over values scaled by big's power
// of two (exact), the mean and the squared deviations from it as pairs.
fn spread(base: u32, lo: i32, hi: i32, n: u32, big: f32, root: bool) -> f32 {
    if (!is_finite(big)) {
        return nan();
    }
    let e = exponent(big);
    var sum = vec2<f32>(0.0, 0.0);
    for (var s = lo; s < hi; s++) {
        let v = x[at(base, u32(s))];
        if (!is_nan(v)) {
            sum = pair_add(sum, times_pow2(v, -e));
        }
    }
    let mean = pair_div(sum, f32(n));
    var m2 = vec2<f32>(0.0, 0.0);
    for (var s = lo; s < hi; s++) {
        let v = x[at(base, u32(s))];
        if (is_nan(v)) {
            continue;
        }
        // d = v - mean as hi + lo, then d^2 = hi^2 (exactly, as a pair) + lo (2 hi + lo)
        let d = two_sum(times_pow2(v, -e), -mean.x);
        let d_lo = opaque(d.y - mean.y);
        let sq = two_prod(d.x, d.x);
        m2 = pair_add(m2, sq.x);
        m2.y = opaque(m2.y + opaque(sq.y + opaque(d_lo * opaque(2.0 * d.x + d_lo))));
    }
    let q = pair_div(m2, f32(n - params.ddof));
    if (!root) {
        return times_pow2(value(q), 2 * e);
    }
    let var_hi = max(q.x, 0.0);
    if (var_hi == 0.0) {
        return 0.0;
    }
    // the root of hi + lo: sqrt(hi) correctly rounded, corrected by (hi + lo - r^2) / 2r
    let r = sqrt_rn(var_hi);
    let r_lo = opaque(opaque(residual(var_hi, r, r) + q.y) / opaque(2.0 * r));
    return times_pow2(r + r_lo, e);
}

fn at(base: u32, t: u32) -> u32 {
    return base + t * params.inner;
}

fn fill(base: u32) {
    let n = params.len;
    var last = nan();
    var run = 0u;
    for (var i = 0u; i < n; i++) {
        var t = i;
        if (params.flag != 0u) {
            t = n - 1u - i;
        }
        let v = x[at(base, t)];
        if (is_nan(v)) {
            run = min(run + 1u, params.limit + 1u);
            if (run <= params.limit) {
                out[at(base, t)] = last;
            } else {
                out[at(base, t)] = v;
            }
        } else {
            run = 0u;
            last = v;
            out[at(base, t)] = v;
        }
    }
}

fn running(base: u32, product: bool) {
    var acc = vec2<f32>(select(0.0, 1.0, product), 0.0);
    for (var t = 0u; t < params.len; t++) {
        let v = x[at(base, t)];
        if (!(is_nan(v) && params.flag != 0u)) {
            if (product) {
                acc = pair_mul(acc, v);
            } else {
                acc = pair_add(acc, v);
            }
            if (is_nan(v)) {
                acc = vec2<f32>(v, 0.0);
            }
        }
        out[at(base, t)] = value(acc);
    }
}

fn window(base: u32) {
    let n = i32(params.len);
    let op = params.flag;
    for (var t = 0; t < n; t++) {
        let lo = clamp(t + params.first, 0, n);
        let hi = clamp(t + params.first + i32(params.size), 0, n);
        var count = 0u;
        var sum = vec2<f32>(0.0, 0.0);
        var best = select(bitcast<f32>(0x7f800000u), bitcast<f32>(0xff800000u), op == 4u);
        var big = 0.0;
        var sorted: array<f32, {{MEDIAN_LEN}}>;
        for (var s = lo; s < hi; s++) {
            let v = x[at(base, u32(s))];
            if (is_nan(v)) {
                continue;
            }
            if (op == 5u) {
                // insertion: the window's values so far stay sorted in sorted[0..count]
                var k = count;
                while (k > 0u && sorted[k - 1u] > v) {
                    sorted[k] = sorted[k - 1u];
                    k -= 1u;
                }
                sorted[k] = v;
            }
            count += 1u;
            if (op == 1u || op == 2u) {
                sum = pair_add(sum, v);
            } else if ((op == 3u && v < best) || (op == 4u && v > best)) {
                best = v;
            } else if (op >= 6u) {
                big = max(big, abs(v));
            }
        }
        var r = nan();
        if (count >= params.limit) {
            switch op {
                case 0u: {
                    r = f32(count);
                }
                case 1u: {
                    r = value(sum);
                }
                case 2u: {
                    r = div_rn(value(sum), f32(count));
                }
                case 5u: {
                    let upper = sorted[count / 2u];
                    r = upper;
                    if (count % 2u == 0u) {
                        r = (sorted[count / 2u - 1u] + upper) * 0.5;
                    }
                    r = positive_zero(r);
                }
                case 6u, 7u: {
                    r = spread(base, lo, hi, count, big, op == 7u);
                }
                default: {
                    r = best;
                }
            }
        }
        out[at(base, u32(t))] = r;
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let p = gid.x + gid.y * groups.x * 64u;
    if (p >= params.n_pixels) {
        return;
    }
    let ii = p % params.inner;
    let oo = p / params.inner;
    let base = oo * params.len * params.inner + ii;
    switch params.mode {
        case 0u: {
            fill(base);
        }
        case 1u: {
            running(base, false);
        }
        case 2u: {
            running(base, true);
        }
        case 4u: {
            interpolate(base);
        }
        default: {
            window(base);
        }
    }
}
