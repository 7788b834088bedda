//! Values crossing the boundary: Python labels into strata's, strata's coordinates and
//! attributes into what `strata._xr` builds an `xarray.DataArray` from, and compute options
//! from keyword arguments.

use chrono::{DateTime, Utc};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use strata::labelled::{CoordValues, DataArray, Label};
use strata::ComputeOptions;

/// A Python label as strata's: `str` (a name, or a time such as `"2020-02"`), a number, or a
/// datetime-like (`datetime`, `numpy.datetime64`, `pandas.Timestamp`, as UTC).
pub fn label(obj: &Bound<'_, PyAny>) -> PyResult<Label> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Label::Str(s.to_string()));
    }
    if obj.hasattr("isoformat")? || obj.get_type().name()? == "datetime64" {
        let numpy = obj.py().import("numpy")?;
        let ns: i64 = numpy
            .call_method1("datetime64", (obj, "ns"))?
            .call_method1("astype", ("int64",))?
            .extract()?;
        return Ok(Label::Time(DateTime::<Utc>::from_timestamp_nanos(ns)));
    }
    match obj.extract::<f64>() {
        Ok(v) => Ok(Label::F64(v)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "a label is a str, a number or a datetime, not {}",
            obj.get_type().name()?
        ))),
    }
}

/// A coordinate's values as Python: `("f64", ndarray[float64])`, `("time", ndarray[int64]`
/// nanoseconds since 1970`)` or `("str", list[str])`.
fn values<'py>(py: Python<'py>, v: &CoordValues) -> PyResult<Bound<'py, PyTuple>> {
    use numpy::IntoPyArray;
    Ok(match v {
        CoordValues::F64(x) => ("f64", x.clone().into_pyarray(py)).into_pyobject(py)?,
        CoordValues::Time(t) => {
            let ns: Vec<i64> = t.iter().map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MIN)).collect();
            ("time", ns.into_pyarray(py).into_any()).into_pyobject(py)?
        }
        CoordValues::Str(s) => ("str", PyList::new(py, s)?.into_any()).into_pyobject(py)?,
    })
}

/// The labels of `a`: `{"dims", "coords": [(name, dim | None, kind, values)], "name", "epsg",
/// "resolution", "transform", "xy_coords"}`, what `strata._xr.to_xarray` reads.
pub fn labels<'py>(py: Python<'py>, a: &DataArray) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("dims", a.dims().to_vec())?;
    let coords = PyList::empty(py);
    for c in a.coords() {
        let (kind, vals) = values(py, &c.values)?.extract::<(String, Bound<'py, PyAny>)>()?;
        coords.append((c.name.clone(), c.dim.clone(), kind, vals))?;
    }
    d.set_item("coords", coords)?;
    d.set_item("name", a.name())?;
    let attrs = a.attrs();
    d.set_item("epsg", attrs.epsg)?;
    d.set_item("resolution", attrs.resolution)?;
    d.set_item(
        "xy_coords",
        match attrs.xy_coords {
            strata::geo::XyCoords::Center => "center",
            strata::geo::XyCoords::TopLeft => "topleft",
        },
    )?;
    d.set_item("transform", a.transform().map(|t| (t.a, t.b, t.c, t.d, t.e, t.f)))?;
    d.set_item("is_mask", a.data().dtype() == strata::DType::U8)?;
    Ok(d)
}

/// Compute options from the keyword arguments `backend` (`"auto"`, `"cpu"`, `"gpu"`),
/// `memory_budget` (bytes, or text such as `"2GiB"`), `threads`, `dashboard` (an address such
/// as `"127.0.0.1:8787"`); `None` keeps the default. Unknown keys are errors.
pub fn options(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<ComputeOptions> {
    let mut o = ComputeOptions {
        progress: strata::exec::Progress::Off,
        ..Default::default()
    };
    let Some(kwargs) = kwargs else {
        return Ok(o);
    };
    for (key, value) in kwargs.iter() {
        let key: String = key.extract()?;
        if value.is_none() {
            continue;
        }
        match key.as_str() {
            "backend" => {
                o.backend = match value.extract::<String>()?.as_str() {
                    "auto" => strata::Backend::Auto,
                    "cpu" => strata::Backend::Cpu,
                    "gpu" => strata::Backend::Gpu,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "backend={other:?}: expected 'auto', 'cpu' or 'gpu'"
                        )))
                    }
                }
            }
            "memory_budget" => {
                o.memory_budget = Some(match value.extract::<u64>() {
                    Ok(n) => n,
                    Err(_) => {
                        let text: String = value.extract()?;
                        strata::exec::parse_bytes(&text).ok_or_else(|| {
                            PyValueError::new_err(format!(
                                "memory_budget={text:?}: expected bytes, e.g. 2000000000 or '2GiB'"
                            ))
                        })?
                    }
                })
            }
            "threads" => o.threads = Some(value.extract::<usize>()?.max(1)),
            "dashboard" => o.dashboard = Some(strata::exec::Dashboard::at(value.extract::<String>()?)),
            "optimize" => o.optimize = value.extract::<bool>()?,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unknown option {other:?}: expected backend, memory_budget, threads, dashboard, optimize"
                )))
            }
        }
    }
    Ok(o)
}

/// xarray's `chunk(chunks, **chunks_kwargs)` as `(dim, block)` pairs for
/// [`DataArray::chunk`]: an int for every dim, a tuple of one per dim, or a dict (and keyword
/// arguments) by dim; a block of -1 is the whole dim (0 to strata), `None` keeps a dim's blocks.
pub fn chunk_spec(
    array: &DataArray,
    chunks: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Vec<(String, usize)>> {
    let block = |dim: &str, v: &Bound<'_, PyAny>| -> PyResult<Option<usize>> {
        if v.is_none() {
            return Ok(None);
        }
        match v.extract::<i64>() {
            Ok(-1) => Ok(Some(0)),
            Ok(k) if k > 0 => Ok(Some(k as usize)),
            _ => Err(PyValueError::new_err(format!(
                "chunk {dim}={v}: a block is a positive number of steps, -1 for the whole dim or None to keep it (strata chooses automatic blocks itself)"
            ))),
        }
    };
    let dims = array.dims();
    let mut pairs: Vec<(String, Bound<'_, PyAny>)> = Vec::new();
    match chunks {
        None => {}
        Some(c) if c.is_instance_of::<PyDict>() => {
            for (k, v) in c.cast::<PyDict>()?.iter() {
                pairs.push((k.extract()?, v));
            }
        }
        Some(c) if c.is_instance_of::<PyTuple>() || c.is_instance_of::<PyList>() => {
            let items: Vec<Bound<'_, PyAny>> = c.try_iter()?.collect::<PyResult<_>>()?;
            if items.len() != dims.len() {
                return Err(PyValueError::new_err(format!(
                    "chunk: {} blocks for the {} dims {dims:?}",
                    items.len(),
                    dims.len()
                )));
            }
            pairs.extend(dims.iter().cloned().zip(items));
        }
        Some(c) => pairs.extend(dims.iter().map(|d| (d.clone(), c.clone()))),
    }
    if let Some(k) = kwargs {
        for (d, v) in k.iter() {
            pairs.push((d.extract()?, v));
        }
    }
    let mut out = Vec::new();
    for (dim, v) in pairs {
        if let Some(k) = block(&dim, &v)? {
            out.push((dim, k));
        }
    }
    Ok(out)
}
