//! Sum, mean, count, min, max (and their NaN-skipping forms), var/std and any/all on the
//! device (`shaders/reduce.wgsl`), along a run of consecutive axes (a tree reduction's
//! per-block partial) or by groups of one axis (a resample with a non-median reduction).
//!
//! The device writes f32 states, sums as hi + lo pairs; the host turns them into the CPU
//! backend's f64 [`Partial`], so merging and finalizing are the CPU's own code and a result
//! differs from the CPU's only by the pair's rounding (a few f32 ulps of the sum, whatever the
//! axis length).

use super::context::KernelSource;
use super::submit::Recording;
use super::{buffers, split, GpuContext, GpuError};
use crate::backend::cpu::{finalize, Partial};
use crate::backend::Value;
use crate::expr::{Block, DType, ReduceOp};

const SHADER: &str = include_str!("../../../shaders/reduce.wgsl");
/// f32 lanes per state (`STATE_LANES` in the shader).
const STATE_LANES: usize = 8;
/// A reduced axis is cut into segments until there are about this many states, so a reduction
/// to few outputs (a whole-array mean) still spreads over the device.
const TARGET_STATES: usize = 1 << 14;
/// The shortest segment worth an invocation of its own.
const MIN_SEGMENT: usize = 256;

/// The shader's mode for an op (see its lane table), `None` for holistic ops.
fn mode(op: ReduceOp) -> Option<u32> {
    match op {
        ReduceOp::Sum | ReduceOp::NanSum | ReduceOp::Mean | ReduceOp::NanMean | ReduceOp::Count => Some(0),
        ReduceOp::Min | ReduceOp::Max | ReduceOp::NanMin | ReduceOp::NanMax => Some(1),
        ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } => Some(2),
        ReduceOp::Any | ReduceOp::All => Some(3),
        ReduceOp::Median | ReduceOp::NanMedian => None,
    }
}

/// `shape` as (outer, len, inner) around `axes`, when they are one run of consecutive axes.
fn layout(shape: &[usize], axes: &[usize]) -> Option<(usize, usize, usize)> {
    let (&first, &last) = (axes.iter().min()?, axes.iter().max()?);
    if last >= shape.len() || last - first + 1 != axes.len() {
        return None;
    }
    let p = |r: std::ops::Range<usize>| shape[r].iter().product::<usize>();
    Some((p(0..first), p(first..last + 1), p(last + 1..shape.len())))
}

/// Whether one column of `len` values fits a binding (larger blocks are cut into pieces of
/// whole columns).
fn within_limits(ctx: &GpuContext, len: usize) -> bool {
    (len as u64) * 4 <= ctx.adapter.max_storage_binding && len < u32::MAX as usize
}

