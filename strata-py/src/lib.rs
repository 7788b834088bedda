//! `strata._strata`, the extension module under the `strata` Python package: stacking STAC
//! items into lazy labelled arrays, computing them (GIL released, Ctrl-C interrupts) into
//! numpy arrays and labels that `strata._xr` turns into `xarray.DataArray`s, and strata's
//! errors as a `StrataError` hierarchy. The Python package (`python/strata`) wraps these with
//! the notebook's signatures.

mod array;
mod convert;
mod errors;
mod groups;
mod operands;
mod run;
mod select;
mod series;
mod ufunc;

use std::sync::{Arc, OnceLock};

use numpy::{IntoPyArray, PyReadonlyArrayDyn};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use strata::geo::{Bounds, XyCoords};
use strata::io::{CogReader, ObjectStore, StoreOptions};
use strata::labelled::{Coord, CoordValues, DataArray, GeoAttrs};
use strata::stac::{ItemCollection, SearchParams};
use strata::stack::StackOptions;

use array::PyDataArray;
use errors::err;

/// The process's object store: one connection pool and request meter for every stack.
fn store() -> PyResult<ObjectStore> {
    static STORE: OnceLock<ObjectStore> = OnceLock::new();
    if let Some(s) = STORE.get() {
        return Ok(s.clone());
    }
    let s = ObjectStore::new(StoreOptions::default()).map_err(err)?;
    Ok(STORE.get_or_init(|| s).clone())
}

fn bounds(b: Option<(f64, f64, f64, f64)>) -> Option<Bounds> {
    b.map(|(w, s, e, n)| Bounds::new(w, s, e, n))
}

/// stackstac's `stack`: the items (a FeatureCollection as JSON text) as a lazy `(time, band,
/// y, x)` array on one grid. Reads each asset's header (one range request each), no pixels.
#[pyfunction]
#[pyo3(signature = (items_json, assets, epsg = None, bounds = None, bounds_latlon = None, resolution = None, chunksize = None, fill_value = f32::NAN, rescale = true, xy_coords = "center", missing_as_nodata = false))]
#[allow(clippy::too_many_arguments)]
fn _stack(
    py: Python<'_>,
    items_json: &str,
    assets: Vec<String>,
    epsg: Option<u32>,
    bounds: Option<(f64, f64, f64, f64)>,
    bounds_latlon: Option<(f64, f64, f64, f64)>,
    resolution: Option<(f64, f64)>,
    chunksize: Option<(usize, usize)>,
    fill_value: f32,
    rescale: bool,
    xy_coords: &str,
    missing_as_nodata: bool,
) -> PyResult<PyDataArray> {
    let items = ItemCollection::from_json(items_json.as_bytes(), "items").map_err(err)?;
    let defaults = StackOptions::default();
    let options = StackOptions {
        assets,
        epsg,
        bounds: self::bounds(bounds),
        bounds_latlon: self::bounds(bounds_latlon),
        resolution,
        chunks_yx: chunksize.unwrap_or(defaults.chunks_yx),
        fill_value,
        rescale,
        xy_coords: match xy_coords {
            "center" => XyCoords::Center,
            "topleft" => XyCoords::TopLeft,
            other => {
                return Err(PyValueError::new_err(format!(
                    "xy_coords={other:?}: expected 'topleft' or 'center'"
                )))
            }
        },
        missing_as_nodata,
    };
    let reader = Arc::new(CogReader::new(store()?));
    let s = py
        .detach(move || strata::stack::stack(&items, &options, reader))
        .map_err(err)?;
    Ok(s.labelled().into())
}

