//! The separable gaussian on the device (`shaders/correlate.wgsl`): the block extended by its
//! halo, each axis's pass (and a constant boundary's reset between passes) in one submission
//! with the intermediates on the device. The extended tile of a tile gaussian is assembled
//! where its neighbours are: on the device from device-resident blocks (`shaders/halo.wgsl`),
//! or on the host straight into staging memory, exactly as the CPU assembles it, so every
//! scipy boundary mode comes out the same.

use std::ops::Range;
use std::sync::Arc;

use wgpu::WriteOnly;

use super::kernels::KernelSource;
use super::recording::{Bind, ConstantBuffer, Pending, Produced, Recording};
use super::{GpuContext, GpuError};
use crate::backend::halo::{assemble_row, neighbours, with_contiguous_rows, RowOut};
use crate::backend::{Value, ValueDesc};
use crate::expr::{Block, DType};
use crate::plan::TileSpec;

/// `shaders/exact.wgsl` (an fma rounded once on any driver) ahead of the filter.
const SHADER: &str = concat!(
    include_str!("../../../shaders/exact.wgsl"),
    include_str!("../../../shaders/correlate.wgsl")
);
const HALO: &str = include_str!("../../../shaders/halo.wgsl");
const WORKGROUP: u32 = 256;
/// `shaders/halo.wgsl`'s marker for "the constant here".
const NONE: u32 = u32::MAX;

/// One step of a filter chain.
enum Step<'a> {
    /// correlate in "valid" mode along `axis` (which shrinks by `weights.len() - 1`), symmetric
    /// taps paired when `paired`, each tap one fma when `fused` (each as its CPU counterpart)
    Correlate {
        axis: usize,
        weights: &'a [f32],
        paired: bool,
        fused: bool,
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
/// binding (larger tiles are cut into strips), its indices fit the halo kernel's maps, and no
/// input is a mask.
pub(super) fn fits_tiles(ctx: &GpuContext, spec: &TileSpec, inputs: &[ValueDesc]) -> bool {
    let nd = spec.shape.len();
    let wext = spec.shape[nd - 1] + spec.wx.len() - 1;
    let n_ext = spec.shape[nd - 2] + spec.wy.len() - 1;
    spec.shape.iter().all(|&n| n > 0)
        && fits(ctx, wext * spec.wy.len())
        && tile_elements(spec) < u32::MAX as usize
        && n_ext.max(wext) < 1 << 20
        && halo_indices_pack(spec)
        && inputs.iter().all(|v| !v.partial && v.dtype == DType::F32)
}

/// Whether every halo source packs into the halo kernel's words (a neighbour's id in the top
/// 12 bits, its local row or column in the low 20): a neighbour's local index can pass 2^20
/// where this block's extent does not (the short last block of chunks 2^20 rows tall), and it
/// would spill into the id and read another block's rows.
fn halo_indices_pack(spec: &TileSpec) -> bool {
    let fits = |id: usize, local: isize| id < (1 << 12) - 1 && (0..1 << 20).contains(&local);
    spec.rows.iter().flatten().all(|&(iy, ly)| fits(iy, ly as isize))
        && spec.cols.iter().all(|run| {
            let last = run.src as isize + run.step * (run.len.max(1) as isize - 1);
            fits(run.block, run.src as isize) && fits(run.block, last)
        })
}

/// Elements of a [`TileSpec`]'s extended block.
pub(super) fn tile_elements(spec: &TileSpec) -> usize {
    let nd = spec.shape.len();
    let batch: usize = spec.shape[..nd - 2].iter().product();
    batch * (spec.shape[nd - 2] + spec.wy.len() - 1) * (spec.shape[nd - 1] + spec.wx.len() - 1)
}

/// The gaussian of one output block over its last two axes, halos read from its neighbours.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; [`GpuError::Mapping`] or
/// [`GpuError::DeviceLost`] when a transfer fails.
pub(super) fn run_tiles<'c>(ctx: &'c GpuContext, spec: &TileSpec, inputs: &[&Value]) -> Result<Produced<'c>, GpuError> {
    let nd = spec.shape.len();
    let batch: usize = spec.shape[..nd - 2].iter().product();
    let (h, w) = (spec.shape[nd - 2], spec.shape[nd - 1]);
    let (ry2, wext) = (spec.wy.len() - 1, w + spec.wx.len() - 1);
    let steps = tile_steps(spec, crate::backend::cpu::uses_fma());
    let limit = (ctx.adapter.max_storage_binding / 4) as usize;
    if tile_elements(spec) > limit {
        return run_strips(ctx, spec, inputs, &steps).map(Produced::Host);
    }
    let ext_shape = vec![batch, h + ry2, wext];
    let mut rec = Recording::new(ctx, "gaussian");
    let ext = if inputs.iter().any(|v| matches!(v, Value::Device(_))) {
        device_halo(&mut rec, spec, inputs)?
    } else {
        let blocks = host_blocks(inputs)?;
        rec.upload_with(tile_elements(spec) * 4, |dst| {
            write_extended(spec, &blocks, 0..h + ry2, dst)
        })?
    };
    let mut pending = run_chain(rec, Bind::Held(ext), ext_shape, &steps)?;
    pending.shape = spec.shape.clone();
    Ok(Produced::Pending(pending))
}

