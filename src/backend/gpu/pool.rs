//! Reused upload buffers: staging belts (wgpu's `StagingBelt`: mapped chunks that come back
//! once the device has copied from them) and a bounded pool of device input buffers, so a
//! stream of same-sized tiles allocates nothing after the first few and pays no fresh-page
//! faults per upload.

use std::sync::{Arc, Mutex};

use wgpu::util::StagingBelt;

/// Staging chunk size: a typical input tile fits one chunk.
const BELT_CHUNK: u64 = 16 << 20;
/// Device input buffers are sized in steps of this, so similar tiles share buffers.
const STEP: u64 = 64 << 10;

/// The size of the pooled buffer for `bytes`: whole steps, but never past the binding limit
/// when `bytes` fits it (kernels bind whole buffers, and a device's limit need not be a
/// multiple of the step), and always a multiple of 4 (copies need it).
fn input_size(bytes: u64, max_binding: u64) -> u64 {
    let need = bytes.div_ceil(4).max(1) * 4;
    (need.div_ceil(STEP) * STEP).min(max_binding & !3).max(need)
}

/// The device's reusable upload buffers.
#[derive(Debug)]
pub(super) struct UploadPool {
    belts: Mutex<Vec<StagingBelt>>,
    inputs: Arc<Mutex<Vec<wgpu::Buffer>>>,
    /// most bytes of idle input buffers kept
    cap: u64,
}

impl UploadPool {
    pub(super) fn new(cap: u64) -> Self {
        UploadPool {
            belts: Mutex::default(),
            inputs: Arc::default(),
            cap,
        }
    }

    /// A staging belt for one recording (a pooled one, or a new one).
    pub(super) fn belt(&self, device: &wgpu::Device) -> StagingBelt {
        self.belts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| StagingBelt::new(device.clone(), BELT_CHUNK))
    }

    /// Returns a belt whose chunks were finished, submitted and recalled.
    pub(super) fn give_belt(&self, belt: StagingBelt) {
        self.belts.lock().unwrap_or_else(|e| e.into_inner()).push(belt);
    }

    /// A device input buffer of at least `bytes` (STORAGE, COPY_DST, COPY_SRC), at most
    /// `max_binding` when `bytes` fits it: an idle pooled one of that size, or a new one.
    pub(super) fn input(&self, device: &wgpu::Device, bytes: u64, max_binding: u64) -> wgpu::Buffer {
        let size = input_size(bytes, max_binding);
        let mut idle = self.inputs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = idle.iter().position(|b| b.size() == size) {
            return idle.swap_remove(i);
        }
        drop(idle);
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("input"),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// A closure that gives input buffers back once the work using them is done, keeping at
    /// most `cap` bytes idle (the smallest are dropped first).
    pub(super) fn returner(&self) -> impl Fn(Vec<wgpu::Buffer>) + Send + 'static {
        let (inputs, cap) = (self.inputs.clone(), self.cap);
        move |done: Vec<wgpu::Buffer>| {
            let mut idle = inputs.lock().unwrap_or_else(|e| e.into_inner());
            idle.extend(done);
            let mut total: u64 = idle.iter().map(wgpu::Buffer::size).sum();
            idle.sort_by_key(wgpu::Buffer::size);
            while total > cap && !idle.is_empty() {
                total -= idle.remove(0).size();
            }
        }
    }

    /// Bytes of idle input buffers held.
    pub(super) fn idle_bytes(&self) -> u64 {
        self.inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(wgpu::Buffer::size)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_sizes_round_up_within_the_binding_limit() {
        assert_eq!(input_size(1, 1 << 30), STEP);
        assert_eq!(input_size(STEP + 4, 1 << 30), 2 * STEP);
        // a limit that is not a multiple of the step (2^31 - 1 on some drivers)
        let odd = (1u64 << 31) - 1;
        assert_eq!(input_size(odd - 3, odd), odd - 3);
        assert_eq!(input_size(odd - 3, odd) % 4, 0);
        // beyond the limit (never bound whole): just the bytes, in words
        assert_eq!(input_size(10, 8), 12);
    }
}
