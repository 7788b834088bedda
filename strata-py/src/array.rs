//! `strata.DataArray`: a lazy labelled array with xarray's vocabulary. Every method builds a
//! new lazy array (nothing is read or computed) except `compute`, `dropna` and the writers;
//! errors in labels or shapes raise at once, typed.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use strata::expr::BinaryOp;
use strata::labelled::{DataArray, DropHow};
use strata::{BoundaryMode, ReduceOp};

use crate::errors::err;
use crate::groups::{Grouping, PyCoarsen, PyGroupBy, PyResample, PyRolling};
use crate::select::{isel_one, sel_by, PyLocIndexer};

/// A lazy labelled array: dims, coordinates, CRS and an expression strata plans and runs in
/// chunks on the GPU or the CPU. `compute()` returns an `xarray.DataArray`.
#[pyclass(name = "DataArray", module = "strata", frozen)]
pub struct PyDataArray {
    pub(crate) inner: DataArray,
}

impl From<DataArray> for PyDataArray {
    fn from(inner: DataArray) -> Self {
        PyDataArray { inner }
    }
}

/// The dims a reduction runs over: one name, several, or every dim (`None`).
pub(crate) fn dims_of(a: &DataArray, dim: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match dim {
        None => Ok(a.dims().to_vec()),
        Some(d) if d.is_none() => Ok(a.dims().to_vec()),
        Some(d) => match d.extract::<String>() {
            Ok(one) => Ok(vec![one]),
            Err(_) => d.extract::<Vec<String>>(),
        },
    }
}

/// A labelled result, or its error, including one its lazy expression already holds.
pub(crate) fn checked(out: Result<DataArray, strata::labelled::LabelError>) -> PyResult<PyDataArray> {
    let out = out.map_err(err)?;
    out.check().map_err(crate::errors::to_py)?;
    Ok(PyDataArray::wrap(out))
}

#[pymethods]
impl PyDataArray {
    /// dims, shape, dtype, chunks, tasks, coordinates, CRS and transform, as strata prints them
    fn __repr__(&self) -> String {
        format!("<strata.DataArray>\n{}", self.inner)
    }

    /// the dim names, in order
    #[getter]
    fn dims(&self) -> Vec<String> {
        self.inner.dims().to_vec()
    }

