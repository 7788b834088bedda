//! [`DeviceBlock`]: a task's result left in device memory for the next device task, and
//! brought to the host only when the host needs it — asynchronously, so that no worker waits:
//! [`DeviceBlock::request_host`] starts the copy and says when it can be read without waiting.

use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use ndarray::{ArrayViewD, ArrayViewMutD, Zip};

use super::pool::ReadbackLease;
use super::recording::{Bind, Recording, ResultBuffer};
use super::{GpuContext, GpuError};
use crate::expr::{Block, DType};

/// Where the block's way to the host stands.
enum Transfer {
    /// not asked for
    Idle,
    /// copying and mapping; these run once it is mapped
    Requested(Vec<Box<dyn FnOnce() + Send>>),
    /// mapped: the bytes can be read without waiting
    Mapped(ReadbackLease),
    /// the copy or mapping failed
    Failed(GpuError),
}

/// A block in a device buffer of its own (f32 bits, or a mask's bytes four to a word).
/// Holding one holds its bytes of the device budget (when it fit); dropping it gives them back.
pub struct DeviceBlock {
    ctx: Arc<GpuContext>,
    buffer: ResultBuffer,
    shape: Vec<usize>,
    dtype: DType,
    /// bytes of the device budget held (0 when the budget had no room)
    reserved: u64,
    transfer: Arc<Mutex<Transfer>>,
    host: OnceLock<Result<Block, GpuError>>,
}

impl std::fmt::Debug for DeviceBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBlock")
            .field("shape", &self.shape)
            .field("dtype", &self.dtype)
            .field("within_budget", &self.within_budget())
            .field("on_host", &self.host.get().is_some())
            .finish()
    }
}

