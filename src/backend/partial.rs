//! [`Partial`]: the running state of a reduction in f64, shared by both backends. The CPU
//! folds blocks into it; the GPU hands over the states its kernels wrote when a block had to
//! come back in pieces; either way merging and [`finalize`] are this code.

use ndarray::{ArrayD, IxDyn};

use crate::expr::{Block, ReduceOp};

/// The running state of a reduction over part of the reduced axes, for every output element.
///
/// Lanes: `a` is the sum, extreme or mean; `b` the count; `c` the sum of squared deviations.
#[derive(Debug, Clone)]
pub struct Partial {
    /// the reduction
    pub op: ReduceOp,
    /// the output shape
    pub shape: Vec<usize>,
    pub(in crate::backend) a: Vec<f64>,
    pub(in crate::backend) b: Vec<f64>,
    pub(in crate::backend) c: Vec<f64>,
}

impl Partial {
    /// The state of nothing folded yet, for every element of `shape`, in the lanes `op` uses.
    pub(in crate::backend) fn empty(op: ReduceOp, shape: Vec<usize>) -> Self {
        let n: usize = shape.iter().product();
        let a0 = match op {
            ReduceOp::NanMin => f64::INFINITY,
            ReduceOp::NanMax => f64::NEG_INFINITY,
            ReduceOp::Min => f64::INFINITY,
            ReduceOp::Max => f64::NEG_INFINITY,
            ReduceOp::All => 1.0,
            _ => 0.0,
        };
        // Only the lanes the op folds into: a mean's state is half a variance's.
        let lane = |k: usize| {
            if op.partial_lanes() > k {
                vec![0.0; n]
            } else {
                Vec::new()
            }
        };
        Partial {
            op,
            shape,
            a: vec![a0; n],
            b: lane(1),
            c: lane(2),
        }
    }

    /// A state from its lanes (`a`: sum, extreme or mean; `b`: count; `c`: sum of squared
    /// deviations), one value per output element: how another backend hands its states over.
    pub(crate) fn from_lanes(op: ReduceOp, shape: Vec<usize>, a: Vec<f64>, b: Vec<f64>, c: Vec<f64>) -> Self {
        Partial { op, shape, a, b, c }
    }

    /// Bytes held.
    pub fn nbytes(&self) -> u64 {
        ((self.a.len() + self.b.len() + self.c.len()) * 8) as u64
    }

    /// Merges another partial of the same op and shape into this one.
    pub fn merge(&mut self, other: &Partial) {
        let (mut zb, mut zc) = (0.0, 0.0);
        for i in 0..self.a.len() {
            let (oa, ob, oc) = (
                other.a[i],
                other.b.get(i).copied().unwrap_or(0.0),
                other.c.get(i).copied().unwrap_or(0.0),
            );
            let a = &mut self.a[i];
            let b = self.b.get_mut(i).unwrap_or(&mut zb);
            let c = self.c.get_mut(i).unwrap_or(&mut zc);
            match self.op {
                ReduceOp::Sum | ReduceOp::NanSum | ReduceOp::Count => *a += oa,
                ReduceOp::Mean | ReduceOp::NanMean => {
                    *a += oa;
                    *b += ob;
                }
                ReduceOp::Min => *a = if a.is_nan() || oa.is_nan() { f64::NAN } else { a.min(oa) },
                ReduceOp::Max => *a = if a.is_nan() || oa.is_nan() { f64::NAN } else { a.max(oa) },
                ReduceOp::NanMin => {
                    *a = a.min(oa);
                    *b += ob;
                }
                ReduceOp::NanMax => {
                    *a = a.max(oa);
                    *b += ob;
                }
                ReduceOp::NanVar { .. } | ReduceOp::NanStd { .. } => {
                    // Chan et al.'s pairwise combination of (count, mean, M2).
                    let n = *b + ob;
                    if ob > 0.0 {
                        let d = oa - *a;
                        *a += d * ob / n;
                        *c += oc + d * d * *b * ob / n;
                        *b = n;
                    }
                }
                ReduceOp::Any => *a = a.max(oa),
                ReduceOp::All => *a = a.min(oa),
                // holistic ops (medians, quantiles, arg extremes; `partial_lanes` 0) keep no state
                _ => {
                    unreachable!("holistic reductions have no partial state")
                }
            }
        }
    }
}

/// Turns a partial state into the output block: f32, or a mask for any/all.
pub fn finalize(p: &Partial) -> Block {
    let n = p.a.len();
    let value = |i: usize| -> f32 {
        let (a, b, c) = (
            p.a[i],
            p.b.get(i).copied().unwrap_or(0.0),
            p.c.get(i).copied().unwrap_or(0.0),
        );
        let v = match p.op {
            ReduceOp::Sum | ReduceOp::NanSum | ReduceOp::Count | ReduceOp::Min | ReduceOp::Max => a,
            ReduceOp::Mean | ReduceOp::NanMean => a / b,
            ReduceOp::NanMin | ReduceOp::NanMax => {
                if b > 0.0 {
                    a
                } else {
                    f64::NAN
                }
            }
            ReduceOp::NanVar { ddof } | ReduceOp::NanStd { ddof } => {
                let dof = b - f64::from(ddof);
                let var = if dof > 0.0 { c / dof } else { f64::NAN };
                if matches!(p.op, ReduceOp::NanStd { .. }) {
                    var.sqrt()
                } else {
                    var
                }
            }
            ReduceOp::Any | ReduceOp::All => a,
            // holistic ops (medians, quantiles, arg extremes; `partial_lanes` 0) keep no state
            _ => {
                unreachable!("holistic")
            }
        };
        v as f32
    };
    let shape = IxDyn(&p.shape);
    if p.op.yields_mask() {
        Block::U8(
            ArrayD::from_shape_vec(shape, (0..n).map(|i| value(i) as u8).collect())
                .expect("shape")
                .into_shared(),
        )
    } else {
        Block::F32(
            ArrayD::from_shape_vec(shape, (0..n).map(value).collect())
                .expect("shape")
                .into_shared(),
        )
    }
}
