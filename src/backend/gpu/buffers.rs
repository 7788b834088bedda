//! Host blocks as storage-buffer words, and the small buffers every dispatch binds.

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use wgpu::util::DeviceExt;

use super::{GpuContext, GpuError};
use crate::backend::Value;
use crate::expr::{Block, DType};

/// A block's elements in C order as the bytes a storage binding reads: f32 bit patterns, or a
/// mask's bytes (four to a shader word), so masks cross the bus as bytes. Borrows a contiguous
/// block; otherwise costs one copy.
pub(super) fn block_bytes(block: &Block) -> Cow<'_, [u8]> {
    match block {
        Block::F32(a) => match a.as_slice() {
            Some(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
            None => Cow::Owned(a.iter().flat_map(|v| v.to_ne_bytes()).collect()),
        },
        Block::U8(a) => match a.as_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(a.iter().copied().collect()),
        },
    }
}

/// A block from words read back: f32 bit patterns, or bytes four to a word (the padding of
/// the last word dropped).
///
/// **Errors**: [`GpuError::Device`] when the words do not hold `shape`.
pub(super) fn block_from_words(words: Vec<u32>, shape: &[usize], dtype: DType) -> Result<Block, GpuError> {
    let dim = ndarray::IxDyn(shape);
    let bad = |e: ndarray::ShapeError| GpuError::Device(format!("a read-back of shape {shape:?}: {e}"));
    Ok(match dtype {
        DType::F32 => Block::F32(
            ndarray::ArrayD::from_shape_vec(dim, bytemuck::cast_vec(words))
                .map_err(bad)?
                .into_shared(),
        ),
        DType::U8 => {
            let mut bytes: Vec<u8> = bytemuck::cast_slice(&words).to_vec();
            bytes.truncate(shape.iter().product());
            Block::U8(ndarray::ArrayD::from_shape_vec(dim, bytes).map_err(bad)?.into_shared())
        }
    })
}

/// A read-only storage buffer holding `words` (at least one word: bindings may not be empty).
/// Counted as upload time and bytes.
pub(super) fn storage(ctx: &GpuContext, label: &str, words: &[u32]) -> wgpu::Buffer {
    let began = std::time::Instant::now();
    let one = [0u32];
    let contents: &[u8] = bytemuck::cast_slice(if words.is_empty() { &one } else { words });
    let buffer = ctx.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        // COPY_SRC: an input passed through unchanged may be read back as a result.
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    });
    let stats = &ctx.stats;
    stats
        .upload_ns
        .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
    stats.upload_bytes.fetch_add(contents.len() as u64, Ordering::Relaxed);
    buffer
}

/// A task input as a host block (a device block read back, once).
///
/// **Errors**: [`GpuError::Device`] for a partial state or a failed read-back.
pub(super) fn host_block(value: &Value) -> Result<&Block, GpuError> {
    match value {
        Value::Block(b) => Ok(b),
        Value::Device(d) => d.host(),
        Value::Partial(_) => Err(partial_state()),
    }
}

/// The error for a partial reduction state handed where a block was expected (a planner bug).
pub(super) fn partial_state() -> GpuError {
    GpuError::Device("a partial state where a block was expected".into())
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
    fn masks_go_up_as_their_bytes() {
        let m = Block::U8(arr1(&[1u8, 0, 1, 1, 0, 1]).into_dyn().into_shared());
        assert_eq!(block_bytes(&m).as_ref(), &[1, 0, 1, 1, 0, 1]);
        let f = Block::F32(ArrayD::from_elem(ndarray::IxDyn(&[2]), 1.5f32).into_shared());
        assert_eq!(block_bytes(&f).as_ref(), bytemuck::cast_slice::<f32, u8>(&[1.5, 1.5]));
        // a strided mask is gathered in C order
        let t = arr1(&[1u8, 2, 3, 4])
            .into_shape_with_order((2, 2))
            .unwrap()
            .reversed_axes();
        assert_eq!(
            block_bytes(&Block::U8(t.into_dyn().into_shared())).as_ref(),
            &[1, 3, 2, 4]
        );
    }
}
