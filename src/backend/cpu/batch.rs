//! Evaluates a [`FusedProgram`] one batch of `BATCH` elements at a time. A batch is short
//! enough that every register stays in L1 and the inputs' memory streams never pause for long,
//! and fixed-size, so each op is one unrolled vector loop with no runtime length or aliasing
//! checks. Per batch and op the dispatch costs a few instructions, which is what made the
//! same loop over runtime-length strips slow at this size.

use crate::expr::{BinaryOp, UnaryOp};
use crate::plan::{FusedProgram, Instr, Operand};

/// Elements per batch (16 AVX registers' worth). With the prefetch below, band math ran 10-25%
/// faster than over 2048-element strips in one-off A/B runs (medians and minimums); 64 and
/// 256 measured within this machine's noise of 128.
pub(super) const BATCH: usize = 128;
/// How far ahead of the batch being evaluated its inputs are prefetched, in elements (2 KiB of
/// each f32 input), so the memory streams keep going while a batch computes. In one-off A/B
/// runs 1 and 2 KiB measured alike; without the prefetch, band math ran about 10% slower.
const PREFETCH_AHEAD: usize = 4 * BATCH;

/// One register: a batch of values.
pub(super) type Batch = [f32; BATCH];

/// A task input, read in place.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    F32(&'a [f32]),
    U8(&'a [u8]),
}

/// The inputs a call evaluates over, and the element of theirs where its output starts.
#[derive(Clone, Copy)]
pub(super) struct Span<'a> {
    pub ins: &'a [Input<'a>],
    pub start: usize,
}

/// Where an operand's values come from in each batch.
#[derive(Clone, Copy)]
enum Src {
    /// an f32 input, read in place
    Input(usize),
    /// the register of an earlier step
    Reg(usize),
    Const(f32),
}

/// What a step computes into its register.
#[derive(Clone, Copy)]
enum Step {
    /// nothing: an f32 load, whose readers read the input in place
    Direct,
    /// a u8 input converted to f32
    LoadU8(usize),
    Unary(UnaryOp, Src),
    Binary(BinaryOp, Src, Src),
    Where(Src, Src, Src),
    ToU8(Src),
}

/// A batch's operand: a register, an input's batch, or a constant.
#[derive(Clone, Copy)]
enum Val<'a> {
    S(&'a Batch),
    C(f32),
}

/// A [`FusedProgram`] resolved against which of its inputs are f32: one step per instruction
/// (step `r` writes register `r`), loads of f32 inputs replaced by in-place reads. Cheap to
/// build (one pass over the instructions); built once per task.
pub(super) struct BatchProgram {
    steps: Vec<Step>,
    result: Src,
    /// the inputs that some step reads, prefetched ahead of each batch
    read: Vec<usize>,
}

impl BatchProgram {
    /// Resolves `program` for inputs of which `is_f32[k]` says whether input `k` is f32.
    pub(super) fn new(program: &FusedProgram, is_f32: &[bool]) -> Self {
        let direct = |q: usize| match program.instrs[q] {
            Instr::Load(k) if is_f32[k] => Some(k),
            _ => None,
        };
        let src = |o: &Operand| match *o {
            Operand::Const(c) => Src::Const(c),
            Operand::Reg(q) => direct(q).map_or(Src::Reg(q), Src::Input),
        };
        let steps = program
            .instrs
            .iter()
            .map(|i| match i {
                Instr::Load(k) if is_f32[*k] => Step::Direct,
                Instr::Load(k) => Step::LoadU8(*k),
                Instr::Unary(op, a) => Step::Unary(*op, src(a)),
                Instr::Binary(op, a, b) => Step::Binary(*op, src(a), src(b)),
                Instr::Where(c, a, b) => Step::Where(src(c), src(a), src(b)),
                Instr::ToU8(a) => Step::ToU8(src(a)),
            })
            .collect();
        let mut read: Vec<usize> = program
            .instrs
            .iter()
            .filter_map(|i| match i {
                Instr::Load(k) => Some(*k),
                _ => None,
            })
            .collect();
        read.sort_unstable();
        read.dedup();
        BatchProgram {
            steps,
            result: src(&Operand::Reg(program.instrs.len() - 1)),
            read,
        }
    }

    /// Zeroed registers for one thread, one batch per step.
    pub(super) fn registers(&self) -> Vec<Batch> {
        vec![[0.0; BATCH]; self.steps.len()]
    }

