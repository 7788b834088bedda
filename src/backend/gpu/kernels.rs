//! Generated kernels as typed values whose `Display` prints their WGSL from the slots of a
//! template: [`FusedKernel`] (`shaders/fused_elementwise.wgsl`) and [`MedianKernel`]
//! (`shaders/median.wgsl`), and [`KernelSource`], the key compiled pipelines are cached by.

use std::fmt;

use crate::expr::{BinaryOp, DType, UnaryOp};
use crate::plan::{FusedProgram, Instr, Operand};

/// `shaders/exact.wgsl` (correctly rounded division and square root) and
/// `shaders/elementary.wgsl` (exp, ln and pow within about an ulp) ahead of the template.
const TEMPLATE: &str = concat!(
    include_str!("../../../shaders/exact.wgsl"),
    include_str!("../../../shaders/elementary.wgsl"),
    include_str!("../../../shaders/fused_elementwise.wgsl")
);
/// `shaders/group_input.wgsl` (the block, the groups, `load`) ahead of the median template.
const MEDIAN_TEMPLATE: &str = concat!(
    include_str!("../../../shaders/group_input.wgsl"),
    include_str!("../../../shaders/exact.wgsl"),
    include_str!("../../../shaders/median.wgsl")
);
/// The longest axis (or group) the median kernel takes (`MAX_LEN` in the shader at most).
pub const MAX_MEDIAN_LEN: usize = 1024;
/// `shaders/exact.wgsl` (exact residuals, correctly rounded division) ahead of the work along
/// an axis (`shaders/along.wgsl`).
const ALONG_TEMPLATE: &str = concat!(
    include_str!("../../../shaders/exact.wgsl"),
    include_str!("../../../shaders/along.wgsl")
);
/// The longest moving window whose median the along kernel takes (its values sorted in a
/// private array per invocation).
pub const MAX_ROLLING_MEDIAN: usize = 64;

/// What a compiled pipeline was made from: a generated kernel (its `Display` is the WGSL), or
/// a fixed shader named by its file. The cache is keyed by this value, so a hit never prints
/// or hashes shader text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelSource {
    /// a fused elementwise kernel
    Fused(FusedKernel),
    /// a median kernel
    Median(MedianKernel),
    /// a kernel of work along an axis
    Along(AlongKernel),
    /// a hand-written shader: (file name, its text)
    Fixed(&'static str, &'static str),
}

impl std::fmt::Display for KernelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelSource::Fused(k) => k.fmt(f),
            KernelSource::Median(k) => k.fmt(f),
            KernelSource::Along(k) => k.fmt(f),
            KernelSource::Fixed(_, text) => f.write_str(text),
        }
    }
}

/// The selection kernel for groups of at most `max_len` values: the template with its private
/// array sized to `max_len` (a power of two, 8..=[`MAX_MEDIAN_LEN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MedianKernel {
    /// length of the per-invocation array
    pub max_len: u32,
}

impl MedianKernel {
    /// The kernel for groups of up to `longest` values.
    pub fn for_groups(longest: usize) -> Self {
        MedianKernel {
            max_len: longest.next_power_of_two().clamp(8, MAX_MEDIAN_LEN) as u32,
        }
    }
}

impl fmt::Display for MedianKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&MEDIAN_TEMPLATE.replace("{{MAX_LEN}}", &self.max_len.to_string()))
    }
}

/// The kernel of work along an axis (`shaders/along.wgsl`), its private array sized for the
/// moving median it runs (1 when it runs none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AlongKernel {
    /// length of the per-invocation array a moving median sorts in
    pub median_len: u32,
}

impl AlongKernel {
    /// The kernel for moving medians of up to `steps` steps (0: no median), the array a power
    /// of two up to [`MAX_ROLLING_MEDIAN`].
    pub fn for_median(steps: usize) -> Self {
        AlongKernel {
            median_len: steps.next_power_of_two().clamp(1, MAX_ROLLING_MEDIAN) as u32,
        }
    }
}

impl fmt::Display for AlongKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&ALONG_TEMPLATE.replace("{{MEDIAN_LEN}}", &self.median_len.to_string()))
    }
}

/// Threads per workgroup: a multiple of every vendor's SIMD width (32, 64).
pub const WORKGROUP_SIZE: u32 = 256;

