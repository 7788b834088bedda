//! The reducers of time groups, calendar bins and rolling windows (xarray's `groupby`,
//! `resample` and `rolling` objects): each reduction is one lazy group-reduce (or window) node.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use strata::labelled::{CalendarBins, Coarsen, Rolling, TimeGroups};
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

/// Trailing windows of `rolling(time=k)`: NaN until a window is full or where it holds a NaN.
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
    /// The mean of every window.
    fn mean(&self) -> PyDataArray {
        PyDataArray::wrap(self.windows.mean())
    }
    /// The sum of every window.
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
}
