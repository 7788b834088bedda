//! Arithmetic, comparisons, reductions and filters on labelled arrays. Operands line up by
//! dim name (xarray broadcasting: the result has the left operand's dims, then the right's
//! new ones); shared dims keep the labels both operands have (xarray's default inner join;
//! `align` takes the others). Reductions take dim names and skip NaN, as xarray's do on
//! floats.

use std::ops::{Add, Div, Mul, Neg, Sub};

use super::{Coord, CoordValues, DataArray, LabelError};
use crate::array::{Array, Axes};
use crate::expr::{BinaryOp, BoundaryMode, ExprError, ReduceOp};

impl DataArray {
    /// `self op other`, lined up by dim name. Lazy: one expression node (two or three more
    /// when axes must be inserted, and a gather when `other`'s shared dims run in another
    /// order than `self`'s and it is transposed to theirs). A misalignment is kept in the
    /// result and reported by `compute`, as strata's arrays keep build errors.
    pub fn binary(&self, op: BinaryOp, other: &DataArray) -> DataArray {
        self.combined(&format!("{op:?}"), other, |l, r| l.binary(op, r))
    }

    /// `combine(self, other)` on the data lined up by dim name, the error kept typed.
    fn combined(&self, name: &str, other: &DataArray, combine: impl FnOnce(&Array, &Array) -> Array) -> DataArray {
        let earlier = self.failed.clone().or_else(|| other.failed.clone());
        match self.aligned(name, other, combine) {
            Ok(out) => DataArray { failed: earlier, ..out },
            Err(e) => {
                let mut out = self.relabel(Array::from_result(Err(ExprError::InvalidArgument {
                    op: name.to_string(),
                    reason: e.to_string(),
                })));
                out.failed = earlier.or(Some(e));
                out
            }
        }
    }

    /// `cond ? self : other` by dim name (xarray's `where(cond, other)`; `other` NaN for
    /// `f32::NAN`): keeps the values where the mask `cond` is set. Lazy; labels as for
    /// arithmetic.
    pub fn where_(&self, cond: &DataArray, other: f32) -> DataArray {
        self.combined("where", cond, |x, c| {
            c.where_(x, &Array::full(&[], other, Vec::<usize>::new()))
        })
    }

    /// `cond ? self : other` with an array for `other` (xarray's `where(cond, other)`: a
    /// composite's gaps taken from a fallback where a mask says so). The three line up by dim
    /// name and broadcast as arithmetic does: the result has this array's dims, then `cond`'s
    /// new ones, then `other`'s. Shared dims must carry equal labels, as xarray's exact join
    /// for three operands. Lazy: one fused elementwise node (an operand whose dims run in
    /// another order is transposed first, a lazy gather).
    ///
    /// **Errors**: [`LabelError::Misaligned`] for a shared dim whose labels differ.
    pub fn where_array(&self, cond: &DataArray, other: &DataArray) -> Result<DataArray, LabelError> {
        for (a, b) in [(self, cond), (self, other), (cond, other)] {
            a.align(b, super::Join::Exact).map_err(|e| match e {
                LabelError::Misaligned { dim, left, right, .. } => LabelError::Misaligned {
                    op: "where".into(),
                    dim,
                    left,
                    right,
                },
                other => other,
            })?;
        }
        let mut dims = self.dims.clone();
        for d in cond.dims.iter().chain(&other.dims) {
            if !dims.contains(d) {
                dims.push(d.clone());
            }
        }
        // An operand's data with the result's axes: its own dims in the result's order, a
        // length-1 axis for each it lacks (broadcast).
        let spread = |a: &DataArray| -> Result<Array, LabelError> {
            let a = a.in_order_of(&dims)?;
            Ok(dims
                .iter()
                .enumerate()
                .filter(|(_, d)| !a.dims.contains(d))
                .fold(a.data.clone(), |arr, (k, _)| arr.expand_dims(k as isize)))
        };
        let data = spread(cond)?.where_(&spread(self)?, &spread(other)?);
        let mut coords = self.coords.clone();
        for c in cond.coords.iter().chain(&other.coords) {
            match coords.iter().position(|have| have.name == c.name) {
                // a scalar label the operands disagree on no longer describes the result
                Some(i) if coords[i].dim.is_none() && coords[i] != *c => {
                    coords.remove(i);
                }
                Some(_) => {}
                None => coords.push(c.clone()),
            }
        }
        let same_name = cond.name == self.name && other.name == self.name;
        Ok(DataArray {
            data: data.with_dims(&dims),
            dims,
            coords,
            attrs: [self, other, cond]
                .into_iter()
                .map(|a| a.attrs.clone())
                .find(|a| *a != Default::default())
                .unwrap_or_default(),
            name: self.name.clone().filter(|_| same_name),
            held: None,
            failed: self
                .failed
                .clone()
                .or_else(|| cond.failed.clone())
                .or_else(|| other.failed.clone()),
        })
    }

