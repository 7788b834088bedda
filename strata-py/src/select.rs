//! Selection by label and by position: `sel` (exact or nearest labels, label slices),
//! `isel`, and the `.loc[...]` indexer, over the labelled array's own selections.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice, PyTuple};
use strata::labelled::{DataArray, Label};
use strata::Slice;

use crate::array::PyDataArray;
use crate::convert::label;
use crate::errors::err;

/// The label ends of a `slice(start, stop)` over coordinate labels (no step).
fn label_range(s: &Bound<'_, PySlice>) -> PyResult<(Option<Label>, Option<Label>)> {
    let end = |name: &str| -> PyResult<Option<Label>> {
        let v = s.getattr(name)?;
        if v.is_none() {
            Ok(None)
        } else {
            label(&v).map(Some)
        }
    };
    if !s.getattr("step")?.is_none() {
        return Err(PyValueError::new_err("a label slice takes no step"));
    }
    Ok((end("start")?, end("stop")?))
}

/// `a.sel(dim=key, method=..., tolerance=...)`: exact labels, or with `method="nearest"` the
/// nearest ones within `tolerance` (see [`distance_of`]).
pub fn sel_by(
    a: &DataArray,
    dim: &str,
    key: &Bound<'_, PyAny>,
    method: Option<&str>,
    tolerance: Option<&Bound<'_, PyAny>>,
) -> PyResult<DataArray> {
    match (method, tolerance) {
        (None, None) => sel_one(a, dim, key, None),
        (None, Some(_)) => Err(PyValueError::new_err("tolerance needs method=\"nearest\"")),
        (Some("nearest"), t) => sel_one(
            a,
            dim,
            key,
            Some(t.map(|t| distance_of(a, dim, t, "tolerance")).transpose()?),
        ),
        (Some(m), _) => Err(PyValueError::new_err(format!(
            "method {m:?}: strata selects exact labels or method=\"nearest\""
        ))),
    }
}

/// `a.sel(dim=key)`: a label (drops the dim), a list of labels, or a slice of labels (both
/// ends included); with `nearest` (its tolerance inside), the nearest labels, no slices.
fn sel_one(a: &DataArray, dim: &str, key: &Bound<'_, PyAny>, nearest: Option<Option<f64>>) -> PyResult<DataArray> {
    if let Ok(s) = key.cast::<PySlice>() {
        if nearest.is_some() {
            return Err(PyValueError::new_err(
                "a slice cannot be selected with method=\"nearest\" (xarray refuses it too)",
            ));
        }
        let (start, stop) = label_range(s)?;
        return a.loc_range(dim, start, stop).map_err(err);
    }
    if many(key)? {
        let labels: Vec<Label> = key.try_iter()?.map(|k| label(&k?)).collect::<PyResult<_>>()?;
        return match nearest {
            None => a.sel_many(dim, &labels),
            Some(t) => a.sel_nearest_many(dim, &labels, t),
        }
        .map_err(err);
    }
    match nearest {
        None => a.sel(dim, label(key)?),
        Some(t) => a.sel_nearest(dim, label(key)?, t),
    }
    .map_err(err)
}

/// Whether a selection key holds several labels: a list, a tuple, or an array of one or more
/// dims (a numpy scalar or 0-d array is one label).
fn many(key: &Bound<'_, PyAny>) -> PyResult<bool> {
    if key.cast::<PyList>().is_ok() || key.cast::<PyTuple>().is_ok() {
        return Ok(true);
    }
    Ok(key.hasattr("__array__")?
        && key
            .getattr("ndim")
            .and_then(|n| n.extract::<usize>())
            .is_ok_and(|n| n > 0))
}

