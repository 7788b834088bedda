//! Sum, mean, count, min, max (and their NaN-skipping forms), var/std and any/all on the
//! device, along a run of consecutive axes whole in one block (a mean over time) or by groups
//! of one axis (a resample with a non-median reduction).
//!
//! `shaders/reduce.wgsl` writes f32 states (sums as hi + lo pairs) into a scratch buffer and
//! `shaders/finalize.wgsl` turns them into the result in the same submission, so only the
//! result comes back (if it comes back at all). A block beyond one binding runs in pieces whose
//! states come back and are finalized by the host's code ([`Partial`]); partial states of a
//! tree reduction (blocks that each hold part of the reduced axes) merge on the host, so those
//! tasks run there.

use super::kernels::KernelSource;
use super::layout::{group_members, layout};
use super::recording::{Bind, ConstantBuffer, Pending, Produced, Recording, ResultBuffer};
use super::{split, GpuContext, GpuError};
use crate::backend::partial::{finalize, Partial};
use crate::backend::{Value, ValueDesc};
use crate::expr::{DType, ReduceOp};

/// `shaders/group_input.wgsl` and `shaders/exact.wgsl` ahead of the reduce shader.
const SHADER: &str = concat!(
    include_str!("../../../shaders/group_input.wgsl"),
    include_str!("../../../shaders/exact.wgsl"),
    include_str!("../../../shaders/reduce.wgsl")
);
/// `shaders/exact.wgsl` ahead of the finalize shader.
const FINALIZE: &str = concat!(
    include_str!("../../../shaders/exact.wgsl"),
    include_str!("../../../shaders/finalize.wgsl")
);
/// Outputs a block needs before its reduction runs on the device, and the longest column one
/// invocation sums: with fewer outputs or longer columns a few invocations would do all the
/// work alone (a whole-array mean), which the host's vector loops do faster.
pub(super) const MIN_OUTPUTS: usize = 32;
/// See [`MIN_OUTPUTS`].
pub(super) const MAX_COLUMN: usize = 16384;
/// f32 lanes per state (`STATE_LANES` in the shader).
const STATE_LANES: usize = 8;

/// The shader's mode for an op (see its lane table), `None` for holistic ops.
pub(super) fn mode(op: ReduceOp) -> Option<u32> {
    match op {
        ReduceOp::Sum | ReduceOp::NanSum | ReduceOp::Mean | ReduceOp::NanMean | ReduceOp::Count => Some(0),
        ReduceOp::Min | ReduceOp::Max | ReduceOp::NanMin | ReduceOp::NanMax => Some(1),
        ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } => Some(2),
        ReduceOp::Any | ReduceOp::All => Some(3),
        // holistic ops (medians, quantiles, arg extremes; `partial_lanes` 0) keep no state
        _ => None,
    }
}

/// Whether one column of `len` values fits a binding (larger blocks are cut into pieces of
/// whole columns).
fn within_limits(ctx: &GpuContext, len: usize) -> bool {
    (len as u64) * 4 <= ctx.adapter.max_storage_binding && len < u32::MAX as usize
}

/// The loop iterations one states invocation may run over a group of `len` values, counted as
/// llvmpipe counts them (see [`along::trips`](super::along)): one pass, two for a sum or
/// mean (the second, scaled, where the first overflowed), three for a variance (the largest
/// magnitude, the sum, the squared deviations), and the other modes' loops, reached under a
/// mask. O(1).
pub(super) fn trips(op: ReduceOp, len: usize) -> u64 {
    let passes = match mode(op) {
        Some(2) => 3,
        Some(0) => 2,
        _ => 1,
    };
    passes * (len as u64 + 1) + 8
}

/// The finalize shader's code for an op.
fn finalize_code(op: ReduceOp) -> Option<(u32, f32)> {
    Some(match op {
        ReduceOp::Sum => (0, 0.0),
        ReduceOp::NanSum => (1, 0.0),
        ReduceOp::Count => (2, 0.0),
        ReduceOp::Mean => (3, 0.0),
        ReduceOp::NanMean => (4, 0.0),
        ReduceOp::Min => (5, 0.0),
        ReduceOp::Max => (6, 0.0),
        ReduceOp::NanMin => (7, 0.0),
        ReduceOp::NanMax => (8, 0.0),
        ReduceOp::NanVar { ddof } => (9, ddof as f32),
        ReduceOp::NanStd { ddof } => (10, ddof as f32),
        ReduceOp::Any => (11, 0.0),
        ReduceOp::All => (12, 0.0),
        // holistic ops (medians, quantiles, arg extremes; `partial_lanes` 0) keep no state
        _ => return None,
    })
}