impl DeviceBlock {
    /// Wraps `buffer`, which holds the block or will once submitted work has run, taking its
    /// bytes of the device budget when they are free.
    pub(super) fn new(ctx: &Arc<GpuContext>, buffer: ResultBuffer, shape: Vec<usize>, dtype: DType) -> Self {
        let size = buffer.size();
        let reserved = if ctx.try_reserve(size) { size } else { 0 };
        DeviceBlock {
            ctx: ctx.clone(),
            buffer,
            shape,
            dtype,
            reserved,
            transfer: Arc::new(Mutex::new(Transfer::Idle)),
            host: OnceLock::new(),
        }
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

    /// Whether it fit the device budget. One that did not should move to the host at once
    /// ([`DeviceBlock::request_host`]) and be dropped, as the executor does.
    pub fn within_budget(&self) -> bool {
        self.reserved > 0 || self.buffer.size() == 0
    }

    /// Whether its host copy exists, or its mapped bytes can be read without waiting.
    pub fn host_ready(&self) -> bool {
        self.host.get().is_some() || matches!(*lock(&self.transfer), Transfer::Mapped(_) | Transfer::Failed(_))
    }

    pub(super) fn buffer(&self) -> &ResultBuffer {
        &self.buffer
    }

    /// Starts bringing the block to the host: a copy into a pooled read-back buffer, submitted
    /// without waiting, then mapped. `ready` runs (on the device's completion thread, or at
    /// once if that already happened) when [`DeviceBlock::host`] or
    /// [`DeviceBlock::read_into`] can run without waiting. Asking twice starts one copy.
    pub fn request_host(&self, ready: Box<dyn FnOnce() + Send>) {
        let mut state = lock(&self.transfer);
        match &mut *state {
            Transfer::Idle => *state = Transfer::Requested(vec![ready]),
            Transfer::Requested(waiting) => {
                waiting.push(ready);
                return;
            }
            _ => {
                drop(state);
                ready();
                return;
            }
        }
        drop(state);
        let transfer = self.transfer.clone();
        let mapped = move |r: Result<ReadbackLease, GpuError>| {
            let mut state = lock(&transfer);
            let waiting = match std::mem::replace(
                &mut *state,
                match r {
                    Ok(lease) => Transfer::Mapped(lease),
                    Err(e) => Transfer::Failed(e),
                },
            ) {
                Transfer::Requested(w) => w,
                _ => Vec::new(),
            };
            drop(state);
            for w in waiting {
                w();
            }
        };
        let rec = Recording::new(&self.ctx, "read back");
        let bytes = self.nbytes().div_ceil(4) * 4;
        if let Err(e) = rec.read_back(&Bind::Result(&self.buffer), bytes, mapped) {
            let waiting = match std::mem::replace(&mut *lock(&self.transfer), Transfer::Failed(e)) {
                Transfer::Requested(w) => w,
                _ => Vec::new(),
            };
            for w in waiting {
                w();
            }
        }
    }

    /// The block in host memory, kept: copied out of the mapped read-back when
    /// [`DeviceBlock::request_host`] has made it ready; otherwise asked for and waited for (a
    /// blocking wait, counted: the executor never takes this path).
    ///
    /// **Errors**: the read-back's error, remembered ([`GpuError::Mapping`],
    /// [`GpuError::DeviceLost`]).
    pub fn host(&self) -> Result<&Block, GpuError> {
        self.host
            .get_or_init(|| {
                self.wait_mapped()?;
                self.with_mapped(|bytes| {
                    let words: Vec<u32> = bytemuck::cast_slice::<u8, u32>(bytes).to_vec();
                    super::buffers::block_from_words(words, &self.shape, self.dtype)
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Writes the block (as f32; a mask as 0.0/1.0) into `dst`, which has its shape, straight
    /// from the mapped read-back: a final output with no host block in between. Waits (counted)
    /// only if [`DeviceBlock::request_host`] has not made it ready.
    ///
    /// **Errors**: [`GpuError::Mapping`] or [`GpuError::DeviceLost`] for a failed read-back;
    /// [`GpuError::Internal`] for a `dst` of another shape.
    pub fn read_into(&self, dst: ArrayViewMutD<'_, MaybeUninit<f32>>) -> Result<(), GpuError> {
        if dst.shape() != self.shape.as_slice() {
            return Err(GpuError::Internal(format!(
                "a block of shape {:?} written into {:?}",
                self.shape,
                dst.shape()
            )));
        }
        if let Some(host) = self.host.get() {
            crate::backend::write_block(dst, host.as_ref().map_err(Clone::clone)?);
            return Ok(());
        }
        self.wait_mapped()?;
        let shape = ndarray::IxDyn(&self.shape);
        let n: usize = self.shape.iter().product();
        let bad = |e: ndarray::ShapeError| GpuError::Internal(e.to_string());
        self.with_mapped(|raw| {
            match self.dtype {
                DType::F32 => {
                    let src =
                        ArrayViewD::from_shape(shape, bytemuck::cast_slice::<u8, f32>(&raw[..n * 4])).map_err(bad)?;
                    Zip::from(dst).and(&src).for_each(|d, &s| *d = MaybeUninit::new(s));
                }
                DType::U8 => {
                    let src = ArrayViewD::from_shape(shape, &raw[..n]).map_err(bad)?;
                    Zip::from(dst)
                        .and(&src)
                        .for_each(|d, &s| *d = MaybeUninit::new(f32::from(s)));
                }
            }
            Ok(())
        })
    }

    /// Blocks until the read-back is mapped, asking for it first if nobody has.
    fn wait_mapped(&self) -> Result<(), GpuError> {
        if matches!(*lock(&self.transfer), Transfer::Mapped(_) | Transfer::Failed(_)) {
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        self.request_host(Box::new(move || {
            let _ = tx.send(());
        }));
        if !matches!(*lock(&self.transfer), Transfer::Mapped(_) | Transfer::Failed(_)) {
            self.ctx.engine.count_blocking_wait();
        }
        rx.recv().map_err(|_| GpuError::DeviceLost { during: "a read-back" })
    }

    /// Runs `read` on the mapped bytes, then unmaps them and gives the read-back buffer back.
    fn with_mapped<R>(&self, read: impl FnOnce(&[u8]) -> Result<R, GpuError>) -> Result<R, GpuError> {
        // Read once: a later request starts a new copy (the host copy, once made, is kept).
        let lease = match std::mem::replace(&mut *lock(&self.transfer), Transfer::Idle) {
            Transfer::Mapped(lease) => lease,
            Transfer::Failed(e) => {
                *lock(&self.transfer) = Transfer::Failed(e.clone());
                return Err(e);
            }
            _ => return Err(GpuError::Internal("a read-back taken by another reader".into())),
        };
        let began = Instant::now();
        let bytes = self.nbytes().div_ceil(4).max(1) * 4;
        let out = {
            let view = lease
                .buffer()
                .get_mapped_range(..bytes)
                .map_err(|e| GpuError::Mapping {
                    during: "reading a mapped read-back",
                    message: e.to_string(),
                })?;
            read(&view)
        };
        drop(lease);
        self.ctx.stats.record(false, began, self.nbytes());
        out
    }
}

impl Drop for DeviceBlock {
    fn drop(&mut self) {
        self.ctx.resident.fetch_sub(self.reserved, Ordering::AcqRel);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
