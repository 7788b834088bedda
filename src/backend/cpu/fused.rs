//! The fused elementwise interpreter: runs a [`FusedProgram`] over strips of `STRIP` elements
//! so every register stays in L1/L2 and every op is one tight, auto-vectorised loop. Inputs are
//! read once and the output written once, which is what makes band math memory-bound.

use std::borrow::Cow;

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewMutD, IxDyn};
use rayon::prelude::*;

use super::layout::{contiguous, rows, rows_mut};
use crate::expr::{BinaryOp, Block, DType, UnaryOp};
use crate::plan::{FusedProgram, Instr, Operand};

const STRIP: usize = 2048;
/// Strips per parallel work item: large enough that rayon's overhead vanishes.
const STRIPS_PER_TASK: usize = 32;
/// Results written into their destination (`run_fused_into`) at least this large use streaming
/// (non-temporal) stores: a result this size leaves the caches anyway, and streaming skips
/// reading every destination line before overwriting it, a fifth of band math's traffic.
const STREAM_MIN_BYTES: usize = 4 << 20;

#[derive(Clone, Copy)]
enum Input<'a> {
    F32(&'a [f32]),
    U8(&'a [u8]),
}

#[derive(Clone, Copy)]
enum Val<'a> {
    S(&'a [f32]),
    C(f32),
}

/// Runs `program` over same-shaped input blocks and returns the output block of `shape`.
/// Costs one pass over the inputs and one over the output, parallel over strips.
pub fn run_fused(program: &FusedProgram, inputs: &[&Block], shape: &[usize]) -> Block {
    let n: usize = shape.iter().product();
    let ins = inputs.iter().map(|b| contiguous_input(b)).collect::<Vec<_>>();
    let ins: Vec<Input<'_>> = ins.iter().map(|c| c.as_input()).collect();
    let direct = direct_loads(program, inputs);
    match program.out_dtype {
        DType::F32 => {
            let mut out: Vec<f32> = Vec::with_capacity(n);
            // a block for another task, which reads it soon: kept in cache, never streamed
            fill_uninit(program, &direct, &ins, &mut out.spare_capacity_mut()[..n], |d, s| {
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
            fill_uninit(program, &direct, &ins, &mut out.spare_capacity_mut()[..n], |d, s| {
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
/// allocated in between; a destination of `STREAM_MIN_BYTES` or more gets streaming stores.
/// Returns `false`, writing nothing, when `dst` is not contiguous.
pub fn run_fused_into(
    program: &FusedProgram,
    inputs: &[&Block],
    dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>,
) -> bool {
    let mask = program.out_dtype == DType::U8;
    let stream = dst.len() * std::mem::size_of::<f32>() >= STREAM_MIN_BYTES;
    let store = |d: &mut [MaybeUninit<f32>], s: &[f32]| {
        if mask {
            d.iter_mut()
                .zip(s)
                .for_each(|(d, &s)| *d = MaybeUninit::new(f32::from(s as u8)))
        } else {
            store_f32(d, s, stream)
        }
    };
    let direct = direct_loads(program, inputs);
    if let Some(out) = dst.as_slice_mut() {
        let ins = inputs.iter().map(|b| contiguous_input(b)).collect::<Vec<_>>();
        let ins: Vec<Input<'_>> = ins.iter().map(|c| c.as_input()).collect();
        fill_uninit(program, &direct, &ins, out, store);
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
    // rows in groups of about STRIP * STRIPS_PER_TASK elements: one parallel item per row
    // made rayon's and the setup's cost a visible share of a 2048-wide row
    let width = out_rows.first().map_or(1, |r| r.len().max(1));
    let group = (STRIP * STRIPS_PER_TASK).div_ceil(width);
    out_rows.par_chunks_mut(group).enumerate().for_each_init(
        || (registers(program), Vec::with_capacity(in_rows.len())),
        |(regs, ins), (g, rows)| {
            for (i, row) in rows.iter_mut().enumerate() {
                ins.clear();
                ins.extend(in_rows.iter().map(|r| r[g * group + i]));
                let span = Span {
                    program,
                    direct: &direct,
                    ins,
                    start: 0,
                };
                run_range(span, row, regs, store)
            }
            store_fence();
        },
    );
    true
}

/// Per-thread value buffers, one strip per instruction.
fn registers(program: &FusedProgram) -> Vec<Vec<f32>> {
    vec![vec![0f32; STRIP]; program.instrs.len()]
}

/// For each instruction, the f32 input it loads when it is such a load: those values are read
/// in place, never copied into a buffer. Depends only on which inputs are f32, so it is worked
/// out once per task.
fn direct_loads(program: &FusedProgram, inputs: &[&Block]) -> Vec<Option<usize>> {
    program
        .instrs
        .iter()
        .map(|i| match i {
            Instr::Load(k) if matches!(inputs[*k], Block::F32(_)) => Some(*k),
            _ => None,
        })
        .collect()
}

fn fill_uninit<O: Send>(
    program: &FusedProgram,
    direct: &[Option<usize>],
    ins: &[Input<'_>],
    out: &mut [MaybeUninit<O>],
    store: impl Fn(&mut [MaybeUninit<O>], &[f32]) + Sync,
) {
    let chunk = STRIP * STRIPS_PER_TASK;
    out.par_chunks_mut(chunk).enumerate().for_each_init(
        || registers(program),
        |regs, (i, o)| {
            let span = Span {
                program,
                direct,
                ins,
                start: i * chunk,
            };
            run_range(span, o, regs, &store);
            store_fence();
        },
    );
}

/// Copies a strip's results to the output; with `stream`, through non-temporal stores where the
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

/// What one call of `run_range` evaluates: the program, which of its loads read an input in
/// place, its inputs, and the element of the inputs where its output starts.
#[derive(Clone, Copy)]
struct Span<'a> {
    program: &'a FusedProgram,
    direct: &'a [Option<usize>],
    ins: &'a [Input<'a>],
    start: usize,
}

/// Runs the program over `out`, strip by strip. On x86-64 with AVX2 the same code runs
/// compiled for 8-wide vectors (results are bitwise the same: every op is one correctly
/// rounded IEEE operation at any width, and nothing contracts to FMA).
fn run_range<O>(span: Span<'_>, out: &mut [O], regs: &mut [Vec<f32>], store: impl Fn(&mut [O], &[f32])) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above).
        return unsafe { run_range_avx2(span, out, regs, store) };
    }
    run_range_generic(span, out, regs, store)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_range_avx2<O>(span: Span<'_>, out: &mut [O], regs: &mut [Vec<f32>], store: impl Fn(&mut [O], &[f32])) {
    run_range_generic(span, out, regs, store)
}

#[inline(always)]
fn run_range_generic<O>(span: Span<'_>, out: &mut [O], regs: &mut [Vec<f32>], store: impl Fn(&mut [O], &[f32])) {
    let Span {
        program,
        direct,
        ins,
        start,
    } = span;
    let mut off = 0;
    while off < out.len() {
        let m = STRIP.min(out.len() - off);
        let lo = start + off;
        for (r, instr) in program.instrs.iter().enumerate() {
            let (done, rest) = regs.split_at_mut(r);
            let dst = &mut rest[0][..m];
            let val = |o: &Operand| -> Val<'_> {
                match *o {
                    Operand::Const(c) => Val::C(c),
                    Operand::Reg(q) => match direct[q] {
                        Some(k) => match &ins[k] {
                            Input::F32(s) => Val::S(&s[lo..lo + m]),
                            Input::U8(_) => unreachable!("direct loads are f32"),
                        },
                        None => Val::S(&done[q][..m]),
                    },
                }
            };
            match instr {
                Instr::Load(k) => {
                    if let Input::U8(s) = &ins[*k] {
                        dst.iter_mut().zip(&s[lo..lo + m]).for_each(|(d, &v)| *d = f32::from(v));
                    }
                }
                Instr::Unary(op, a) => unary(*op, val(a), dst),
                Instr::Binary(op, a, b) => binary(*op, val(a), val(b), dst),
                Instr::Where(c, a, b) => {
                    let (c, a, b) = (val(c), val(a), val(b));
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = if get(c, i) != 0.0 { get(a, i) } else { get(b, i) };
                    }
                }
                Instr::ToU8(a) => map1(val(a), dst, |x| (x as u8) as f32),
            }
        }
        let last = program.instrs.len() - 1;
        let result: &[f32] = match direct[last] {
            Some(k) => match &ins[k] {
                Input::F32(s) => &s[lo..lo + m],
                Input::U8(_) => unreachable!(),
            },
            None => &regs[last][..m],
        };
        store(&mut out[off..off + m], result);
        off += m;
    }
}

#[inline(always)]
fn get(v: Val<'_>, i: usize) -> f32 {
    match v {
        Val::S(s) => s[i],
        Val::C(c) => c,
    }
}

#[inline(always)]
fn map1(a: Val<'_>, dst: &mut [f32], f: impl Fn(f32) -> f32) {
    match a {
        Val::S(s) => dst.iter_mut().zip(s).for_each(|(d, &x)| *d = f(x)),
        Val::C(c) => dst.fill(f(c)),
    }
}

#[inline(always)]
fn map2(a: Val<'_>, b: Val<'_>, dst: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    match (a, b) {
        (Val::S(x), Val::S(y)) => dst
            .iter_mut()
            .zip(x.iter().zip(y))
            .for_each(|(d, (&x, &y))| *d = f(x, y)),
        (Val::S(x), Val::C(c)) => dst.iter_mut().zip(x).for_each(|(d, &x)| *d = f(x, c)),
        (Val::C(c), Val::S(y)) => dst.iter_mut().zip(y).for_each(|(d, &y)| *d = f(c, y)),
        (Val::C(c), Val::C(k)) => dst.fill(f(c, k)),
    }
}

#[inline(always)]
fn unary(op: UnaryOp, a: Val<'_>, dst: &mut [f32]) {
    match op {
        UnaryOp::Neg => map1(a, dst, |x| -x),
        UnaryOp::Abs => map1(a, dst, f32::abs),
        UnaryOp::Sqrt => map1(a, dst, f32::sqrt),
        UnaryOp::Exp => map1(a, dst, f32::exp),
        UnaryOp::Ln => map1(a, dst, f32::ln),
        UnaryOp::IsNan => map1(a, dst, |x| x.is_nan() as u8 as f32),
        UnaryOp::Not => map1(a, dst, |x| (x == 0.0) as u8 as f32),
    }
}

/// numpy's `minimum`/`maximum` for floats: NaN if either operand is NaN.
#[inline(always)]
fn np_min(x: f32, y: f32) -> f32 {
    if x < y || x.is_nan() {
        x
    } else {
        y
    }
}

#[inline(always)]
fn np_max(x: f32, y: f32) -> f32 {
    if x > y || x.is_nan() {
        x
    } else {
        y
    }
}

#[inline(always)]
fn binary(op: BinaryOp, a: Val<'_>, b: Val<'_>, dst: &mut [f32]) {
    let m = |c: bool| c as u8 as f32;
    match op {
        BinaryOp::Add => map2(a, b, dst, |x, y| x + y),
        BinaryOp::Sub => map2(a, b, dst, |x, y| x - y),
        BinaryOp::Mul => map2(a, b, dst, |x, y| x * y),
        BinaryOp::Div => map2(a, b, dst, |x, y| x / y),
        BinaryOp::Pow => map2(a, b, dst, f32::powf),
        BinaryOp::Min => map2(a, b, dst, np_min),
        BinaryOp::Max => map2(a, b, dst, np_max),
        BinaryOp::Lt => map2(a, b, dst, |x, y| m(x < y)),
        BinaryOp::Le => map2(a, b, dst, |x, y| m(x <= y)),
        BinaryOp::Gt => map2(a, b, dst, |x, y| m(x > y)),
        BinaryOp::Ge => map2(a, b, dst, |x, y| m(x >= y)),
        BinaryOp::Eq => map2(a, b, dst, |x, y| m(x == y)),
        BinaryOp::Ne => map2(a, b, dst, |x, y| m(x != y)),
        BinaryOp::And => map2(a, b, dst, |x, y| m(x != 0.0 && y != 0.0)),
        BinaryOp::Or => map2(a, b, dst, |x, y| m(x != 0.0 || y != 0.0)),
        BinaryOp::FillNan => map2(a, b, dst, |x, y| if x.is_nan() { y } else { x }),
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
