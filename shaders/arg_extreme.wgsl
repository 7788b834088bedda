// argmin / argmax (numpy's: the first NaN wins) and nanargmin / nanargmax (NaN skipped, NaN
// where every value is NaN) along one axis, of the whole axis or of groups of its indices:
// one invocation per output value, the position of the first extreme among the group's
// indices, as f32. Comparisons only, so every device gives the CPU's answer bit for bit.
//
// Layout as `median.wgsl`: the block is (outer, len, inner) in C order around the reduced
// axis, the output (outer, groups, inner); output o = (oo, g, ii) reads
// x[(oo * len + t) * inner + ii] for t = members[starts[g] .. starts[g + 1]].

@group(0) @binding(1) var<storage, read_write> out: array<f32>;

struct Params {
    n_out: u32,
    len: u32,
    inner: u32,
    skip_nan: u32,
    groups: u32,
    input_u8: u32,
    // 1 for the maximum, 0 for the minimum
    find_max: u32,
    _pad: u32,
}
@group(0) @binding(2) var<uniform> params: Params;

// x, starts, members, is_nan and load: shaders/group_input.wgsl, prepended.

// Whether `v` lies strictly beyond `best` in the sought direction (false when either is NaN).
fn beyond(v: f32, best: f32) -> bool {
    if (is_nan(v) || is_nan(best)) {
        return false;
    }
    if (params.find_max != 0u) {
        return v > best;
    }
    return v < best;
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
    let nan = bitcast<f32>(0x7fc00000u);
    let first = starts[g];
    var best = nan;
    var at = nan;
    var found = false;
    for (var m = first; m < starts[g + 1u]; m++) {
        let v = load(base + members[m] * params.inner);
        let k = f32(m - first);
        if (params.skip_nan != 0u) {
            if (!is_nan(v) && (!found || beyond(v, best))) {
                best = v;
                at = k;
                found = true;
            }
        } else if (is_nan(v)) {
            // numpy's argmax/argmin: the first NaN is the answer
            at = k;
            break;
        } else if (!found || beyond(v, best)) {
            best = v;
            at = k;
            found = true;
        }
    }
    out[o] = at;
}
