//! Dispatching a fused elementwise program: upload the inputs, run the kernel, read back.
//! Blocks larger than the adapter's storage binding limit are split into segments.

use super::kernel::{FusedKernel, WORKGROUP_SIZE};
use super::submit::{Pending, Produced, Recording};
use super::{buffers, GpuContext, GpuError};
use crate::backend::Value;
use crate::expr::Block;
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
/// than one storage binding runs in segments from the host.
pub(super) fn run<'c>(
    ctx: &'c GpuContext,
    program: &FusedProgram,
    shape: &[usize],
    inputs: &[&Value],
) -> Result<Produced<'c>, GpuError> {
    let (kernel, consts) = FusedKernel::new(program);
    let pipeline = ctx.pipeline(&kernel.to_string())?;
    let n: usize = shape.iter().product();
    // Elements of one segment: a multiple of 4 so packed masks split on word boundaries.
    let limit = (ctx.adapter.max_storage_binding as usize / 4).max(WORKGROUP_SIZE as usize) / 4 * 4;
    let consts_buf = buffers::uniform(ctx, "consts", bytemuck::cast_slice(&consts));
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
        let words = n.div_ceil(per);
        let output = buffers::output(ctx, "fused output", words);
        let params = buffers::uniform(ctx, "params", &[n as u32, 0, 0, 0]);
        bound.extend([output.clone(), consts_buf, params]);
        let refs: Vec<&wgpu::Buffer> = bound.iter().collect();
        let group = rec.bind(&pipeline, "fused", &refs)?;
        rec.dispatch(&pipeline, &group, words, WORKGROUP_SIZE);
        return Ok(Produced::Pending(Pending {
            rec,
            buffer: output,
            shape: shape.to_vec(),
            dtype: program.out_dtype,
        }));
    }
    let blocks = inputs
        .iter()
        .map(|v| buffers::host_block(v))
        .collect::<Result<Vec<_>, _>>()?;
    // Contiguous host views of the inputs (a copy only for strided blocks).
    let host: Vec<HostInput<'_>> = blocks
        .iter()
        .map(|b| match b {
            Block::F32(a) => HostInput::F32(
                a.as_slice()
                    .map_or_else(|| a.iter().copied().collect::<Vec<_>>().into(), Into::into),
            ),
            Block::U8(a) => HostInput::U8(
                a.as_slice()
                    .map_or_else(|| a.iter().copied().collect::<Vec<_>>().into(), Into::into),
            ),
        })
        .collect();
    let mut out = vec![0u32; n.div_ceil(per)];
    let mut start = 0;
    while start < n {
        let end = (start + limit).min(n);
        let words = &mut out[start / per..end.div_ceil(per)];
        run_segment(ctx, &pipeline, &kernel, &consts_buf, &host, start..end, words)?;
        start = end;
    }
    buffers::block_from_words(out, shape, program.out_dtype).map(Produced::Host)
}

/// One input's elements in C order.
enum HostInput<'a> {
    F32(std::borrow::Cow<'a, [f32]>),
    U8(std::borrow::Cow<'a, [u8]>),
}

impl HostInput<'_> {
    /// Elements `range` as storage words (f32 bits, or bytes packed four to a word).
    fn words(&self, range: std::ops::Range<usize>) -> std::borrow::Cow<'_, [u32]> {
        match self {
            HostInput::F32(v) => std::borrow::Cow::Borrowed(bytemuck::cast_slice(&v[range])),
            HostInput::U8(v) => buffers::pack_bytes(&v[range]).into(),
        }
    }
}

fn run_segment(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    kernel: &FusedKernel,
    consts: &wgpu::Buffer,
    host: &[HostInput<'_>],
    range: std::ops::Range<usize>,
    out: &mut [u32],
) -> Result<(), GpuError> {
    let n = range.len();
    let inputs: Vec<wgpu::Buffer> = host
        .iter()
        .map(|h| buffers::storage(ctx, "input", &h.words(range.clone())))
        .collect();
    let output = buffers::output(ctx, "output", out.len());
    let params = buffers::uniform(ctx, "params", &[n as u32, 0, 0, 0]);
    debug_assert_eq!(kernel.binding_out() as usize, inputs.len());
    let mut buffers: Vec<&wgpu::Buffer> = inputs.iter().collect();
    buffers.extend([&output, consts, &params]);
    let bind_group = bind_buffers(ctx, pipeline, "fused", &buffers)?;
    dispatch_and_read(
        ctx,
        pipeline,
        &bind_group,
        &output,
        out.len(),
        WORKGROUP_SIZE,
        bytemuck::cast_slice_mut(out),
    )
}

/// A bind group giving binding `i` of group 0 to `buffers[i]`.
///
/// **Errors**: [`GpuError::Shader`] when the buffers do not match the kernel's bindings.
pub(super) fn bind_buffers(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    buffers: &[&wgpu::Buffer],
) -> Result<wgpu::BindGroup, GpuError> {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
        .iter()
        .enumerate()
        .map(|(i, b)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: b.as_entire_binding(),
        })
        .collect();
    let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    });
    match pollster::block_on(scope.pop()) {
        Some(e) => Err(GpuError::Shader(e.to_string())),
        None => Ok(group),
    }
}

/// Dispatches `n` invocations in workgroups of `workgroup_size` of a bound pipeline and reads
/// the first `out.len()` f32 of `output` back into `out`. Blocks until the device is done.
///
/// **Errors**: [`GpuError::Shader`] for a validation error, [`GpuError::Device`] for a failed map.
pub(super) fn dispatch_and_read(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    output: &wgpu::Buffer,
    n: usize,
    workgroup_size: u32,
    out: &mut [f32],
) -> Result<(), GpuError> {
    let mut rec = Recording::new(ctx, "dispatch");
    rec.dispatch(pipeline, bind_group, n, workgroup_size);
    rec.submit_and_read(output, out)
}