/// A distance along `dim` (`what`: a tolerance, a largest gap) in the coordinate's units: a
/// number on numbers; on times the seconds of a `datetime.timedelta`, `pandas.Timedelta`,
/// `numpy.timedelta64` or a pandas string (`"1D"`). A bare number on times is refused:
/// pandas would read it as nanoseconds.
pub(crate) fn distance_of(a: &DataArray, dim: &str, t: &Bound<'_, PyAny>, what: &str) -> PyResult<f64> {
    let on_time = matches!(
        a.coord(dim).map(|c| &c.values),
        Some(strata::labelled::CoordValues::Time(_))
    );
    if !on_time {
        return t.extract();
    }
    let t = if t.extract::<String>().is_ok() {
        t.py().import("pandas")?.getattr("Timedelta")?.call1((t,))?
    } else {
        t.clone()
    };
    let kind = t.getattr("dtype").and_then(|d| d.getattr("kind")?.extract::<String>());
    let t = if kind.is_ok_and(|k| k == "m") {
        // numpy.timedelta64 (whose integer value counts its own units): as a timedelta
        t.call_method1("astype", ("timedelta64[us]",))?.call_method0("item")?
    } else {
        t
    };
    if !t.hasattr("total_seconds")? {
        return Err(PyTypeError::new_err(format!(
            "{what} along {dim:?} (times) is a timedelta, a numpy.timedelta64 or a string such as \"1D\""
        )));
    }
    let seconds: f64 = t.call_method0("total_seconds")?.extract()?;
    if seconds.is_nan() {
        return Err(PyValueError::new_err(format!("{what} NaT is not a distance")));
    }
    Ok(seconds)
}

/// `a.isel(dim=key)`: an index (drops the dim; negative counts from the end), a list of
/// indices, or a slice with any step.
pub fn isel_one(a: &DataArray, dim: &str, key: &Bound<'_, PyAny>) -> PyResult<DataArray> {
    if let Ok(s) = key.cast::<PySlice>() {
        let get = |name: &str| -> PyResult<Option<isize>> { s.getattr(name)?.extract() };
        let step = get("step")?.unwrap_or(1);
        return a
            .isel_slice(dim, Slice::new(get("start")?, get("stop")?, step))
            .map_err(err);
    }
    if let Ok(i) = key.extract::<isize>() {
        return a.isel(dim, i).map_err(err);
    }
    let indices: Vec<usize> = key.extract()?;
    a.isel_many(dim, &indices).map_err(err)
}

/// `.loc[...]`: labels or label slices by dim position; `...` stands for the dims not named.
#[pyclass(name = "LocIndexer", module = "strata", frozen)]
pub struct PyLocIndexer {
    inner: DataArray,
}

impl PyLocIndexer {
    /// `.loc` of `inner`.
    pub fn new(inner: DataArray) -> Self {
        PyLocIndexer { inner }
    }
}

#[pymethods]
impl PyLocIndexer {
    fn __getitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        let keys: Vec<Bound<'_, PyAny>> = match key.cast::<PyTuple>() {
            Ok(t) => t.iter().collect(),
            Err(_) => vec![key.clone()],
        };
        let dims = self.inner.dims().to_vec();
        let ellipsis = keys.iter().filter(|k| k.is(key.py().Ellipsis())).count();
        if ellipsis > 1 || keys.len() - ellipsis > dims.len() {
            return Err(PyValueError::new_err(format!("{} keys for dims {dims:?}", keys.len())));
        }
        // positions: keys before `...` from the front, after it from the back
        let mut picks = Vec::new();
        let split = keys
            .iter()
            .position(|k| k.is(key.py().Ellipsis()))
            .unwrap_or(keys.len());
        for (i, k) in keys[..split].iter().enumerate() {
            picks.push((dims[i].clone(), k.clone()));
        }
        let tail = &keys[(split + 1).min(keys.len())..];
        for (j, k) in tail.iter().enumerate() {
            picks.push((dims[dims.len() - tail.len() + j].clone(), k.clone()));
        }
        let mut a = self.inner.clone();
        for (dim, k) in picks {
            if let Ok(s) = k.cast::<PySlice>() {
                if s.getattr("start")?.is_none() && s.getattr("stop")?.is_none() && s.getattr("step")?.is_none() {
                    continue;
                }
            }
            a = sel_one(&a, &dim, &k, None)?;
        }
        Ok(PyDataArray::wrap(a))
    }
}