/// Whether the device computes this reduction's final values: a non-holistic op over
/// consecutive axes wholly inside the one input block, at least [`MIN_OUTPUTS`] outputs of
/// columns no longer than [`MAX_COLUMN`] (larger blocks are cut into pieces of whole columns).
pub(super) fn fits_final(ctx: &GpuContext, op: ReduceOp, axes: &[usize], inputs: &[ValueDesc]) -> bool {
    let [input] = inputs else { return false };
    mode(op).is_some()
        && !input.partial
        && layout(&input.shape, axes).is_some_and(|(outer, len, inner)| {
            len > 0 && len <= MAX_COLUMN && outer * inner >= MIN_OUTPUTS && within_limits(ctx, len)
        })
}

/// Whether the device runs this group-reduce: a non-holistic op, valid labels, a grouped
/// column that fits one binding (larger blocks are cut into pieces).
pub(super) fn fits_groups(
    ctx: &GpuContext,
    op: ReduceOp,
    axis: usize,
    labels: &[usize],
    groups: usize,
    input: &ValueDesc,
) -> bool {
    mode(op).is_some()
        && labels.iter().all(|&l| l < groups)
        && !input.partial
        && layout(&input.shape, &[axis]).is_some_and(|(_, len, _)| len == labels.len() && within_limits(ctx, len))
}

/// One block's states: `(outer, groups, inner)` states of STATE_LANES f32.
fn states(
    ctx: &GpuContext,
    op: ReduceOp,
    input: &Value,
    (outer, len, inner): (usize, usize, usize),
    starts: &[u32],
    members: Option<&[u32]>,
) -> Result<Vec<f32>, GpuError> {
    let groups = starts.len() - 1;
    let n_out = outer * groups * inner;
    let mut out = vec![0f32; n_out * STATE_LANES];
    if n_out == 0 {
        return Ok(out);
    }
    let limit = ctx.adapter.max_storage_binding;
    let states_bytes = (out.len() * 4) as u64;
    // Masks go up as bytes, everything else as f32.
    let bytes_each = input.dtype().map_or(4, DType::size);
    if split::too_big(outer * len * inner, bytes_each, limit) || states_bytes > limit {
        // Pieces whose input and states both fit: a column of `len` values makes `groups`
        // states.
        let state_bytes = (groups * STATE_LANES * 4) as u64;
        let piece_bytes = limit.min(limit / state_bytes.max(1) * len as u64 * 4);
        let per_piece = |piece: &Value, dims| states(ctx, op, piece, dims, starts, members);
        return split::map_pieces(input, (outer, len, inner), groups, STATE_LANES, piece_bytes, per_piece);
    }
    let mut rec = Recording::new(ctx, "reduce");
    let (input, dtype) = rec.input(input)?;
    let slot = rec.scratch("reduce states", states_bytes);
    record_states(
        &mut rec,
        op,
        &input,
        dtype,
        (outer, len, inner),
        starts,
        members,
        &Bind::Held(slot),
    )?;
    let words = rec.read_now(&Bind::Held(slot), states_bytes)?;
    out.copy_from_slice(bytemuck::cast_slice(&words));
    Ok(out)
}

/// Records the states kernel over `input` into `states`.
#[allow(clippy::too_many_arguments)]
fn record_states(
    rec: &mut Recording<'_>,
    op: ReduceOp,
    input: &Bind<'_>,
    dtype: DType,
    (outer, len, inner): (usize, usize, usize),
    starts: &[u32],
    members: Option<&[u32]>,
    states: &Bind<'_>,
) -> Result<(), GpuError> {
    let ctx = rec.context();
    let groups = starts.len() - 1;
    let n_out = outer * groups * inner;
    let pipeline = ctx.pipeline(KernelSource::Fixed("reduce.wgsl", SHADER))?;
    let params = [
        n_out as u32,
        len as u32,
        inner as u32,
        groups as u32,
        u32::from(members.is_none()),
        mode(op).expect("fits admits partial ops only"),
        u32::from(dtype == DType::U8),
        1f32.to_bits(),
    ];
    let params = ConstantBuffer::uniform(ctx, "reduce params", &params);
    let starts = ConstantBuffer::storage(ctx, "group starts", starts);
    let members = ConstantBuffer::storage(ctx, "group members", members.unwrap_or(&[]));
    let binds = [
        *input,
        *states,
        Bind::Constant(&params),
        Bind::Constant(&starts),
        Bind::Constant(&members),
    ];
    let group = rec.bind(&pipeline, "reduce", &binds)?;
    rec.dispatch(&pipeline, &group, "reduce", n_out, 64);
    Ok(())
}

