//! The fused elementwise kernels: run a [`FusedProgram`] (see [`super::batch`]) over whole
//! blocks, in parallel, into a new block or straight into a destination. Inputs are read once
//! and the output written once, which is what makes band math memory-bound.

use std::borrow::Cow;

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewMutD, IxDyn};
use rayon::prelude::*;

use super::batch::{BatchProgram, Input, Span, BATCH};
use super::layout::{contiguous, rows, rows_mut};
use crate::backend::ResultMemory;
use crate::expr::{Block, DType};
use crate::plan::FusedProgram;

/// Batches per parallel work item: large enough that rayon's overhead vanishes.
const BATCHES_PER_TASK: usize = 512;
/// Results written into a reused destination (`run_fused_into`) at least this large use
/// streaming (non-temporal) stores: a result this size leaves the caches anyway, and streaming
/// skips reading every destination line before overwriting it, a fifth of band math's traffic.
const STREAM_MIN_BYTES: usize = 4 << 20;

/// Runs `program` over same-shaped input blocks and returns the output block of `shape`.
/// Costs one pass over the inputs and one over the output, parallel over runs of batches.
pub fn run_fused(program: &FusedProgram, inputs: &[&Block], shape: &[usize]) -> Block {
    let n: usize = shape.iter().product();
    let ins = inputs.iter().map(|b| contiguous_input(b)).collect::<Vec<_>>();
    let ins: Vec<Input<'_>> = ins.iter().map(|c| c.as_input()).collect();
    let batch = batch_program(program, inputs);
    match program.out_dtype {
        DType::F32 => {
            let mut out: Vec<f32> = Vec::with_capacity(n);
            // a block for another task, which reads it soon: kept in cache, never streamed
            fill_uninit(&batch, &ins, &mut out.spare_capacity_mut()[..n], |d, s| {
                store_f32(d, s, false)
            });
            // SAFETY: `fill_uninit` wrote every one of the first n elements.
            unsafe { out.set_len(n) };
            Block::F32(
                ArrayD::from_shape_vec(IxDyn(shape), out)
                    .expect("shape matches")
                    .into_shared(),
            )
        }
        DType::U8 => {
            let mut out: Vec<u8> = Vec::with_capacity(n);
            fill_uninit(&batch, &ins, &mut out.spare_capacity_mut()[..n], |d, s| {
                d.iter_mut().zip(s).for_each(|(d, &s)| *d = MaybeUninit::new(s as u8))
            });
            // SAFETY: as above.
            unsafe { out.set_len(n) };
            Block::U8(
                ArrayD::from_shape_vec(IxDyn(shape), out)
                    .expect("shape matches")
                    .into_shared(),
            )
        }
    }
}

/// Runs `program` writing f32 results straight into `dst` (masks as 0.0/1.0), with no block
/// allocated in between; a reused destination of `STREAM_MIN_BYTES` or more gets streaming
/// stores. Returns `false`, writing nothing, when `dst` is not contiguous.
pub fn run_fused_into(
    program: &FusedProgram,
    inputs: &[&Block],
    dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>,
    memory: ResultMemory,
) -> bool {
    let mask = program.out_dtype == DType::U8;
    // in a one-off A/B, plain stores were about 10% faster into fresh memory, 5-15% slower
    // into reused memory
    let stream = memory == ResultMemory::Reused && dst.len() * std::mem::size_of::<f32>() >= STREAM_MIN_BYTES;
    let store = |d: &mut [MaybeUninit<f32>], s: &[f32]| {
        if mask {
            d.iter_mut()
                .zip(s)
                .for_each(|(d, &s)| *d = MaybeUninit::new(f32::from(s as u8)))
        } else {
            store_f32(d, s, stream)
        }
    };
    let batch = batch_program(program, inputs);
    if let Some(out) = dst.as_slice_mut() {
        let ins = inputs.iter().map(|b| contiguous_input(b)).collect::<Vec<_>>();
        let ins: Vec<Input<'_>> = ins.iter().map(|c| c.as_input()).collect();
        fill_uninit(&batch, &ins, out, store);
        return true;
    }
    // A block of a larger result: its rows are contiguous, the block is not. Read the inputs
    // row by row too, so windows of larger arrays are never copied.
    let in_rows: Option<Vec<Vec<Input<'_>>>> = inputs
        .iter()
        .map(|b| match b {
            Block::F32(a) => rows(a.view()).map(|r| r.into_iter().map(Input::F32).collect()),
            Block::U8(a) => rows(a.view()).map(|r| r.into_iter().map(Input::U8).collect()),
        })
        .collect();
    let (Some(in_rows), Some(mut out_rows)) = (in_rows, rows_mut(dst)) else {
        return false;
    };
    // rows in groups of about BATCH * BATCHES_PER_TASK elements: one parallel item per row
    // made rayon's and the setup's cost a visible share of a 2048-wide row
    let width = out_rows.first().map_or(1, |r| r.len().max(1));
    let group = (BATCH * BATCHES_PER_TASK).div_ceil(width);
    out_rows.par_chunks_mut(group).enumerate().for_each_init(
        || (batch.registers(), Vec::with_capacity(in_rows.len())),
        |(regs, ins), (g, rows)| {
            for (i, row) in rows.iter_mut().enumerate() {
                ins.clear();
                ins.extend(in_rows.iter().map(|r| r[g * group + i]));
                batch.run(Span { ins, start: 0 }, row, regs, store)
            }
            store_fence();
        },
    );
    true
}

