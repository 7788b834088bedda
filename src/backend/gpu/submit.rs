//! Recording dispatches into one command buffer and reading a result back: a chain of passes
//! (a separable filter) runs in one submission with its intermediates on the device.

use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{buffers, DeviceBlock, GpuContext, GpuError};
use crate::backend::Value;
use crate::expr::{Block, DType};
use ndarray::{ArrayViewD, ArrayViewMutD, Zip};

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
        self.rec
            .read_block(&self.buffer, &self.shape, self.dtype)
            .map(Value::Block)
    }
}

impl Pending<'_> {
    /// Submits the work and writes the result (as f32; masks as 0.0/1.0) straight from the
    /// mapped staging buffer into `dst`, which has the result's shape: a final output block,
    /// with no host block in between. Blocks until the device is done.
    ///
    /// **Errors**: as [`Recording::submit_and_read_with`]; a `dst` of another shape.
    pub(super) fn read_into(self, dst: ArrayViewMutD<'_, MaybeUninit<f32>>) -> Result<(), GpuError> {
        let n: usize = self.shape.iter().product();
        if dst.shape() != self.shape.as_slice() {
            return Err(GpuError::Device(format!(
                "a result of shape {:?} written into {:?}",
                self.shape,
                dst.shape()
            )));
        }
        let shape = ndarray::IxDyn(&self.shape);
        let bad = |e: ndarray::ShapeError| GpuError::Device(e.to_string());
        let dtype = self.dtype;
        let bytes = (n * dtype.size()).div_ceil(4) as u64 * 4;
        self.rec.submit_and_read_with(&self.buffer, bytes, |raw| {
            match dtype {
                DType::F32 => {
                    let src =
                        ArrayViewD::from_shape(shape, bytemuck::cast_slice::<u8, f32>(&raw[..n * 4])).map_err(bad)?;
                    Zip::from(dst).and(&src).par_for_each(|d, &s| *d = MaybeUninit::new(s));
                }
                DType::U8 => {
                    let src = ArrayViewD::from_shape(shape, &raw[..n]).map_err(bad)?;
                    Zip::from(dst)
                        .and(&src)
                        .par_for_each(|d, &s| *d = MaybeUninit::new(f32::from(s)));
                }
            }
            Ok(())
        })
    }
}

/// What a kernel run gives: its result still on the device (submitted by the caller), or a
/// block already on the host.
pub(super) enum Produced<'c> {
    /// recorded work and its result buffer
    Pending(Pending<'c>),
    /// a finished host block
    Host(Block),
}

/// Dispatches recorded into one command encoder, submitted together.
pub(super) struct Recording<'c> {
    ctx: &'c GpuContext,
    encoder: wgpu::CommandEncoder,
    /// bytes of the buffers bound by the recorded work (held by the device until it is done)
    held: u64,
    /// the staging belt of this recording's uploads, taken from the pool on the first one
    belt: Option<wgpu::util::StagingBelt>,
    /// pooled input buffers to give back once the work is done
    inputs: Vec<wgpu::Buffer>,
}

impl<'c> Recording<'c> {
    /// An empty recording.
    pub(super) fn new(ctx: &'c GpuContext, label: &str) -> Self {
        let encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        Recording {
            ctx,
            encoder,
            held: 0,
            belt: None,
            inputs: Vec::new(),
        }
    }

    /// A device buffer holding `bytes` (zero-padded to whole words), uploaded through a reused
    /// staging belt into a pooled input buffer (copied at the start of this recording's work).
    /// Counted as upload time and bytes.
    pub(super) fn upload(&mut self, bytes: &[u8]) -> wgpu::Buffer {
        let began = Instant::now();
        let padded = bytes.len().div_ceil(4) as u64 * 4;
        let limit = self.ctx.device.limits().max_storage_buffer_binding_size;
        let buffer = self.ctx.uploads.input(&self.ctx.device, padded, limit);
        if let Some(size) = wgpu::BufferSize::new(padded) {
            let belt = self.belt.get_or_insert_with(|| self.ctx.uploads.belt(&self.ctx.device));
            let mut view = belt.write_buffer(&mut self.encoder, &buffer, 0, size);
            view.slice(..bytes.len()).copy_from_slice(bytes);
            view.slice(bytes.len()..).fill(0);
        }
        self.inputs.push(buffer.clone());
        let stats = &self.ctx.stats;
        stats
            .upload_ns
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats.upload_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        buffer
    }

    /// A task input as a storage buffer and its element type: a device block's own buffer (no
    /// copy), or a host block uploaded as [`buffers::block_bytes`].
    ///
    /// **Errors**: [`GpuError::Device`] for a partial state (a planner bug).
    pub(super) fn input(&mut self, value: &Value) -> Result<(wgpu::Buffer, DType), GpuError> {
        match value {
            Value::Device(d) => Ok((d.buffer().clone(), d.dtype())),
            Value::Block(b) => Ok((self.upload(&buffers::block_bytes(b)), b.dtype())),
            Value::Partial(_) => Err(buffers::partial_state()),
        }
    }

