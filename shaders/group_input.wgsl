// Prepended to every kernel that reads a block along one axis by groups of its indices
// (reduce.wgsl, median.wgsl, arg_extreme.wgsl): the block and the groups (bindings 0, 3, 4),
// a NaN test by bits (comparisons with NaN may be assumed away by a compiler), and a load
// that reads f32 words or a mask's bytes, as the kernel's own `params.input_u8` says.

// The block as u32 words: f32 bit patterns, or a mask's bytes four to a word.
@group(0) @binding(0) var<storage, read> x: array<u32>;
// group g holds the axis indices members[starts[g] .. starts[g + 1]]
@group(0) @binding(3) var<storage, read> starts: array<u32>;
@group(0) @binding(4) var<storage, read> members: array<u32>;

fn is_nan(a: f32) -> bool {
    return (bitcast<u32>(a) & 0x7fffffffu) > 0x7f800000u;
}

fn load(i: u32) -> f32 {
    if (params.input_u8 != 0u) {
        return f32((x[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu);
    }
    return bitcast<f32>(x[i]);
}