/// The program resolved against these blocks' dtypes.
fn batch_program(program: &FusedProgram, inputs: &[&Block]) -> BatchProgram {
    let is_f32: Vec<bool> = inputs.iter().map(|b| matches!(b, Block::F32(_))).collect();
    BatchProgram::new(program, &is_f32)
}

fn fill_uninit<O: Send>(
    batch: &BatchProgram,
    ins: &[Input<'_>],
    out: &mut [MaybeUninit<O>],
    store: impl Fn(&mut [MaybeUninit<O>], &[f32]) + Sync,
) {
    let chunk = BATCH * BATCHES_PER_TASK;
    out.par_chunks_mut(chunk).enumerate().for_each_init(
        || batch.registers(),
        |regs, (i, o)| {
            batch.run(Span { ins, start: i * chunk }, o, regs, &store);
            store_fence();
        },
    );
}

/// Copies a batch's results to the output; with `stream`, through non-temporal stores where the
/// CPU has them (same values either way).
#[inline(always)]
fn store_f32(dst: &mut [MaybeUninit<f32>], src: &[f32], stream: bool) {
    #[cfg(target_arch = "x86_64")]
    if stream && std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX (checked just above).
        return unsafe { stream_avx(dst, src) };
    }
    let _ = stream;
    dst.iter_mut().zip(src).for_each(|(d, &s)| *d = MaybeUninit::new(s));
}

/// Plain stores up to the first 32-byte boundary, 8-lane streaming stores after it, plain
/// stores for the tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn stream_avx(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    use std::arch::x86_64::{_mm256_loadu_ps, _mm256_stream_ps};
    let n = dst.len().min(src.len());
    let head = (dst.as_ptr().align_offset(32)).min(n);
    let body = head + (n - head) / 8 * 8;
    for i in (0..head).chain(body..n) {
        dst[i] = MaybeUninit::new(src[i]);
    }
    let (d, s) = (dst.as_mut_ptr() as *mut f32, src.as_ptr());
    for i in (head..body).step_by(8) {
        // SAFETY: i + 8 <= body <= n, both slices hold n elements, and d + i is 32-byte
        // aligned (head is the offset to the first boundary, and i - head is a multiple of 8).
        unsafe { _mm256_stream_ps(d.add(i), _mm256_loadu_ps(s.add(i))) };
    }
}

/// Orders this thread's streaming stores before whatever it does next (the task's completion
/// is signalled through ordinary atomics, which streaming stores may otherwise pass).
#[inline(always)]
fn store_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of x86-64.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

enum Contig<'a> {
    F32(Cow<'a, [f32]>),
    U8(Cow<'a, [u8]>),
}

impl Contig<'_> {
    fn as_input(&self) -> Input<'_> {
        match self {
            Contig::F32(c) => Input::F32(c),
            Contig::U8(c) => Input::U8(c),
        }
    }
}

fn contiguous_input(b: &Block) -> Contig<'_> {
    match b {
        Block::F32(a) => Contig::F32(contiguous(a.view())),
        Block::U8(a) => Contig::U8(contiguous(a.view())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streaming and plain stores write the same values at every alignment of the destination
    /// and every tail length (the streaming path splits into head, 8-lane body and tail).
    #[test]
    fn streaming_stores_write_every_element() {
        let src: Vec<f32> = (0..100).map(|i| i as f32 * 0.5 - 7.0).collect();
        for start in 0..9 {
            for len in [0, 1, 7, 8, 9, 31, 64, 90] {
                for stream in [false, true] {
                    let mut dst = vec![MaybeUninit::new(f32::NAN); 100];
                    store_f32(&mut dst[start..start + len], &src[..len], stream);
                    store_fence();
                    for (i, d) in dst.iter().enumerate() {
                        // SAFETY: every element was initialised (NaN or a stored value).
                        let v = unsafe { d.assume_init() };
                        if (start..start + len).contains(&i) {
                            assert_eq!(v, src[i - start], "start {start} len {len} stream {stream} at {i}");
                        } else {
                            assert!(v.is_nan(), "wrote outside the slice: start {start} len {len} at {i}");
                        }
                    }
                }
            }
        }
    }
}