    /// This array with its dims in the order they come in `dims` (which names each of them):
    /// itself when they already do, else a lazy transpose (a gather).
    fn in_order_of(&self, dims: &[String]) -> Result<DataArray, LabelError> {
        let order: Vec<&str> = dims
            .iter()
            .map(String::as_str)
            .filter(|d| self.dims.iter().any(|x| x == d))
            .collect();
        if order.iter().zip(&self.dims).all(|(o, d)| o == d) {
            Ok(self.clone())
        } else {
            self.transpose(&order)
        }
    }

    /// Values limited to `[lo, hi]` (numpy's `clip`; NaN stays NaN). Lazy.
    pub fn clip(&self, lo: f32, hi: f32) -> DataArray {
        self.relabel(
            self.data
                .binary_scalar(BinaryOp::Max, lo)
                .binary_scalar(BinaryOp::Min, hi),
        )
    }

    /// The mask `self and other` (masks), by dim name. Lazy.
    pub fn and(&self, other: &DataArray) -> DataArray {
        self.combined("and", other, |a, b| a.and(b))
    }

    /// The mask `self or other` (masks), by dim name. Lazy.
    pub fn or(&self, other: &DataArray) -> DataArray {
        self.combined("or", other, |a, b| a.or(b))
    }

    /// The mask `not self`. Lazy.
    pub fn not(&self) -> DataArray {
        self.relabel(self.data.not())
    }

    fn aligned(
        &self,
        name: &str,
        other: &DataArray,
        combine: impl FnOnce(&Array, &Array) -> Array,
    ) -> Result<DataArray, LabelError> {
        // xarray's default for arithmetic: the labels both operands have
        let (this, other) = self.align(other, super::Join::Inner).map_err(|e| match e {
            LabelError::Misaligned { dim, left, right, .. } => LabelError::Misaligned {
                op: name.to_string(),
                dim,
                left,
                right,
            },
            LabelError::EmptyDim { dim, .. } => LabelError::EmptyDim { op: "arithmetic", dim },
            other => other,
        })?;
        let mut dims = this.dims.clone();
        dims.extend(other.dims.iter().filter(|d| !this.dims.contains(d)).cloned());
        // the right operand's dims in the result's order, as xarray's broadcasting does
        let other = other.in_order_of(&dims)?;
        let (this, other) = (&this, &other);
        let positions: Vec<usize> = other
            .dims
            .iter()
            .map(|d| dims.iter().position(|r| r == d).expect("every dim is in the result"))
            .collect();
        let left = (this.dims.len()..dims.len()).fold(this.data.clone(), |a, _| a.expand_dims(-1));
        let right = (0..dims.len())
            .filter(|k| !positions.contains(k))
            .fold(other.data.clone(), |a, k| a.expand_dims(k as isize));
        let data = combine(&left, &right);
        let mut coords = this.coords.clone();
        coords.retain(|c| match other.coord(&c.name) {
            // a scalar label the operands disagree on no longer describes the result
            Some(o) if c.dim.is_none() => o == c,
            _ => true,
        });
        for c in &other.coords {
            if this.coord(&c.name).is_none() {
                coords.push(c.clone());
            }
        }
        Ok(DataArray {
            data: data.with_dims(&dims),
            dims,
            coords,
            attrs: if this.attrs == Default::default() {
                other.attrs.clone()
            } else {
                this.attrs.clone()
            },
            name: this.name.clone().filter(|n| other.name.as_ref() == Some(n)),
            held: None,
            failed: None,
        })
    }

    /// `self op scalar` elementwise; labels unchanged. Lazy.
    pub fn binary_scalar(&self, op: BinaryOp, scalar: f32) -> DataArray {
        self.relabel(self.data.binary_scalar(op, scalar))
    }

