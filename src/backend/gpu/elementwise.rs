//! Dispatching a fused elementwise program: upload the inputs, run the kernel, read back.
//! Blocks larger than the adapter's storage binding limit are split into segments.

use ndarray::{ArrayD, IxDyn};
use wgpu::util::DeviceExt;

use super::kernel::{FusedKernel, WORKGROUP_SIZE};
use super::submit::Recording;
use super::{GpuContext, GpuError};
use crate::expr::{Block, DType};
use crate::plan::FusedProgram;

/// Whether the program's bindings fit the device (inputs + output + constants).
pub(super) fn fits(ctx: &GpuContext, program: &FusedProgram) -> bool {
    let limits = ctx.device.limits();
    program.inputs.len() + 2 <= limits.max_storage_buffers_per_shader_stage as usize
}

/// Runs `program` over same-shaped `inputs` on the device.
pub(super) fn run(
    ctx: &GpuContext,
    program: &FusedProgram,
    shape: &[usize],
    inputs: &[&Block],
) -> Result<Block, GpuError> {
    let (kernel, consts) = FusedKernel::new(program);
    let pipeline = ctx.pipeline(&kernel.to_string())?;
    let n: usize = shape.iter().product();
    // Inputs as contiguous f32 (masks widen on the host for now).
    let host: Vec<std::borrow::Cow<'_, [f32]>> = inputs
        .iter()
        .map(|b| match b {
            Block::F32(a) => match a.as_slice() {
                Some(s) => std::borrow::Cow::Borrowed(s),
                None => std::borrow::Cow::Owned(a.iter().copied().collect()),
            },
            Block::U8(a) => std::borrow::Cow::Owned(a.iter().map(|&v| f32::from(v)).collect()),
        })
        .collect();
    let mut out = vec![0f32; n];
    let limit = (ctx.device.limits().max_storage_buffer_binding_size as usize / 4).max(WORKGROUP_SIZE as usize);
    let consts_buf = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("consts"),
        contents: bytemuck::cast_slice(&consts),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let mut start = 0;
    while start < n {
        let end = (start + limit).min(n);
        run_segment(
            ctx,
            &pipeline,
            &kernel,
            &consts_buf,
            &host,
            start..end,
            &mut out[start..end],
        )?;
        start = end;
    }
    let array = ArrayD::from_shape_vec(IxDyn(shape), out).map_err(|e| GpuError::Device(e.to_string()))?;
    Ok(match program.out_dtype {
        DType::F32 => Block::F32(array.into_shared()),
        DType::U8 => Block::U8(array.mapv(|v| v as u8).into_shared()),
    })
}

#[allow(clippy::too_many_arguments)]
fn run_segment(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    kernel: &FusedKernel,
    consts: &wgpu::Buffer,
    host: &[std::borrow::Cow<'_, [f32]>],
    range: std::ops::Range<usize>,
    out: &mut [f32],
) -> Result<(), GpuError> {
    let device = &ctx.device;
    let n = range.len();
    let bytes = (n * 4) as u64;
    let inputs: Vec<wgpu::Buffer> = host
        .iter()
        .map(|h| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("input"),
                contents: bytemuck::cast_slice(&h[range.clone()]),
                usage: wgpu::BufferUsages::STORAGE,
            })
        })
        .collect();
    let output = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("output"),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("params"),
        contents: bytemuck::cast_slice(&[n as u32, 0, 0, 0]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    debug_assert_eq!(kernel.binding_out() as usize, inputs.len());
    let mut buffers: Vec<&wgpu::Buffer> = inputs.iter().collect();
    buffers.extend([&output, consts, &params]);
    let bind_group = bind_buffers(ctx, pipeline, "fused", &buffers)?;
    dispatch_and_read(ctx, pipeline, &bind_group, &output, n, WORKGROUP_SIZE, out)
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
