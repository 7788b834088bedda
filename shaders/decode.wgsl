// Stored samples → f32 on the device, so a block goes up as 16-bit codes (two to a u32 word,
// little-endian), half the bytes of its f32 values: every element looks its code up in the
// decode table of its plane. The host builds each table with the CPU's own decode rule
// (nodata → fill, v * scale + offset in f64 rounded once to f32; see src/expr/raw.rs), so the
// device's values are bitwise the CPU's, with no float arithmetic here to round differently.
//
// Bindings: 0 the codes, 1 the f32 output, 2 the tables (TABLE_LEN f32 each, concatenated),
// 3 each plane's table, 4 the parameters. One invocation per element, 256 per workgroup,
// 2-D dispatch with a linearised index.

const TABLE_LEN: u32 = 65536u;

@group(0) @binding(0) var<storage, read> codes: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> tables: array<f32>;
@group(0) @binding(3) var<storage, read> plane_table: array<u32>;

struct Params {
    n: u32,
    plane_len: u32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let idx = gid.x + gid.y * groups.x * 256u;
    if (idx >= params.n) {
        return;
    }
    let code = (codes[idx / 2u] >> (16u * (idx % 2u))) & 0xffffu;
    out[idx] = tables[plane_table[idx / params.plane_len] * TABLE_LEN + code];
}