    /// `scalar op self` elementwise (`1.0 - &x`); labels unchanged. Lazy.
    pub fn scalar_binary(scalar: f32, op: BinaryOp, array: &DataArray) -> DataArray {
        array.relabel(Array::scalar_binary(scalar, op, &array.data))
    }

    /// A mask of `self > v`. Lazy.
    pub fn gt(&self, v: f32) -> DataArray {
        self.relabel(self.data.gt(v))
    }

    /// A mask of `self >= v`. Lazy.
    pub fn ge(&self, v: f32) -> DataArray {
        self.relabel(self.data.ge(v))
    }

    /// A mask of `self < v`. Lazy.
    pub fn lt(&self, v: f32) -> DataArray {
        self.relabel(self.data.lt(v))
    }

    /// A mask of `self <= v`. Lazy.
    pub fn le(&self, v: f32) -> DataArray {
        self.relabel(self.data.le(v))
    }

    /// A mask of `self == v` (NaN is never equal). Lazy.
    pub fn eq_scalar(&self, v: f32) -> DataArray {
        self.relabel(self.data.eq_scalar(v))
    }

    /// A mask of `self != v` (NaN is always unequal). Lazy.
    pub fn ne_scalar(&self, v: f32) -> DataArray {
        self.relabel(self.data.ne_scalar(v))
    }

    /// A mask of the NaN elements. Lazy.
    pub fn isnan(&self) -> DataArray {
        self.relabel(self.data.isnan())
    }

    /// NaN replaced by `v`. Lazy.
    pub fn fillna(&self, v: f32) -> DataArray {
        self.relabel(self.data.fillna(v))
    }

    /// NaN replaced by `other`'s value at the same labels (xarray's `fillna(other)`: `other`
    /// lined up to this array's labels, a left join, so the result keeps every label of
    /// `self`; where `other` lacks a label, NaN stays). Gap-filling a composite from another.
    /// Lazy: one elementwise node after the alignment.
    ///
    /// **Errors**: as [`DataArray::align`] (a label type mismatch, an unsorted coordinate).
    pub fn fillna_from(&self, other: &DataArray) -> Result<DataArray, LabelError> {
        let (this, other) = self.align(other, super::Join::Left)?;
        Ok(this.binary(BinaryOp::FillNan, &other))
    }

    /// Any same-shape transformation of the data (`|a| a.sqrt()`), labels kept.
    ///
    /// **Errors**: [`LabelError::Shape`] when `f` changes the shape.
    pub fn map(&self, f: impl FnOnce(&Array) -> Array) -> Result<DataArray, LabelError> {
        self.with_data(f(&self.data))
    }

    /// The NaN-skipping `q`-th quantile over `dim` (xarray's `quantile(q, dim)`, numpy's linear
    /// method): percentile composites, the 10th/50th/90th along time. The dim is dropped and
    /// a scalar `quantile` coordinate holds `q`. Lazy; holistic (the dim is made whole in each
    /// block), on the device when it takes the axis.
    ///
    /// **Errors**: [`LabelError::NoDim`]; [`LabelError::Quantile`] for `q` outside [0, 1].
    pub fn quantile(&self, q: f64, dim: &str) -> Result<DataArray, LabelError> {
        let op = ReduceOp::nanquantile(q).ok_or(LabelError::Quantile { q })?;
        let out = self.reduce(op, &[dim])?;
        out.with_coord(Coord::scalar("quantile", CoordValues::F64(vec![q])))
    }

    /// Reduces over the named dims with `op` (NaN-propagating or NaN-skipping as `op` says);
    /// those dims and every coordinate along them are dropped. Lazy; medians make the dims
    /// whole in each block at plan time.
    ///
    /// **Errors**: [`LabelError::NoDim`] for a dim the array lacks.
    pub fn reduce(&self, op: ReduceOp, dims: &[&str]) -> Result<DataArray, LabelError> {
        let axes: Vec<isize> = dims
            .iter()
            .map(|d| self.axis(d).map(|a| a as isize))
            .collect::<Result<_, _>>()?;
        Ok(self.reduced_to(self.data.reduce(op, Axes::Some(axes)), dims))
    }

