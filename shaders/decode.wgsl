// Raw samples → f32 on the device, so a tile goes up as its stored bytes (u8/u16/i16 packed
// into u32 words, little-endian), not as f32: physical = f32(stored) * scale + offset, and a
// stored value equal to nodata becomes NaN.
//
// Bindings: 0 the packed words, 1 the f32 output, 2 the parameters. One invocation per sample,
// 256 per workgroup, 2-D dispatch with a linearised index.
//
// The multiply and the add are kept apart (no fused multiply-add) so the result is bitwise the
// CPU's: `mul` is rounded before `add`, as Rust computes `x * scale + offset` in f32.

@group(0) @binding(0) var<storage, read> raw: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

struct Params {
    n: u32,
    // 0: u8, 1: u16, 2: i16
    kind: u32,
    has_nodata: u32,
    nodata: i32,
    scale: f32,
    offset: f32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(2) var<uniform> params: Params;

fn stored(idx: u32) -> i32 {
    if (params.kind == 0u) {
        return i32((raw[idx / 4u] >> (8u * (idx % 4u))) & 0xffu);
    }
    let half = (raw[idx / 2u] >> (16u * (idx % 2u))) & 0xffffu;
    if (params.kind == 1u) {
        return i32(half);
    }
    // i16: sign-extend the low 16 bits
    return (i32(half) << 16u) >> 16u;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    if (idx >= params.n) {
        return;
    }
    let v = stored(idx);
    if (params.has_nodata != 0u && v == params.nodata) {
        out[idx] = bitcast<f32>(0x7fc00000u);
        return;
    }
    let scaled = f32(v) * params.scale;
    out[idx] = scaled + params.offset;
}
