//! [`DeviceBlock`]: a task's result left in device memory for the next device task, within the
//! device-memory budget, and read back only if the host ever needs it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use super::{submit, GpuContext, GpuError};
use crate::expr::{Block, DType};

/// A block in a device buffer (f32 bits, or a mask's bytes four to a word). Holding one holds
/// its bytes of the device budget; dropping it gives them back.
pub struct DeviceBlock {
    ctx: Arc<GpuContext>,
    buffer: wgpu::Buffer,
    shape: Vec<usize>,
    dtype: DType,
    reserved: u64,
    host: OnceLock<Result<Block, GpuError>>,
}

impl std::fmt::Debug for DeviceBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBlock")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("read_back", &self.host.get().is_some())
            .finish()
    }
}

impl DeviceBlock {
    /// Wraps `buffer` (already holding the block, or about to, in submission order) when the
    /// device budget has room for it; `None` when it has not (the caller reads it back instead).
    pub(super) fn try_new(
        ctx: &Arc<GpuContext>,
        buffer: wgpu::Buffer,
        shape: Vec<usize>,
        dtype: DType,
    ) -> Option<Self> {
        let reserved = buffer.size();
        ctx.try_reserve(reserved).then(|| DeviceBlock {
            ctx: ctx.clone(),
            buffer,
            shape,
            dtype,
            reserved,
            host: OnceLock::new(),
        })
    }

    /// The block's shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Its element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Bytes of its elements (as a host block would hold them).
    pub fn nbytes(&self) -> u64 {
        (self.shape.iter().product::<usize>() * self.dtype.size()) as u64
    }

    /// The buffer, for a kernel to bind.
    pub(super) fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// The block in host memory: read back on the first call (a copy to a staging buffer, a
    /// wait for the device, a copy out), then kept.
    ///
    /// **Errors**: [`GpuError::Device`] when the read-back fails (remembered).
    pub fn host(&self) -> Result<&Block, GpuError> {
        self.host
            .get_or_init(|| {
                submit::Recording::new(&self.ctx, "read back").read_block(&self.buffer, &self.shape, self.dtype)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Drop for DeviceBlock {
    fn drop(&mut self) {
        self.ctx.resident.fetch_sub(self.reserved, Ordering::AcqRel);
    }
}
