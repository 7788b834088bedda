//! Reductions over axes, and the group-reduce a calendar resample lowers to.

use std::sync::Arc;

use super::select::resolve_axis;
use super::Array;
use crate::expr::{DType, ExprError, Node, Op, ReduceOp};

/// Which axes a reduction runs over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Axes {
    /// every axis (numpy's `axis=None`)
    All,
    /// these axes (negative counts from the end)
    Some(Vec<isize>),
    /// these named dims
    Named(Vec<String>),
}

impl From<isize> for Axes {
    fn from(a: isize) -> Self {
        Axes::Some(vec![a])
    }
}

impl From<&[isize]> for Axes {
    fn from(a: &[isize]) -> Self {
        Axes::Some(a.to_vec())
    }
}

impl<const N: usize> From<[isize; N]> for Axes {
    fn from(a: [isize; N]) -> Self {
        Axes::Some(a.to_vec())
    }
}

impl From<&str> for Axes {
    fn from(name: &str) -> Self {
        Axes::Named(vec![name.to_string()])
    }
}

macro_rules! reductions {
    ($($(#[$doc:meta])* $name:ident => $op:expr;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self, axes: impl Into<Axes>) -> Array {
            self.reduce($op, axes)
        }
    )*};
}

impl Array {
    fn resolve_axes(&self, op: &str, axes: Axes) -> Result<Vec<usize>, ExprError> {
        let nd = self.ndim();
        let mut out = match axes {
            Axes::All => (0..nd).collect(),
            Axes::Some(list) => list
                .iter()
                .map(|&a| resolve_axis(op, a, nd))
                .collect::<Result<Vec<_>, _>>()?,
            Axes::Named(names) => names.iter().map(|n| self.axis_of(n)).collect::<Result<Vec<_>, _>>()?,
        };
        out.sort_unstable();
        if out.windows(2).any(|w| w[0] == w[1]) {
            return Err(ExprError::InvalidArgument {
                op: op.into(),
                reason: format!("duplicate axes {out:?}"),
            });
        }
        Ok(out)
    }

    /// Reduces over `axes` with `op`; the axes are removed from the shape. Holistic ops
    /// (median) make those axes whole in each block at plan time.
    pub fn reduce(&self, op: ReduceOp, axes: impl Into<Axes>) -> Array {
        let axes = self.resolve_axes(op.name(), axes.into());
        let result = self.node().and_then(|node| {
            let axes = axes.clone()?;
            if op.empty_value().is_none() && axes.iter().any(|&a| node.shape()[a] == 0) {
                return Err(ExprError::InvalidArgument {
                    op: op.name().into(),
                    reason: format!("zero-size array to reduction operation (shape {:?})", node.shape()),
                });
            }
            let grid = node.grid.without_axes(&axes);
            let dtype = if op.yields_mask() { DType::U8 } else { DType::F32 };
            Ok(Node::new(
                Op::Reduce { op, axes: axes.clone() },
                vec![node.clone()],
                grid,
                dtype,
            ))
        });
        let out = Array::from_result(result);
        match (self.dims(), &axes) {
            (Some(d), Ok(axes)) if out.check().is_ok() => out.with_dims(&crate::expr::without_axes(d, axes)),
            _ => out,
        }
    }

    /// The NaN-skipping `q`-th quantile over `axes` (`numpy.nanquantile`, linear method; `q`
    /// in [0, 1], kept to six decimals). Holistic: the axes are made whole in each block.
    /// A `q` outside [0, 1] is an invalid-argument error at compute.
    pub fn nanquantile(&self, q: f64, axes: impl Into<Axes>) -> Array {
        match ReduceOp::nanquantile(q) {
            Some(op) => self.reduce(op, axes),
            None => Array::from_result(Err(ExprError::InvalidArgument {
                op: "nanquantile".into(),
                reason: format!("q = {q} is outside [0, 1]"),
            })),
        }
    }