    /// the length of every dim
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.inner.shape())
    }

    /// `{dim: length}`
    #[getter]
    fn sizes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, n) in self.inner.dims().iter().zip(self.inner.shape()) {
            d.set_item(k, n)?;
        }
        Ok(d)
    }

    /// the number of dims
    #[getter]
    fn ndim(&self) -> usize {
        self.inner.dims().len()
    }

    /// the block sizes along every dim, as xarray's `.chunks` of a dask-backed array
    #[getter]
    fn chunks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let per_dim: Vec<Bound<'py, PyTuple>> = self
            .inner
            .chunks()
            .into_iter()
            .map(|c| PyTuple::new(py, c))
            .collect::<PyResult<_>>()?;
        PyTuple::new(py, per_dim)
    }

    /// `{dim: block sizes}`, as xarray's `.chunksizes`
    #[getter]
    fn chunksizes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (dim, c) in self.inner.dims().iter().zip(self.inner.chunks()) {
            d.set_item(dim, PyTuple::new(py, c)?)?;
        }
        Ok(d)
    }

    /// The same values in other blocks (xarray's `chunk`): `chunk({"x": 512})`, `chunk(x=512)`,
    /// `chunk(512)` for every dim or a tuple of one per dim; -1 for a whole dim, None to keep
    /// one. Lazy; blocks are regathered only where a consumer cannot take them as they come.
    #[pyo3(signature = (chunks = None, **chunks_kwargs))]
    fn chunk(
        &self,
        chunks: Option<&Bound<'_, PyAny>>,
        chunks_kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyDataArray> {
        let spec = crate::convert::chunk_spec(&self.inner, chunks, chunks_kwargs)?;
        let refs: Vec<(&str, usize)> = spec.iter().map(|(d, k)| (d.as_str(), *k)).collect();
        self.inner.chunk(&refs).map(Self::wrap).map_err(err)
    }

    /// the number of values (nothing is computed)
    #[getter]
    fn size(&self) -> usize {
        self.inner.shape().iter().product()
    }

    /// bytes the whole array would take in memory (nothing is computed)
    #[getter]
    fn nbytes(&self) -> u64 {
        self.inner.nbytes()
    }

    /// `"float32"`, or `"bool"` for masks
    #[getter]
    fn dtype(&self) -> &'static str {
        if self.inner.data().dtype() == strata::DType::U8 {
            "bool"
        } else {
            "float32"
        }
    }

    /// the EPSG code of the x/y coordinates, if any (stackstac's `stack.attrs["crs"]`)
    #[getter]
    fn epsg(&self) -> Option<u32> {
        self.inner.attrs().epsg
    }

    /// `{"crs": "epsg:N", "transform": (a, b, c, d, e, f), "resolution": r}`, as stackstac's
    /// attrs (the keys known)
    #[getter]
    fn attrs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        if let Some(e) = self.inner.attrs().epsg {
            d.set_item("crs", format!("epsg:{e}"))?;
        }
        if let Some(t) = self.inner.transform() {
            d.set_item("transform", (t.a, t.b, t.c, t.d, t.e, t.f))?;
        }
        if let Some((rx, _)) = self.inner.attrs().resolution {
            d.set_item("resolution", rx)?;
        }
        Ok(d)
    }

    /// the array's name (the variable name in a Zarr store)
    #[getter]
    fn name(&self) -> Option<String> {
        self.inner.name().map(str::to_string)
    }

    /// The same array under another name.
    fn rename(&self, name: &str) -> PyDataArray {
        Self::wrap(self.inner.clone().with_name(name))
    }

    /// The labels as `strata._xr` reads them (dims, coordinates, CRS).
    pub(crate) fn _labels<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        crate::convert::labels(py, &self.inner)
    }

    /// Selects by label, xarray's `sel(band="red", time=slice("2020-02", "2020-04"))`: a
    /// label drops the dim, a list keeps those labels, a slice keeps the labels between its
    /// ends (both included, in the coordinate's order; times may be partial: `"2020-02"`).
    /// `method="nearest"` takes the nearest label instead (a pixel's time series:
    /// `sel(x=x0, y=y0, method="nearest")`), within `tolerance` if given (a number, or a
    /// timedelta on time).
    #[pyo3(signature = (indexers = None, method = None, tolerance = None, **indexers_kwargs))]
    fn sel(
        &self,
        indexers: Option<&Bound<'_, PyDict>>,
        method: Option<&str>,
        tolerance: Option<&Bound<'_, PyAny>>,
        indexers_kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyDataArray> {
        let mut a = self.inner.clone();
        for ix in [indexers, indexers_kwargs].into_iter().flatten() {
            for (dim, key) in ix.iter() {
                a = sel_by(&a, &dim.extract::<String>()?, &key, method, tolerance)?;
            }
        }
        Ok(Self::wrap(a))
    }

    /// Selects by position, xarray's `isel(time=0, x=slice(0, 100, 2))`.
    #[pyo3(signature = (**indexers))]
    fn isel(&self, indexers: Option<&Bound<'_, PyDict>>) -> PyResult<PyDataArray> {
        let mut a = self.inner.clone();
        if let Some(ix) = indexers {
            for (dim, key) in ix.iter() {
                a = isel_one(&a, &dim.extract::<String>()?, &key)?;
            }
        }
        Ok(Self::wrap(a))
    }

    /// Label indexing by position of dims, xarray's `.loc[..., y0:y1, x0:x1]`.
    #[getter]
    fn loc(&self) -> PyLocIndexer {
        PyLocIndexer::new(self.inner.clone())
    }

    /// Exactly `nx` × `ny` pixels centred on the pixel nearest CRS point `(x, y)`.
    fn around(&self, x: f64, y: f64, nx: usize, ny: usize) -> PyResult<PyDataArray> {
        self.inner.around(x, y, nx, ny).map(Self::wrap).map_err(err)
    }

    /// The dims in another order.
    #[pyo3(signature = (*dims))]
    fn transpose(&self, dims: Vec<String>) -> PyResult<PyDataArray> {
        let refs: Vec<&str> = dims.iter().map(String::as_str).collect();
        self.inner.transpose(&refs).map(Self::wrap).map_err(err)
    }

    fn __add__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Add, false)
    }
    fn __radd__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Add, true)
    }
    fn __sub__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Sub, false)
    }
    fn __rsub__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Sub, true)
    }
    fn __mul__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Mul, false)
    }
    fn __rmul__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Mul, true)
    }
    fn __truediv__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Div, false)
    }
    fn __rtruediv__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Div, true)
    }
    fn __pow__(&self, o: &Bound<'_, PyAny>, _modulo: Option<&Bound<'_, PyAny>>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Pow, false)
    }
    fn __gt__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Gt, false)
    }
    fn __ge__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Ge, false)
    }
    fn __lt__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Lt, false)
    }
    fn __le__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, BinaryOp::Le, false)
    }
    /// `x == v` as a mask, elementwise as in xarray (NaN is never equal); an operand that
    /// is neither a number nor a strata array compares by identity, as Python's default.
    fn __eq__(&self, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.compared(o, BinaryOp::Eq)
    }
    /// `x != v` as a mask (NaN is always unequal).
    fn __ne__(&self, o: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.compared(o, BinaryOp::Ne)
    }
    /// `m1 & m2` on masks (logical); on values, numpy's `bitwise_and` of their integers
    /// (QA bit flags: `(qa & 24) != 0`), NaN staying NaN.
    fn __and__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, self.logical_or_bits(BinaryOp::And, BinaryOp::BitAnd), false)
    }
    /// `m1 | m2` on masks (logical); on values, numpy's `bitwise_or` of their integers.
    fn __or__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, self.logical_or_bits(BinaryOp::Or, BinaryOp::BitOr), false)
    }
    fn __rand__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, self.logical_or_bits(BinaryOp::And, BinaryOp::BitAnd), true)
    }
    fn __ror__(&self, o: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        self.arith(o, self.logical_or_bits(BinaryOp::Or, BinaryOp::BitOr), true)
    }
    /// A lazy array has no truth value (`if a == b:` would always pass): as numpy and xarray
    /// say of arrays, ambiguous. Compute it, or reduce it first (`.any()` of the result).
    fn __bool__(&self) -> PyResult<bool> {
        Err(PyValueError::new_err(
            "the truth value of a strata array is ambiguous: compute() it, or reduce it first",
        ))
    }
    fn __invert__(&self) -> PyDataArray {
        Self::wrap(self.inner.not())
    }
    fn __neg__(&self) -> PyDataArray {
        Self::wrap(-&self.inner)
    }

    /// Keeps the values where the mask `cond` is set, `other` (a number, NaN by default, or a
    /// strata array with the same labels on shared dims) elsewhere; all line up by dim name.
    #[pyo3(signature = (cond, other = None))]
    fn r#where(&self, cond: &PyDataArray, other: Option<&Bound<'_, PyAny>>) -> PyResult<PyDataArray> {
        let out = match other {
            Some(o) if o.cast::<PyDataArray>().is_ok() => {
                let o = o.cast::<PyDataArray>()?;
                self.inner.where_array(&cond.inner, &o.get().inner).map_err(err)?
            }
            Some(o) if !o.is_none() => self.inner.where_(&cond.inner, o.extract()?),
            _ => self.inner.where_(&cond.inner, f32::NAN),
        };
        out.check().map_err(crate::errors::to_py)?;
        Ok(Self::wrap(out))
    }

    /// NaN replaced by the last valid value before it along `dim`, at most `limit` in a row
    /// (xarray's `ffill`). Lazy; the dim is made whole in each block.
    #[pyo3(signature = (dim, limit = None))]
    fn ffill(&self, dim: &str, limit: Option<usize>) -> PyResult<PyDataArray> {
        checked(self.inner.ffill(dim, limit))
    }

    /// NaN replaced by the next valid value after it along `dim`, at most `limit` in a row
    /// (xarray's `bfill`). Lazy; the dim is made whole in each block.
    #[pyo3(signature = (dim, limit = None))]
    fn bfill(&self, dim: &str, limit: Option<usize>) -> PyResult<PyDataArray> {
        checked(self.inner.bfill(dim, limit))
    }

    /// NaN replaced by linear interpolation along `dim` (xarray's `interpolate_na`): at the
    /// coordinate's values unless `use_coordinate=False`; `limit` fills the first NaN of each
    /// gap, `max_gap` only gaps that short (a timedelta or `"30D"` on times). Lazy; the dim
    /// is made whole in each block.
    #[pyo3(signature = (dim = None, method = "linear", limit = None, use_coordinate = true, max_gap = None))]
    fn interpolate_na(
        &self,
        dim: Option<&str>,
        method: &str,
        limit: Option<usize>,
        use_coordinate: bool,
        max_gap: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDataArray> {
        self.gaps_interpolated(dim, method, limit, use_coordinate, max_gap)
    }

    /// Values limited to `[min, max]` (NaN stays NaN).
    #[pyo3(signature = (min = f32::NEG_INFINITY, max = f32::INFINITY))]
    fn clip(&self, min: f32, max: f32) -> PyDataArray {
        Self::wrap(self.inner.clip(min, max))
    }

    /// NaN replaced by `value`: a number, or a strata array's value at the same labels
    /// (lined up to this array's labels, as xarray's left join).
    fn fillna(&self, value: &Bound<'_, PyAny>) -> PyResult<PyDataArray> {
        if let Ok(other) = value.cast::<PyDataArray>() {
            return self.inner.fillna_from(&other.get().inner).map(Self::wrap).map_err(err);
        }
        let v: f32 = value.extract()?;
        Ok(Self::wrap(self.inner.fillna(v)))
    }

    /// The mask of NaN values.
    fn isnull(&self) -> PyDataArray {
        Self::wrap(self.inner.isnan())
    }

    /// `~isnull()`: where a value is present, as a mask (xarray's `notnull`).
    fn notnull(&self) -> PyDataArray {
        Self::wrap(self.inner.isnan().not())
    }

    /// The mean over `dim` (a name, a list, or every dim), skipping NaN unless `skipna=False`.
    #[pyo3(signature = (dim = None, skipna = true))]
    fn mean(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        self.reduced(if skipna { ReduceOp::NanMean } else { ReduceOp::Mean }, dim)
    }

    /// The median over `dim`, skipping NaN unless `skipna=False` (even counts average the two
    /// middle values).
    #[pyo3(signature = (dim = None, skipna = true))]
    fn median(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        self.reduced(if skipna { ReduceOp::NanMedian } else { ReduceOp::Median }, dim)
    }

    /// The sum over `dim`, skipping NaN unless `skipna=False`.
    #[pyo3(signature = (dim = None, skipna = true))]
    fn sum(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        self.reduced(if skipna { ReduceOp::NanSum } else { ReduceOp::Sum }, dim)
    }

    /// The minimum over `dim`, skipping NaN unless `skipna=False`.
    #[pyo3(signature = (dim = None, skipna = true))]
    fn min(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        self.reduced(if skipna { ReduceOp::NanMin } else { ReduceOp::Min }, dim)
    }

    /// The maximum over `dim`, skipping NaN unless `skipna=False`.
    #[pyo3(signature = (dim = None, skipna = true))]
    fn max(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        self.reduced(if skipna { ReduceOp::NanMax } else { ReduceOp::Max }, dim)
    }

    /// The index along `dim` of the first maximum (xarray's `argmax(dim)`): NaN skipped
    /// unless `skipna=False` (then the first NaN wins, as numpy's `argmax`). Float indices,
    /// NaN where every value is NaN (xarray raises there). Lazy.
    #[pyo3(signature = (dim = None, skipna = true))]
    fn argmax(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        let op = if skipna { ReduceOp::NanArgMax } else { ReduceOp::ArgMax };
        Ok(self.arg_reduced(op, dim)?.0)
    }

    /// The index along `dim` of the first minimum, as `argmax`. Lazy.
    #[pyo3(signature = (dim = None, skipna = true))]
    fn argmin(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        let op = if skipna { ReduceOp::NanArgMin } else { ReduceOp::ArgMin };
        Ok(self.arg_reduced(op, dim)?.0)
    }

    /// The label along `dim` of the first maximum (xarray's `idxmax(dim)`: the date of peak
    /// greenness), NaN (NaT for times) where every value is NaN. Computes now, with the
    /// options of `compute`, and returns an `xarray.DataArray`: its labels may be times or
    /// names, which a strata array does not hold.
    #[pyo3(signature = (dim = None, skipna = true, **options))]
    fn idxmax<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        skipna: bool,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = if skipna { ReduceOp::NanArgMax } else { ReduceOp::ArgMax };
        Self::labelled_extreme(slf, op, dim, options)
    }

    /// The label along `dim` of the first minimum, as `idxmax` (computes now).
    #[pyo3(signature = (dim = None, skipna = true, **options))]
    fn idxmin<'py>(
        slf: &Bound<'py, Self>,
        dim: Option<&Bound<'py, PyAny>>,
        skipna: bool,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = if skipna { ReduceOp::NanArgMin } else { ReduceOp::ArgMin };
        Self::labelled_extreme(slf, op, dim, options)
    }

    /// The number of non-NaN values over `dim`.
    #[pyo3(signature = (dim = None))]
    fn count(&self, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyDataArray> {
        self.reduced(ReduceOp::Count, dim)
    }

    /// The standard deviation over `dim` with `ddof` delta degrees of freedom (xarray's
    /// default 0), skipping NaN unless `skipna=False`.
    #[pyo3(signature = (dim = None, ddof = 0, skipna = true))]
    fn std(&self, dim: Option<&Bound<'_, PyAny>>, ddof: u32, skipna: bool) -> PyResult<PyDataArray> {
        self.spread(ReduceOp::NanStd { ddof }, dim, skipna)
    }

    /// The variance over `dim` with `ddof` delta degrees of freedom (xarray's default 0),
    /// skipping NaN unless `skipna=False`.
    #[pyo3(signature = (dim = None, ddof = 0, skipna = true))]
    fn var(&self, dim: Option<&Bound<'_, PyAny>>, ddof: u32, skipna: bool) -> PyResult<PyDataArray> {
        self.spread(ReduceOp::NanVar { ddof }, dim, skipna)
    }

    /// `abs(x)`, lazy.
    fn __abs__(&self) -> PyDataArray {
        Self::wrap(self.inner.abs())
    }

    /// numpy ufuncs stay lazy on strata arrays, as on xarray's dask-backed ones: `np.sqrt(x)`,
    /// `np.log(x)`, `np.exp(x)`, `np.abs(x)`, `np.isnan(x)`, `np.maximum(a, b)`,
    /// `np.float32(2) * x`, comparisons and logical and/or/not give strata arrays. Any other
    /// ufunc, method or an `out=` argument is NotImplemented (numpy then raises TypeError):
    /// `compute()` first for those.
    #[pyo3(signature = (ufunc, method, *inputs, **kwargs))]
    fn __array_ufunc__(
        slf: &Bound<'_, Self>,
        ufunc: &Bound<'_, PyAny>,
        method: &str,
        inputs: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        crate::ufunc::array_ufunc(slf, ufunc, method, inputs, kwargs)
    }

    /// stackstac's `mosaic(arr, dim)`: per pixel the first non-NaN value from the top (the
    /// last step, or the first with `reverse=True`); the dim is dropped. Exact and lazy.
    #[pyo3(signature = (dim = "time", reverse = false))]
    fn mosaic(&self, dim: &str, reverse: bool) -> PyResult<PyDataArray> {
        self.inner.mosaic(dim, reverse).map(Self::wrap).map_err(err)
    }

    /// The NaN-skipping `q`-th quantile over `dim` (numpy's linear method); a scalar
    /// `quantile` coordinate.
    fn quantile(&self, q: f64, dim: &str) -> PyResult<PyDataArray> {
        self.inner.quantile(q, dim).map(Self::wrap).map_err(err)
    }

    /// Calendar bins, xarray's `resample(time="MS")` (`"QS"`, `"YS"`, `"W"`, `"D"`, `"2MS"`).
    #[pyo3(signature = (**indexer))]
    fn resample(&self, py: Python<'_>, indexer: Option<&Bound<'_, PyDict>>) -> PyResult<Py<PyResample>> {
        let (dim, freq) = one_entry::<String>(indexer, "resample(time=\"MS\")")?;
        let bins = Grouping::Bins(self.inner.resample(&dim, &freq).map_err(err)?);
        Py::new(
            py,
            PyClassInitializer::from(PyGroupBy::new(bins, dim)).add_subclass(PyResample),
        )
    }

    /// Groups by a time component, `groupby("time.month")` or `"time.season"`.
    fn groupby(&self, key: &str) -> PyResult<PyGroupBy> {
        let dim = key.split('.').next().unwrap_or(key).to_string();
        Ok(PyGroupBy::new(
            Grouping::Groups(self.inner.groupby(key).map_err(err)?),
            dim,
        ))
    }

    /// Moving windows, xarray's `rolling(time=3, center=False, min_periods=None)` (or
    /// `rolling({"y": 3, "x": 3})`), reduced with `mean/sum/min/max/count/median/std/var/prod`.
    /// `center` is a bool or `{dim: bool}`; `min_periods` defaults to the window's size.
    #[pyo3(signature = (dim = None, min_periods = None, center = None, **windows))]
    fn rolling(
        &self,
        dim: Option<&Bound<'_, PyDict>>,
        min_periods: Option<usize>,
        center: Option<&Bound<'_, PyAny>>,
        windows: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyRolling> {
        crate::groups::rolling(&self.inner, dim, min_periods, center, windows)
    }

    /// The `n`-th difference along `dim`, labelled by the later step (xarray's `diff`).
    #[pyo3(signature = (dim, n = 1))]
    fn diff(&self, dim: &str, n: usize) -> PyResult<PyDataArray> {
        self.inner.diff(dim, n).map(Self::wrap).map_err(err)
    }

    /// The running sum along `dim` (a name, a list applied in turn, or `None`: every dim),
    /// NaN counting as 0 unless `skipna=False` (xarray's `cumsum`); f64 totals, each step
    /// rounded once. Lazy; the dim is made whole in each block.
    #[pyo3(signature = (dim = None, skipna = true))]
    fn cumsum(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        self.scanned(dim, |a, d| a.cumsum(d, skipna))
    }

    /// The running product along `dim`, as `cumsum` with NaN counting as 1 unless
    /// `skipna=False` (xarray's `cumprod`).
    #[pyo3(signature = (dim = None, skipna = true))]
    fn cumprod(&self, dim: Option<&Bound<'_, PyAny>>, skipna: bool) -> PyResult<PyDataArray> {
        self.scanned(dim, |a, d| a.cumprod(d, skipna))
    }

    /// xarray's `xr.cov(self, other, dim, ddof)` (`strata.cov` calls it): the covariance
    /// over `dim` (a name, a list, or `None`: every dim) of the positions where both have a
    /// value, lined up by label (inner join).
    #[pyo3(signature = (other, dim = None, ddof = 1))]
    fn _cov(&self, other: &PyDataArray, dim: Option<&Bound<'_, PyAny>>, ddof: u32) -> PyResult<PyDataArray> {
        self.paired(dim, |a, dims| a.cov(&other.inner, dims, ddof))
    }

    /// xarray's `xr.corr(self, other, dim)` (`strata.corr` calls it): the Pearson
    /// correlation over `dim` of the positions where both have a value.
    #[pyo3(signature = (other, dim = None))]
    fn _corr(&self, other: &PyDataArray, dim: Option<&Bound<'_, PyAny>>) -> PyResult<PyDataArray> {
        self.paired(dim, |a, dims| a.corr(&other.inner, dims))
    }

    /// xarray's `polyfit(dim, deg, skipna=True)["polyfit_coefficients"]` for degree 0 or 1:
    /// a `degree` dim first (`[1, 0]`: slope per coordinate unit, nanoseconds for times, then
    /// intercept), NaN where a series has fewer than `deg + 1` values; with `skipna=False` also
    /// where it has any NaN. Lazy.
    #[pyo3(signature = (dim, deg, skipna = true))]
    fn polyfit(&self, dim: &str, deg: u32, skipna: bool) -> PyResult<PyDataArray> {
        self.fitted(dim, deg, skipna)
    }

    /// xarray's `interp(time=new_times)` (`method="linear"`): the values at new positions
    /// along each named dim, linear between the steps around them; NaN outside the
    /// coordinate's range or next to a NaN. Positions are numbers, or datetimes for a time
    /// dim (`datetime`, `numpy.datetime64`, `pandas.Timestamp`, a `DatetimeIndex`). Lazy.
    #[pyo3(signature = (coords = None, method = "linear", **positions))]
    fn interp(
        &self,
        coords: Option<&Bound<'_, PyDict>>,
        method: &str,
        positions: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyDataArray> {
        self.interpolated(coords, method, positions)
    }

    /// The values moved along a dim, `shift(time=1)`; NaN where nothing moved in.
    #[pyo3(signature = (**shifts))]
    fn shift(&self, shifts: Option<&Bound<'_, PyDict>>) -> PyResult<PyDataArray> {
        let mut a = self.inner.clone();
        if let Some(s) = shifts {
            for (dim, by) in s.iter() {
                a = a.shift(&dim.extract::<String>()?, by.extract()?).map_err(err)?;
            }
        }
        Ok(Self::wrap(a))
    }

    /// Windows of whole steps, `coarsen(x=4, y=4, boundary="exact")` (or `"trim"`), reduced
    /// with `mean/sum/min/max/count/median/std/var`; x/y keep their georeferencing (resolution times k).
    #[pyo3(signature = (boundary = "exact", **windows))]
    fn coarsen(&self, boundary: &str, windows: Option<&Bound<'_, PyDict>>) -> PyResult<PyCoarsen> {
        crate::groups::coarsen(&self.inner, boundary, windows)
    }

    /// scipy's `gaussian_filter(x, sigma, mode=..., truncate=4.0)` over every dim (`sigma` a
    /// number, or one per dim; 0 leaves a dim alone). Modes: reflect, mirror, nearest, wrap,
    /// constant (with `cval`).
    #[pyo3(signature = (sigma, mode = "reflect", cval = 0.0))]
    fn gaussian(&self, sigma: &Bound<'_, PyAny>, mode: &str, cval: f32) -> PyResult<PyDataArray> {
        let sigma: Vec<f64> = match sigma.extract::<f64>() {
            Ok(s) => vec![s; self.inner.dims().len()],
            Err(_) => sigma.extract()?,
        };
        let mode = match mode {
            "reflect" => BoundaryMode::Reflect,
            "mirror" => BoundaryMode::Mirror,
            "nearest" => BoundaryMode::Nearest,
            "wrap" => BoundaryMode::Wrap,
            "constant" => BoundaryMode::Constant(cval),
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode={other:?}: expected reflect, mirror, nearest, wrap or constant"
                )))
            }
        };
        let out = self.inner.gaussian(&sigma, mode);
        out.check().map_err(crate::errors::to_py)?;
        Ok(Self::wrap(out))
    }

    /// Drops the steps of `dim` whose values are all NaN (`how="all"`) or hold any NaN
    /// (`"any"`). Computes the array (once) to know which.
    #[pyo3(signature = (dim, how = "all"))]
    fn dropna(&self, py: Python<'_>, dim: &str, how: &str) -> PyResult<PyDataArray> {
        let how = match how {
            "all" => DropHow::All,
            "any" => DropHow::Any,
            other => return Err(PyValueError::new_err(format!("how={other:?}: expected 'all' or 'any'"))),
        };
        let a = self.inner.clone();
        let dim = dim.to_string();
        py.detach(move || a.dropna(&dim, how))
            .map(Self::wrap)
            .map_err(crate::errors::to_py)
    }

    /// Raises the error met while building this array, if any, without computing.
    fn check(&self) -> PyResult<()> {
        self.inner.check().map_err(crate::errors::to_py)
    }

    /// Computes the array and keeps it in memory as a strata array, labels and blocks unchanged
    /// (dask's `persist`): later operations read the held values. Options as `strata.compute`.
    #[pyo3(signature = (**options))]
    fn persist<'py>(slf: &Bound<'py, Self>, options: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let out = py.import("strata")?.getattr("persist")?.call((slf,), options)?;
        out.get_item(0)
    }

    /// The values as a numpy array, computed with the default options (xarray's `.values` on
    /// a dask-backed array computes too).
    #[getter]
    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::compute(slf, None)?.getattr("values")
    }

    /// `values`, as xarray's `to_numpy()`.
    fn to_numpy<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::values(slf)
    }

    /// numpy's conversion (`np.asarray(x)`): the computed values, cast to `dtype` if given.
    #[pyo3(signature = (dtype = None, copy = None))]
    fn __array__<'py>(
        slf: &Bound<'py, Self>,
        dtype: Option<&Bound<'py, PyAny>>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if copy == Some(false) {
            return Err(PyValueError::new_err(
                "a strata array is computed to give numpy values: a copy cannot be avoided",
            ));
        }
        let values = Self::values(slf)?;
        match dtype {
            Some(d) if !d.is_none() => values.call_method1("astype", (d,)),
            _ => Ok(values),
        }
    }

    /// Computes the array and returns it as an `xarray.DataArray` (dims, coordinates, attrs,
    /// the CRS as rioxarray reads it). Options as `strata.compute`.
    #[pyo3(signature = (**options))]
    fn compute<'py>(slf: &Bound<'py, Self>, options: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let out = py.import("strata")?.getattr("compute")?.call((slf,), options)?;
        out.get_item(0)
    }

    /// Computes the array into the Zarr v3 group at `path` under its name (`data` without one),
    /// with its coordinates and CRS, streaming shard by shard; xarray and zarr-python read it.
    /// Options as `strata.compute`; returns the shards written.
    #[pyo3(signature = (path, *, progress = None, **options))]
    fn to_zarr(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        progress: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<usize> {
        let a = self.inner.clone();
        let opts = writer_options(py, options)?;
        crate::run::interruptible(py, opts, progress, move |o| {
            strata::labelled::to_zarr_all(&[&a], &path, &Default::default(), &o).map(|w| w.shards)
        })
    }

    /// Computes the array and writes a Cloud-Optimized GeoTIFF (its CRS, transform, NaN as
    /// nodata), atomically: an interrupted or failed run leaves no file.
    #[pyo3(signature = (path, *, progress = None, **options))]
    fn to_geotiff(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        progress: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let a = self.inner.clone();
        let opts = writer_options(py, options)?;
        crate::run::interruptible(py, opts, progress, move |o| a.compute_with(&o)?.0.to_geotiff(&path))
    }

    /// Computes the array and writes it as `.npy` (float32, or uint8 for masks), atomically.
    #[pyo3(signature = (path, *, progress = None, **options))]
    fn to_npy(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        progress: Option<&Bound<'_, PyAny>>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<()> {
        let a = self.inner.clone();
        let opts = writer_options(py, options)?;
        crate::run::interruptible(py, opts, progress, move |o| a.compute_with(&o)?.0.to_npy(&path))
    }

    /// Writes the task graph as Graphviz (`path.dot`, and `path.svg` when `dot` is
    /// installed), each task marked where it runs on the options' backend; returns the file
    /// written. `optimize=False` draws the plan as written.
    #[pyo3(signature = (path, **options))]
    fn visualize(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<std::path::PathBuf> {
        let opts = writer_options(py, options)?;
        self.inner
            .data()
            .visualize_with(path, &opts)
            .map_err(crate::errors::to_py)
    }

    /// What the planner makes of the array, pass by pass (polars' `explain`): the plan as
    /// written, the rewrite rules that fired, the optimized plan, the task graph and where
    /// each task runs. Reads nothing.
    #[pyo3(signature = (**options))]
    fn explain(&self, py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<String> {
        let opts = writer_options(py, options)?;
        let explained = self.inner.data().explain(&opts).map_err(crate::errors::to_py)?;
        Ok(explained.to_string())
    }
}

/// A writer's compute options: `strata.config`'s defaults, then the call's keyword arguments.
fn writer_options(py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<strata::ComputeOptions> {
    let merged = py.import("strata")?.getattr("_merged_options")?.call1((options,))?;
    crate::convert::options(Some(merged.cast::<PyDict>()?))
}

/// The single `key=value` of `kwargs` (`time="MS"`), or a TypeError naming the expected form.
fn one_entry<'py, T: for<'a> FromPyObjectOwned<'py>>(
    kwargs: Option<&Bound<'py, PyDict>>,
    form: &str,
) -> PyResult<(String, T)> {
    match kwargs {
        Some(k) if k.len() == 1 => {
            let (key, value) = k.iter().next().expect("one entry");
            Ok((key.extract()?, value.extract().map_err(Into::into)?))
        }
        _ => Err(PyTypeError::new_err(format!(
            "expected one dim and its value, as {form}"
        ))),
    }
}