/// The final values of `op` over `input` seen as `(outer, len, inner)`, by the groups
/// `starts` (indices `members[starts[g]..starts[g + 1]]`, or the runs `starts[g]..` of a
/// whole axis when `members` is `None`), in `out_shape`: states and finalize in one
/// submission, the result left on the device. A block beyond one binding runs in pieces on
/// the blocking path and comes back finalized on the host.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; [`GpuError::Mapping`] or
/// [`GpuError::DeviceLost`] when a transfer fails.
pub(super) fn run_final<'c>(
    ctx: &'c GpuContext,
    op: ReduceOp,
    input: &Value,
    dims: (usize, usize, usize),
    (starts, members): (Vec<u32>, Option<Vec<u32>>),
    out_shape: Vec<usize>,
) -> Result<Produced<'c>, GpuError> {
    let (outer, len, inner) = dims;
    let groups = starts.len() - 1;
    let n_out = outer * groups * inner;
    let lens: Vec<u32> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    let limit = ctx.adapter.max_storage_binding;
    let states_bytes = (n_out * STATE_LANES * 4) as u64;
    let bytes_each = input.dtype().map_or(4, DType::size);
    if n_out == 0 || split::too_big(outer * len * inner, bytes_each, limit) || states_bytes > limit {
        let st = states(ctx, op, input, dims, &starts, members.as_deref())?;
        let p = to_partial(op, &st, (outer, groups, inner), 0..groups, &lens, out_shape);
        return Ok(Produced::Host(finalize(&p)));
    }
    let out_dtype = if op.yields_mask() { DType::U8 } else { DType::F32 };
    let mut rec = Recording::new(ctx, "reduce");
    let (input, dtype) = rec.input(input)?;
    let result = record_final(&mut rec, op, &input, dtype, dims, (&starts, members.as_deref()))?;
    Ok(Produced::Pending(Pending {
        rec,
        result,
        shape: out_shape,
        dtype: out_dtype,
    }))
}

/// Records the final values of `op` over `input` seen as `(outer, len, inner)` by the groups
/// `starts` (indices `members[starts[g]..starts[g + 1]]`, or the runs `starts[g]..` of the
/// axis when `members` is `None`): the states kernel into a scratch buffer, then the finalize
/// kernel into the returned result, `(outer, groups, inner)` values (a mask's as bytes).
/// The caller checked that the input and the states fit one binding each.
///
/// **Errors**: [`GpuError::Shader`].
pub(super) fn record_final(
    rec: &mut Recording<'_>,
    op: ReduceOp,
    input: &Bind<'_>,
    dtype: DType,
    (outer, len, inner): (usize, usize, usize),
    (starts, members): (&[u32], Option<&[u32]>),
) -> Result<ResultBuffer, GpuError> {
    let ctx = rec.context();
    let groups = starts.len() - 1;
    let n_out = outer * groups * inner;
    let slot = rec.scratch("reduce states", (n_out * STATE_LANES * 4) as u64);
    record_states(
        rec,
        op,
        input,
        dtype,
        (outer, len, inner),
        starts,
        members,
        &Bind::Held(slot),
    )?;
    let (code, ddof) = finalize_code(op).expect("fits admits partial ops only");
    let out_dtype = if op.yields_mask() { DType::U8 } else { DType::F32 };
    let result = rec.result("reduction", (n_out * out_dtype.size()) as u64);
    let pipeline = ctx.pipeline(KernelSource::Fixed("finalize.wgsl", FINALIZE))?;
    let params = [
        n_out as u32,
        inner.max(1) as u32,
        groups as u32,
        code,
        ddof.to_bits(),
        u32::from(out_dtype == DType::U8),
        1f32.to_bits(),
        0,
    ];
    let params = ConstantBuffer::uniform(ctx, "finalize params", &params);
    let starts = ConstantBuffer::storage(ctx, "group starts", starts);
    let binds = [
        Bind::Held(slot),
        Bind::Result(&result),
        Bind::Constant(&params),
        Bind::Constant(&starts),
    ];
    let group = rec.bind(&pipeline, "finalize", &binds)?;
    let words = if out_dtype == DType::U8 {
        n_out.div_ceil(4)
    } else {
        n_out
    };
    rec.dispatch(&pipeline, &group, "finalize", words, 64);
    Ok(result)
}

/// The sum of a (hi, lo) pair in f64 (hi alone once it is not finite: lo is then NaN).
fn pair(hi: f32, lo: f32) -> f64 {
    if hi.is_finite() {
        f64::from(hi) + f64::from(lo)
    } else {
        f64::from(hi)
    }
}

