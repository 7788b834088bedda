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
// The value selected does not depend on the pivots. The private array bounds the axis at MAX_LEN; longer
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
}
@group(0) @binding(2) var<uniform> params: Params;

var<private> v: array<f32, MAX_LEN>;

// x, starts, members, is_nan and load: shaders/group_input.wgsl, prepended.

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

// The k-th smallest of v[0..n); afterwards everything right of k is >= it.
fn select_kth(n: i32, k: i32) -> f32 {
    var lo = 0;
    var hi = n - 1;
    while (lo < hi) {
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
    if (params.quantile != 0u) {
        // numpy's "linear": rank h = (n - 1) q, between values floor(h) and floor(h) + 1
        let h = u32(n - 1) * params.q_millionths;
        let k = i32(h / 1000000u);
        let frac = h % 1000000u;
        let a = select_kth(n, k);
        if (frac == 0u) {
            out[o] = a;
            return;
        }
        var b = v[k + 1];
        for (var i = k + 2; i < n; i++) {
            b = min(b, v[i]);
        }
        // numpy's _lerp: from the nearer end, so q = 1 - t gives the mirrored result
        let t = f32(frac) / 1000000.0;
        let d = b - a;
        if (t >= 0.5) {
            out[o] = b - d * (1.0 - t);
        } else {
            out[o] = a + d * t;
        }
        return;
    }
    if (n % 2 == 1) {
        out[o] = select_kth(n, n / 2);
        return;
    }
    let k = n / 2 - 1;
    let lo = select_kth(n, k);
    var hi = v[k + 1];
    for (var i = k + 2; i < n; i++) {
        hi = min(hi, v[i]);
    }
    out[o] = (lo + hi) / 2.0;
}
