//! Host blocks as storage-buffer words, and the small buffers every dispatch binds.

use std::borrow::Cow;

use wgpu::util::DeviceExt;

use super::GpuContext;
use crate::expr::Block;

/// A block's values in C order as u32 words for a storage binding: f32 bit patterns, or a
/// mask's bytes four to a word (little-endian, zero-padded), so masks cross the bus as bytes.
/// Borrows a contiguous f32 block; otherwise costs one copy.
pub(super) fn block_words(block: &Block) -> Cow<'_, [u32]> {
    match block {
        Block::F32(a) => match a.as_slice() {
            Some(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
            None => Cow::Owned(a.iter().map(|v| v.to_bits()).collect()),
        },
        Block::U8(a) => Cow::Owned(match a.as_slice() {
            Some(s) => pack_bytes(s),
            None => pack_bytes(&a.iter().copied().collect::<Vec<_>>()),
        }),
    }
}

/// Bytes four to a little-endian word, the last word zero-padded (at least one word).
pub(super) fn pack_bytes(bytes: &[u8]) -> Vec<u32> {
    let mut words = vec![0u32; bytes.len().div_ceil(4).max(1)];
    for (w, chunk) in words.iter_mut().zip(bytes.chunks(4)) {
        let mut b = [0u8; 4];
        b[..chunk.len()].copy_from_slice(chunk);
        *w = u32::from_le_bytes(b);
    }
    words
}

/// Bytes a block takes on the device as [`block_words`].
pub(super) fn device_bytes(block: &Block) -> u64 {
    match block {
        Block::F32(_) => block.nbytes(),
        Block::U8(_) => block.nbytes().div_ceil(4).max(1) * 4,
    }
}

/// A read-only storage buffer holding `words` (at least one word: bindings may not be empty).
pub(super) fn storage(ctx: &GpuContext, label: &str, words: &[u32]) -> wgpu::Buffer {
    let one = [0u32];
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(if words.is_empty() { &one } else { words }),
        usage: wgpu::BufferUsages::STORAGE,
    })
}

/// A uniform buffer holding `words`.
pub(super) fn uniform(ctx: &GpuContext, label: &str, words: &[u32]) -> wgpu::Buffer {
    ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::cast_slice(words),
        usage: wgpu::BufferUsages::UNIFORM,
    })
}

/// A storage buffer of `words` u32 the kernel writes and the host copies out.
pub(super) fn output(ctx: &GpuContext, label: &str, words: usize) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (words.max(1) * 4) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, ArrayD};

    #[test]
    fn masks_pack_four_bytes_to_a_word() {
        let m = Block::U8(arr1(&[1u8, 0, 1, 1, 0, 1]).into_dyn().into_shared());
        assert_eq!(block_words(&m).as_ref(), &[0x0101_0001, 0x0000_0100]);
        assert_eq!(device_bytes(&m), 8);
        let f = Block::F32(ArrayD::from_elem(ndarray::IxDyn(&[2]), 1.5f32).into_shared());
        assert_eq!(block_words(&f).as_ref(), &[1.5f32.to_bits(); 2]);
    }
}
