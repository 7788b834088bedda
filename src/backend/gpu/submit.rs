//! Recording dispatches into one command buffer and reading a result back: a chain of passes
//! (a separable filter) runs in one submission with its intermediates on the device.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{buffers, DeviceBlock, GpuContext, GpuError};
use crate::backend::Value;
use crate::expr::DType;

/// A kernel's result buffer with the work that fills it recorded, not yet submitted.
pub(super) struct Pending<'c> {
    /// the recorded work
    pub rec: Recording<'c>,
    /// the result (f32 bits, or bytes four to a word)
    pub buffer: wgpu::Buffer,
    /// the result's shape
    pub shape: Vec<usize>,
    /// the result's element type
    pub dtype: DType,
}

impl Pending<'_> {
    /// Submits the work. With `keep`, and room in the device budget, the result stays on the
    /// device and this returns at once (the next task's work queues behind it); otherwise it
    /// waits and reads the result back.
    ///
    /// **Errors**: as [`Recording::submit_and_read`].
    pub(super) fn finish(self, ctx: &Arc<GpuContext>, keep: bool) -> Result<Value, GpuError> {
        if keep {
            if let Some(d) = DeviceBlock::try_new(ctx, self.buffer.clone(), self.shape.clone(), self.dtype) {
                self.rec.submit()?;
                return Ok(Value::Device(Arc::new(d)));
            }
        }
        let n: usize = self.shape.iter().product();
        let words = match self.dtype {
            DType::F32 => n,
            DType::U8 => n.div_ceil(4),
        };
        let mut out = vec![0u32; words];
        self.rec
            .submit_and_read(&self.buffer, bytemuck::cast_slice_mut(&mut out))?;
        buffers::block_from_words(out, &self.shape, self.dtype).map(Value::Block)
    }
}

/// Dispatches recorded into one command encoder, submitted together.
pub(super) struct Recording<'c> {
    ctx: &'c GpuContext,
    encoder: wgpu::CommandEncoder,
    /// bytes of the buffers bound by the recorded work (held by the device until it is done)
    held: u64,
}

impl<'c> Recording<'c> {
    /// An empty recording.
    pub(super) fn new(ctx: &'c GpuContext, label: &str) -> Self {
        let encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        Recording { ctx, encoder, held: 0 }
    }

    /// A bind group giving binding `i` of group 0 to `buffers[i]`; the buffers count as held
    /// by this recording's work until the device has run it.
    ///
    /// **Errors**: [`GpuError::Shader`] when the buffers do not match the kernel's bindings.
    pub(super) fn bind(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        label: &str,
        buffers: &[&wgpu::Buffer],
    ) -> Result<wgpu::BindGroup, GpuError> {
        self.held += buffers.iter().map(|b| b.size()).sum::<u64>();
        super::elementwise::bind_buffers(self.ctx, pipeline, label, buffers)
    }

    /// Records `n` invocations in workgroups of `workgroup_size`, 2-D (at most the device's
    /// workgroups per dimension in x), linearised by the kernel as `gid.x + gid.y * groups.x * size`.
    pub(super) fn dispatch(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        n: usize,
        workgroup_size: u32,
    ) {
        let groups = (n as u32).div_ceil(workgroup_size);
        let max = self.ctx.device.limits().max_compute_workgroups_per_dimension.max(1);
        let (gx, gy) = (groups.min(max), groups.div_ceil(max));
        let mut pass = self.encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(gx.max(1), gy.max(1), 1);
    }

    /// Submits everything recorded without waiting for it.
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error.
    pub(super) fn submit(self) -> Result<(), GpuError> {
        let scope = self.ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let in_flight = self.ctx.in_flight.clone();
        let held = self.held;
        in_flight.fetch_add(held, Ordering::AcqRel);
        self.ctx.queue.submit([self.encoder.finish()]);
        self.ctx.queue.on_submitted_work_done(move || {
            in_flight.fetch_sub(held, Ordering::AcqRel);
        });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(GpuError::Shader(e.to_string())),
            None => Ok(()),
        }
    }

    /// Submits everything recorded, then copies the first `out.len()` f32 of `output` back
    /// into `out` (through a mapped staging buffer). Blocks until the device is done.
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error, [`GpuError::Device`] for a
    /// failed map.
    pub(super) fn submit_and_read(mut self, output: &wgpu::Buffer, out: &mut [f32]) -> Result<(), GpuError> {
        let device = &self.ctx.device;
        let bytes = (out.len() * 4) as u64;
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if bytes > 0 {
            self.encoder.copy_buffer_to_buffer(output, 0, &readback, 0, Some(bytes));
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.ctx.queue.submit([self.encoder.finish()]);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader(e.to_string()));
        }
        if bytes == 0 {
            return Ok(());
        }
        let stats = &self.ctx.stats;
        let submitted = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        readback.slice(..bytes).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device(e.to_string()))?;
        rx.recv()
            .map_err(|e| GpuError::Device(e.to_string()))?
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let done = Instant::now();
        stats
            .compute_ns
            .fetch_add((done - submitted).as_nanos() as u64, Ordering::Relaxed);
        {
            let view = readback
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| GpuError::Device(e.to_string()))?;
            out.copy_from_slice(bytemuck::cast_slice(&view));
        }
        readback.unmap();
        stats
            .download_ns
            .fetch_add(done.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats.download_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}
