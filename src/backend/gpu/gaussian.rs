//! The separable gaussian on the device (`shaders/correlate.wgsl`): the block extended by its
//! halo goes up once, each axis's pass (and a constant boundary's reset between passes) runs
//! in one submission with the intermediates on the device, and only the filtered block comes
//! back. The halo is assembled on the host from the neighbour blocks exactly as the CPU
//! assembles it, so every scipy boundary mode comes out the same.

use std::ops::Range;
use std::sync::Arc;

use super::context::KernelSource;
use super::submit::{Pending, Produced, Recording};
use super::{buffers, GpuContext, GpuError};
use crate::backend::cpu::extended_tile;
use crate::backend::Value;
use crate::expr::DType;
use crate::plan::TileSpec;

const SHADER: &str = include_str!("../../../shaders/correlate.wgsl");
const WORKGROUP: u32 = 256;

/// One step of a filter chain.
enum Step<'a> {
    /// correlate in "valid" mode along `axis` (which shrinks by `weights.len() - 1`), symmetric
    /// taps paired when `paired` (each path sums in the order its CPU counterpart does)
    Correlate {
        axis: usize,
        weights: &'a [f32],
        paired: bool,
    },
    /// positions along `axis` outside `inside` become `value`
    Fill {
        axis: usize,
        inside: Range<usize>,
        value: f32,
    },
}

/// Whether the device filters a block whose extended form has `elements` values.
pub(super) fn fits(ctx: &GpuContext, elements: usize) -> bool {
    elements > 0 && (elements as u64) * 4 <= ctx.adapter.max_storage_binding && elements < u32::MAX as usize
}

/// Whether the device filters this tile: one extended strip (a row plus its halo rows) fits a
/// binding; larger tiles are cut into strips.
pub(super) fn fits_tiles(ctx: &GpuContext, spec: &TileSpec) -> bool {
    let nd = spec.shape.len();
    let wext = spec.shape[nd - 1] + spec.wx.len() - 1;
    spec.shape.iter().all(|&n| n > 0) && fits(ctx, wext * spec.wy.len()) && tile_elements(spec) < u32::MAX as usize
}

/// Elements of a [`TileSpec`]'s extended block.
pub(super) fn tile_elements(spec: &TileSpec) -> usize {
    let nd = spec.shape.len();
    let batch: usize = spec.shape[..nd - 2].iter().product();
    batch * (spec.shape[nd - 2] + spec.wy.len() - 1) * (spec.shape[nd - 1] + spec.wx.len() - 1)
}

/// The gaussian of one output block over its last two axes, halos read from its neighbours.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Device`].
pub(super) fn run_tiles<'c>(ctx: &'c GpuContext, spec: &TileSpec, inputs: &[&Value]) -> Result<Produced<'c>, GpuError> {
    let blocks = inputs
        .iter()
        .map(|v| buffers::host_block(v))
        .collect::<Result<Vec<_>, _>>()?;
    let ext = extended_tile(spec, &blocks);
    let nd = spec.shape.len();
    let batch: usize = spec.shape[..nd - 2].iter().product();
    let (h, w) = (spec.shape[nd - 2], spec.shape[nd - 1]);
    let (ry2, wext) = (spec.wy.len() - 1, w + spec.wx.len() - 1);
    let steps = tile_steps(spec);
    let limit = (ctx.adapter.max_storage_binding / 4) as usize;
    if ext.len() > limit {
        // Strips of output rows with their halo rows, each within a binding: a tile beyond one
        // binding is split, not refused.
        let rows = (limit / wext.max(1)).saturating_sub(ry2).max(1);
        let mut out = vec![0f32; batch * h * w];
        for b in 0..batch {
            for r0 in (0..h).step_by(rows) {
                let r1 = (r0 + rows).min(h);
                let first = (b * (h + ry2) + r0) * wext;
                let strip = &ext[first..first + (r1 - r0 + ry2) * wext];
                let mut rec = Recording::new(ctx, "gaussian strip");
                let input = rec.upload(bytemuck::cast_slice(strip));
                let p = run_chain(ctx, rec, input, vec![1, r1 - r0 + ry2, wext], &steps)?;
                p.rec
                    .submit_and_read(&p.buffer, &mut out[(b * h + r0) * w..(b * h + r1) * w])?;
            }
        }
        let array = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&spec.shape), out)
            .map_err(|e| GpuError::Device(e.to_string()))?;
        return Ok(Produced::Host(crate::expr::Block::F32(array.into_shared())));
    }
    let mut rec = Recording::new(ctx, "gaussian");
    let input = rec.upload(bytemuck::cast_slice(&ext));
    let mut pending = run_chain(ctx, rec, input, vec![batch, h + ry2, wext], &steps)?;
    pending.shape = spec.shape.clone();
    Ok(Produced::Pending(pending))
}

