//! A fused elementwise kernel as plain data: a straight-line register program that a backend
//! runs once per element (the CPU a batch of 128 elements per instruction, the GPU one element
//! per thread).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::expr::{BinaryOp, DType, Node, NodeId, Op, UnaryOp};

/// An instruction operand: the result of an earlier instruction, or a constant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operand {
    /// result of instruction `n`
    Reg(usize),
    /// a scalar constant
    Const(f32),
}

/// One step of a [`FusedProgram`]; its result is register `n` for the `n`-th instruction.
#[derive(Debug, Clone, PartialEq)]
pub enum Instr {
    /// load input `n` (masks load as 0.0/1.0)
    Load(usize),
    /// a unary function
    Unary(UnaryOp, Operand),
    /// a binary function
    Binary(BinaryOp, Operand, Operand),
    /// `c != 0 ? a : b`
    Where(Operand, Operand, Operand),
    /// cast to u8 semantics and back to f32 (truncate, saturate, NaN → 0)
    ToU8(Operand),
}

/// A fused chain of elementwise operations over `inputs.len()` same-shaped blocks, computed in
/// f32 and stored as `out_dtype`. The result is the last instruction's register.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedProgram {
    /// dtype of every input block
    pub inputs: Vec<DType>,
    /// the program, in order
    pub instrs: Vec<Instr>,
    /// how the result is stored
    pub out_dtype: DType,
}

impl FusedProgram {
    /// Number of instructions that compute (not loads): what fusion saved in memory passes.
    pub fn op_count(&self) -> usize {
        self.instrs.iter().filter(|i| !matches!(i, Instr::Load(_))).count()
    }
}

impl fmt::Display for FusedProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |o: &Operand| match o {
            Operand::Reg(r) => format!("r{r}"),
            Operand::Const(c) => format!("{c}"),
        };
        for (n, instr) in self.instrs.iter().enumerate() {
            let rhs = match instr {
                Instr::Load(i) => format!("load in{i}"),
                Instr::Unary(op, a) => format!("{op:?}({})", show(a)),
                Instr::Binary(op, a, b) => format!("{} {} {}", show(a), op.symbol(), show(b)),
                Instr::Where(c, a, b) => format!("where({}, {}, {})", show(c), show(a), show(b)),
                Instr::ToU8(a) => format!("u8({})", show(a)),
            };
            writeln!(f, "r{n} = {rhs}")?;
        }
        write!(f, "store {} r{}", self.out_dtype, self.instrs.len() - 1)
    }
}

/// Builds a program from an elementwise node, inlining elementwise inputs and constant fills;
/// every other input becomes a leaf loaded from a block.
pub(crate) struct FusedBuilder {
    instrs: Vec<Instr>,
    memo: HashMap<NodeId, Operand>,
    /// the nodes read as inputs, in load order
    pub leaves: Vec<Arc<Node>>,
}

impl FusedBuilder {
    pub fn new() -> Self {
        FusedBuilder {
            instrs: Vec::new(),
            memo: HashMap::new(),
            leaves: Vec::new(),
        }
    }

    fn push(&mut self, instr: Instr) -> Operand {
        self.instrs.push(instr);
        Operand::Reg(self.instrs.len() - 1)
    }

    /// Emits the instructions computing `node` and returns its operand.
    pub fn emit(&mut self, node: &Arc<Node>) -> Operand {
        if let Some(&o) = self.memo.get(&node.id) {
            return o;
        }
        let arg = |b: &mut Self, i: usize| b.emit(&node.inputs[i]);
        let out = match &node.op {
            Op::Fill(v) => Operand::Const(*v),
            Op::Unary(op) => {
                let a = arg(self, 0);
                self.push(Instr::Unary(*op, a))
            }
            Op::Binary(op) => {
                let a = arg(self, 0);
                let b = arg(self, 1);
                self.push(Instr::Binary(*op, a, b))
            }
            Op::BinaryScalar {
                op,
                scalar,
                scalar_left,
            } => {
                let x = arg(self, 0);
                let s = Operand::Const(*scalar);
                let (a, b) = if *scalar_left { (s, x) } else { (x, s) };
                self.push(Instr::Binary(*op, a, b))
            }
            Op::Where => {
                let c = arg(self, 0);
                let a = arg(self, 1);
                let b = arg(self, 2);
                self.push(Instr::Where(c, a, b))
            }
            Op::Cast => {
                let a = arg(self, 0);
                if node.dtype == DType::U8 && node.inputs[0].dtype == DType::F32 {
                    self.push(Instr::ToU8(a))
                } else {
                    a
                }
            }
            _ => {
                self.leaves.push(node.clone());
                self.push(Instr::Load(self.leaves.len() - 1))
            }
        };
        self.memo.insert(node.id, out);
        out
    }

    /// Finishes the program for `root` (already emitted).
    pub fn finish(mut self, root: &Node, result: Operand) -> FusedProgram {
        // A constant result or a bare load still needs a register for the store; `x * 1` is
        // exact for every f32, -0.0 and NaN included.
        let last_is_result = matches!(result, Operand::Reg(r) if r + 1 == self.instrs.len());
        if !last_is_result {
            self.instrs
                .push(Instr::Binary(BinaryOp::Mul, result, Operand::Const(1.0)));
        }
        FusedProgram {
            inputs: self.leaves.iter().map(|l| l.dtype).collect(),
            instrs: self.instrs,
            out_dtype: root.dtype,
        }
    }
}