/// The CPU partial of the states `(outer, groups, inner)` of groups `keep` (all groups, or
/// one segment), `lens[g]` values in group g.
fn to_partial(
    op: ReduceOp,
    states: &[f32],
    (outer, groups, inner): (usize, usize, usize),
    keep: std::ops::Range<usize>,
    lens: &[u32],
    shape: Vec<usize>,
) -> Partial {
    // States in output order: (outer, kept groups, inner).
    let picked = (0..outer).flat_map(|oo| {
        keep.clone()
            .flat_map(move |g| (0..inner).map(move |ii| ((oo * groups + g) * inner + ii, g)))
    });
    let n = outer * keep.len() * inner;
    let (mut a, mut b, mut c) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    for (i, (o, g)) in picked.enumerate() {
        let l = &states[o * STATE_LANES..(o + 1) * STATE_LANES];
        let all = f64::from(lens[g]);
        let valid = f64::from(l[2].to_bits());
        let nan_if_any = |v: f64| if valid < all { f64::NAN } else { v };
        // a sum's lanes hold it times 2^-e (e = 64 where its f32 total overflowed: reduce.wgsl)
        let sum = || pair(l[0], l[1]) * 2f64.powi(l[3].to_bits() as i32);
        (a[i], b[i], c[i]) = match op {
            ReduceOp::Sum => (nan_if_any(sum()), 0.0, 0.0),
            ReduceOp::NanSum => (sum(), 0.0, 0.0),
            ReduceOp::Count => (valid, 0.0, 0.0),
            ReduceOp::Mean => (nan_if_any(sum()), all, 0.0),
            ReduceOp::NanMean => (sum(), valid, 0.0),
            // An empty group has no minimum: NaN, as the CPU's group-reduce gives.
            ReduceOp::Min if all == 0.0 => (f64::NAN, 0.0, 0.0),
            ReduceOp::Max if all == 0.0 => (f64::NAN, 0.0, 0.0),
            ReduceOp::Min => (nan_if_any(f64::from(l[0])), 0.0, 0.0),
            ReduceOp::Max => (nan_if_any(f64::from(l[1])), 0.0, 0.0),
            ReduceOp::NanMin => (f64::from(l[0]), valid, 0.0),
            ReduceOp::NanMax => (f64::from(l[1]), valid, 0.0),
            ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } if valid == 0.0 => (0.0, 0.0, 0.0),
            ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } => {
                // the lanes hold values times 2^-e (see reduce.wgsl)
                let scale = 2f64.powi(l[6].to_bits() as i32);
                let mean = pair(l[0], l[1]) / valid;
                let shift = mean - f64::from(l[3]);
                let m2 = (pair(l[4], l[5]) - valid * shift * shift).max(0.0);
                // an infinity among the values: NaN, as numpy's (f64::max would drop it)
                let m2 = if mean.is_finite() { m2 } else { f64::NAN };
                (mean * scale, valid, m2 * scale * scale)
            }
            ReduceOp::Any => (f64::from(all > f64::from(l[0].to_bits())), 0.0, 0.0),
            ReduceOp::All => (f64::from(l[0].to_bits() == 0), 0.0, 0.0),
            // holistic ops (medians, quantiles, arg extremes; `partial_lanes` 0) keep no state
            _ => {
                unreachable!("fits admits partial ops only")
            }
        };
    }
    Partial::from_lanes(op, shape, a, b, c)
}

/// The final reduction of one block over `axes` (whole in it).
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; [`GpuError::Mapping`] or
/// [`GpuError::DeviceLost`] when a transfer fails.
pub(super) fn run<'c>(
    ctx: &'c GpuContext,
    op: ReduceOp,
    input: &Value,
    axes: &[usize],
) -> Result<Produced<'c>, GpuError> {
    let shape = input.shape().ok_or_else(super::buffers::partial_state)?;
    let dims = layout(shape, axes)
        .ok_or_else(|| GpuError::Internal(format!("axes {axes:?} are not consecutive in {shape:?}")))?;
    let out_shape = crate::expr::without_axes(shape, axes);
    run_final(ctx, op, input, dims, (vec![0, dims.1 as u32], None), out_shape)
}

/// The reduction of each group of `axis` indices (`labels[t]` is index t's group); the axis
/// becomes `groups` long. Empty groups give what the CPU gives ([`ReduceOp::empty_value`]).
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; [`GpuError::Mapping`] or
/// [`GpuError::DeviceLost`] when a transfer fails.
pub(super) fn run_groups<'c>(
    ctx: &'c GpuContext,
    op: ReduceOp,
    block: &Value,
    axis: usize,
    labels: &[usize],
    groups: usize,
) -> Result<Produced<'c>, GpuError> {
    let shape = block.shape().ok_or_else(super::buffers::partial_state)?;
    let dims = layout(shape, &[axis]).ok_or_else(|| GpuError::Internal(format!("axis {axis} out of {shape:?}")))?;
    let (starts, members) = group_members(labels, groups);
    let mut out_shape = shape.to_vec();
    out_shape[axis] = groups;
    run_final(ctx, op, block, dims, (starts, Some(members)), out_shape)
}
