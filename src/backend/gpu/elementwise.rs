//! Dispatching a fused elementwise program: upload the inputs, run the kernel, read back.
//! Blocks larger than the adapter's storage binding limit are split into segments.

use super::context::KernelSource;
use super::kernel::{FusedKernel, WORKGROUP_SIZE};
use super::submit::{Pending, Produced, Recording};
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
        let mut bound = Vec::with_capacity(inputs.len() + 3);
        for (v, &want) in inputs.iter().zip(&program.inputs) {
            let (buffer, dtype) = rec.input(v)?;
            if dtype != want {
                return Err(GpuError::Device(format!(
                    "a {dtype} input where the program reads {want}"
                )));
            }
            bound.push(buffer);
        }
        let buffer = record(&mut rec, &pipeline, &consts, bound, n, per)?;
        return Ok(Produced::Pending(Pending {
            rec,
            buffer,
            shape: shape.to_vec(),
            dtype: program.out_dtype,
        }));
    }
    let blocks = inputs
        .iter()
        .map(|v| buffers::host_block(v))
        .collect::<Result<Vec<_>, _>>()?;
    let bytes: Vec<_> = blocks.iter().map(|b| buffers::block_bytes(b)).collect();
    let mut out = vec![0u32; n.div_ceil(per)];
    for start in (0..n).step_by(limit) {
        let end = (start + limit).min(n);
        let mut rec = Recording::new(ctx, "fused segment");
        let bound = bytes
            .iter()
            .zip(&program.inputs)
            .map(|(b, dtype)| rec.upload(&b[start * dtype.size()..end * dtype.size()]))
            .collect();
        let output = record(&mut rec, &pipeline, &consts, bound, end - start, per)?;
        let words = &mut out[start / per..end.div_ceil(per)];
        rec.submit_and_read(&output, bytemuck::cast_slice_mut(words))?;
    }
    buffers::block_from_words(out, shape, program.out_dtype).map(Produced::Host)
}

/// Records the kernel over `n` elements of the `inputs` already bound in `rec`; returns the
/// output buffer (`n` f32, or `n` u8 four to a word).
fn record(
    rec: &mut Recording<'_>,
    pipeline: &wgpu::ComputePipeline,
    consts: &[f32],
    mut inputs: Vec<wgpu::Buffer>,
    n: usize,
    per_invocation: usize,
) -> Result<wgpu::Buffer, GpuError> {
    let ctx = rec.context();
    let words = n.div_ceil(per_invocation);
    let output = buffers::output(ctx, "fused output", words);
    let consts = buffers::uniform(ctx, "consts", bytemuck::cast_slice(consts));
    let params = buffers::uniform(ctx, "params", &[n as u32, 0, 0, 0]);
    inputs.extend([output.clone(), consts, params]);
    let refs: Vec<&wgpu::Buffer> = inputs.iter().collect();
    let group = rec.bind(pipeline, "fused", &refs)?;
    rec.dispatch(pipeline, &group, words, WORKGROUP_SIZE);
    Ok(output)
}