    /// `data`, which has this array's dims less `dims`, labelled as a reduction over `dims`
    /// labels it: those dims and every coordinate along them dropped.
    fn reduced_to(&self, data: Array, dims: &[&str]) -> DataArray {
        let kept: Vec<String> = self
            .dims
            .iter()
            .filter(|d| !dims.contains(&d.as_str()))
            .cloned()
            .collect();
        let coords: Vec<Coord> = self
            .coords
            .iter()
            .filter(|c| c.dim.as_deref().is_none_or(|d| !dims.contains(&d)))
            .cloned()
            .collect();
        DataArray {
            data: data.with_dims(&kept),
            dims: kept,
            coords,
            held: None,
            ..self.clone()
        }
    }

    /// stackstac's `mosaic(arr, dim)`: flattens `dim` by taking, per pixel, the first valid
    /// (non-NaN) value from the top: the last step is on top, or the first with `reverse`.
    /// The dim and its coordinates are dropped; a pixel NaN in every step stays NaN. Lazy: a
    /// balanced tree of `fillna` over the steps (exact: values are only chosen, never
    /// computed), fused with the work around it.
    ///
    /// **Errors**: [`LabelError::NoDim`]; [`LabelError::EmptyDim`] for a dim of length 0.
    pub fn mosaic(&self, dim: &str, reverse: bool) -> Result<DataArray, LabelError> {
        let axis = self.axis(dim)?;
        let n = self.shape()[axis];
        if n == 0 {
            return Err(LabelError::EmptyDim {
                op: "mosaic",
                dim: dim.to_string(),
            });
        }
        let step = |i: usize| self.data.index(axis as isize, i as isize);
        // the steps from the top down
        let order: Vec<usize> = if reverse {
            (0..n).collect()
        } else {
            (0..n).rev().collect()
        };
        Ok(self.reduced_to(super::groupby::fillna_tree(&order, &step), &[dim]))
    }

    /// The NaN-skipping mean over `dim` (xarray's `mean(dim=...)` on floats).
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn mean(&self, dim: &str) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanMean, &[dim])
    }

    /// The NaN-skipping median over `dim` (xarray's `median(dim=...)`; an even count gives
    /// the mean of the two middle values, an all-NaN pixel NaN).
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn median(&self, dim: &str) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanMedian, &[dim])
    }

    /// The NaN-skipping sum over `dim`.
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn sum(&self, dim: &str) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanSum, &[dim])
    }

    /// The NaN-skipping minimum over `dim`.
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn min(&self, dim: &str) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanMin, &[dim])
    }

    /// The NaN-skipping maximum over `dim`.
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn max(&self, dim: &str) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanMax, &[dim])
    }

    /// The index along `dim` of the first maximum of the non-NaN values (xarray's
    /// `argmax(dim)`): the step of peak greenness of an NDVI series. f32 indices, NaN where
    /// every value is NaN; the dim and its coordinates dropped. Label an index with
    /// `coord(dim)`. Lazy; holistic (the dim made whole in each block), one pass over the
    /// values, on the device when it holds the block.
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn argmax(&self, dim: &str) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanArgMax, &[dim])
    }

    /// The index along `dim` of the first minimum of the non-NaN values, as
    /// [`DataArray::argmax`].
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn argmin(&self, dim: &str) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanArgMin, &[dim])
    }

    /// The number of non-NaN values over `dim`.
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn count(&self, dim: &str) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::Count, &[dim])
    }

    /// The NaN-skipping variance over `dim` with `ddof` delta degrees of freedom (xarray's
    /// `var(dim, ddof=...)`, numpy's `nanvar`: NaN where fewer than `ddof + 1` values are
    /// left). Accumulated in f64 (Welford, Chan's merge across blocks). Lazy.
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn var(&self, dim: &str, ddof: u32) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanVar { ddof }, &[dim])
    }

    /// The NaN-skipping standard deviation over `dim` (xarray's `std(dim, ddof=...)`): the
    /// square root of [`DataArray::var`].
    ///
    /// **Errors**: as [`DataArray::reduce`].
    pub fn std(&self, dim: &str, ddof: u32) -> Result<DataArray, LabelError> {
        self.reduce(ReduceOp::NanStd { ddof }, &[dim])
    }

    /// `|x|` (numpy's `abs`); labels unchanged. Lazy, fused with the elementwise work around it.
    pub fn abs(&self) -> DataArray {
        self.relabel(self.data.abs())
    }

    /// `sqrt(x)`, NaN below 0 (numpy's `sqrt`); labels unchanged. Lazy, fused.
    pub fn sqrt(&self) -> DataArray {
        self.relabel(self.data.sqrt())
    }

    /// `e^x` (numpy's `exp`); labels unchanged. Lazy, fused.
    pub fn exp(&self) -> DataArray {
        self.relabel(self.data.exp())
    }

    /// The natural logarithm, NaN below 0 and -inf at 0 (numpy's `log`); labels unchanged.
    /// Lazy, fused.
    pub fn log(&self) -> DataArray {
        self.relabel(self.data.ln())
    }

    /// numpy's `bitwise_and(x, bits)` on the integer values (bit flags of a QA band:
    /// `qa.bitwise_and(1 << 3).ne_scalar(0.0)` is Landsat's cloud bit); NaN stays NaN. Lazy, fused.
    pub fn bitwise_and(&self, bits: u32) -> DataArray {
        self.relabel(self.data.bitwise_and(bits))
    }

    /// numpy's `bitwise_or(x, bits)` on the integer values. Lazy, fused.
    pub fn bitwise_or(&self, bits: u32) -> DataArray {
        self.relabel(self.data.bitwise_or(bits))
    }

    /// A gaussian filter with one sigma per dim, in dim order (0 leaves a dim alone), with
    /// scipy's `gaussian_filter` semantics and `mode` at the edges; labels unchanged. Lazy;
    /// blocks read their neighbours' halos.
    pub fn gaussian(&self, sigma: &[f64], mode: BoundaryMode) -> DataArray {
        self.relabel(self.data.gaussian(sigma, mode))
    }
}

