//! The reducers of time groups, calendar bins and rolling windows (xarray's `groupby`,
//! `resample` and `rolling` objects): each reduction is one lazy group-reduce (or window) node.

use pyo3::exceptions::PyTypeError;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use strata::labelled::{Boundary, CalendarBins, Coarsen, DataArray, Rolling, TimeGroups};
use strata::ReduceOp;

use crate::array::PyDataArray;
use crate::errors::err;

/// What a group-by reduces: calendar bins or calendar-component groups of a time dim.
pub enum Grouping {
    /// `resample(time="MS")`
    Bins(CalendarBins),
    /// `groupby("time.month")`
    Groups(TimeGroups),
}

/// Groups of a time dim, xarray's `groupby("time.month")` or `("time.season")` (one step per
/// group present), and the base of `Resample` (one step per calendar bin, empty ones NaN),
/// as in xarray. Every reduction skips NaN and is one lazy group-reduce node.
#[pyclass(name = "GroupBy", module = "strata", frozen, subclass)]
pub struct PyGroupBy {
    grouping: Grouping,
    dim: String,
}

/// Calendar bins of `resample(time=...)`: a `GroupBy` whose groups are the bins.
#[pyclass(name = "Resample", module = "strata", frozen, extends = PyGroupBy)]
pub struct PyResample;

impl PyGroupBy {
    /// The groups (or bins) of `dim`.
    pub fn new(grouping: Grouping, dim: String) -> Self {
        PyGroupBy { grouping, dim }
    }

    /// `op` over every group, when `asked` (a reduction's `dim=`) is the grouped dim or left
    /// out, as xarray allows.
    fn by(&self, asked: Option<&str>, op: ReduceOp) -> PyResult<PyDataArray> {
        if let Some(d) = asked.filter(|&d| d != self.dim) {
            return Err(PyValueError::new_err(format!(
                "grouped along {:?}; a reduction over {d:?} is not one of the groups",
                self.dim
            )));
        }
        Ok(PyDataArray::wrap(match &self.grouping {
            Grouping::Bins(b) => b.reduce(op),
            Grouping::Groups(g) => g.reduce(op),
        }))
    }
}

#[pymethods]
impl PyGroupBy {
    /// The NaN-skipping mean of every group (`dim`, if given, must be the grouped one).
    #[pyo3(signature = (dim = None))]
    fn mean(&self, dim: Option<&str>) -> PyResult<PyDataArray> {
        self.by(dim, ReduceOp::NanMean)
    }
    /// The NaN-skipping median of every group.
    #[pyo3(signature = (dim = None))]
    fn median(&self, dim: Option<&str>) -> PyResult<PyDataArray> {
        self.by(dim, ReduceOp::NanMedian)
    }
    /// The NaN-skipping sum of every group (0 for a group of NaN only).
    #[pyo3(signature = (dim = None))]
    fn sum(&self, dim: Option<&str>) -> PyResult<PyDataArray> {
        self.by(dim, ReduceOp::NanSum)
    }
    /// The NaN-skipping maximum of every group.
    #[pyo3(signature = (dim = None))]
    fn max(&self, dim: Option<&str>) -> PyResult<PyDataArray> {
        self.by(dim, ReduceOp::NanMax)
    }
    /// The NaN-skipping minimum of every group.
    #[pyo3(signature = (dim = None))]
    fn min(&self, dim: Option<&str>) -> PyResult<PyDataArray> {
        self.by(dim, ReduceOp::NanMin)
    }
    /// The number of non-NaN values in every group.
    #[pyo3(signature = (dim = None))]
    fn count(&self, dim: Option<&str>) -> PyResult<PyDataArray> {
        self.by(dim, ReduceOp::Count)
    }
    /// The NaN-skipping standard deviation of every group, with `ddof` delta degrees of
    /// freedom (f64 accumulation).
    #[pyo3(signature = (dim = None, ddof = 0))]
    fn std(&self, dim: Option<&str>, ddof: u32) -> PyResult<PyDataArray> {
        self.by(dim, ReduceOp::NanStd { ddof })
    }
    /// The NaN-skipping variance of every group, with `ddof` delta degrees of freedom.
    #[pyo3(signature = (dim = None, ddof = 0))]
    fn var(&self, dim: Option<&str>, ddof: u32) -> PyResult<PyDataArray> {
        self.by(dim, ReduceOp::NanVar { ddof })
    }
    /// The first non-NaN value of every group, by time (exact: values chosen, not computed).
    fn first(&self) -> PyDataArray {
        PyDataArray::wrap(match &self.grouping {
            Grouping::Bins(b) => b.first(),
            Grouping::Groups(g) => g.first(),
        })
    }
    /// The last non-NaN value of every group, by time.
    fn last(&self) -> PyDataArray {
        PyDataArray::wrap(match &self.grouping {
            Grouping::Bins(b) => b.last(),
            Grouping::Groups(g) => g.last(),
        })
    }
    /// The NaN-skipping `q`-th quantile of every group (numpy's linear method).
    fn quantile(&self, q: f64) -> PyResult<PyDataArray> {
        match &self.grouping {
            Grouping::Bins(b) => b.quantile(q),
            Grouping::Groups(g) => g.quantile(q),
        }
        .map(PyDataArray::wrap)
        .map_err(err)
    }
}