/// The WGSL of one fused program, constants taken out: two programs that differ only in their
/// constants print the same source, so they share a compiled pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FusedKernel {
    /// element type of every input block (bindings 0..inputs): f32, or u8 packed four to a word
    pub inputs: Vec<DType>,
    /// element type of the output: f32, or u8 packed four to a word (one invocation per word)
    pub out_dtype: DType,
    /// one `let rN: f32 = ...;` line per instruction
    pub body: Vec<String>,
    /// the register stored
    pub result: usize,
    /// vec4s of constants in the uniform buffer (at least one)
    pub const_vec4s: usize,
}

impl FusedKernel {
    /// The kernel of a program, and the constants its `consts` uniform buffer must hold (padded
    /// to whole vec4s).
    pub fn new(program: &FusedProgram) -> (FusedKernel, Vec<f32>) {
        let mut consts: Vec<f32> = Vec::new();
        let mut operand = |o: &Operand| match *o {
            Operand::Reg(r) => format!("r{r}"),
            Operand::Const(c) => {
                // Dedupe by bits, so NaN and -0.0 constants are kept exactly.
                let k = consts
                    .iter()
                    .position(|x| x.to_bits() == c.to_bits())
                    .unwrap_or_else(|| {
                        consts.push(c);
                        consts.len() - 1
                    });
                format!("consts[{}][{}]", k / 4, k % 4)
            }
        };
        let body = program
            .instrs
            .iter()
            .enumerate()
            .map(|(n, instr)| {
                let rhs = match instr {
                    Instr::Load(i) => match program.inputs[*i] {
                        DType::F32 => format!("bitcast<f32>(in{i}[idx])"),
                        DType::U8 => format!("byte_of(in{i}[idx >> 2u], idx)"),
                    },
                    Instr::Unary(op, a) => unary(*op, &operand(a)),
                    Instr::Binary(op, a, b) => {
                        let (a, b) = (operand(a), operand(b));
                        binary(*op, &a, &b)
                    }
                    Instr::Where(c, a, b) => {
                        let (c, a, b) = (operand(c), operand(a), operand(b));
                        format!("select({b}, {a}, truthy({c}))")
                    }
                    Instr::ToU8(a) => format!("to_u8({})", operand(a)),
                };
                format!("    let r{n}: f32 = {rhs};")
            })
            .collect();
        // The uniform array holds whole vec4s, at least one.
        consts.resize(consts.len().div_ceil(4).max(1) * 4, 0.0);
        let kernel = FusedKernel {
            const_vec4s: consts.len() / 4,
            inputs: program.inputs.clone(),
            out_dtype: program.out_dtype,
            body,
            result: program.instrs.len().saturating_sub(1),
        };
        (kernel, consts)
    }

    /// Binding number of the output (inputs come first).
    pub fn binding_out(&self) -> u32 {
        self.inputs.len() as u32
    }

    /// Output elements each invocation writes (four for a packed mask).
    pub fn elements_per_invocation(&self) -> usize {
        match self.out_dtype {
            DType::F32 => 1,
            DType::U8 => 4,
        }
    }
}

fn unary(op: UnaryOp, a: &str) -> String {
    match op {
        UnaryOp::Neg => format!("-{a}"),
        UnaryOp::Abs => format!("abs({a})"),
        UnaryOp::Sqrt => format!("ieee_sqrt({a})"),
        UnaryOp::Exp => format!("np_exp({a})"),
        UnaryOp::Ln => format!("np_ln({a})"),
        UnaryOp::IsNan => format!("mask(is_nan({a}))"),
        UnaryOp::Not => format!("mask({a} == 0.0)"),
    }
}

fn binary(op: BinaryOp, a: &str, b: &str) -> String {
    match op {
        BinaryOp::Add => format!("ieee_add({a}, {b})"),
        BinaryOp::Sub => format!("ieee_sub({a}, {b})"),
        BinaryOp::Mul => format!("ieee_mul({a}, {b})"),
        BinaryOp::Div => format!("ieee_div({a}, {b})"),
        BinaryOp::Pow => format!("np_pow({a}, {b})"),
        BinaryOp::Min => format!("np_min({a}, {b})"),
        BinaryOp::Max => format!("np_max({a}, {b})"),
        BinaryOp::Lt => format!("mask(!either_nan({a}, {b}) && {a} < {b})"),
        BinaryOp::Le => format!("mask(!either_nan({a}, {b}) && {a} <= {b})"),
        BinaryOp::Gt => format!("mask(!either_nan({a}, {b}) && {a} > {b})"),
        BinaryOp::Ge => format!("mask(!either_nan({a}, {b}) && {a} >= {b})"),
        BinaryOp::Eq => format!("mask(!either_nan({a}, {b}) && {a} == {b})"),
        BinaryOp::Ne => format!("mask(either_nan({a}, {b}) || {a} != {b})"),
        BinaryOp::And => format!("mask(truthy({a}) && truthy({b}))"),
        BinaryOp::Or => format!("mask(truthy({a}) || truthy({b}))"),
        BinaryOp::FillNan => format!("select({a}, {b}, is_nan({a}))"),
        BinaryOp::BitAnd => format!("bit_and({a}, {b})"),
        BinaryOp::BitOr => format!("bit_or({a}, {b})"),
    }
}

