//! Reused device memory, handed out as leases. Three shelves: mapped staging buffers that
//! producers write inputs into, device input buffers the staging is copied to, and read-back
//! buffers results are copied into and mapped. A stream of same-sized blocks allocates nothing
//! after the first few.
//!
//! A lease owns its buffer and gives it back when dropped. Upload leases are moved into the
//! completion of the submission that reads them, so they go home only once the device is done
//! with them; and no lease can become a kept result, which owns a buffer of its own
//! (`ResultBuffer`). In checking mode a returned input buffer is overwritten with a poison
//! pattern (a quiet NaN with a payload), so a result that still aliased it would read poison
//! at once instead of some later tile's data now and then.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::engine::Kicker;

/// Buffers are sized in steps of this, so similar blocks share buffers.
const STEP: u64 = 64 << 10;
/// The poison word: a quiet NaN whose payload says "recycled buffer".
pub(super) const POISON: u32 = 0x7fc0_dead;

/// The size of a pooled buffer for `bytes`: whole steps, but never past the binding limit when
/// `bytes` fits it (kernels bind whole buffers, and a device's limit need not be a multiple of
/// the step), and always a multiple of 4 (copies need it).
pub(super) fn pooled_size(bytes: u64, max_binding: u64) -> u64 {
    let need = bytes.div_ceil(4).max(1) * 4;
    (need.div_ceil(STEP) * STEP).min(max_binding & !3).max(need)
}

/// Idle buffers of one usage, at most `cap` bytes of them.
struct Shelf {
    idle: Mutex<Vec<wgpu::Buffer>>,
    cap: u64,
    usage: wgpu::BufferUsages,
    label: &'static str,
}

impl Shelf {
    fn new(label: &'static str, usage: wgpu::BufferUsages, cap: u64) -> Self {
        Shelf {
            idle: Mutex::default(),
            cap,
            usage,
            label,
        }
    }

    fn take(&self, size: u64) -> Option<wgpu::Buffer> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let i = idle.iter().position(|b| b.size() == size)?;
        Some(idle.swap_remove(i))
    }

    fn create(&self, device: &wgpu::Device, size: u64, mapped: bool) -> wgpu::Buffer {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(self.label),
            size,
            usage: self.usage,
            mapped_at_creation: mapped,
        })
    }

    /// Keeps `buffer` for reuse, dropping the smallest idle ones beyond the cap.
    fn give(&self, buffer: wgpu::Buffer) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.push(buffer);
        let mut total: u64 = idle.iter().map(wgpu::Buffer::size).sum();
        idle.sort_by_key(|b| std::cmp::Reverse(b.size()));
        while total > self.cap {
            let Some(b) = idle.pop() else { break };
            total -= b.size();
        }
    }

    fn bytes(&self) -> u64 {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(wgpu::Buffer::size)
            .sum()
    }
}

/// The device's pooled buffers.
pub(super) struct Pools {
    device: wgpu::Device,
    queue: wgpu::Queue,
    kicker: Kicker,
    staging: Arc<Shelf>,
    inputs: Arc<Shelf>,
    readback: Arc<Shelf>,
    /// checking mode: poison input buffers as they come back
    pub(super) checks: Arc<AtomicBool>,
}

impl std::fmt::Debug for Pools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pools").finish_non_exhaustive()
    }
}

impl Pools {
    /// Pools keeping at most `cap` idle bytes on each shelf.
    pub(super) fn new(device: wgpu::Device, queue: wgpu::Queue, kicker: Kicker, cap: u64, checks: bool) -> Self {
        use wgpu::BufferUsages as U;
        Pools {
            device,
            queue,
            kicker,
            staging: Arc::new(Shelf::new("staging", U::MAP_WRITE | U::COPY_SRC, cap)),
            inputs: Arc::new(Shelf::new("input", U::STORAGE | U::COPY_DST | U::COPY_SRC, cap)),
            readback: Arc::new(Shelf::new("readback", U::MAP_READ | U::COPY_DST, cap)),
            checks: Arc::new(AtomicBool::new(checks)),
        }
    }

    /// A mapped staging buffer of `size` bytes (a multiple of 4) to write an input into.
    pub(super) fn staging(&self, size: u64) -> StagingLease {
        let buffer = self
            .staging
            .take(size)
            .unwrap_or_else(|| self.staging.create(&self.device, size, true));
        StagingLease {
            buffer: Some(buffer),
            home: self.staging.clone(),
            kicker: self.kicker.clone(),
        }
    }

