// median / nanmedian (and quantile / nanquantile) along one axis, of the whole axis or of groups of its indices (a
// group-reduce: the monthly median of a time series): one invocation per output value.
//
// Algorithm: the pixel's values along the axis are copied into a private array (NaNs skipped
// for nanmedian; any NaN makes a plain median NaN), then a quickselect with a three-way
// partition finds the lower middle; for an even count the upper middle is the smallest value
// right of it, and the two are averaged as numpy does, (lo + hi) / 2. Expected O(T) work per
// pixel with no shared memory or barriers, and equal keys (masks, fills) cost one pass instead
// of quickselect's O(T^2) worst case. The pivot sits at a position hashed from the range, not
// in its middle: a series that rises then falls (a season's NDVI, an organ pipe) puts a near
// extreme in the middle of every range, which made the selection quadratic (lavapipe, which
// stops a shader's loops after 65535 iterations, returned a wrong median over 1024 such steps).
// After `select_rounds` partitions per bit of T (rarely reached) it heapsorts the range left,
// so the work is O(T log T) whatever the order. The value selected depends on neither. The private array bounds the axis at MAX_LEN; longer
// axes run on the CPU.
//
// Layout: the block is (outer, len, inner) in C order around the reduced axis; the output is
// (outer, groups, inner). Output o = (oo, g, ii) reads x[(oo * len + t) * inner + ii] for the
// axis indices t = members[starts[g] .. starts[g + 1]] (one group of all indices for a plain
// median).

// Slot MAX_LEN (filled by `MedianKernel`, src/backend/gpu/median.rs): the largest group's
// length rounded up to a power of two, so a short axis (the usual T = 12..64) keeps a small
// private array (registers, occupancy) and a pipeline is shared by similar lengths.
const MAX_LEN: u32 = {{MAX_LEN}}u;

@group(0) @binding(1) var<storage, read_write> out: array<f32>;

