//! Elementwise operations with numpy broadcasting, and the operator overloads.

use std::ops::{Add, Div, Mul, Neg, Sub};
use std::sync::Arc;

use super::Array;
use crate::expr::{AxisMap, BinaryOp, ChunkGrid, DType, ExprError, Node, Op, UnaryOp};

/// The broadcast shape of several shapes (numpy rules), or `None`.
fn broadcast_shape(shapes: &[&[usize]]) -> Option<Vec<usize>> {
    let nd = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; nd];
    for s in shapes {
        for (k, &n) in s.iter().enumerate() {
            let o = &mut out[nd - s.len() + k];
            if *o == 1 {
                *o = n;
            } else if n != 1 && n != *o {
                return None;
            }
        }
    }
    Some(out)
}

/// The output grid of operands broadcast to `shape`: along each axis, the common refinement of
/// the operands that span it fully.
fn broadcast_grid(nodes: &[&Arc<Node>], shape: &[usize]) -> ChunkGrid {
    let nd = shape.len();
    let sizes = (0..nd)
        .map(|k| {
            let mut grid: Option<ChunkGrid> = None;
            for n in nodes {
                let off = nd - n.grid.ndim();
                if k >= off && n.shape()[k - off] == shape[k] {
                    let g = ChunkGrid::from_sizes(vec![n.grid.sizes(k - off).to_vec()]);
                    grid = Some(match grid {
                        None => g,
                        Some(prev) => prev.refine(&g),
                    });
                }
            }
            grid.map(|g| g.sizes(0).to_vec())
                .unwrap_or_else(|| crate::expr::split_regular(shape[k], shape[k]))
        })
        .collect();
    ChunkGrid::from_sizes(sizes)
}

/// `node` broadcast to `shape` in `grid` (itself when it already has that shape).
fn broadcast_to(node: &Arc<Node>, shape: &[usize], grid: &ChunkGrid) -> Arc<Node> {
    if node.shape() == shape {
        return node.clone();
    }
    let off = shape.len() - node.grid.ndim();
    let maps = (0..shape.len())
        .map(|k| {
            if k < off {
                AxisMap::New { len: shape[k] }
            } else {
                let step = if node.shape()[k - off] == shape[k] { 1 } else { 0 };
                AxisMap::Strided {
                    axis: k - off,
                    start: 0,
                    step,
                    len: shape[k],
                }
            }
        })
        .collect();
    Node::new(
        Op::Select { maps, fixed: vec![] },
        vec![node.clone()],
        grid.clone(),
        node.dtype,
    )
}

/// Builds an elementwise node over operands broadcast together.
pub(crate) fn elementwise(op_name: &str, op: Op, operands: &[&Array], dtype: DType) -> Array {
    let nodes: Result<Vec<&Arc<Node>>, ExprError> = operands.iter().map(|a| a.node()).collect();
    let first = operands[0];
    let result = nodes.and_then(|nodes| {
        let shapes: Vec<&[usize]> = nodes.iter().map(|n| n.shape()).collect();
        let shape = broadcast_shape(&shapes).ok_or_else(|| ExprError::ShapeMismatch {
            op: op_name.into(),
            left: shapes[0].to_vec(),
            right: shapes.get(1).copied().unwrap_or_default().to_vec(),
        })?;
        let grid = broadcast_grid(&nodes, &shape);
        let inputs = nodes.iter().map(|n| broadcast_to(n, &shape, &grid)).collect();
        Ok(Node::new(op, inputs, grid, dtype))
    });
    let out = Array::from_result(result);
    if operands.iter().all(|a| a.ndim() == out.ndim()) {
        first.same_dims(out)
    } else {
        out
    }
}

impl Array {
    fn unary(&self, op: UnaryOp) -> Array {
        let dtype = if matches!(op, UnaryOp::IsNan | UnaryOp::Not) {
            DType::U8
        } else {
            DType::F32
        };
        elementwise("unary", Op::Unary(op), &[self], dtype)
    }

