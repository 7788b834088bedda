//! [`Recording`]: one task's uploads and dispatches in one command buffer, and the buffers that
//! work holds. The types keep ownership straight:
//!
//! - an upload writes straight into a leased, mapped staging buffer and lands in a leased
//!   device input buffer; both are held by the recording ([`Slot`]) and go back to their pools
//!   only in the completion of the submission that used them;
//! - a kernel's result is a [`ResultBuffer`], a buffer of its own that no pool ever sees, so
//!   a kept result can never be a pooled buffer that the next upload overwrites;
//! - kernels bind through [`Bind`], which names only these kinds, so no code outside this
//!   module handles a raw pooled `wgpu::Buffer` it could keep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use wgpu::util::DeviceExt;
use wgpu::WriteOnly;

use super::pool::{InputLease, ReadbackLease, StagingLease};
use super::{DeviceBlock, GpuContext, GpuError};
use crate::expr::{Block, DType};

/// A buffer a kernel writes a result into, owned by that result (never pooled). In checking
/// mode it is poisoned when dropped; drops happen after the last submission that reads it.
pub(super) struct ResultBuffer {
    buffer: wgpu::Buffer,
    queue: wgpu::Queue,
    checks: Arc<AtomicBool>,
}

impl ResultBuffer {
    /// A zero-initialised buffer of `bytes` (rounded up to whole words, at least one).
    pub(super) fn new(ctx: &GpuContext, label: &str, bytes: u64) -> Self {
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.div_ceil(4).max(1) * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ResultBuffer {
            buffer,
            queue: ctx.queue.clone(),
            checks: ctx.pools.checks.clone(),
        }
    }

    /// Its size in bytes.
    pub(super) fn size(&self) -> u64 {
        self.buffer.size()
    }
}

impl Drop for ResultBuffer {
    fn drop(&mut self) {
        if self.checks.load(Ordering::Relaxed) {
            super::pool::poison(&self.queue, &self.buffer);
        }
    }
}

/// A small read-only buffer made once from host data (parameters, weights, decode tables):
/// never written after creation, so it may be shared freely.
#[derive(Clone)]
pub(super) struct ConstantBuffer(wgpu::Buffer);

impl ConstantBuffer {
    /// A storage buffer holding `words` (at least one word: bindings may not be empty).
    pub(super) fn storage(ctx: &GpuContext, label: &str, words: &[u32]) -> Self {
        let one = [0u32];
        let contents: &[u8] = bytemuck::cast_slice(if words.is_empty() { &one } else { words });
        ConstantBuffer(ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE,
        }))
    }

    /// A uniform buffer holding `words`.
    pub(super) fn uniform(ctx: &GpuContext, label: &str, words: &[u32]) -> Self {
        ConstantBuffer(ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytemuck::cast_slice(words),
            usage: wgpu::BufferUsages::UNIFORM,
        }))
    }
}

/// A kernel's result buffer with the work that fills it recorded, not yet submitted.
pub(super) struct Pending<'c> {
    /// the recorded work
    pub rec: Recording<'c>,
    /// the result (f32 bits, or bytes four to a word)
    pub result: ResultBuffer,
    /// the result's shape
    pub shape: Vec<usize>,
    /// the result's element type
    pub dtype: DType,
}