/// The inputs as host blocks (a device one read back, waiting: only the strip path, for
/// tiles beyond one binding, takes this with device inputs).
fn host_blocks<'v>(inputs: &[&'v Value]) -> Result<Vec<&'v Block>, GpuError> {
    inputs.iter().map(|v| super::buffers::host_block(v)).collect()
}

/// A tile beyond one binding: strips of output rows with their halo rows, each within a
/// binding, assembled on the host and read back one by one (the blocking path).
fn run_strips(ctx: &GpuContext, spec: &TileSpec, inputs: &[&Value], steps: &[Step<'_>]) -> Result<Block, GpuError> {
    let nd = spec.shape.len();
    let batch: usize = spec.shape[..nd - 2].iter().product();
    let (h, w) = (spec.shape[nd - 2], spec.shape[nd - 1]);
    let (ry2, wext) = (spec.wy.len() - 1, w + spec.wx.len() - 1);
    let limit = (ctx.adapter.max_storage_binding / 4) as usize;
    let blocks = host_blocks(inputs)?;
    let rows = (limit / wext.max(1)).saturating_sub(ry2).max(1);
    let mut out = vec![0f32; batch * h * w];
    for b in 0..batch {
        for r0 in (0..h).step_by(rows) {
            let r1 = (r0 + rows).min(h);
            let mut rec = Recording::new(ctx, "gaussian strip");
            let n = (r1 - r0 + ry2) * wext;
            let strip = rec.upload_with(n * 4, |dst| {
                write_plane_rows(spec, &blocks, b, r0..r1 + ry2, dst);
            })?;
            let p = run_chain(rec, Bind::Held(strip), vec![1, r1 - r0 + ry2, wext], steps)?;
            let words = p.read_now()?;
            out[(b * h + r0) * w..(b * h + r1) * w].copy_from_slice(bytemuck::cast_slice(&words));
        }
    }
    let array = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&spec.shape), out)
        .map_err(|e| GpuError::Internal(e.to_string()))?;
    Ok(Block::F32(array.into_shared()))
}

/// Staging memory seen as f32 elements (each its four bytes), written only.
impl RowOut for WriteOnly<'_, [[u8; 4]]> {
    fn copy(&mut self, at: usize, src: &[f32]) {
        self.slice(at..at + src.len())
            .copy_from_slice(bytemuck::cast_slice::<f32, [u8; 4]>(src));
    }

    fn fill(&mut self, range: Range<usize>, value: f32) {
        self.slice(range).fill(value.to_ne_bytes());
    }

    fn set(&mut self, at: usize, value: f32) {
        self.slice(at..at + 1).fill(value.to_ne_bytes());
    }
}

/// Writes extended rows `rows` of every plane into `dst` (bytes of f32, C order).
fn write_extended(spec: &TileSpec, blocks: &[&Block], rows: Range<usize>, dst: WriteOnly<'_, [u8]>) {
    let nd = spec.shape.len();
    let batch: usize = spec.shape[..nd - 2].iter().product();
    let plane = rows.len() * (spec.shape[nd - 1] + spec.wx.len() - 1) * 4;
    let mut rest = dst;
    for b in 0..batch {
        let (head, tail) = rest.split_at(plane);
        write_plane_rows(spec, blocks, b, rows.clone(), head);
        rest = tail;
    }
}

/// Writes extended rows `rows` of plane `b` into `dst` (bytes of f32, C order), the constant
/// first where a constant boundary has one.
fn write_plane_rows(spec: &TileSpec, blocks: &[&Block], b: usize, rows: Range<usize>, dst: WriteOnly<'_, [u8]>) {
    let owned = with_contiguous_rows(blocks);
    let neighbours = neighbours(&owned);
    let wext = spec.shape[spec.shape.len() - 1] + spec.wx.len() - 1;
    let (mut floats, _) = dst.into_chunks::<4>();
    for (i, e) in rows.enumerate() {
        let mut row = floats.slice(i * wext..(i + 1) * wext);
        if let Some(c) = spec.fill {
            row.fill(c.to_ne_bytes());
        }
        assemble_row(spec, &neighbours, b, e, &mut row);
    }
}

