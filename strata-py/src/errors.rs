//! strata's errors as Python exceptions: one class per layer under `StrataError`, each message
//! the whole chain of causes (URL, byte range, item, asset, tile, shape), so a traceback says
//! what to fix. An interrupted run is Python's own `KeyboardInterrupt`.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

create_exception!(_strata, StrataError, PyException, "Every error strata raises.");
create_exception!(_strata, StacError, StrataError, "A STAC document or search failed.");
create_exception!(
    _strata,
    StackError,
    StrataError,
    "Stacking items failed, or reading one of their assets (the item and asset are named)."
);
create_exception!(
    _strata,
    ReadError,
    StrataError,
    "Reading bytes or a TIFF failed (URL, byte range, tile)."
);
create_exception!(
    _strata,
    LabelError,
    StrataError,
    "A label selection, alignment or layout failed (the dim and labels are named)."
);
create_exception!(
    _strata,
    PlanError,
    StrataError,
    "Building or planning an expression failed (shapes, axes, arguments)."
);
create_exception!(
    _strata,
    ComputeError,
    StrataError,
    "Running a computation failed (the task is named)."
);
create_exception!(
    _strata,
    OutputError,
    StrataError,
    "Writing an output failed (the path is named); nothing half-written is left."
);
create_exception!(
    _strata,
    GpuError,
    StrataError,
    "No GPU, or the GPU failed, for a computation that asked for one."
);
create_exception!(_strata, GeoError, StrataError, "A projection or CRS failed.");

/// `LabelNotFoundError(LabelError, KeyError)`, made once: a label that is not in a coordinate,
/// or none near enough, is a `KeyError` as xarray's `sel` raises, and a `LabelError` as
/// strata's other label errors are. Python code makes it: an exception class of two bases.
static LABEL_NOT_FOUND: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn label_not_found(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    LABEL_NOT_FOUND
        .get_or_try_init(py, || {
            let ns = PyDict::new(py);
            ns.set_item("__name__", "strata")?;
            ns.set_item("LabelError", py.get_type::<LabelError>())?;
            py.run(
                c"class LabelNotFoundError(LabelError, KeyError):\n    \"A label not in a coordinate, or none within the tolerance: a KeyError, as xarray's sel raises.\"\n",
                Some(&ns),
                None,
            )?;
            let class = ns.get_item("LabelNotFoundError")?.expect("just defined");
            Ok(class.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// The error's message followed by its causes, one per line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.contains(&line) {
            text.push_str("\n  caused by: ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

/// A strata error as the matching Python exception.
pub fn to_py(e: strata::Error) -> PyErr {
    use strata::Error as E;
    let msg = chain(&e);
    match &e {
        E::Exec(strata::ExecError::Interrupted { .. }) => PyKeyboardInterrupt::new_err(msg),
        E::Exec(_) if e.source_error::<strata::stack::StackError>().is_some() => StackError::new_err(msg),
        E::Exec(_) if e.source_error::<strata::io::IoError>().is_some() => ReadError::new_err(msg),
        E::Exec(_) => ComputeError::new_err(msg),
        E::Plan(_) => PlanError::new_err(msg),
        E::Label(strata::labelled::LabelError::NoLabel { .. } | strata::labelled::LabelError::NotNear { .. }) => {
            Python::attach(|py| match label_not_found(py) {
                Ok(class) => PyErr::from_type(class.clone(), msg),
                Err(e) => e,
            })
        }
        E::Label(_) => LabelError::new_err(msg),
        E::Gpu(_) => GpuError::new_err(msg),
        E::Output(_) => OutputError::new_err(msg),
        E::Io(_) => ReadError::new_err(msg),
        E::Stac(_) => StacError::new_err(msg),
        E::Stack(_) => StackError::new_err(msg),
        E::Geo(_) => GeoError::new_err(msg),
        _ => StrataError::new_err(msg),
    }
}

/// Converts any error strata's `Error` comes from.
pub fn err<E: Into<strata::Error>>(e: E) -> PyErr {
    to_py(e.into())
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("StrataError", py.get_type::<StrataError>())?;
    m.add("StacError", py.get_type::<StacError>())?;
    m.add("StackError", py.get_type::<StackError>())?;
    m.add("ReadError", py.get_type::<ReadError>())?;
    m.add("LabelError", py.get_type::<LabelError>())?;
    m.add("PlanError", py.get_type::<PlanError>())?;
    m.add("ComputeError", py.get_type::<ComputeError>())?;
    m.add("OutputError", py.get_type::<OutputError>())?;
    m.add("GpuError", py.get_type::<GpuError>())?;
    m.add("GeoError", py.get_type::<GeoError>())?;
    m.add("LabelNotFoundError", label_not_found(py)?)?;
    Ok(())
}
