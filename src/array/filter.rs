//! Neighbourhood operations: the gaussian filter and user functions over blocks.

use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD};

use super::Array;
use crate::expr::{BlockFn, BoundaryMode, ExprError, Node, Op};

/// The widest halo a filter may read per side (a gaussian radius, a `map_overlap` depth).
pub const MAX_HALO: usize = 1 << 20;

impl Array {
    /// `scipy.ndimage.gaussian_filter(x, sigma, mode=mode, truncate=4.0)`: one sigma per axis
    /// (or one for all; 0 leaves an axis untouched). Identical whatever the chunking: every
    /// block reads a halo of `int(4 * sigma + 0.5)` from its neighbours.
    pub fn gaussian(&self, sigma: &[f64], mode: BoundaryMode) -> Array {
        self.gaussian_truncated(sigma, mode, 4.0)
    }

    /// [`Array::gaussian`] with scipy's `truncate` (radius `int(truncate * sigma + 0.5)`).
    pub fn gaussian_truncated(&self, sigma: &[f64], mode: BoundaryMode, truncate: f64) -> Array {
        // a mask is filtered as 0.0/1.0 values, its halo (a constant boundary too) in f32
        let input = self.astype(crate::expr::DType::F32);
        let result = input.node().and_then(|node| {
            let nd = node.grid.ndim();
            let sigma: Vec<f64> = match sigma.len() {
                1 => vec![sigma[0]; nd],
                n if n == nd => sigma.to_vec(),
                n => {
                    return Err(ExprError::InvalidArgument {
                        op: "gaussian".into(),
                        reason: format!("{n} sigmas for {nd} axes"),
                    })
                }
            };
            if sigma.iter().any(|s| !s.is_finite() || *s < 0.0) || !truncate.is_finite() || truncate < 0.0 {
                return Err(ExprError::InvalidArgument {
                    op: "gaussian".into(),
                    reason: format!("sigma {sigma:?} and truncate {truncate} must be finite and >= 0"),
                });
            }
            if sigma.iter().any(|s| truncate * s + 0.5 > MAX_HALO as f64) {
                return Err(ExprError::InvalidArgument {
                    op: "gaussian".into(),
                    reason: format!("radius of sigma {sigma:?} with truncate {truncate} is over {MAX_HALO}"),
                });
            }
            Ok(Node::new(
                Op::Gaussian { sigma, mode, truncate },
                vec![node.clone()],
                node.grid.clone(),
                crate::expr::DType::F32,
            ))
        });
        self.same_dims(Array::from_result(result))
    }

    /// Applies `f` to every block (dask's `map_blocks`); `f` must return an array of the
    /// block's shape. Costs one call per block.
    pub fn map_blocks<F>(&self, name: &str, f: F) -> Array
    where
        F: Fn(ArrayViewD<'_, f32>) -> ArrayD<f32> + Send + Sync + 'static,
    {
        let f = BlockFn {
            name: name.to_string(),
            f: Arc::new(f),
        };
        let result = self.node().map(|node| {
            Node::new(
                Op::MapBlocks(f),
                vec![node.clone()],
                node.grid.clone(),
                crate::expr::DType::F32,
            )
        });
        self.same_dims(Array::from_result(result))
    }

    /// Applies `f` to every block extended by `depth[axis]` neighbouring elements per side
    /// (values beyond the array edge follow `mode`), then trims the halo off (dask's
    /// `map_overlap` with `trim=True`).
    pub fn map_overlap<F>(&self, name: &str, depth: &[usize], mode: BoundaryMode, f: F) -> Array
    where
        F: Fn(ArrayViewD<'_, f32>) -> ArrayD<f32> + Send + Sync + 'static,
    {
        let f = BlockFn {
            name: name.to_string(),
            f: Arc::new(f),
        };
        // a mask is handed to `f` as 0.0/1.0 values, its halo (a constant boundary too) in f32
        let input = self.astype(crate::expr::DType::F32);
        let result = input.node().and_then(|node| {
            if depth.iter().any(|&d| d > MAX_HALO) {
                return Err(ExprError::InvalidArgument {
                    op: "map_overlap".into(),
                    reason: format!("depth {depth:?} is over {MAX_HALO}"),
                });
            }
            if depth.len() != node.grid.ndim() {
                return Err(ExprError::InvalidArgument {
                    op: "map_overlap".into(),
                    reason: format!("{} depths for {} axes", depth.len(), node.grid.ndim()),
                });
            }
            let op = Op::MapOverlap {
                f,
                depth: depth.to_vec(),
                mode,
            };
            Ok(Node::new(
                op,
                vec![node.clone()],
                node.grid.clone(),
                crate::expr::DType::F32,
            ))
        });
        self.same_dims(Array::from_result(result))
    }
}