    /// [`Recording::input`] for kernels that read f32 only: a mask is widened (on the host) first.
    ///
    /// **Errors**: as [`Recording::input`], and a failed read-back of a device mask.
    pub(super) fn input_f32(&mut self, value: &Value) -> Result<wgpu::Buffer, GpuError> {
        match value.dtype() {
            Some(DType::U8) => {
                let f = buffers::host_block(value)?.to_f32();
                let data: Vec<f32> = f.iter().copied().collect();
                Ok(self.upload(bytemuck::cast_slice(&data)))
            }
            _ => self.input(value).map(|(b, _)| b),
        }
    }

    /// Submits the recorded work (its uploads first), then recycles the upload buffers: the
    /// belt's chunks come back when the device has copied from them, the belt returns to the
    /// pool, and the input buffers return to theirs. Reusing a buffer early would be safe (wgpu
    /// orders a later submission's writes after this one's reads); returning it only once the
    /// work is done keeps queued work from pinning the pool. When the caller waits for the
    /// device anyway (`waits`), they return at once and nothing counts as in flight.
    fn submit_encoder(self, extra: impl FnOnce(&mut wgpu::CommandEncoder), waits: bool) {
        let Recording {
            ctx,
            mut encoder,
            held,
            mut belt,
            inputs,
        } = self;
        extra(&mut encoder);
        if let Some(belt) = &mut belt {
            belt.finish();
        }
        let in_flight = ctx.in_flight.clone();
        if !waits {
            in_flight.fetch_add(held, Ordering::AcqRel);
        }
        // A software adapter may run the work inside `submit`: that is compute time too.
        let began = Instant::now();
        ctx.queue.submit([encoder.finish()]);
        ctx.stats
            .compute_ns
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if let Some(mut belt) = belt {
            belt.recall();
            ctx.uploads.give_belt(belt);
        }
        let give = ctx.uploads.returner();
        if waits {
            give(inputs);
        } else {
            ctx.queue.on_submitted_work_done(move || {
                in_flight.fetch_sub(held, Ordering::AcqRel);
                give(inputs);
            });
        }
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
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let device = &self.ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(label),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(GpuError::Shader(e.to_string())),
            None => Ok(group),
        }
    }

    /// The device this recording is for.
    pub(super) fn context(&self) -> &'c GpuContext {
        self.ctx
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
        let ctx = self.ctx;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.submit_encoder(|_| {}, false);
        match pollster::block_on(scope.pop()) {
            Some(e) => Err(GpuError::Shader(e.to_string())),
            None => Ok(()),
        }
    }

    /// Submits, waits, and reads `buffer` back as a host block of `shape` and `dtype`.
    ///
    /// **Errors**: as [`Recording::submit_and_read`].
    pub(super) fn read_block(self, buffer: &wgpu::Buffer, shape: &[usize], dtype: DType) -> Result<Block, GpuError> {
        let n: usize = shape.iter().product();
        let mut out = vec![0u32; (n * dtype.size()).div_ceil(4)];
        self.submit_and_read(buffer, bytemuck::cast_slice_mut(&mut out))?;
        buffers::block_from_words(out, shape, dtype)
    }

    /// Submits everything recorded, then copies the first `out.len()` f32 of `output` back
    /// into `out` (through a mapped staging buffer). Blocks until the device is done.
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error, [`GpuError::Device`] for a
    /// failed map.
    pub(super) fn submit_and_read(self, output: &wgpu::Buffer, out: &mut [f32]) -> Result<(), GpuError> {
        self.submit_and_read_with(output, (out.len() * 4) as u64, |bytes| {
            out.copy_from_slice(bytemuck::cast_slice(bytes));
            Ok(())
        })
    }

    /// Submits everything recorded, then hands the first `bytes` (a multiple of 4) of `output`,
    /// mapped, to `read`. Blocks until the device is done.
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error, [`GpuError::Device`] for a
    /// failed map, and `read`'s errors.
    pub(super) fn submit_and_read_with(
        self,
        output: &wgpu::Buffer,
        bytes: u64,
        read: impl FnOnce(&[u8]) -> Result<(), GpuError>,
    ) -> Result<(), GpuError> {
        let ctx = self.ctx;
        let device = &ctx.device;
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.submit_encoder(
            |encoder| {
                if bytes > 0 {
                    encoder.copy_buffer_to_buffer(output, 0, &readback, 0, Some(bytes));
                }
            },
            true,
        );
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader(e.to_string()));
        }
        if bytes == 0 {
            return Ok(());
        }
        let stats = &ctx.stats;
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
            read(&view)?;
        }
        readback.unmap();
        stats
            .download_ns
            .fetch_add(done.elapsed().as_nanos() as u64, Ordering::Relaxed);
        stats.download_bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }
}
