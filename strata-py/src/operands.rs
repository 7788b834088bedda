//! How Python operands and dim arguments become strata operations for `strata.DataArray`:
//! arithmetic with numbers or arrays, comparisons, and reductions over named dims.

use pyo3::exceptions::{PyKeyError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use strata::expr::BinaryOp;
use strata::labelled::DataArray;
use strata::ReduceOp;

use crate::array::{dims_of, PyDataArray};
use crate::errors::err;

impl PyDataArray {
    pub(crate) fn wrap(a: DataArray) -> PyDataArray {
        PyDataArray { inner: a }
    }

    /// `self op other` (`reflected`: `other op self`) with a number or another array.
    pub(crate) fn arith(&self, other: &Bound<'_, PyAny>, op: BinaryOp, reflected: bool) -> PyResult<PyDataArray> {
        if let Ok(o) = other.cast::<PyDataArray>() {
            let o = &o.get().inner;
            let out = if reflected {
                o.binary(op, &self.inner)
            } else {
                self.inner.binary(op, o)
            };
            out.check().map_err(crate::errors::to_py)?;
            return Ok(Self::wrap(out));
        }
        let v: f32 = other.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "strata arrays combine with numbers and strata arrays, not {}",
                other.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
        })?;
        Ok(Self::wrap(if reflected {
            DataArray::scalar_binary(v, op, &self.inner)
        } else {
            self.inner.binary_scalar(op, v)
        }))
    }

    /// `&` and `|` as numpy reads them on this array's kind: logical on masks (bool), on the
    /// bits of the integer values otherwise.
    pub(crate) fn logical_or_bits(&self, logical: BinaryOp, bits: BinaryOp) -> BinaryOp {
        if self.inner.data().dtype() == strata::DType::U8 {
            logical
        } else {
            bits
        }
    }

    /// An (in)equality mask with a number or a strata array; NotImplemented for anything
    /// else, so Python falls back to identity instead of raising inside `in` or `==` checks.
    pub(crate) fn compared(&self, o: &Bound<'_, PyAny>, op: BinaryOp) -> PyResult<Py<PyAny>> {
        let py = o.py();
        if o.cast::<PyDataArray>().is_err() && o.extract::<f32>().is_err() {
            return Ok(py.NotImplemented());
        }
        Ok(Bound::new(py, self.arith(o, op, false)?)?.into_any().unbind())
    }

    pub(crate) fn reduced(&self, op: ReduceOp, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyDataArray> {
        let dims = dims_of(&self.inner, dim)?;
        let refs: Vec<&str> = dims.iter().map(String::as_str).collect();
        self.inner.reduce(op, &refs).map(Self::wrap).map_err(err)
    }

    /// The index of the extreme (`op`, one of the arg reductions) along one dim: `dim`, or the
    /// only dim of a 1-d array. xarray answers several dims with a dict of indices; strata
    /// takes one.
    pub(crate) fn arg_reduced(&self, op: ReduceOp, dim: Option<&Bound<'_, PyAny>>) -> PyResult<(PyDataArray, String)> {
        let dims = dims_of(&self.inner, dim)?;
        let [one] = dims.as_slice() else {
            return Err(PyValueError::new_err(format!(
                "{} takes one dim (got {dims:?}): name it, as in {}(\"time\")",
                op.name(),
                op.name().trim_start_matches("nan")
            )));
        };
        let out = self.inner.reduce(op, &[one.as_str()]).map_err(err)?;
        Ok((Self::wrap(out), one.clone()))
    }

    /// `idxmax`/`idxmin`: the arg reduction computed, its indices turned into `dim`'s labels
    /// by `strata._xr.labels_at`.
    pub(crate) fn labelled_extreme<'py>(
        slf: &Bound<'py, Self>,
        op: ReduceOp,
        dim: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (arg, dim) = slf.get().arg_reduced(op, dim)?;
        if slf.get().inner.coord(&dim).is_none() {
            return Err(PyKeyError::new_err(format!(
                "dim {dim:?} has no coordinate to take labels from"
            )));
        }
        let computed = py
            .import("strata")?
            .getattr("compute")?
            .call((arg,), options)?
            .get_item(0)?;
        let labels = slf.get()._labels(py)?;
        py.import("strata._xr")?
            .getattr("labels_at")?
            .call1((computed, labels, dim))
    }

    /// A NaN-skipping spread (`op`: std or var) over `dim`; with `skipna` off, NaN wherever a
    /// value over `dim` was NaN (strata has no NaN-propagating variance kernel: the count of
    /// values tells).
    pub(crate) fn spread(&self, op: ReduceOp, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        let out = self.reduced(op, dim)?;
        if skipna {
            return Ok(out);
        }
        let dims = dims_of(&self.inner, dim)?;
        let n: usize = dims
            .iter()
            .map(|d| self.inner.shape()[self.inner.axis(d).expect("checked")])
            .product();
        let whole = self.reduced(ReduceOp::Count, dim)?.inner.ge(n as f32);
        Ok(Self::wrap(out.inner.where_(&whole, f32::NAN)))
    }
}