/// A STAC API search (POST `/search`, following `next` pages); the items as FeatureCollection
/// JSON text.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (url, collections = vec![], bbox = None, datetime = None, query_json = None, limit = None, max_items = None))]
fn _search(
    py: Python<'_>,
    url: String,
    collections: Vec<String>,
    bbox: Option<[f64; 4]>,
    datetime: Option<String>,
    query_json: Option<String>,
    limit: Option<u32>,
    max_items: Option<usize>,
) -> PyResult<String> {
    let query = query_json
        .map(|q| serde_json::from_str(&q))
        .transpose()
        .map_err(|e| PyValueError::new_err(format!("query: {e}")))?;
    let params = SearchParams {
        collections,
        bbox,
        datetime,
        query,
        limit,
        max_items,
    };
    let store = store()?;
    let found = py
        .detach(move || strata::stac::search(&store, &url, &params))
        .map_err(err)?;
    serde_json::to_string(&found.items).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Computes `arrays` in one run (reads shared), the GIL released, Ctrl-C interrupting it;
/// returns `[(values, labels)]`, the values a numpy array that owns strata's buffer (no copy).
#[pyfunction]
#[pyo3(signature = (arrays, progress = None, options = None))]
fn _compute<'py>(
    py: Python<'py>,
    arrays: Vec<PyRef<'py, PyDataArray>>,
    progress: Option<&Bound<'py, PyAny>>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyList>> {
    let lazy = checked(&arrays)?;
    let opts = convert::options(options)?;
    let data = lazy.clone();
    let (values, report) = run::interruptible(py, opts, progress, move |o| {
        let refs: Vec<&strata::Array> = data.iter().map(DataArray::data).collect();
        strata::compute_many(&refs, &o)
    })?;
    warn_missing(py, &report)?;
    let out = PyList::empty(py);
    for (a, v) in lazy.iter().zip(values) {
        out.append((v.into_pyarray(py), convert::labels(py, a)?))?;
    }
    Ok(out)
}

/// Computes `arrays` in one run as `_compute` does, and returns them as strata arrays whose
/// values are held in memory (dask's `persist`), labels and blocks unchanged.
#[pyfunction]
#[pyo3(signature = (arrays, progress = None, options = None))]
fn _persist<'py>(
    py: Python<'py>,
    arrays: Vec<PyRef<'py, PyDataArray>>,
    progress: Option<&Bound<'py, PyAny>>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Vec<PyDataArray>> {
    let lazy = checked(&arrays)?;
    let opts = convert::options(options)?;
    let (held, report) = run::interruptible(py, opts, progress, move |o| {
        let refs: Vec<&DataArray> = lazy.iter().collect();
        strata::labelled::compute_all(&refs, &o)
    })?;
    warn_missing(py, &report)?;
    Ok(held.into_iter().map(PyDataArray::wrap).collect())
}