    /// Elementwise `op(self, other)` with numpy broadcasting; comparisons give masks.
    pub fn binary(&self, op: BinaryOp, other: &Array) -> Array {
        let dtype = if op.yields_mask() { DType::U8 } else { DType::F32 };
        elementwise(op.symbol(), Op::Binary(op), &[self, other], dtype)
    }

    /// Elementwise `op(self, scalar)`.
    pub fn binary_scalar(&self, op: BinaryOp, scalar: f32) -> Array {
        let dtype = if op.yields_mask() { DType::U8 } else { DType::F32 };
        elementwise(
            op.symbol(),
            Op::BinaryScalar {
                op,
                scalar,
                scalar_left: false,
            },
            &[self],
            dtype,
        )
    }

    /// Elementwise `op(scalar, self)`.
    pub fn scalar_binary(scalar: f32, op: BinaryOp, array: &Array) -> Array {
        let dtype = if op.yields_mask() { DType::U8 } else { DType::F32 };
        elementwise(
            op.symbol(),
            Op::BinaryScalar {
                op,
                scalar,
                scalar_left: true,
            },
            &[array],
            dtype,
        )
    }

    /// `|x|`
    pub fn abs(&self) -> Array {
        self.unary(UnaryOp::Abs)
    }
    /// `sqrt(x)`
    pub fn sqrt(&self) -> Array {
        self.unary(UnaryOp::Sqrt)
    }
    /// `e^x`
    pub fn exp(&self) -> Array {
        self.unary(UnaryOp::Exp)
    }
    /// natural logarithm
    pub fn ln(&self) -> Array {
        self.unary(UnaryOp::Ln)
    }
    /// mask of NaN elements
    pub fn isnan(&self) -> Array {
        self.unary(UnaryOp::IsNan)
    }
    /// logical not of a mask
    pub fn not(&self) -> Array {
        self.unary(UnaryOp::Not)
    }
    /// `x ** p`
    pub fn powf(&self, p: f32) -> Array {
        self.binary_scalar(BinaryOp::Pow, p)
    }
    /// `x ** y` elementwise
    pub fn pow(&self, y: &Array) -> Array {
        self.binary(BinaryOp::Pow, y)
    }
    /// numpy's `bitwise_and(x, bits)` on the integer values (see [`BinaryOp::BitAnd`]):
    /// `(qa.bitwise_and(1 << 3)).ne_scalar(0.0)` is Landsat's cloud bit as a mask. Lazy, fused.
    pub fn bitwise_and(&self, bits: u32) -> Array {
        self.binary_scalar(BinaryOp::BitAnd, bits as f32)
    }
    /// numpy's `bitwise_or(x, bits)` on the integer values. Lazy, fused.
    pub fn bitwise_or(&self, bits: u32) -> Array {
        self.binary_scalar(BinaryOp::BitOr, bits as f32)
    }
    /// numpy `minimum` (NaN propagates)
    pub fn minimum(&self, y: &Array) -> Array {
        self.binary(BinaryOp::Min, y)
    }
    /// numpy `maximum` (NaN propagates)
    pub fn maximum(&self, y: &Array) -> Array {
        self.binary(BinaryOp::Max, y)
    }
    /// `x < v` as a mask
    pub fn lt(&self, v: f32) -> Array {
        self.binary_scalar(BinaryOp::Lt, v)
    }
    /// `x <= v` as a mask
    pub fn le(&self, v: f32) -> Array {
        self.binary_scalar(BinaryOp::Le, v)
    }
    /// `x > v` as a mask
    pub fn gt(&self, v: f32) -> Array {
        self.binary_scalar(BinaryOp::Gt, v)
    }
    /// `x >= v` as a mask
    pub fn ge(&self, v: f32) -> Array {
        self.binary_scalar(BinaryOp::Ge, v)
    }
    /// `x == v` as a mask
    pub fn eq_scalar(&self, v: f32) -> Array {
        self.binary_scalar(BinaryOp::Eq, v)
    }
    /// `x != v` as a mask
    pub fn ne_scalar(&self, v: f32) -> Array {
        self.binary_scalar(BinaryOp::Ne, v)
    }
    /// logical and of masks
    pub fn and(&self, y: &Array) -> Array {
        self.binary(BinaryOp::And, y)
    }
    /// logical or of masks
    pub fn or(&self, y: &Array) -> Array {
        self.binary(BinaryOp::Or, y)
    }
    /// NaN replaced by `v` (xarray's `fillna`)
    pub fn fillna(&self, v: f32) -> Array {
        self.binary_scalar(BinaryOp::FillNan, v)
    }