    /// A device input buffer of `size` bytes (a multiple of 4).
    pub(super) fn input(&self, size: u64) -> InputLease {
        let buffer = self
            .inputs
            .take(size)
            .unwrap_or_else(|| self.inputs.create(&self.device, size, false));
        InputLease {
            buffer: Some(buffer),
            home: self.inputs.clone(),
            queue: self.queue.clone(),
            checks: self.checks.clone(),
        }
    }

    /// An unmapped read-back buffer of `size` bytes (a multiple of 4).
    pub(super) fn readback(&self, size: u64) -> ReadbackLease {
        let buffer = self
            .readback
            .take(size)
            .unwrap_or_else(|| self.readback.create(&self.device, size, false));
        ReadbackLease {
            buffer: Some(buffer),
            home: self.readback.clone(),
            mapped: false,
        }
    }

    /// Bytes of idle buffers kept on every shelf.
    pub(super) fn idle_bytes(&self) -> u64 {
        self.staging.bytes() + self.inputs.bytes() + self.readback.bytes()
    }

    /// Bytes of idle device input buffers.
    pub(super) fn idle_input_bytes(&self) -> u64 {
        self.inputs.bytes()
    }

    /// Drops every idle buffer (tests use it to force fresh allocations).
    pub(super) fn clear(&self) {
        for shelf in [&self.staging, &self.inputs, &self.readback] {
            shelf.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

/// A mapped staging buffer. Dropped after the submission that copies from it completed, it is
/// mapped again and comes back to the shelf once mapped.
pub(super) struct StagingLease {
    buffer: Option<wgpu::Buffer>,
    home: Arc<Shelf>,
    kicker: Kicker,
}

impl StagingLease {
    pub(super) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("held until dropped")
    }
}

impl Drop for StagingLease {
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else { return };
        let (home, back) = (self.home.clone(), buffer.clone());
        buffer.map_async(wgpu::MapMode::Write, .., move |r| {
            if r.is_ok() {
                home.give(back);
            }
        });
        self.kicker.poll_soon();
    }
}

/// A pooled device input buffer, bound by the submission it was uploaded for and given back
/// (poisoned in checking mode) when dropped after that submission completed.
pub(super) struct InputLease {
    buffer: Option<wgpu::Buffer>,
    home: Arc<Shelf>,
    queue: wgpu::Queue,
    checks: Arc<AtomicBool>,
}

impl InputLease {
    pub(super) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("held until dropped")
    }
}

impl Drop for InputLease {
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else { return };
        if self.checks.load(Ordering::Relaxed) {
            poison(&self.queue, &buffer);
        }
        self.home.give(buffer);
    }
}

/// A pooled read-back buffer; given back (unmapped) when dropped.
pub(super) struct ReadbackLease {
    buffer: Option<wgpu::Buffer>,
    home: Arc<Shelf>,
    /// whether its mapping succeeded: a lease dropped on an error path (its submission or its
    /// mapping failed) is not mapped, and unmapping it would be a validation error (a panic)
    mapped: bool,
}

impl ReadbackLease {
    pub(super) fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("held until dropped")
    }

    /// The lease, its buffer now mapped (called from the mapping's success callback).
    pub(super) fn into_mapped(mut self) -> Self {
        self.mapped = true;
        self
    }
}

impl Drop for ReadbackLease {
    fn drop(&mut self) {
        let Some(buffer) = self.buffer.take() else { return };
        if self.mapped {
            buffer.unmap();
        }
        self.home.give(buffer);
    }
}

/// Overwrites `buffer` with the poison word, ordered after every submitted use of it and
/// before any later submission (a queue write lands ahead of the next submit's commands).
pub(super) fn poison(queue: &wgpu::Queue, buffer: &wgpu::Buffer) {
    let words = vec![POISON; (buffer.size() / 4) as usize];
    queue.write_buffer(buffer, 0, bytemuck::cast_slice(&words));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_sizes_round_up_within_the_binding_limit() {
        assert_eq!(pooled_size(1, 1 << 30), STEP);
        assert_eq!(pooled_size(STEP + 4, 1 << 30), 2 * STEP);
        // a limit that is not a multiple of the step (2^31 - 1 on some drivers)
        let odd = (1u64 << 31) - 1;
        assert_eq!(pooled_size(odd - 3, odd), odd - 3);
        assert_eq!(pooled_size(odd - 3, odd) % 4, 0);
        // beyond the limit (never bound whole): just the bytes, in words
        assert_eq!(pooled_size(10, 8), 12);
    }

    #[test]
    fn the_poison_is_a_quiet_nan() {
        let p = f32::from_bits(POISON);
        assert!(p.is_nan());
        assert_ne!(POISON, f32::NAN.to_bits(), "distinct from the NaN kernels write");
    }
}