/// Whether the device runs this partial reduction: a non-holistic op over consecutive axes of
/// non-empty blocks whose reduced columns each fit one binding (larger blocks are cut into
/// pieces of whole columns).
pub(super) fn fits(ctx: &GpuContext, op: ReduceOp, axes: &[usize], inputs: &[&Value]) -> bool {
    mode(op).is_some()
        && !inputs.is_empty()
        && inputs.iter().all(|v| {
            v.shape()
                .and_then(|shape| layout(shape, axes))
                .is_some_and(|(outer, len, inner)| len > 0 && outer * inner > 0 && within_limits(ctx, len))
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
    input: &Value,
) -> bool {
    mode(op).is_some()
        && labels.iter().all(|&l| l < groups)
        && input
            .shape()
            .and_then(|shape| layout(shape, &[axis]))
            .is_some_and(|(_, len, _)| len == labels.len() && within_limits(ctx, len))
}

/// How many segments a reduced axis of `len` is cut into for `outputs` output elements.
fn segments(outputs: usize, len: usize) -> usize {
    TARGET_STATES.div_ceil(outputs.max(1)).min(len / MIN_SEGMENT).max(1)
}

/// Group g's axis indices are `members[starts[g]..starts[g + 1]]` (a counting sort of labels).
pub(super) fn group_members(labels: &[usize], groups: usize) -> (Vec<u32>, Vec<u32>) {
    let mut starts = vec![0u32; groups + 1];
    for &l in labels {
        starts[l + 1] += 1;
    }
    for g in 0..groups {
        starts[g + 1] += starts[g];
    }
    let mut fill = starts.clone();
    let mut members = vec![0u32; labels.len()];
    for (t, &l) in labels.iter().enumerate() {
        members[fill[l] as usize] = t as u32;
        fill[l] += 1;
    }
    (starts, members)
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
    let pipeline = ctx.pipeline(KernelSource::Fixed("reduce.wgsl", SHADER))?;
    let mut rec = Recording::new(ctx, "reduce");
    let (input, dtype) = rec.input(input)?;
    let output = buffers::output(ctx, "reduce states", out.len());
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
    let params = buffers::uniform(ctx, "reduce params", &params);
    let starts = buffers::storage(ctx, "group starts", starts);
    let members = buffers::storage(ctx, "group members", members.unwrap_or(&[]));
    let bind_group = rec.bind(&pipeline, "reduce", &[&input, &output, &params, &starts, &members])?;
    rec.dispatch(&pipeline, &bind_group, n_out, 64);
    rec.submit_and_read(&output, &mut out)?;
    Ok(out)
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
        (a[i], b[i], c[i]) = match op {
            ReduceOp::Sum => (nan_if_any(pair(l[0], l[1])), 0.0, 0.0),
            ReduceOp::NanSum => (pair(l[0], l[1]), 0.0, 0.0),
            ReduceOp::Count => (valid, 0.0, 0.0),
            ReduceOp::Mean => (nan_if_any(pair(l[0], l[1])), all, 0.0),
            ReduceOp::NanMean => (pair(l[0], l[1]), valid, 0.0),
            // An empty group has no minimum: NaN, as the CPU's group-reduce gives.
            ReduceOp::Min if all == 0.0 => (f64::NAN, 0.0, 0.0),
            ReduceOp::Max if all == 0.0 => (f64::NAN, 0.0, 0.0),
            ReduceOp::Min => (nan_if_any(f64::from(l[0])), 0.0, 0.0),
            ReduceOp::Max => (nan_if_any(f64::from(l[1])), 0.0, 0.0),
            ReduceOp::NanMin => (f64::from(l[0]), valid, 0.0),
            ReduceOp::NanMax => (f64::from(l[1]), valid, 0.0),
            ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } if valid == 0.0 => (0.0, 0.0, 0.0),
            ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } => {
                let mean = pair(l[0], l[1]) / valid;
                let shift = mean - f64::from(l[3]);
                (mean, valid, (pair(l[4], l[5]) - valid * shift * shift).max(0.0))
            }
            ReduceOp::Any => (f64::from(all > f64::from(l[0].to_bits())), 0.0, 0.0),
            ReduceOp::All => (f64::from(l[0].to_bits() == 0), 0.0, 0.0),
            ReduceOp::Median | ReduceOp::NanMedian => unreachable!("fits admits partial ops only"),
        };
    }
    Partial::from_lanes(op, shape, a, b, c)
}

/// The partial state of `blocks` (all reducing into the same output block) over `axes`.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Device`].
pub(super) fn run(ctx: &GpuContext, op: ReduceOp, inputs: &[&Value], axes: &[usize]) -> Result<Partial, GpuError> {
    let mut acc: Option<Partial> = None;
    for block in inputs {
        let shape = block.shape().unwrap_or(&[]);
        let (outer, len, inner) = layout(shape, axes)
            .ok_or_else(|| GpuError::Device(format!("axes {axes:?} are not consecutive in {shape:?}")))?;
        let s = segments(outer * inner, len);
        let starts: Vec<u32> = (0..=s).map(|g| (g * len / s) as u32).collect();
        let lens: Vec<u32> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        let st = states(ctx, op, block, (outer, len, inner), &starts, None)?;
        let out_shape = crate::expr::without_axes(shape, axes);
        for g in 0..s {
            let p = to_partial(op, &st, (outer, s, inner), g..g + 1, &lens, out_shape.clone());
            match &mut acc {
                Some(acc) => acc.merge(&p),
                None => acc = Some(p),
            }
        }
    }
    acc.ok_or_else(|| GpuError::Device("a reduction with no input blocks".into()))
}

/// The reduction of each group of `axis` indices (`labels[t]` is index t's group); the axis
/// becomes `groups` long. Empty groups give what the CPU gives ([`ReduceOp::empty_value`]).
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Device`].
pub(super) fn run_groups(
    ctx: &GpuContext,
    op: ReduceOp,
    block: &Value,
    axis: usize,
    labels: &[usize],
    groups: usize,
) -> Result<Block, GpuError> {
    let shape = block.shape().unwrap_or(&[]);
    let (outer, len, inner) =
        layout(shape, &[axis]).ok_or_else(|| GpuError::Device(format!("axis {axis} out of {shape:?}")))?;
    let (starts, members) = group_members(labels, groups);
    let lens: Vec<u32> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    let st = states(ctx, op, block, (outer, len, inner), &starts, Some(&members))?;
    let mut out_shape = shape.to_vec();
    out_shape[axis] = groups;
    let p = to_partial(op, &st, (outer, groups, inner), 0..groups, &lens, out_shape);
    Ok(finalize(&p))
}