    /// `where(self, a, b)`: `a` where this mask is non-zero (or NaN), else `b`; broadcast.
    pub fn where_(&self, a: &Array, b: &Array) -> Array {
        let dtype = if a.dtype() == DType::U8 && b.dtype() == DType::U8 {
            DType::U8
        } else {
            DType::F32
        };
        elementwise("where", Op::Where, &[self, a, b], dtype)
    }

    /// Converts to `dtype`: a mask becomes 0.0/1.0; f32 to u8 truncates toward zero and
    /// saturates to 0..=255, NaN → 0 (Rust `as` semantics; numpy leaves these undefined).
    pub fn astype(&self, dtype: DType) -> Array {
        if self.dtype() == dtype {
            return self.clone();
        }
        elementwise("astype", Op::Cast, &[self], dtype)
    }
}

macro_rules! arith {
    ($trait:ident, $method:ident, $op:expr) => {
        impl $trait<&Array> for &Array {
            type Output = Array;
            fn $method(self, rhs: &Array) -> Array {
                self.binary($op, rhs)
            }
        }
        impl $trait<Array> for Array {
            type Output = Array;
            fn $method(self, rhs: Array) -> Array {
                self.binary($op, &rhs)
            }
        }
        impl $trait<&Array> for Array {
            type Output = Array;
            fn $method(self, rhs: &Array) -> Array {
                self.binary($op, rhs)
            }
        }
        impl $trait<Array> for &Array {
            type Output = Array;
            fn $method(self, rhs: Array) -> Array {
                self.binary($op, &rhs)
            }
        }
        impl $trait<f32> for &Array {
            type Output = Array;
            fn $method(self, rhs: f32) -> Array {
                self.binary_scalar($op, rhs)
            }
        }
        impl $trait<f32> for Array {
            type Output = Array;
            fn $method(self, rhs: f32) -> Array {
                self.binary_scalar($op, rhs)
            }
        }
        impl $trait<&Array> for f32 {
            type Output = Array;
            fn $method(self, rhs: &Array) -> Array {
                Array::scalar_binary(self, $op, rhs)
            }
        }
        impl $trait<Array> for f32 {
            type Output = Array;
            fn $method(self, rhs: Array) -> Array {
                Array::scalar_binary(self, $op, &rhs)
            }
        }
    };
}

arith!(Add, add, BinaryOp::Add);
arith!(Sub, sub, BinaryOp::Sub);
arith!(Mul, mul, BinaryOp::Mul);
arith!(Div, div, BinaryOp::Div);

impl Neg for &Array {
    type Output = Array;
    fn neg(self) -> Array {
        self.unary(UnaryOp::Neg)
    }
}

impl Neg for Array {
    type Output = Array;
    fn neg(self) -> Array {
        self.unary(UnaryOp::Neg)
    }
}

#[cfg(test)]
mod tests {
    use super::broadcast_shape;

    #[test]
    fn numpy_broadcast_rules() {
        assert_eq!(broadcast_shape(&[&[3, 1], &[4]]), Some(vec![3, 4]));
        assert_eq!(broadcast_shape(&[&[2, 3], &[3, 2]]), None);
        assert_eq!(broadcast_shape(&[&[5, 1, 4], &[3, 1]]), Some(vec![5, 3, 4]));
    }
}
