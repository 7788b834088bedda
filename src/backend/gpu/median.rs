//! Per-pixel order statistics along one axis, whole or by groups of its indices, on the
//! device: median / nanmedian and quantiles (`shaders/median.wgsl`: per-value quickselect;
//! see the shader for why), and the index of the first extreme (`shaders/arg_extreme.wgsl`).

use super::kernels::{KernelSource, MedianKernel, MAX_MEDIAN_LEN};
use super::layout::group_members;
use super::recording::{Bind, ConstantBuffer, Pending, Produced, Recording, ResultBuffer};
use super::{split, GpuContext, GpuError};
use crate::backend::Value;
use crate::expr::{Block, DType, ReduceOp};

const ARG_EXTREME: &str = concat!(
    include_str!("../../../shaders/group_input.wgsl"),
    include_str!("../../../shaders/arg_extreme.wgsl")
);

/// Partitions per bit of the count the median kernel's quickselect takes before it heapsorts
/// what is left: with its hashed pivots, 1024 values take 12 on average and rarely more than
/// 20 (random, sorted, organ-pipe and sawtooth series), against the 22 this allows, so the
/// fallback is rare and the work O(n log n) whatever the data. `STRATA_GPU_SELECT_ROUNDS`
/// overrides it (0 heapsorts every selection, which is how the tests check that path).
fn select_rounds() -> u32 {
    // a value that does not parse fails the run before it starts (`settings::check`)
    crate::settings::count("STRATA_GPU_SELECT_ROUNDS")
        .ok()
        .flatten()
        .unwrap_or(2)
}

/// The loop iterations one invocation of the median kernel may run over a group of `n`
/// values, counted as llvmpipe counts them (see `along::trips`: per vector of adjacent
/// invocations, so a worst case per loop): the copy into the private array; the quickselect's
/// rounds (at most `select_rounds` per bit of n, each partitioning at most n values); a
/// heapsort of what is left (a sift of at most log2 n + 2 per node, 1.5 n sifts); and the scan
/// for the value after the selected one. O(1).
pub(super) fn trips(n: usize) -> u64 {
    let n = n as u64;
    let log = u64::from(64 - n.max(1).leading_zeros());
    let rounds = u64::from(select_rounds()) * log;
    let select = rounds * (n + 1) + rounds + 1;
    let heap = (3 * n / 2 + 2) * (log + 2);
    (n + 1) + select + heap + (n + 1) + 8
}

/// Whether the device runs this reduction: a median or quantile over one axis no longer than
/// [`MAX_MEDIAN_LEN`], or an index of the extreme over one axis of any length.
pub(super) fn fits(op: ReduceOp, axes: &[usize], shape: &[usize]) -> bool {
    let longest = if op.arg_extreme().is_some() {
        usize::MAX
    } else {
        MAX_MEDIAN_LEN
    };
    (op.order_statistic().is_some() || op.arg_extreme().is_some())
        && axes.len() == 1
        && shape.get(axes[0]).is_some_and(|&n| (1..=longest).contains(&n))
}

/// Whether the device runs this group-reduce: a median op, no group longer than
/// [`MAX_MEDIAN_LEN`]; an index of the extreme, any group.
pub(super) fn fits_groups(op: ReduceOp, labels: &[usize], groups: usize) -> bool {
    if op.arg_extreme().is_some() {
        return labels.iter().all(|&l| l < groups);
    }
    let mut sizes = vec![0usize; groups];
    for &l in labels {
        if l >= groups {
            return false;
        }
        sizes[l] += 1;
    }
    op.order_statistic().is_some() && sizes.iter().all(|&n| n <= MAX_MEDIAN_LEN)
}

/// The median, quantile or index of the extreme of `input` along `axis`; the axis is removed
/// from the shape.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; [`GpuError::Mapping`] or
/// [`GpuError::DeviceLost`] when a transfer fails.
pub(super) fn run<'c>(ctx: &'c GpuContext, op: ReduceOp, input: &Value, axis: usize) -> Result<Produced<'c>, GpuError> {
    let shape = input.shape().unwrap_or(&[]).to_vec();
    let labels = vec![0usize; shape.get(axis).copied().unwrap_or(0)];
    // One group: (outer, 1, inner) is (outer, inner) in memory.
    Ok(match run_groups(ctx, op, input, axis, &labels, 1)? {
        Produced::Pending(mut p) => {
            p.shape.remove(axis);
            Produced::Pending(p)
        }
        Produced::Host(Block::F32(a)) => Produced::Host(Block::F32(a.index_axis_move(ndarray::Axis(axis), 0))),
        Produced::Host(_) => return Err(GpuError::Internal("a median yields f32".into())),
    })
}

