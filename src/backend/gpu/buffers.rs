//! Host blocks as the bytes a storage binding reads, and back.

use ndarray::{ArrayView1, ArrayViewD, Axis};
use rayon::prelude::*;
use wgpu::WriteOnly;

use super::GpuError;
use crate::expr::{Block, DType};

/// Blocks at least this large are written into staging by several threads.
const PARALLEL_BYTES: usize = 4 << 20;

/// Writes `src`'s elements in C order into `dst` (exactly their bytes): one `memcpy` for a
/// contiguous block; a strided one (a block cut from a larger array) row by row, rows of the
/// last axis being contiguous, in parallel for large blocks. This is the one host copy of an
/// upload: nothing is gathered into a temporary first.
pub(super) fn write_elements<T: bytemuck::Pod + Send + Sync>(src: ArrayViewD<'_, T>, mut dst: WriteOnly<'_, [u8]>) {
    if let Some(s) = src.as_slice() {
        let bytes: &[u8] = bytemuck::cast_slice(s);
        if bytes.len() < PARALLEL_BYTES {
            dst.copy_from_slice(bytes);
            return;
        }
        let pieces = split_bytes(dst, bytes.len().div_ceil(PARALLEL_BYTES / 4));
        let mut at = 0;
        let jobs: Vec<(&[u8], WriteOnly<'_, [u8]>)> = pieces
            .into_iter()
            .map(|p| {
                let n = p.len();
                at += n;
                (&bytes[at - n..at], p)
            })
            .collect();
        let jobs: Vec<(&[u8], Sendable<'_>)> = jobs.into_iter().map(|(s, d)| (s, Sendable(d))).collect();
        jobs.into_par_iter().for_each(|(s, mut d)| d.0.copy_from_slice(s));
        return;
    }
    let nd = src.ndim();
    if nd == 0 {
        if let Some(v) = src.iter().next() {
            dst.copy_from_slice(bytemuck::bytes_of(v));
        }
        return;
    }
    let lanes: Vec<ArrayView1<'_, T>> = src.lanes(Axis(nd - 1)).into_iter().collect();
    let row_bytes = src.shape()[nd - 1] * std::mem::size_of::<T>();
    if row_bytes == 0 || lanes.is_empty() {
        return;
    }
    let per_group = (PARALLEL_BYTES / 4 / row_bytes).max(1);
    let mut jobs = Vec::with_capacity(lanes.len().div_ceil(per_group));
    for rows in lanes.chunks(per_group) {
        let (head, tail) = dst.split_at(rows.len() * row_bytes);
        jobs.push((rows, head));
        dst = tail;
    }
    if lanes.len() * row_bytes >= PARALLEL_BYTES {
        let jobs: Vec<_> = jobs.into_iter().map(|(rows, d)| (rows, Sendable(d))).collect();
        jobs.into_par_iter()
            .for_each(|(rows, d)| write_rows(rows, d.0, row_bytes));
    } else {
        jobs.into_iter().for_each(|(rows, d)| write_rows(rows, d, row_bytes));
    }
}

/// Rows of `row_bytes` each, one after another into `dst`.
fn write_rows<T: bytemuck::Pod>(rows: &[ArrayView1<'_, T>], mut dst: WriteOnly<'_, [u8]>, row_bytes: usize) {
    for (r, row) in rows.iter().enumerate() {
        write_row(row, dst.slice(r * row_bytes..(r + 1) * row_bytes));
    }
}

/// One row's elements into `dst` (their bytes).
fn write_row<T: bytemuck::Pod>(row: &ArrayView1<'_, T>, mut dst: WriteOnly<'_, [u8]>) {
    match row.as_slice() {
        Some(s) => dst.copy_from_slice(bytemuck::cast_slice(s)),
        None => {
            let size = std::mem::size_of::<T>();
            for (k, v) in row.iter().enumerate() {
                dst.slice(k * size..(k + 1) * size)
                    .copy_from_slice(bytemuck::bytes_of(v));
            }
        }
    }
}

/// A write-only view that may move to another thread. wgpu's `WriteOnly<T>` is `Send` only
/// for sized `T` (its impl lacks `?Sized`), though a `WriteOnly<[u8]>`, like `&mut [u8]`,
/// is exclusive access to its bytes and safe to send.
struct Sendable<'a>(WriteOnly<'a, [u8]>);

// SAFETY: see above: exclusive, write-only access to plain bytes, as `&mut [u8]` (Send) is.
unsafe impl Send for Sendable<'_> {}

/// `dst` cut into `parts` pieces of nearly equal length.
fn split_bytes(mut dst: WriteOnly<'_, [u8]>, parts: usize) -> Vec<WriteOnly<'_, [u8]>> {
    let parts = parts.max(1);
    let each = dst.len().div_ceil(parts).div_ceil(64) * 64;
    let mut out = Vec::with_capacity(parts);
    while dst.len() > each {
        let (head, tail) = dst.split_at(each);
        out.push(head);
        dst = tail;
    }
    out.push(dst);
    out
}

/// A block from words read back: f32 bit patterns, or bytes four to a word (the padding of
/// the last word dropped).
///
/// **Errors**: [`GpuError::Internal`] when the words do not hold `shape`.
pub(super) fn block_from_words(words: Vec<u32>, shape: &[usize], dtype: DType) -> Result<Block, GpuError> {
    let dim = ndarray::IxDyn(shape);
    let bad = |e: ndarray::ShapeError| GpuError::Internal(format!("a read-back of shape {shape:?}: {e}"));
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

/// The error for a partial reduction state handed where a block was expected (a planner bug).
pub(super) fn partial_state() -> GpuError {
    GpuError::Internal("a partial state where a block was expected".into())
}

/// A task input as a host block: a device block read back, waiting for it (counted) unless it
/// was brought over already. Only the paths for blocks beyond one binding take this.
///
/// **Errors**: [`GpuError::Internal`] for a partial state; [`GpuError::Mapping`] or
/// [`GpuError::DeviceLost`] for a failed read-back.
pub(super) fn host_block(value: &crate::backend::Value) -> Result<&Block, GpuError> {
    use crate::backend::Value;
    match value {
        Value::Block(b) => Ok(b),
        Value::Device(d) => d.host(),
        Value::Partial(_) => Err(partial_state()),
    }
}

/// A host block's elements in C order as bytes: borrowed when contiguous, else gathered (a
/// host copy, counted). Only the segment path of blocks beyond one binding needs this.
pub(super) fn block_bytes<'b>(ctx: &super::GpuContext, block: &'b Block) -> std::borrow::Cow<'b, [u8]> {
    use std::borrow::Cow;
    let bytes: Cow<'b, [u8]> = match block {
        Block::F32(a) => match crate::backend::layout::contiguous(a.view()) {
            Cow::Borrowed(s) => Cow::Borrowed(bytemuck::cast_slice(s)),
            Cow::Owned(v) => Cow::Owned(bytemuck::cast_slice(&v).to_vec()),
        },
        Block::U8(a) => crate::backend::layout::contiguous(a.view()),
    };
    if let Cow::Owned(v) = &bytes {
        ctx.stats
            .host_copy_bytes
            .fetch_add(v.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    bytes
}