impl fmt::Display for FusedKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inputs: Vec<String> = (0..self.inputs.len())
            .map(|i| format!("@group(0) @binding({i}) var<storage, read> in{i}: array<u32>;"))
            .collect();
        let store = match self.out_dtype {
            DType::F32 => "store_f32",
            DType::U8 => "store_u8",
        };
        let out = self.binding_out();
        let src = TEMPLATE
            .replace("{{WORKGROUP_SIZE}}", &WORKGROUP_SIZE.to_string())
            .replace("{{INPUTS}}", &inputs.join("\n"))
            .replace("{{BINDING_OUT}}", &out.to_string())
            .replace("{{BINDING_CONSTS}}", &(out + 1).to_string())
            .replace("{{CONST_VEC4S}}", &self.const_vec4s.to_string())
            .replace("{{BINDING_PARAMS}}", &(out + 2).to_string())
            .replace("{{BODY}}", &self.body.join("\n"))
            .replace("{{RESULT}}", &format!("r{}", self.result))
            .replace("{{STORE}}", store);
        f.write_str(&src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_array_fits_the_longest_group() {
        assert_eq!(MedianKernel::for_groups(1).max_len, 8);
        assert_eq!(MedianKernel::for_groups(64).max_len, 64);
        assert_eq!(MedianKernel::for_groups(65).max_len, 128);
        assert_eq!(MedianKernel::for_groups(1024).max_len, 1024);
        let src = MedianKernel::for_groups(30).to_string();
        assert!(src.contains("const MAX_LEN: u32 = 32u;"), "{src}");
        assert!(!src.contains("{{"), "unfilled slot in {src}");
    }

    #[test]
    fn constants_leave_the_source() {
        let program = |c: f32| FusedProgram {
            inputs: vec![DType::F32, DType::F32],
            instrs: vec![
                Instr::Load(0),
                Instr::Load(1),
                Instr::Binary(BinaryOp::Sub, Operand::Reg(0), Operand::Reg(1)),
                Instr::Binary(BinaryOp::Mul, Operand::Reg(2), Operand::Const(c)),
            ],
            out_dtype: DType::F32,
        };
        let (k1, c1) = FusedKernel::new(&program(0.5));
        let (k2, c2) = FusedKernel::new(&program(2.0));
        assert_eq!(k1.to_string(), k2.to_string());
        assert_eq!((c1, c2), (vec![0.5, 0.0, 0.0, 0.0], vec![2.0, 0.0, 0.0, 0.0]));
        let src = k1.to_string();
        assert!(src.contains("let r2: f32 = ieee_sub(r0, r1);"), "{src}");
        assert!(src.contains("let r0: f32 = bitcast<f32>(in0[idx]);"), "{src}");
        assert!(src.contains("store_f32(w);"), "{src}");
        assert!(src.contains("let r3: f32 = ieee_mul(r2, consts[0][0]);"), "{src}");
        assert!(src.contains("var<uniform> consts: array<vec4<f32>, 1>;"), "{src}");
        assert!(src.contains("@group(0) @binding(1) var<storage, read> in1"), "{src}");
        assert!(src.contains("@binding(2) var<storage, read_write> out"), "{src}");
        assert!(!src.contains("{{"), "unfilled slot in {src}");
    }

    #[test]
    fn along_kernels_size_their_median_array_for_the_window() {
        assert_eq!(AlongKernel::for_median(0).median_len, 1);
        assert_eq!(AlongKernel::for_median(5).median_len, 8);
        assert_eq!(AlongKernel::for_median(64).median_len, 64);
        let src = AlongKernel::for_median(5).to_string();
        assert!(src.contains("var sorted: array<f32, 8>;"), "{src}");
        assert!(src.contains("fn div_rn("), "exact.wgsl comes first");
        assert!(!src.contains("{{"), "unfilled slot in {src}");
    }
}