/// The median, quantile or index of the extreme (its position among the group's indices) of
/// each group of `axis` indices (`labels[t]` is index t's group); the axis becomes `groups`
/// long, an empty group gives NaN.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; [`GpuError::Mapping`] or
/// [`GpuError::DeviceLost`] when a transfer fails.
pub(super) fn run_groups<'c>(
    ctx: &'c GpuContext,
    op: ReduceOp,
    input: &Value,
    axis: usize,
    labels: &[usize],
    groups: usize,
) -> Result<Produced<'c>, GpuError> {
    let shape = input.shape().ok_or_else(super::buffers::partial_state)?.to_vec();
    let len = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape = shape.clone();
    out_shape[axis] = groups;
    let limit = ctx.adapter.max_storage_binding;
    let bytes_each = input.dtype().map_or(4, DType::size);
    if split::too_big(outer * len * inner, bytes_each, limit) || split::too_big(outer * groups * inner, 4, limit) {
        // Piece by piece, each read back: a block beyond one binding is split, not refused.
        // Pieces whose input and result both fit: a column of `len` values makes `groups`
        // (more than `len` where there are more months than scenes).
        let piece_bytes = limit.min(limit / (groups as u64 * 4).max(1) * len as u64 * 4);
        let values = split::map_pieces(input, (outer, len, inner), groups, 1, piece_bytes, |piece, _| {
            let Produced::Pending(p) = run_groups(ctx, op, piece, 1, labels, groups)? else {
                return Err(GpuError::Internal("a piece that fits was split again".into()));
            };
            Ok(bytemuck::cast_vec(p.read_now()?))
        })?;
        let array = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&out_shape), values)
            .map_err(|e| GpuError::Internal(e.to_string()))?;
        return Ok(Produced::Host(Block::F32(array.into_shared())));
    }
    let (starts, members) = group_members(labels, groups);
    let mut rec = Recording::new(ctx, "median");
    let (input, dtype) = rec.input(input)?;
    let result = record_order(&mut rec, op, &input, dtype, (outer, len, inner), (&starts, &members))?;
    Ok(Produced::Pending(Pending {
        rec,
        result,
        shape: out_shape,
        dtype: DType::F32,
    }))
}

/// Records `op` (a median, quantile or index of the extreme) of each group of `input` seen as
/// `(outer, len, inner)`: group g holds the axis indices `members[starts[g]..starts[g + 1]]`.
/// Returns the result, `(outer, groups, inner)` f32. The caller checked that the input and
/// the result fit one binding each, and that no median group is longer than
/// [`MAX_MEDIAN_LEN`].
///
/// **Errors**: [`GpuError::Shader`]; [`GpuError::Internal`] for an op that is neither.
pub(super) fn record_order(
    rec: &mut Recording<'_>,
    op: ReduceOp,
    input: &Bind<'_>,
    dtype: DType,
    (outer, len, inner): (usize, usize, usize),
    (starts, members): (&[u32], &[u32]),
) -> Result<ResultBuffer, GpuError> {
    let ctx = rec.context();
    let groups = starts.len() - 1;
    let n_out = outer * groups * inner;
    // the shape and input type, then what each kernel's last two words say
    let (pipeline, skip_nan, tail, kernel) = if let Some((find_max, skip_nan)) = op.arg_extreme() {
        let pipeline = ctx.pipeline(KernelSource::Fixed("arg_extreme.wgsl", ARG_EXTREME))?;
        (pipeline, skip_nan, [u32::from(find_max), 0], "arg extreme")
    } else {
        let (millionths, skip_nan) = op
            .order_statistic()
            .ok_or_else(|| GpuError::Internal(format!("{} is not an order statistic", op.name())))?;
        // Medians keep numpy's (lo + hi) / 2; quantiles interpolate as numpy's "linear".
        let quantile = !matches!(op, ReduceOp::Median | ReduceOp::NanMedian);
        let longest = starts.windows(2).map(|w| (w[1] - w[0]) as usize).max().unwrap_or(0);
        let pipeline = ctx.pipeline(KernelSource::Median(MedianKernel::for_groups(longest)))?;
        let kernel = if quantile { "quantile" } else { "median" };
        (pipeline, skip_nan, [millionths, u32::from(quantile)], kernel)
    };
    let params: [u32; 12] = [
        n_out as u32,
        len as u32,
        inner.max(1) as u32,
        u32::from(skip_nan),
        groups as u32,
        u32::from(dtype == DType::U8),
        tail[0],
        tail[1],
        select_rounds(),
        1f32.to_bits(),
        0,
        0,
    ];
    let result = rec.result("median", (n_out * 4) as u64);
    let params = ConstantBuffer::uniform(ctx, "median params", &params);
    let starts = ConstantBuffer::storage(ctx, "group starts", starts);
    let members = ConstantBuffer::storage(ctx, "group members", members);
    let binds = [
        *input,
        Bind::Result(&result),
        Bind::Constant(&params),
        Bind::Constant(&starts),
        Bind::Constant(&members),
    ];
    let group = rec.bind(&pipeline, kernel, &binds)?;
    rec.dispatch(&pipeline, &group, kernel, n_out, 64);
    Ok(result)
}