/// The extended tile assembled on the device: one halo dispatch per neighbour block (inputs
/// still on the host go up first). Returns the scratch buffer holding it.
fn device_halo(
    rec: &mut Recording<'_>,
    spec: &TileSpec,
    inputs: &[&Value],
) -> Result<super::recording::Slot, GpuError> {
    let ctx = rec.context();
    let nd = spec.shape.len();
    let batch: usize = spec.shape[..nd - 2].iter().product();
    let n_ext = spec.shape[nd - 2] + spec.wy.len() - 1;
    let wext = spec.shape[nd - 1] + spec.wx.len() - 1;
    let n_total = batch * n_ext * wext;
    let row_map: Vec<u32> = spec
        .rows
        .iter()
        .map(|r| r.map_or(NONE, |(iy, ly)| ((iy as u32) << 20) | ly as u32))
        .collect();
    let mut col_map = vec![NONE; wext];
    for run in &spec.cols {
        for k in 0..run.len {
            let lx = (run.src as isize + run.step * k as isize) as u32;
            col_map[run.dst + k] = ((run.block as u32) << 20) | lx;
        }
    }
    let ext = rec.scratch("extended tile", (n_total * 4) as u64);
    let pipeline = ctx.pipeline(KernelSource::Fixed("halo.wgsl", HALO))?;
    let rows = ConstantBuffer::storage(ctx, "halo rows", &row_map);
    let cols = ConstantBuffer::storage(ctx, "halo cols", &col_map);
    for (i, v) in inputs.iter().enumerate() {
        let (src, _) = rec.input(v)?;
        let shape = v.shape().ok_or_else(super::buffers::partial_state)?;
        let (src_rows, src_cols) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let words = [
            n_total as u32,
            n_ext as u32,
            wext as u32,
            src_rows as u32,
            src_cols as u32,
            (i / spec.nx) as u32,
            (i % spec.nx) as u32,
            u32::from(i == 0),
            spec.fill.unwrap_or(0.0).to_bits(),
            0,
            0,
            0,
        ];
        let params = ConstantBuffer::uniform(ctx, "halo params", &words);
        let binds = [
            src,
            Bind::Held(ext),
            Bind::Constant(&rows),
            Bind::Constant(&cols),
            Bind::Constant(&params),
        ];
        let group = rec.bind(&pipeline, "halo", &binds)?;
        rec.dispatch(&pipeline, &group, "gaussian halo", n_total, WORKGROUP);
    }
    Ok(ext)
}

/// The passes of a tile: vertical, the constant's reset of columns outside the array,
/// horizontal.
fn tile_steps(spec: &TileSpec, fused: bool) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    if spec.wy.len() > 1 {
        steps.push(Step::Correlate {
            axis: 1,
            weights: &spec.wy,
            paired: true,
            fused,
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
            fused,
        });
    }
    steps
}

