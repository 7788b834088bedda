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
}