macro_rules! operators {
    ($($trait:ident $method:ident $op:ident;)*) => {$(
        impl $trait<&DataArray> for &DataArray {
            type Output = DataArray;
            fn $method(self, rhs: &DataArray) -> DataArray {
                self.binary(BinaryOp::$op, rhs)
            }
        }
        impl $trait<f32> for &DataArray {
            type Output = DataArray;
            fn $method(self, rhs: f32) -> DataArray {
                self.binary_scalar(BinaryOp::$op, rhs)
            }
        }
        impl $trait<DataArray> for DataArray {
            type Output = DataArray;
            fn $method(self, rhs: DataArray) -> DataArray {
                self.binary(BinaryOp::$op, &rhs)
            }
        }
        impl $trait<f32> for DataArray {
            type Output = DataArray;
            fn $method(self, rhs: f32) -> DataArray {
                self.binary_scalar(BinaryOp::$op, rhs)
            }
        }
        impl $trait<&DataArray> for DataArray {
            type Output = DataArray;
            fn $method(self, rhs: &DataArray) -> DataArray {
                self.binary(BinaryOp::$op, rhs)
            }
        }
        impl $trait<DataArray> for &DataArray {
            type Output = DataArray;
            fn $method(self, rhs: DataArray) -> DataArray {
                self.binary(BinaryOp::$op, &rhs)
            }
        }
        impl $trait<&DataArray> for f32 {
            type Output = DataArray;
            fn $method(self, rhs: &DataArray) -> DataArray {
                DataArray::scalar_binary(self, BinaryOp::$op, rhs)
            }
        }
        impl $trait<DataArray> for f32 {
            type Output = DataArray;
            fn $method(self, rhs: DataArray) -> DataArray {
                DataArray::scalar_binary(self, BinaryOp::$op, &rhs)
            }
        }
    )*};
}

impl std::ops::BitAnd<&DataArray> for &DataArray {
    type Output = DataArray;
    fn bitand(self, rhs: &DataArray) -> DataArray {
        self.and(rhs)
    }
}

impl std::ops::BitOr<&DataArray> for &DataArray {
    type Output = DataArray;
    fn bitor(self, rhs: &DataArray) -> DataArray {
        self.or(rhs)
    }
}

impl std::ops::Not for &DataArray {
    type Output = DataArray;
    fn not(self) -> DataArray {
        DataArray::not(self)
    }
}

impl Neg for &DataArray {
    type Output = DataArray;
    fn neg(self) -> DataArray {
        self.relabel(-&self.data)
    }
}

impl Neg for DataArray {
    type Output = DataArray;
    fn neg(self) -> DataArray {
        -&self
    }
}

operators! {
    Add add Add;
    Sub sub Sub;
    Mul mul Mul;
    Div div Div;
}