/// The passes of a gaussian over a block already extended by its halo (any axes), with a
/// constant boundary's positions outside the array reset between passes as scipy does.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`]; [`GpuError::Mapping`] when a staging
/// buffer cannot be mapped.
pub(super) fn run_passes<'c>(
    ctx: &'c GpuContext,
    passes: &[(usize, Arc<Vec<f32>>)],
    constant: Option<&(f32, Vec<Range<usize>>)>,
    input: &Value,
) -> Result<Pending<'c>, GpuError> {
    let in_shape = input.shape().ok_or_else(super::buffers::partial_state)?.to_vec();
    let mut rec = Recording::new(ctx, "gaussian");
    let (input, _) = rec.input(input)?;
    let mut steps = Vec::new();
    for (done, (axis, w)) in passes.iter().enumerate() {
        steps.push(Step::Correlate {
            axis: *axis,
            weights: w,
            paired: false,
            fused: false,
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
    run_chain(rec, input, in_shape, &steps)
}

/// Records `steps` over `input` of `shape` (f32) in one recording; the result is the last
/// step's buffer, always a result buffer of its own (a chain that filters nothing copies its
/// input: handing back the input itself, a pooled upload, let the next upload overwrite a
/// kept result).
fn run_chain<'c>(
    mut rec: Recording<'c>,
    input: Bind<'_>,
    mut shape: Vec<usize>,
    steps: &[Step<'_>],
) -> Result<Pending<'c>, GpuError> {
    let ctx = rec.context();
    let correlations = steps.iter().filter(|s| matches!(s, Step::Correlate { .. })).count();
    if correlations == 0 {
        let bytes = (shape.iter().product::<usize>() * 4) as u64;
        let result = rec.copy_to_result(&input, bytes);
        return Ok(Pending {
            rec,
            result,
            shape,
            dtype: DType::F32,
        });
    }
    let pipeline = ctx.pipeline(KernelSource::Fixed("correlate.wgsl", SHADER))?;
    let dummy = ConstantBuffer::storage(ctx, "unused", &[]);
    // The current buffer: the input, then each pass's output; the last pass writes the result.
    let mut cur = input;
    let mut result = None;
    let mut done = 0;
    for step in steps {
        let (axis, taps, symmetric, fused, mode, inside, value) = match step {
            Step::Correlate {
                axis,
                weights,
                paired,
                fused,
            } => (
                *axis,
                weights.len(),
                *paired && weights_symmetric(weights),
                *fused,
                0u32,
                0..0,
                0.0,
            ),
            Step::Fill { axis, inside, value } => (*axis, 1, false, false, 1u32, inside.clone(), *value),
        };
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
            u32::from(fused),
            1f32.to_bits(),
        ];
        let params = ConstantBuffer::uniform(ctx, "filter params", &words);
        match step {
            Step::Correlate { weights, .. } => {
                let weights = ConstantBuffer::storage(ctx, "filter weights", bytemuck::cast_slice(weights));
                done += 1;
                let bytes = (n_total * 4) as u64;
                if done == correlations {
                    // The last correlation writes the result; a trailing fill works on it.
                    let out = rec.result("gaussian", bytes);
                    let group = rec.bind(
                        &pipeline,
                        "correlate",
                        &[
                            cur,
                            Bind::Result(&out),
                            Bind::Constant(&weights),
                            Bind::Constant(&params),
                        ],
                    )?;
                    rec.dispatch(&pipeline, &group, "gaussian", n_total, WORKGROUP);
                    result = Some(out);
                } else {
                    let slot = rec.scratch("filter pass", bytes);
                    let group = rec.bind(
                        &pipeline,
                        "correlate",
                        &[cur, Bind::Held(slot), Bind::Constant(&weights), Bind::Constant(&params)],
                    )?;
                    rec.dispatch(&pipeline, &group, "gaussian", n_total, WORKGROUP);
                    cur = Bind::Held(slot);
                }
            }
            Step::Fill { .. } => {
                // Fill writes in place: never into another task's kept block.
                if matches!(cur, Bind::Device(_) | Bind::Constant(_)) {
                    let slot = rec.scratch("filter input", (shape.iter().product::<usize>() * 4) as u64);
                    rec.copy(
                        &cur,
                        0,
                        &Bind::Held(slot),
                        0,
                        (shape.iter().product::<usize>() * 4) as u64,
                    );
                    cur = Bind::Held(slot);
                }
                // Fill reads no input and no weights: the one empty buffer stands in for both.
                let target = match &result {
                    Some(out) => Bind::Result(out),
                    None => cur,
                };
                let group = rec.bind(
                    &pipeline,
                    "fill",
                    &[
                        Bind::Constant(&dummy),
                        target,
                        Bind::Constant(&dummy),
                        Bind::Constant(&params),
                    ],
                )?;
                rec.dispatch(&pipeline, &group, "gaussian boundary fill", n_total, WORKGROUP);
            }
        }
        shape[axis] = n_out;
    }
    let result = result.expect("a chain with a correlation has a last one");
    Ok(Pending {
        rec,
        result,
        shape,
        dtype: DType::F32,
    })
}

fn weights_symmetric(w: &[f32]) -> bool {
    let r = w.len() / 2;
    w.len() % 2 == 1 && (0..r).all(|k| w[k] == w[2 * r - k])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ColumnRun;

    fn spec(rows: Vec<Option<(usize, usize)>>, cols: Vec<ColumnRun>) -> TileSpec {
        TileSpec {
            wy: vec![0.25, 0.5, 0.25],
            wx: vec![1.0],
            rows,
            cols,
            nx: 1,
            fill: None,
            inside_cols: 0..4,
            shape: vec![2, 4],
        }
    }

    #[test]
    fn halo_sources_beyond_twenty_bits_do_not_pack() {
        let run = |block, src, step| ColumnRun {
            dst: 0,
            len: 4,
            block,
            src,
            step,
        };
        let ok = spec(vec![Some((0, 5)), Some((1, 0)), None, Some((2, 3))], vec![run(0, 0, 1)]);
        assert!(halo_indices_pack(&ok));
        // the last rows of a neighbour whose blocks are 2^20 rows tall
        let tall = spec(vec![Some((0, (1 << 20) + 1)), Some((1, 0))], vec![run(0, 0, 1)]);
        assert!(!halo_indices_pack(&tall));
        // a reflected run whose last column lies at 2^20
        let wide = spec(vec![Some((0, 0))], vec![run(0, (1 << 20) + 2, -1)]);
        assert!(!halo_indices_pack(&wide));
        // a neighbour id that reaches the word's sentinel
        let many = spec(vec![Some(((1 << 12) - 1, 0))], vec![run(0, 0, 1)]);
        assert!(!halo_indices_pack(&many));
    }
}
