// A tile extended by its halo, assembled on the device from neighbour blocks already there
// (a gaussian of a median that stayed on the device), so the halo makes no round trip
// through the host. One dispatch per neighbour block: every extended position that reads
// that neighbour copies its value; the first dispatch also writes the constant of a constant
// boundary where no block is read.
//
// The extended tile is (batch, n_ext, wext) in C order. rows[e] says where extended row e
// reads: the neighbour's block row (bits 20..) and its local row (bits 0..20), or NONE for the
// constant; cols[c] the same for columns. The neighbour is (batch, src_rows, src_cols).

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> ext: array<f32>;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read> cols: array<u32>;

struct Params {
    n_total: u32,
    n_ext: u32,
    wext: u32,
    src_rows: u32,
    src_cols: u32,
    block_row: u32,
    block_col: u32,
    write_fill: u32,
    fill: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let o = gid.x + gid.y * groups.x * 256u;
    if (o >= params.n_total) {
        return;
    }
    let c = o % params.wext;
    let e = (o / params.wext) % params.n_ext;
    let b = o / (params.wext * params.n_ext);
    let r = rows[e];
    let k = cols[c];
    if (r == NONE || k == NONE) {
        if (params.write_fill != 0u) {
            ext[o] = params.fill;
        }
        return;
    }
    if ((r >> 20u) != params.block_row || (k >> 20u) != params.block_col) {
        return;
    }
    let ly = r & 0xfffffu;
    let lx = k & 0xfffffu;
    ext[o] = src[(b * params.src_rows + ly) * params.src_cols + lx];
}