/// The passes of a tile: vertical, the constant's reset of columns outside the array,
/// horizontal.
fn tile_steps(spec: &TileSpec) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    if spec.wy.len() > 1 {
        steps.push(Step::Correlate {
            axis: 1,
            weights: &spec.wy,
            paired: true,
        });
    }
    if let Some(value) = spec.fill {
        steps.push(Step::Fill {
            axis: 2,
            inside: spec.inside_cols.clone(),
            value,
        });
    }
    if spec.wx.len() > 1 {
        steps.push(Step::Correlate {
            axis: 2,
            weights: &spec.wx,
            paired: true,
        });
    }
    steps
}

/// The passes of a gaussian over a block already extended by its halo (any axes), with a
/// constant boundary's positions outside the array reset between passes as scipy does.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Device`].
pub(super) fn run_passes<'c>(
    ctx: &'c GpuContext,
    passes: &[(usize, Arc<Vec<f32>>)],
    constant: Option<&(f32, Vec<Range<usize>>)>,
    input: &Value,
) -> Result<Pending<'c>, GpuError> {
    let in_shape = input.shape().ok_or_else(buffers::partial_state)?.to_vec();
    let mut rec = Recording::new(ctx, "gaussian");
    let input = rec.input_f32(input)?;
    let mut steps = Vec::new();
    for (done, (axis, w)) in passes.iter().enumerate() {
        steps.push(Step::Correlate {
            axis: *axis,
            weights: w,
            paired: false,
        });
        if let Some((value, inside)) = constant {
            for (later, _) in &passes[done + 1..] {
                steps.push(Step::Fill {
                    axis: *later,
                    inside: inside[*later].clone(),
                    value: *value,
                });
            }
        }
    }
    run_chain(ctx, rec, input, in_shape, &steps)
}

/// Records `steps` over `input` of `shape` (f32) in one recording; the result is the last
/// step's buffer.
fn run_chain<'c>(
    ctx: &'c GpuContext,
    mut rec: Recording<'c>,
    input: wgpu::Buffer,
    mut shape: Vec<usize>,
    steps: &[Step<'_>],
) -> Result<Pending<'c>, GpuError> {
    if !steps.iter().any(|s| matches!(s, Step::Correlate { .. })) {
        return Ok(Pending {
            rec,
            buffer: input,
            shape,
            dtype: DType::F32,
        });
    }
    let pipeline = ctx.pipeline(KernelSource::Fixed("correlate.wgsl", SHADER))?;
    let dummy = buffers::storage(ctx, "unused", &[]);
    let mut cur = input;
    // Dropping a buffer or bind group here is safe: wgpu keeps what a recorded pass uses
    // alive until the submission is done.
    for step in steps {
        let (axis, params) = match step {
            Step::Correlate { axis, weights, paired } => (
                *axis,
                (weights.len(), *paired && weights_symmetric(weights), 0u32, 0..0, 0.0),
            ),
            Step::Fill { axis, inside, value } => (*axis, (1, false, 1u32, inside.clone(), *value)),
        };
        let (taps, symmetric, mode, inside, value) = params;
        let outer: usize = shape[..axis].iter().product();
        let inner: usize = shape[axis + 1..].iter().product();
        let n_in = shape[axis];
        let n_out = n_in + 1 - taps;
        let n_total = outer * n_out * inner;
        let words = [
            n_total as u32,
            n_in as u32,
            n_out as u32,
            inner as u32,
            taps as u32,
            u32::from(symmetric),
            mode,
            inside.start.min(n_in) as u32,
            inside.end.min(n_in) as u32,
            value.to_bits(),
            0,
            0,
        ];
        let params = buffers::uniform(ctx, "filter params", &words);
        let (weights, next) = match step {
            Step::Correlate { weights, .. } => (
                buffers::storage(ctx, "filter weights", bytemuck::cast_slice(weights)),
                Some(buffers::output(ctx, "filter pass", n_total)),
            ),
            // Fill reads no input and no weights: the one empty buffer stands in for both.
            Step::Fill { .. } => (dummy.clone(), None),
        };
        let group = match &next {
            Some(out) => rec.bind(&pipeline, "correlate", &[&cur, out, &weights, &params])?,
            None => rec.bind(&pipeline, "fill", &[&dummy, &cur, &weights, &params])?,
        };
        rec.dispatch(&pipeline, &group, n_total, WORKGROUP);
        shape[axis] = n_out;
        if let Some(next) = next {
            cur = next;
        }
    }
    Ok(Pending {
        rec,
        buffer: cur,
        shape,
        dtype: DType::F32,
    })
}

fn weights_symmetric(w: &[f32]) -> bool {
    let r = w.len() / 2;
    w.len() % 2 == 1 && (0..r).all(|k| w[k] == w[2 * r - k])
}
