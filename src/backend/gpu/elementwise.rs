//! Dispatching a fused elementwise program: inputs bound in place (device blocks) or uploaded
//! (host blocks, written straight into staging), the kernel, the result left on the device.
//! Blocks larger than the adapter's storage binding limit run in segments, each read back.

use super::kernels::{FusedKernel, KernelSource, WORKGROUP_SIZE};
use super::recording::{Bind, ConstantBuffer, Pending, Produced, Recording, ResultBuffer};
use super::{buffers, GpuContext, GpuError};
use crate::backend::Value;
use crate::plan::{FusedProgram, Instr, Operand};

/// Whether the program's bindings fit the device: inputs and output as storage buffers, its
/// constants (at most, before deduplication) in one uniform buffer.
pub(super) fn fits(ctx: &GpuContext, program: &FusedProgram) -> bool {
    let limits = ctx.device.limits();
    let constants = program
        .instrs
        .iter()
        .flat_map(|i| match i {
            Instr::Load(_) => vec![],
            Instr::Unary(_, a) | Instr::ToU8(a) => vec![a],
            Instr::Binary(_, a, b) => vec![a, b],
            Instr::Where(c, a, b) => vec![c, a, b],
        })
        .filter(|o| matches!(o, Operand::Const(_)))
        .count();
    // inputs + the output
    program.inputs.len() < limits.max_storage_buffers_per_shader_stage as usize
        && (constants as u64 + 4) * 4 <= limits.max_uniform_buffer_binding_size
}

/// Runs `program` over same-shaped `inputs` on the device. Masks go up and come back as
/// bytes (four to a word). Inputs already on the device are read in place. A block larger
/// than one storage binding runs in segments from the host, each read back.
///
/// **Errors**: [`GpuError::Shader`], [`GpuError::Internal`] (also for an input of another
/// dtype than the program reads); [`GpuError::Mapping`] or [`GpuError::DeviceLost`] when a
/// transfer fails.
pub(super) fn run<'c>(
    ctx: &'c GpuContext,
    program: &FusedProgram,
    shape: &[usize],
    inputs: &[&Value],
) -> Result<Produced<'c>, GpuError> {
    let (kernel, consts) = FusedKernel::new(program);
    let pipeline = ctx.pipeline(KernelSource::Fused(kernel.clone()))?;
    let n: usize = shape.iter().product();
    // Elements of one segment: a multiple of 4 so packed masks split on word boundaries.
    let limit = (ctx.adapter.max_storage_binding as usize / 4).max(WORKGROUP_SIZE as usize) / 4 * 4;
    let per = kernel.elements_per_invocation();
    if n <= limit {
        let mut rec = Recording::new(ctx, "fused");
        let mut bound = Vec::with_capacity(inputs.len());
        for (v, &want) in inputs.iter().zip(&program.inputs) {
            let (bind, dtype) = rec.input(v)?;
            if dtype != want {
                return Err(GpuError::Internal(format!(
                    "a {dtype} input where the program reads {want}"
                )));
            }
            bound.push(bind);
        }
        let result = record(&mut rec, &pipeline, &consts, bound, n, per, program.out_dtype)?;
        return Ok(Produced::Pending(Pending {
            rec,
            result,
            shape: shape.to_vec(),
            dtype: program.out_dtype,
        }));
    }
    let blocks = inputs
        .iter()
        .map(|v| buffers::host_block(v))
        .collect::<Result<Vec<_>, _>>()?;
    let flat: Vec<_> = blocks.iter().map(|b| buffers::block_bytes(ctx, b)).collect();
    let mut out = vec![0u32; n.div_ceil(per)];
    for start in (0..n).step_by(limit) {
        let end = (start + limit).min(n);
        let mut rec = Recording::new(ctx, "fused segment");
        let mut bound = Vec::with_capacity(flat.len());
        for (bytes, dtype) in flat.iter().zip(&program.inputs) {
            let part = &bytes[start * dtype.size()..end * dtype.size()];
            bound.push(Bind::Held(
                rec.upload_with(part.len(), |mut dst| dst.copy_from_slice(part))?,
            ));
        }
        let result = record(&mut rec, &pipeline, &consts, bound, end - start, per, program.out_dtype)?;
        let p = Pending {
            rec,
            result,
            shape: vec![end - start],
            dtype: program.out_dtype,
        };
        let words = p.read_now()?;
        out[start / per..end.div_ceil(per)].copy_from_slice(&words[..end.div_ceil(per) - start / per]);
    }
    buffers::block_from_words(out, shape, program.out_dtype).map(Produced::Host)
}

/// Records the kernel over `n` elements of the `inputs`; returns the result buffer (`n` f32,
/// or `n` u8 four to a word).
fn record(
    rec: &mut Recording<'_>,
    pipeline: &wgpu::ComputePipeline,
    consts: &[f32],
    binds: Vec<Bind<'_>>,
    n: usize,
    per_invocation: usize,
    out_dtype: crate::expr::DType,
) -> Result<ResultBuffer, GpuError> {
    let ctx = rec.context();
    let words = n.div_ceil(per_invocation);
    let result = rec.result("fused output", (n * out_dtype.size()) as u64);
    let consts = ConstantBuffer::uniform(ctx, "consts", bytemuck::cast_slice(consts));
    // `one` (1.0) where the compiler cannot see it: see fused_elementwise.wgsl.
    let params = ConstantBuffer::uniform(ctx, "params", &[n as u32, 1f32.to_bits(), 0, 0]);
    let all: Vec<Bind<'_>> = binds
        .into_iter()
        .chain([Bind::Result(&result), Bind::Constant(&consts), Bind::Constant(&params)])
        .collect();
    let group = rec.bind(pipeline, "fused", &all)?;
    drop(all);
    rec.dispatch(pipeline, &group, "fused", words, WORKGROUP_SIZE);
    Ok(result)
}