    reductions! {
        /// Sum of the non-NaN values (0 where all are NaN). strata's one NaN convention is
        /// xarray's: the plain names skip NaN, on [`Array`] as on
        /// [`DataArray`](crate::labelled::DataArray); numpy's NaN-propagating sum is
        /// `reduce(ReduceOp::Sum, axes)`.
        sum => ReduceOp::NanSum;
        /// Mean of the non-NaN values (NaN where all are NaN); NaN-propagating:
        /// `reduce(ReduceOp::Mean, axes)`.
        mean => ReduceOp::NanMean;
        /// Minimum of the non-NaN values (NaN where all are NaN; an empty axis is an error);
        /// NaN-propagating: `reduce(ReduceOp::Min, axes)`.
        min => ReduceOp::NanMin;
        /// Maximum of the non-NaN values (NaN where all are NaN; an empty axis is an error);
        /// NaN-propagating: `reduce(ReduceOp::Max, axes)`.
        max => ReduceOp::NanMax;
        /// Median of the non-NaN values as `numpy.nanmedian` (an even count averages the two
        /// middle values); NaN-propagating: `reduce(ReduceOp::Median, axes)`.
        median => ReduceOp::NanMedian;
        /// [`Array::sum`] under numpy's name.
        nansum => ReduceOp::NanSum;
        /// [`Array::mean`] under numpy's name.
        nanmean => ReduceOp::NanMean;
        /// [`Array::min`] under numpy's name.
        nanmin => ReduceOp::NanMin;
        /// [`Array::max`] under numpy's name.
        nanmax => ReduceOp::NanMax;
        /// [`Array::median`] under numpy's name.
        nanmedian => ReduceOp::NanMedian;
        /// Number of non-NaN values.
        count => ReduceOp::Count;
        /// True where any value is non-zero.
        any => ReduceOp::Any;
        /// True where every value is non-zero.
        all => ReduceOp::All;
        /// The index of the first maximum of the non-NaN values (xarray's `argmax`, numpy's
        /// `nanargmax`), as f32: NaN where every value is NaN (numpy raises there); over
        /// several axes, the index into them flattened in C order. An empty axis is an
        /// error. NaN-propagating (numpy's `argmax`, the first NaN wins):
        /// `reduce(ReduceOp::ArgMax, axes)`. Holistic: the axes are made whole in each
        /// block; one pass over the values.
        argmax => ReduceOp::NanArgMax;
        /// The index of the first minimum of the non-NaN values, as [`Array::argmax`].
        argmin => ReduceOp::NanArgMin;
        /// [`Array::argmax`] under numpy's name.
        nanargmax => ReduceOp::NanArgMax;
        /// [`Array::argmin`] under numpy's name.
        nanargmin => ReduceOp::NanArgMin;
    }

    /// Variance of non-NaN values with `ddof` (numpy's `nanvar`).
    pub fn nanvar(&self, axes: impl Into<Axes>, ddof: u32) -> Array {
        self.reduce(ReduceOp::NanVar { ddof }, axes)
    }

    /// Standard deviation of non-NaN values with `ddof` (numpy's `nanstd`).
    pub fn nanstd(&self, axes: impl Into<Axes>, ddof: u32) -> Array {
        self.reduce(ReduceOp::NanStd { ddof }, axes)
    }

    /// Reduces `axis` group by group: index `i` belongs to group `labels[i]`, and the axis
    /// becomes `groups` long (one slot per group; an empty group gives what numpy gives for no
    /// values: 0 for sums, counts and `any`, 1 for `all`, NaN otherwise).
    /// A calendar resample is this with month numbers as labels.
    pub fn group_reduce(&self, op: ReduceOp, axis: isize, labels: &[usize], groups: usize) -> Array {
        let result = self.node().and_then(|node| {
            let axis = resolve_axis("group_reduce", axis, node.grid.ndim())?;
            if labels.len() != node.shape()[axis] {
                return Err(ExprError::ShapeMismatch {
                    op: "group_reduce labels".into(),
                    left: vec![labels.len()],
                    right: vec![node.shape()[axis]],
                });
            }
            if let Some(&bad) = labels.iter().find(|&&g| g >= groups) {
                return Err(ExprError::InvalidArgument {
                    op: "group_reduce".into(),
                    reason: format!("label {bad} but only {groups} groups"),
                });
            }
            let grid = node.grid.with_axis(axis, crate::expr::split_regular(groups, groups));
            let dtype = if op.yields_mask() { DType::U8 } else { DType::F32 };
            let op = Op::GroupReduce {
                op,
                axis,
                labels: Arc::new(labels.to_vec()),
                groups,
            };
            Ok(Node::new(op, vec![node.clone()], grid, dtype))
        });
        self.same_dims(Array::from_result(result))
    }