/// The arrays behind `arrays`, each checked for errors kept from building.
fn checked(arrays: &[PyRef<'_, PyDataArray>]) -> PyResult<Vec<DataArray>> {
    let lazy: Vec<DataArray> = arrays.iter().map(|a| a.inner.clone()).collect();
    for a in &lazy {
        a.check().map_err(errors::to_py)?;
    }
    Ok(lazy)
}

/// Warns once when a run answered reads of missing assets with nodata (what stackstac's
/// `errors_as_nodata` hides).
fn warn_missing(py: Python<'_>, report: &strata::ExecReport) -> PyResult<()> {
    let missing = report.io.missing_as_nodata;
    if missing > 0 {
        let message = std::ffi::CString::new(format!(
            "strata: {missing} block read(s) of missing assets (HTTP 404/410) were answered with nodata (missing_as_nodata=True)"
        ))
        .expect("no NUL in the message");
        PyErr::warn(py, &py.get_type::<pyo3::exceptions::PyUserWarning>(), &message, 1)?;
    }
    Ok(())
}

/// A labelled array over numpy values (copied, float32), cut into `chunks`: how tests and
/// users bring their own data to strata. `coords`: `[(name, dim, kind, values)]` as
/// `_labels` gives them.
#[pyfunction]
#[pyo3(signature = (values, chunks, dims, coords, epsg = None, resolution = None, name = None, mask = false))]
#[allow(clippy::too_many_arguments)]
fn _from_numpy(
    values: PyReadonlyArrayDyn<'_, f32>,
    chunks: Vec<usize>,
    dims: Vec<String>,
    coords: Vec<(String, Option<String>, String, Bound<'_, PyAny>)>,
    epsg: Option<u32>,
    resolution: Option<(f64, f64)>,
    name: Option<String>,
    mask: bool,
) -> PyResult<PyDataArray> {
    let data = if mask {
        strata::Array::from_mask(values.as_array().mapv(|v| v != 0.0), chunks)
    } else {
        strata::Array::from_ndarray(values.as_array().to_owned(), chunks)
    };
    let mut made = Vec::new();
    for (cname, dim, kind, vals) in coords {
        let values = match kind.as_str() {
            "f64" => CoordValues::F64(vals.extract()?),
            "str" => CoordValues::Str(vals.extract()?),
            "time" => CoordValues::Time(
                vals.extract::<Vec<i64>>()?
                    .into_iter()
                    .map(chrono::DateTime::from_timestamp_nanos)
                    .collect(),
            ),
            other => return Err(PyValueError::new_err(format!("coordinate kind {other:?}"))),
        };
        made.push(match dim {
            Some(d) if d == cname => Coord::index(&cname, values),
            Some(d) => Coord::along(&cname, &d, values),
            None => Coord::scalar(&cname, values),
        });
    }
    let mut a = DataArray::new(data, &dims, made).map_err(err)?.with_attrs(GeoAttrs {
        epsg,
        resolution,
        ..Default::default()
    });
    if let Some(n) = name {
        a = a.with_name(&n);
    }
    Ok(a.into())
}

/// A `(blocks, 8)` array whose every block takes `ms_per_block` milliseconds to produce (ones):
/// a computation of known length, for testing interrupts and the GIL's release.
#[pyfunction]
fn _slow_array(blocks: usize, ms_per_block: u64) -> PyResult<PyDataArray> {
    let data = strata::Array::from_fn(&[blocks, 8], [1, 8], "slow", move |r| {
        std::thread::sleep(std::time::Duration::from_millis(ms_per_block));
        ndarray::ArrayD::from_elem(ndarray::IxDyn(&[r[0].len(), r[1].len()]), 1.0)
    });
    DataArray::new(data, &["i", "j"], vec![]).map(Into::into).map_err(err)
}

/// pyproj's `Proj(crs)(lon, lat)`: a WGS84 point in the CRS `epsg`.
#[pyfunction]
fn project_lonlat(epsg: u32, lon: f64, lat: f64) -> PyResult<(f64, f64)> {
    strata::geo::Crs::from_epsg(epsg)
        .and_then(|c| c.project_lonlat(lon, lat))
        .map_err(err)
}

/// strata's embedded synthetic Landsat catalog (COGs and a STAC API) served on loopback, for
/// tutorials and tests; `url` is the API's root. Serves until `close()` or the end of a `with`.
#[pyclass(name = "EmbeddedCatalog", module = "strata.testing")]
struct PyEmbeddedCatalog {
    server: Option<strata::loopback::Server>,
    url: String,
}

#[pymethods]
impl PyEmbeddedCatalog {
    #[new]
    #[pyo3(signature = (scenes = 16, size = 512))]
    fn new(py: Python<'_>, scenes: usize, size: usize) -> PyResult<Self> {
        py.detach(move || {
            let server =
                strata::loopback::Server::start(None).map_err(|e| format!("starting the loopback server: {e}"))?;
            strata::loopback::landsat::SyntheticLandsat {
                scenes,
                size,
                ..Default::default()
            }
            .serve(&server)
            .map_err(|e| e.to_string())?;
            let url = server.url();
            Ok::<_, String>(PyEmbeddedCatalog {
                server: Some(server),
                url,
            })
        })
        .map_err(errors::StrataError::new_err)
    }

    /// the STAC API's root URL
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Stops serving.
    fn close(&mut self) {
        self.server.take();
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(&mut self, _a: &Bound<'_, PyAny>, _b: &Bound<'_, PyAny>, _c: &Bound<'_, PyAny>) {
        self.close();
    }
}

#[pymodule]
fn _strata(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDataArray>()?;
    m.add_class::<select::PyLocIndexer>()?;
    m.add_class::<groups::PyResample>()?;
    m.add_class::<groups::PyGroupBy>()?;
    m.add_class::<groups::PyRolling>()?;
    m.add_class::<groups::PyCoarsen>()?;
    m.add_class::<PyEmbeddedCatalog>()?;
    m.add_function(wrap_pyfunction!(_stack, m)?)?;
    m.add_function(wrap_pyfunction!(_search, m)?)?;
    m.add_function(wrap_pyfunction!(_compute, m)?)?;
    m.add_function(wrap_pyfunction!(_persist, m)?)?;
    m.add_function(wrap_pyfunction!(_from_numpy, m)?)?;
    m.add_function(wrap_pyfunction!(project_lonlat, m)?)?;
    m.add_function(wrap_pyfunction!(_slow_array, m)?)?;
    errors::register(m)?;
    Ok(())
}