/// Moving windows of `rolling(time=k, center=..., min_periods=...)`: NaN where a window holds
/// fewer than `min_periods` values (all of them by default, as xarray's).
#[pyclass(name = "Rolling", module = "strata", frozen)]
pub struct PyRolling {
    windows: Rolling,
}

impl PyRolling {
    /// Reducers of `windows`.
    pub fn new(windows: Rolling) -> Self {
        PyRolling { windows }
    }
}

#[pymethods]
impl PyRolling {
    /// The mean of every window's values.
    fn mean(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.mean())
    }
    /// The sum of every window's values.
    fn sum(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.sum())
    }
    /// The largest value of every window.
    fn max(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.max())
    }
    /// The smallest value of every window.
    fn min(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.min())
    }
    /// The number of non-NaN values of every window.
    fn count(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.count())
    }
    /// The median of every window's values.
    fn median(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.median())
    }
    /// The product of every window's values.
    fn prod(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.prod())
    }
    /// The variance of every window's values over `n - ddof`.
    #[pyo3(signature = (ddof = 0))]
    fn var(&self, ddof: u32) -> PyDataArray {
        PyDataArray::wrap(self.windows.var(ddof))
    }
    /// The standard deviation of every window's values over `n - ddof`.
    #[pyo3(signature = (ddof = 0))]
    fn std(&self, ddof: u32) -> PyDataArray {
        PyDataArray::wrap(self.windows.std(ddof))
    }
}

/// Windows of `coarsen(x=4, y=4)`: every reduction gives one value per window, NaN-skipping.
#[pyclass(name = "Coarsen", module = "strata", frozen)]
pub struct PyCoarsen {
    windows: Coarsen,
}

impl PyCoarsen {
    /// Reducers of `windows`.
    pub fn new(windows: Coarsen) -> Self {
        PyCoarsen { windows }
    }
}

#[pymethods]
impl PyCoarsen {
    /// The mean of every window (NaN where it has no value).
    fn mean(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.mean())
    }
    /// The sum of every window (0 where it has no value).
    fn sum(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.sum())
    }
    /// The smallest value of every window.
    fn min(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.min())
    }
    /// The largest value of every window.
    fn max(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.max())
    }
    /// The number of non-NaN values of every window.
    fn count(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.count())
    }
    /// The median of every window's values.
    fn median(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.median())
    }
    /// The standard deviation of every window's values (over n, as xarray's).
    fn std(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.std(0))
    }
    /// The variance of every window's values (over n, as xarray's).
    fn var(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.var(0))
    }
}

/// `array.rolling(dim, min_periods=, center=, **windows)` (see `DataArray.rolling`).
pub fn rolling(
    array: &DataArray,
    dim: Option<&Bound<'_, PyDict>>,
    min_periods: Option<usize>,
    center: Option<&Bound<'_, PyAny>>,
    windows: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyRolling> {
    let mut pairs: Vec<(String, usize)> = Vec::new();
    for d in [dim, windows].into_iter().flatten() {
        for (name, k) in d.iter() {
            let name: String = name.extract()?;
            let k: i64 = k.extract()?;
            let k = usize::try_from(k).map_err(|_| {
                PyValueError::new_err(format!("rolling {name}={k}: a window holds a positive number of steps"))
            })?;
            pairs.push((name, k));
        }
    }
    if pairs.is_empty() {
        return Err(PyTypeError::new_err("rolling needs a window, as rolling(time=3)"));
    }
    let refs: Vec<(&str, usize)> = pairs.iter().map(|(d, k)| (d.as_str(), *k)).collect();
    let mut rolling = array.rolling(&refs).map_err(err)?;
    match center {
        None => {}
        Some(c) if c.is_instance_of::<PyDict>() => {
            for (name, on) in c.cast::<PyDict>()?.iter() {
                rolling = rolling
                    .center_dim(&name.extract::<String>()?, on.extract()?)
                    .map_err(err)?;
            }
        }
        Some(c) => rolling = rolling.center(c.extract()?),
    }
    if let Some(n) = min_periods {
        rolling = rolling.min_periods(n).map_err(err)?;
    }
    Ok(PyRolling::new(rolling))
}

/// `array.coarsen(boundary=, **windows)` (see `DataArray.coarsen`).
pub fn coarsen(array: &DataArray, boundary: &str, windows: Option<&Bound<'_, PyDict>>) -> PyResult<PyCoarsen> {
    let boundary = match boundary {
        "exact" => Boundary::Exact,
        "trim" => Boundary::Trim,
        other => {
            return Err(PyValueError::new_err(format!(
                "boundary={other:?}: strata knows \"exact\" and \"trim\""
            )))
        }
    };
    let mut pairs: Vec<(String, usize)> = Vec::new();
    if let Some(w) = windows {
        for (dim, k) in w.iter() {
            pairs.push((dim.extract()?, k.extract()?));
        }
    }
    if pairs.is_empty() {
        return Err(PyValueError::new_err("coarsen needs a window, as coarsen(x=4, y=4)"));
    }
    let refs: Vec<(&str, usize)> = pairs.iter().map(|(d, k)| (d.as_str(), *k)).collect();
    Ok(PyCoarsen::new(array.coarsen(&refs, boundary).map_err(err)?))
}