    /// Reduces every window of `windows[axis]` consecutive elements along each axis to one
    /// element (xarray's `coarsen(y=k, x=k).reduce(op)`, dask's `coarsen`): the shape is
    /// divided by `windows` (1 leaves an axis as it is). `op` is one of `Count`, `NanSum`,
    /// `NanMean`, `NanMin`, `NanMax`, `NanVar`, `NanStd` and `NanMedian`, as xarray's
    /// NaN-skipping reductions give them: NaN where a window has no value (a variance: no more
    /// than `ddof`), except sums and counts (0). Sums, means and variances accumulate in f64
    /// (variances in two passes), rounded once, in the same order whatever the chunks.
    ///
    /// Lazy; blocks are cut on window edges (at most 2 MiB each on the host, a median block's
    /// size on the GPU) and each is one pass: its windows' values laid side by side (one
    /// copy), then O(window) per window. On the host a median is a sorting network across 64
    /// windows at a time, or a selection for windows over 64 values. The GPU backend runs the
    /// same on the device (sums as TwoSum pairs, within a few f32 ulps of the host's f64;
    /// medians to 1024 values a window), so the result stays there for the next device task.
    ///
    /// **Errors** (at compute): `InvalidArgument` for another op, a window of 0, or an axis
    /// whose length is not a multiple of its window; `ShapeMismatch` for a window count that
    /// is not the number of axes.
    pub fn coarsen(&self, op: ReduceOp, windows: &[usize]) -> Array {
        let input = self.astype(DType::F32);
        let result = input.node().and_then(|node| {
            let shape = node.shape();
            if windows.len() != shape.len() {
                return Err(ExprError::ShapeMismatch {
                    op: "coarsen windows".into(),
                    left: windows.to_vec(),
                    right: shape.to_vec(),
                });
            }
            let bad = |reason: String| {
                Err(ExprError::InvalidArgument {
                    op: "coarsen".into(),
                    reason,
                })
            };
            if crate::expr::WindowOp::of(op).is_none() {
                return bad(format!("{} is not a window reduction", op.name()));
            }
            for (a, (&n, &k)) in shape.iter().zip(windows).enumerate() {
                if k == 0 || !n.is_multiple_of(k) {
                    return bad(format!("axis {a} of length {n} is not whole windows of {k}"));
                }
            }
            // the declared chunks shrink with the windows (a window's worth of them at least)
            let block = node.grid.max_block_shape();
            let mut grid = node.grid.clone();
            for (a, (&n, &k)) in shape.iter().zip(windows).enumerate() {
                grid = grid.with_axis(a, crate::expr::split_regular(n / k, (block[a] / k).max(1)));
            }
            let op = Op::Coarsen {
                op,
                windows: windows.to_vec(),
            };
            Ok(Node::new(op, vec![node.clone()], grid, DType::F32))
        });
        input.same_dims(Array::from_result(result))
    }
}

#[cfg(test)]
mod tests {
    use crate::expr::{ExprError, ReduceOp};
    use crate::Array;

    #[test]
    fn bad_windows_are_errors_of_the_array() {
        let x = Array::from_ndarray(ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 6])), [4, 6]);
        let err = |a: Array| a.compute().unwrap_err().to_string();
        let e = err(x.coarsen(ReduceOp::NanMedian, &[2, 4]));
        assert!(e.contains("axis 1 of length 6 is not whole windows of 4"), "{e}");
        let e = err(x.coarsen(ReduceOp::NanMean, &[0, 1]));
        assert!(e.contains("axis 0 of length 4 is not whole windows of 0"), "{e}");
        let e = err(x.coarsen(ReduceOp::NanQuantile { millionths: 1 }, &[2, 2]));
        assert!(e.contains("is not a window reduction"), "{e}");
        assert!(matches!(
            x.coarsen(ReduceOp::NanSum, &[2]).check(),
            Err(ExprError::ShapeMismatch { .. })
        ));
        // whole windows: the shape divided, the declared chunks with it
        let ok = x.coarsen(ReduceOp::NanSum, &[2, 3]);
        assert_eq!(ok.shape(), [2, 2]);
        assert_eq!(
            ok.compute().unwrap(),
            ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[2, 2]))
        );
    }
}