impl Pending<'_> {
    /// Submits the work and wraps the result as a block kept on the device. Never waits: the
    /// next task's work queues behind this one's.
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error.
    pub(super) fn finish(self, ctx: &Arc<GpuContext>) -> Result<DeviceBlock, GpuError> {
        self.rec.submit()?;
        Ok(DeviceBlock::new(ctx, self.result, self.shape, self.dtype))
    }

    /// Submits the work and waits for the result's words (the blocking path of pieces of
    /// blocks beyond one binding; a counted wait).
    ///
    /// **Errors**: as [`Recording::read_now`].
    pub(super) fn read_now(self) -> Result<Vec<u32>, GpuError> {
        let bytes = (self.shape.iter().product::<usize>() * self.dtype.size()).div_ceil(4) as u64 * 4;
        let Pending { rec, result, .. } = self;
        rec.read_now(&Bind::Result(&result), bytes)
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

/// A buffer held by a recording until its submission completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot(usize);

/// What a kernel binds.
#[derive(Clone, Copy)]
pub(super) enum Bind<'a> {
    /// a buffer the recording holds (an upload or an intermediate)
    Held(Slot),
    /// a result buffer
    Result(&'a ResultBuffer),
    /// a block kept on the device by an earlier task
    Device(&'a DeviceBlock),
    /// a constant buffer
    Constant(&'a ConstantBuffer),
}

enum Held {
    Input(InputLease),
    Scratch(ResultBuffer),
}

/// Dispatches and uploads recorded into one command encoder, submitted together.
pub(super) struct Recording<'c> {
    ctx: &'c GpuContext,
    encoder: wgpu::CommandEncoder,
    /// bytes of buffers bound by the recorded work (held by the device until it is done)
    bound: u64,
    held: Vec<Held>,
    staging: Vec<StagingLease>,
    /// device timestamps, while profiling is on
    stamps: Option<super::profile::Stamps>,
}

impl<'c> Recording<'c> {
    /// An empty recording.
    pub(super) fn new(ctx: &'c GpuContext, label: &str) -> Self {
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
        let stamps = super::profile::Stamps::begin(&ctx.device, &ctx.profiler, &mut encoder);
        Recording {
            ctx,
            encoder,
            bound: 0,
            held: Vec::new(),
            staging: Vec::new(),
            stamps,
        }
    }

    /// The device this recording is for.
    pub(super) fn context(&self) -> &'c GpuContext {
        self.ctx
    }

    /// A device buffer of `len` bytes (zero-padded to whole words) that `fill` writes straight
    /// into mapped staging memory (the only host copy on the way up), copied to a pooled input
    /// buffer at the start of this recording's work. `fill` gets exactly `len` bytes.
    pub(super) fn upload_with(&mut self, len: usize, fill: impl FnOnce(WriteOnly<'_, [u8]>)) -> Result<Slot, GpuError> {
        let began = Instant::now();
        let limit = self.ctx.device.limits().max_storage_buffer_binding_size;
        let size = super::pool::pooled_size(len as u64, limit);
        let staging = self.ctx.pools.staging(size);
        {
            let mut view = staging
                .buffer()
                .get_mapped_range_mut(..size)
                .map_err(|e| GpuError::Mapping {
                    during: "mapping a staging buffer",
                    message: e.to_string(),
                })?;
            // Only the last word is padded (kernels read the elements, nothing past them).
            let words = (len.div_ceil(4) * 4) as u64;
            let (data, mut pad) = view.slice(..words as usize).split_at(len);
            fill(data);
            pad.fill(0);
        }
        staging.buffer().unmap();
        let input = self.ctx.pools.input(size);
        let words = (len.div_ceil(4) * 4) as u64;
        if words > 0 {
            self.encoder
                .copy_buffer_to_buffer(staging.buffer(), 0, input.buffer(), 0, Some(words));
        }
        self.staging.push(staging);
        self.held.push(Held::Input(input));
        let stats = &self.ctx.stats;
        stats.record(true, began, words);
        stats.host_copy_bytes.fetch_add(len as u64, Ordering::Relaxed);
        Ok(Slot(self.held.len() - 1))
    }

    /// A host block uploaded as its elements in C order: f32 bit patterns, or a mask's bytes
    /// (four to a shader word). A strided block (a slice of a larger array) is written row by
    /// row into staging, in parallel for large blocks: no gathered copy in between.
    pub(super) fn upload_block(&mut self, block: &Block) -> Result<Slot, GpuError> {
        let len = block.nbytes() as usize;
        match block {
            Block::F32(a) => self.upload_with(len, |dst| super::buffers::write_elements(a.view(), dst)),
            Block::U8(a) => self.upload_with(len, |dst| super::buffers::write_elements(a.view(), dst)),
        }
    }

    /// A task input and its element type: a device block's own buffer (no copy), or a host
    /// block uploaded.
    ///
    /// **Errors**: [`GpuError::Internal`] for a partial state (a planner bug);
    /// [`GpuError::Mapping`] when the upload's staging buffer cannot be mapped.
    pub(super) fn input<'v>(&mut self, value: &'v crate::backend::Value) -> Result<(Bind<'v>, DType), GpuError> {
        use crate::backend::Value;
        match value {
            Value::Device(d) => Ok((Bind::Device(d), d.dtype())),
            Value::Block(b) => Ok((Bind::Held(self.upload_block(b)?), b.dtype())),
            Value::Partial(_) => Err(super::buffers::partial_state()),
        }
    }

    /// An intermediate buffer of `bytes`, held until the work is done.
    pub(super) fn scratch(&mut self, label: &str, bytes: u64) -> Slot {
        self.held.push(Held::Scratch(ResultBuffer::new(self.ctx, label, bytes)));
        Slot(self.held.len() - 1)
    }

    /// A new result buffer of `bytes`.
    pub(super) fn result(&self, label: &str, bytes: u64) -> ResultBuffer {
        ResultBuffer::new(self.ctx, label, bytes)
    }

    /// A result buffer holding a copy of `from` (`bytes` of it): how a task whose kernel
    /// would change nothing (a gaussian of radius 0) still hands over a buffer of its own.
    pub(super) fn copy_to_result(&mut self, from: &Bind<'_>, bytes: u64) -> ResultBuffer {
        let out = ResultBuffer::new(self.ctx, "copied result", bytes);
        let size = bytes.div_ceil(4) * 4;
        if size > 0 {
            let src = self.raw(from).clone();
            self.encoder.copy_buffer_to_buffer(&src, 0, &out.buffer, 0, Some(size));
        }
        out
    }

    /// Copies `bytes` at `src_offset` of `from` to `dst_offset` of `to` (offsets and length
    /// multiples of 4).
    pub(super) fn copy(&mut self, from: &Bind<'_>, src_offset: u64, to: &Bind<'_>, dst_offset: u64, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let (src, dst) = (self.raw(from).clone(), self.raw(to).clone());
        self.encoder
            .copy_buffer_to_buffer(&src, src_offset, &dst, dst_offset, Some(bytes));
    }

    fn raw<'b>(&'b self, bind: &'b Bind<'_>) -> &'b wgpu::Buffer {
        match bind {
            Bind::Held(Slot(i)) => match &self.held[*i] {
                Held::Input(lease) => lease.buffer(),
                Held::Scratch(r) => &r.buffer,
            },
            Bind::Result(r) => &r.buffer,
            Bind::Device(d) => &d.buffer().buffer,
            Bind::Constant(c) => &c.0,
        }
    }

    /// A bind group giving binding `i` of group 0 to `binds[i]`; the buffers count as bound
    /// by this recording's work until the device has run it.
    ///
    /// **Errors**: [`GpuError::Shader`] when the buffers do not match the kernel's bindings.
    pub(super) fn bind(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        label: &str,
        binds: &[Bind<'_>],
    ) -> Result<wgpu::BindGroup, GpuError> {
        let buffers: Vec<&wgpu::Buffer> = binds.iter().map(|b| self.raw(b)).collect();
        let bound: u64 = buffers.iter().map(|b| b.size()).sum();
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
        let failed = pollster::block_on(scope.pop());
        self.bound += bound;
        match failed {
            Some(e) => Err(GpuError::Shader(e.to_string())),
            None => Ok(group),
        }
    }

    /// Records `n` invocations of `kernel` (its name in device profiles) in workgroups of
    /// `workgroup_size`, 2-D (at most the device's workgroups per dimension in x), linearised by
    /// the kernel as `gid.x + gid.y * groups.x * size`.
    pub(super) fn dispatch(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        bind_group: &wgpu::BindGroup,
        kernel: &'static str,
        n: usize,
        workgroup_size: u32,
    ) {
        let groups = (n as u32).div_ceil(workgroup_size);
        let max = self.ctx.device.limits().max_compute_workgroups_per_dimension.max(1);
        let (gx, gy) = (groups.min(max), groups.div_ceil(max));
        let timestamp_writes = self.stamps.as_mut().and_then(|s| s.dispatch(kernel));
        let mut pass = self.encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.dispatch_workgroups(gx.max(1), gy.max(1), 1);
    }

    /// Submits everything recorded through the engine, without waiting. The held buffers, and
    /// `keep` (buffers the work reads that the caller drops), go back once the device is done;
    /// `then` runs then too. Returns the submission's sequence number.
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error.
    fn submit_with(
        self,
        keep: Vec<Box<dyn std::any::Any + Send>>,
        then: Option<super::engine::Completion>,
    ) -> Result<u64, GpuError> {
        let Recording {
            ctx,
            mut encoder,
            bound,
            held,
            staging,
            stamps,
        } = self;
        let stamps = stamps.map(|s| s.end(&ctx.device, &ctx.profiler, &mut encoder));
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let commands = encoder.finish();
        let invalid = pollster::block_on(scope.pop());
        // a buffer this work binds may have failed to exist (out of memory), uncaught
        ctx.check("submitting work")?;
        if let Some(e) = invalid {
            return Err(GpuError::Shader(e.to_string()));
        }
        let in_flight = ctx.in_flight.clone();
        in_flight.fetch_add(bound, Ordering::AcqRel);
        let release: super::engine::Completion = Box::new(move || {
            in_flight.fetch_sub(bound, Ordering::AcqRel);
            drop(held);
            drop(staging);
            drop(keep);
        });
        let mut completions = vec![release];
        completions.extend(then);
        let seq = ctx.engine.submit(commands, completions);
        if let Some(stamps) = stamps {
            stamps.read_after(&ctx.profiler);
            // the submission may be done before the mapping was asked for
            ctx.engine.kicker().poll_soon();
        }
        Ok(seq)
    }

    /// Submits everything recorded without waiting for it.
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error.
    pub(super) fn submit(self) -> Result<(), GpuError> {
        self.submit_with(Vec::new(), None).map(|_| ())
    }

    /// Submits the work, then copies the first `bytes` of `from` into a pooled read-back
    /// buffer and maps it; `mapped` runs (on the completion thread) with the mapped lease, or
    /// the error. Never waits.
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error.
    pub(super) fn read_back(
        mut self,
        from: &Bind<'_>,
        bytes: u64,
        mapped: impl FnOnce(Result<ReadbackLease, GpuError>) + Send + 'static,
    ) -> Result<(), GpuError> {
        let ctx = self.ctx;
        let size = bytes.div_ceil(4).max(1) * 4;
        let lease = ctx.pools.readback(super::pool::pooled_size(size, u64::MAX));
        let src = self.raw(from).clone();
        if bytes > 0 {
            self.encoder
                .copy_buffer_to_buffer(&src, 0, lease.buffer(), 0, Some(size));
        }
        // The source (a result the caller may drop at once) stays alive until the copy ran.
        self.submit_with(vec![Box::new(src)], None)?;
        let buffer = lease.buffer().clone();
        let failure = ctx.failure.clone();
        buffer.map_async(wgpu::MapMode::Read, ..size, move |r| {
            let lease = r.map(|()| lease.into_mapped()).map_err(|e| GpuError::Mapping {
                during: "mapping a read-back",
                message: e.to_string(),
            });
            // the copy into it ran on a device that may have failed since it was submitted
            mapped(match failure.get() {
                Some(message) => Err(GpuError::Device {
                    during: "reading a result back",
                    message: message.clone(),
                }),
                None => lease,
            });
        });
        // The submission may have completed before the mapping was asked for.
        ctx.engine.kicker().poll_soon();
        Ok(())
    }

    /// Submits, waits, and returns the first `bytes` (a multiple of 4) of `from` as words:
    /// the blocking path of blocks beyond one binding and of direct calls (a counted wait).
    ///
    /// **Errors**: [`GpuError::Shader`] for a validation error, [`GpuError::Mapping`] for a
    /// failed map, [`GpuError::DeviceLost`] when the device went away before it.
    pub(super) fn read_now(self, from: &Bind<'_>, bytes: u64) -> Result<Vec<u32>, GpuError> {
        let ctx = self.ctx;
        let (tx, rx) = std::sync::mpsc::channel();
        self.read_back(from, bytes, move |r| {
            let _ = tx.send(r);
        })?;
        ctx.engine.count_blocking_wait();
        let lease = rx
            .recv()
            .map_err(|_| GpuError::DeviceLost { during: "a read-back" })??;
        let began = Instant::now();
        let words = {
            let view = lease
                .buffer()
                .get_mapped_range(..bytes.div_ceil(4).max(1) * 4)
                .map_err(|e| GpuError::Mapping {
                    during: "reading a mapped read-back",
                    message: e.to_string(),
                })?;
            bytemuck::cast_slice::<u8, u32>(&view)[..(bytes / 4) as usize].to_vec()
        };
        ctx.stats.record(false, began, bytes);
        Ok(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_input_buffer_holds_poison_in_checking_mode() {
        let ctx = super::super::shared_context().unwrap_or_else(|e| panic!("{e}"));
        let was = ctx.checks();
        ctx.set_checks(true);
        // An upload of 4 KiB of sevens, its work done: the input buffer goes back poisoned.
        let mut rec = Recording::new(&ctx, "poison check");
        rec.upload_with(4096, |mut dst| dst.fill(7)).unwrap();
        rec.submit().unwrap();
        ctx.settle();
        // Lease it again (the same size class) and read it without writing it.
        let size = super::super::pool::pooled_size(4096, ctx.device.limits().max_storage_buffer_binding_size);
        let mut rec = Recording::new(&ctx, "poison read");
        rec.held.push(Held::Input(ctx.pools.input(size)));
        let words = rec.read_now(&Bind::Held(Slot(0)), 4096).unwrap();
        ctx.set_checks(was);
        assert!(
            words.iter().all(|&w| w == super::super::pool::POISON),
            "{:x?}",
            &words[..4]
        );
    }
}
