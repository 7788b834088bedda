// A block assembled from rectangular pieces of input blocks (slices with any step, reversed
// ones, broadcasts, concatenations, rechunks: plan::GatherPiece), one dispatch per piece, with
// the input left where it is on the device. Elements are u32 words (f32 bit patterns).
//
// A piece is a box of the output block: `desc` holds, per output axis k (ndim of them), the
// box's length, the output's stride, and the input stride one step along k moves (0 for a
// broadcast axis, negative for a reversed run). Box element o (C order within the box)
// writes out[base_out + sum d_k ostride_k] from src[base_in + sum d_k istep_k]. With `fill`
// the dispatch instead writes the fill word over the first n_total elements (positions no
// piece covers).

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> desc: array<i32>;

struct Params {
    n_total: u32,
    ndim: u32,
    fill: u32,
    fill_word: u32,
    base_in: i32,
    base_out: i32,
    _pad0: u32,
    _pad1: u32,
}
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let o = gid.x + gid.y * groups.x * 256u;
    if (o >= params.n_total) {
        return;
    }
    if (params.fill != 0u) {
        out[o] = params.fill_word;
        return;
    }
    let n = params.ndim;
    var rem = o;
    var i = params.base_in;
    var w = params.base_out;
    for (var k = i32(n) - 1; k >= 0; k--) {
        let len = u32(desc[k]);
        let d = i32(rem % len);
        rem = rem / len;
        w += d * desc[i32(n) + k];
        i += d * desc[2 * i32(n) + k];
    }
    out[u32(w)] = src[u32(i)];
}