    /// Evaluates the program over `out.len()` elements of the inputs from `span.start`, handing
    /// each batch's results to `store`. Every element goes through the same code: partial
    /// batches at either end come from whole batches that overlap their neighbours, and an
    /// output shorter than a batch from zero-padded copies of its inputs.
    pub(super) fn run<O>(&self, span: Span<'_>, out: &mut [O], regs: &mut [Batch], store: impl Fn(&mut [O], &[f32])) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { self.run_avx2(span, out, regs, store) };
        }
        self.run_generic(span, out, regs, store)
    }

    /// The same code compiled for 8-wide vectors; results are bitwise the same (every op is
    /// one correctly rounded IEEE operation at any width, and nothing contracts to FMA).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2<O>(&self, span: Span<'_>, out: &mut [O], regs: &mut [Batch], store: impl Fn(&mut [O], &[f32])) {
        self.run_generic(span, out, regs, store)
    }

    #[inline(always)]
    fn run_generic<O>(&self, span: Span<'_>, out: &mut [O], regs: &mut [Batch], store: impl Fn(&mut [O], &[f32])) {
        let Span { ins, start } = span;
        let n = out.len();
        if n < BATCH {
            return self.run_padded(ins, start, out, regs, &store);
        }
        // whole batches start on a 32-byte boundary of the output, so streaming stores never
        // share a cache line with the plain stores of a batch's edges (an offset into a slice
        // of 1- or 4-byte elements is always below 32)
        let head = out.as_ptr().align_offset(32).min(BATCH);
        let body = head + (n - head) / BATCH * BATCH;
        // the partial batches at either end are stored from a whole batch that overlaps its
        // neighbour: a few values computed twice, nothing copied or allocated
        if head > 0 {
            let result = self.eval(ins, start, regs);
            store(&mut out[..head], &result[..head]);
        }
        for off in (head..body).step_by(BATCH) {
            let lo = start + off;
            self.prefetch(ins, lo + PREFETCH_AHEAD);
            let result = self.eval(ins, lo, regs);
            store(&mut out[off..off + BATCH], result);
        }
        if body < n {
            let result = self.eval(ins, start + n - BATCH, regs);
            store(&mut out[body..], &result[BATCH - (n - body)..]);
        }
    }

    /// Evaluates an output shorter than a batch, from `lo`, on zero-padded copies of the inputs.
    fn run_padded<O>(
        &self,
        ins: &[Input<'_>],
        lo: usize,
        out: &mut [O],
        regs: &mut [Batch],
        store: &impl Fn(&mut [O], &[f32]),
    ) {
        let m = out.len();
        let mut f32s = vec![[0f32; BATCH]; ins.len()];
        let mut u8s = vec![[0u8; BATCH]; ins.len()];
        for (k, input) in ins.iter().enumerate() {
            match input {
                Input::F32(s) => f32s[k][..m].copy_from_slice(&s[lo..lo + m]),
                Input::U8(s) => u8s[k][..m].copy_from_slice(&s[lo..lo + m]),
            }
        }
        let padded: Vec<Input<'_>> = ins
            .iter()
            .zip(f32s.iter().zip(&u8s))
            .map(|(i, (f, u))| match i {
                Input::F32(_) => Input::F32(f),
                Input::U8(_) => Input::U8(u),
            })
            .collect();
        let result = self.eval(&padded, 0, regs);
        store(out, &result[..m]);
    }

    /// Asks for the inputs' cache lines at element `at` (reads past the end fetch nothing
    /// and never fault).
    #[inline(always)]
    fn prefetch(&self, ins: &[Input<'_>], at: usize) {
        #[cfg(target_arch = "x86_64")]
        for &k in &self.read {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let (base, bytes) = match ins[k] {
                Input::F32(s) => (s.as_ptr().wrapping_add(at) as *const i8, BATCH * 4),
                Input::U8(s) => (s.as_ptr().wrapping_add(at) as *const i8, BATCH),
            };
            for line in (0..bytes).step_by(64) {
                // SAFETY: a prefetch is a hint: it never faults, whatever the address.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(line)) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (ins, at);
    }

    /// Evaluates the batch of elements `lo..lo + BATCH`, returning the result's values.
    #[inline(always)]
    fn eval<'a>(&self, ins: &[Input<'a>], lo: usize, regs: &'a mut [Batch]) -> &'a Batch {
        for (r, step) in self.steps.iter().enumerate() {
            let (done, rest) = regs.split_at_mut(r);
            let dst = &mut rest[0];
            let val = |s: Src| match s {
                Src::Input(k) => Val::S(f32_batch(ins[k], lo)),
                Src::Reg(q) => Val::S(&done[q]),
                Src::Const(c) => Val::C(c),
            };
            match *step {
                Step::Direct => {}
                Step::LoadU8(k) => {
                    if let Input::U8(s) = ins[k] {
                        let s: &[u8; BATCH] = s[lo..lo + BATCH].try_into().expect("a whole batch");
                        for i in 0..BATCH {
                            dst[i] = f32::from(s[i]);
                        }
                    }
                }
                Step::Unary(op, a) => unary(op, val(a), dst),
                Step::Binary(op, a, b) => binary(op, val(a), val(b), dst),
                Step::Where(c, a, b) => {
                    let (c, a, b) = (val(c), val(a), val(b));
                    for (i, d) in dst.iter_mut().enumerate() {
                        *d = if get(c, i) != 0.0 { get(a, i) } else { get(b, i) };
                    }
                }
                Step::ToU8(a) => map1(val(a), dst, |x| (x as u8) as f32),
            }
        }
        match self.result {
            Src::Input(k) => f32_batch(ins[k], lo),
            Src::Reg(q) => &regs[q],
            Src::Const(_) => unreachable!("a program's result is a register"),
        }
    }
}

/// The batch of an f32 input starting at `lo`.
#[inline(always)]
fn f32_batch<'a>(input: Input<'a>, lo: usize) -> &'a Batch {
    match input {
        Input::F32(s) => s[lo..lo + BATCH].try_into().expect("a whole batch"),
        Input::U8(_) => unreachable!("in-place reads are of f32 inputs"),
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
fn map1(a: Val<'_>, dst: &mut Batch, f: impl Fn(f32) -> f32) {
    match a {
        Val::S(s) => {
            for i in 0..BATCH {
                dst[i] = f(s[i]);
            }
        }
        Val::C(c) => dst.fill(f(c)),
    }
}

#[inline(always)]
fn map2(a: Val<'_>, b: Val<'_>, dst: &mut Batch, f: impl Fn(f32, f32) -> f32) {
    match (a, b) {
        (Val::S(x), Val::S(y)) => {
            for i in 0..BATCH {
                dst[i] = f(x[i], y[i]);
            }
        }
        (Val::S(x), Val::C(c)) => {
            for i in 0..BATCH {
                dst[i] = f(x[i], c);
            }
        }
        (Val::C(c), Val::S(y)) => {
            for i in 0..BATCH {
                dst[i] = f(c, y[i]);
            }
        }
        (Val::C(c), Val::C(k)) => dst.fill(f(c, k)),
    }
}

#[inline(always)]
fn unary(op: UnaryOp, a: Val<'_>, dst: &mut Batch) {
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

/// `bits(x, y)` on the integer values of two f32 (truncated, saturated to u32), NaN
/// propagated: numpy's `bitwise_and`/`bitwise_or` on stored codes.
#[inline(always)]
fn on_bits(x: f32, y: f32, bits: impl Fn(u32, u32) -> u32) -> f32 {
    if x.is_nan() {
        x
    } else if y.is_nan() {
        y
    } else {
        bits(x as u32, y as u32) as f32
    }
}

#[inline(always)]
fn binary(op: BinaryOp, a: Val<'_>, b: Val<'_>, dst: &mut Batch) {
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
        BinaryOp::BitAnd => map2(a, b, dst, |x, y| on_bits(x, y, |p, q| p & q)),
        BinaryOp::BitOr => map2(a, b, dst, |x, y| on_bits(x, y, |p, q| p | q)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::DType;

    /// `where(m, (a - b) / (a + b), fillna(a, 2)) * 0.5` with `a`, `b` f32 and `m` a mask,
    /// computed element by element.
    fn expected(a: f32, b: f32, m: u8) -> f32 {
        let v = if m != 0 {
            (a - b) / (a + b)
        } else if a.is_nan() {
            2.0
        } else {
            a
        };
        v * 0.5
    }

    fn program() -> FusedProgram {
        use Operand::{Const, Reg};
        FusedProgram {
            inputs: vec![DType::F32, DType::F32, DType::U8],
            instrs: vec![
                Instr::Load(0),
                Instr::Load(1),
                Instr::Load(2),
                Instr::Binary(BinaryOp::Sub, Reg(0), Reg(1)),
                Instr::Binary(BinaryOp::Add, Reg(0), Reg(1)),
                Instr::Binary(BinaryOp::Div, Reg(3), Reg(4)),
                Instr::Binary(BinaryOp::FillNan, Reg(0), Const(2.0)),
                Instr::Where(Reg(2), Reg(5), Reg(6)),
                Instr::Binary(BinaryOp::Mul, Reg(7), Const(0.5)),
            ],
            out_dtype: DType::F32,
        }
    }

    /// Every element gets its own value, and nothing outside the output is written, at every
    /// output alignment and length: whole batches, partial ones at either end, and outputs
    /// shorter than a batch.
    #[test]
    fn every_alignment_and_length_evaluates_each_element() {
        let n = 3 * BATCH + 40;
        let a: Vec<f32> = (0..n)
            .map(|i| if i % 7 == 3 { f32::NAN } else { i as f32 * 0.25 + 1.0 })
            .collect();
        let b: Vec<f32> = (0..n).map(|i| (i % 13) as f32 - 6.0).collect();
        let m: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
        let prog = BatchProgram::new(&program(), &[true, true, false]);
        let mut regs = prog.registers();
        let ins = [Input::F32(&a), Input::F32(&b), Input::U8(&m)];
        for shift in 0..9 {
            for len in [0, 1, 7, BATCH - 1, BATCH, BATCH + 9, 2 * BATCH + 3, n - 20] {
                let start = 20.min(n - len);
                let mut out = vec![f32::INFINITY; len + shift];
                prog.run(Span { ins: &ins, start }, &mut out[shift..], &mut regs, |d, s| {
                    d.copy_from_slice(s)
                });
                for (i, &v) in out[shift..].iter().enumerate() {
                    let e = expected(a[start + i], b[start + i], m[start + i]);
                    assert!(
                        v.to_bits() == e.to_bits(),
                        "shift {shift} len {len} element {i}: {v} != {e}"
                    );
                }
                assert!(
                    out[..shift].iter().all(|v| *v == f32::INFINITY),
                    "wrote before the output"
                );
            }
        }
    }
}