struct Params {
    n_out: u32,
    len: u32,
    inner: u32,
    skip_nan: u32,
    groups: u32,
    input_u8: u32,
    // quantile q × 10^6 (when `quantile` is set): an integer, so the rank and the
    // interpolation weight are exact, as numpy's float64 virtual index is for such q
    q_millionths: u32,
    quantile: u32,
    // partitions per bit of the count the quickselect may take before it heapsorts what is
    // left (src/backend/gpu/median.rs: 2, which 1024 values rarely need)
    select_rounds: u32,
    // 1.0, unknown to the compiler (exact.wgsl)
    one: f32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(2) var<uniform> params: Params;

var<private> v: array<f32, MAX_LEN>;

// x, starts, members, is_nan and load: shaders/group_input.wgsl, prepended; opaque,
// two_sum, two_prod, residual, div_rn, is_finite, pow2 and times_pow2: shaders/exact.wgsl,
// prepended.

fn swap(i: i32, j: i32) {
    let t = v[i];
    v[i] = v[j];
    v[j] = t;
}

// A position in lo..=hi hashed from the range (a fixed choice, so every run picks the same;
// spread like a random one, so no order natural data has makes the selection quadratic).
fn pivot_at(lo: i32, hi: i32) -> i32 {
    var h = (u32(lo) * 0x9e3779b9u) ^ (u32(hi) * 0x85ebca6bu);
    h = (h ^ (h >> 16u)) * 0x7feb352du;
    h = (h ^ (h >> 15u)) * 0x846ca68bu;
    h = h ^ (h >> 16u);
    return lo + i32(h % u32(hi - lo + 1));
}

// Sorts v[lo..=hi] (heapsort: O(m log m) steps whatever the order, no recursion).
fn heap_sort(lo: i32, hi: i32) {
    let m = hi - lo + 1;
    for (var s = m / 2 - 1; s >= 0; s--) {
        sift_down(lo, s, m);
    }
    for (var end = m - 1; end > 0; end--) {
        swap(lo, lo + end);
        sift_down(lo, 0, end);
    }
}

// Moves the heap's node `root` (relative to lo) down the max-heap v[lo..lo + size).
fn sift_down(lo: i32, root_in: i32, size: i32) {
    var root = root_in;
    loop {
        var child = 2 * root + 1;
        if (child >= size) {
            break;
        }
        if (child + 1 < size && v[lo + child] < v[lo + child + 1]) {
            child += 1;
        }
        if (!(v[lo + root] < v[lo + child])) {
            break;
        }
        swap(lo + root, lo + child);
        root = child;
    }
}

// The k-th smallest of v[0..n); afterwards everything right of k is >= it. A quickselect
// of at most `select_rounds` partitions per bit of n (each at most n steps), then a heapsort
// of the range left, so its work is O(n log n) whatever the data. The cap counts rounds, not
// steps, and the heapsort has one call site after the loop: llvmpipe runs adjacent
// invocations as one vector and counts its loop limit per vector, so a budget of steps (which
// bounds one invocation's total but not the longest partition among 8 at every round) or a
// heapsort entered at a different round by each invocation could run past that limit.
fn select_kth(n: i32, k: i32) -> f32 {
    var lo = 0;
    var hi = n - 1;
    var rounds = i32(params.select_rounds) * i32(32u - countLeadingZeros(u32(n)));
    while (lo < hi && rounds > 0) {
        rounds -= 1;
        let pivot = v[pivot_at(lo, hi)];
        var lt = lo;
        var gt = hi;
        var i = lo;
        while (i <= gt) {
            if (v[i] < pivot) {
                swap(lt, i);
                lt += 1;
                i += 1;
            } else if (v[i] > pivot) {
                swap(i, gt);
                gt -= 1;
            } else {
                i += 1;
            }
        }
        // [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi] > pivot
        if (k < lt) {
            hi = lt - 1;
        } else if (k > gt) {
            lo = gt + 1;
        } else {
            return pivot;
        }
    }
    if (lo < hi) {
        heap_sort(lo, hi);
    }
    return v[k];
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
    var n = 0;
    var saw_nan = false;
    for (var m = starts[g]; m < starts[g + 1u]; m++) {
        let a = load(base + members[m] * params.inner);
        if (is_nan(a)) {
            saw_nan = true;
        } else {
            v[n] = a;
            n += 1;
        }
    }
    let nan = bitcast<f32>(0x7fc00000u);
    if (n == 0 || (saw_nan && params.skip_nan == 0u)) {
        out[o] = nan;
        return;
    }
    // One selection and one scan for the value after it, whatever the op (llvmpipe runs every
    // call site's loops under a mask, so one of each keeps its loop count in bounds).
    // Quantile: numpy's "linear", rank h = (n - 1) q between values floor(h) and floor(h) + 1.
    // Median: the lower middle, and for an even count the upper one too.
    var k = (n - 1) / 2;
    var frac = 0u;
    var upper = n % 2 == 0;
    if (params.quantile != 0u) {
        let h = u32(n - 1) * params.q_millionths;
        k = i32(h / 1000000u);
        frac = h % 1000000u;
        upper = frac != 0u;
    }
    let a = select_kth(n, k);
    if (!upper) {
        out[o] = positive_zero(a);
        return;
    }
    var b = v[k + 1];
    for (var i = k + 2; i < n; i++) {
        b = min(b, v[i]);
    }
    if (params.quantile == 0u) {
        out[o] = positive_zero((a + b) / 2.0);
        return;
    }
    out[o] = positive_zero(lerp(a, b, frac));
}

// numpy's _lerp between a and b at t = frac / 10^6, from the nearer end (so q = 1 - t gives
// the mirrored result), as the CPU computes it in f64 and rounds once: the difference b - a
// exactly (TwoSum), the weight t or 1 - t as its quotient by 10^6 and the residual's, the
// product's error kept, one rounding at the end. So the result is the CPU's but where the
// exact value lies within about 2^-45 of an f32 rounding boundary.
//
// Ends of 2^100 or more go in scaled by 2^-32, and the result comes back scaled by 2^32: their
// difference and its split (exact.wgsl's two_prod) then stay in f32's range (the 0.25
// quantile of [-3.4e38, 1, 2, 3] gave NaN, the 0.5 quantile of [-3e38, 3e38] infinity). Exact but for
// values under 2^-94, which lose bits only where the other end is 2^194 times larger, so
// they cannot move the result (0 < frac: its distance from either end is over 2^80).
fn lerp(a_in: f32, b_in: f32, frac: u32) -> f32 {
    let far = frac >= 500000u;
    var num = frac;
    if (far) {
        num = 1000000u - frac;
    }
    if (!(is_finite(a_in) && is_finite(b_in))) {
        let t = f32(frac) / 1000000.0;
        let d = b_in - a_in;
        if (far) {
            return b_in - d * (1.0 - t);
        }
        return a_in + d * t;
    }
    let k = select(0, 32, max(abs(a_in), abs(b_in)) >= pow2(100));
    let a = times_pow2(a_in, -k);
    let b = times_pow2(b_in, -k);
    let d = two_sum(b, -a);
    let w = div_rn(f32(num), 1000000.0);
    let w_lo = opaque(residual(f32(num), w, 1000000.0) / 1000000.0);
    let p = two_prod(d.x, w);
    let e = opaque(opaque(p.y + opaque(d.x * w_lo)) + opaque(d.y * w));
    if (far) {
        let s = two_sum(b, -p.x);
        return times_pow2((s.x + opaque(s.y - e)) * params.one, k);
    }
    let s = two_sum(a, p.x);
    return times_pow2((s.x + opaque(s.y + e)) * params.one, k);
}
