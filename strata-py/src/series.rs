//! What `strata.DataArray`'s methods along a dim do with their Python arguments: gap fills,
//! running scans over one dim or several, statistics of two series, polynomial fits and
//! interpolation onto new positions. `array.rs` keeps the class and its thin method wrappers.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use strata::labelled::{CoordValues, DataArray, Label, LabelError};

use crate::array::{checked, dims_of, PyDataArray};
use crate::errors::err;

/// The dims a `dim` argument names (a name or a list), `None` for `None` (every dim).
fn named_dims(dim: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<String>>> {
    match dim {
        None => Ok(None),
        Some(d) if d.is_none() => Ok(None),
        Some(d) => match d.extract::<String>() {
            Ok(one) => Ok(Some(vec![one])),
            Err(_) => d.extract::<Vec<String>>().map(Some),
        },
    }
}

impl PyDataArray {
    /// `interpolate_na`: the dim required, linear only, `max_gap` in the coordinate's units
    /// (a timedelta or `"30D"` on times) unless `use_coordinate=False`.
    pub(crate) fn gaps_interpolated(
        &self,
        dim: Option<&str>,
        method: &str,
        limit: Option<usize>,
        use_coordinate: bool,
        max_gap: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyDataArray> {
        let dim = dim.ok_or_else(|| PyTypeError::new_err("interpolate_na needs the dim to fill along"))?;
        if method != "linear" {
            return Err(PyValueError::new_err(format!(
                "interpolate_na(method={method:?}): strata interpolates linearly only"
            )));
        }
        let max_gap = match max_gap {
            Some(g) if use_coordinate => Some(crate::select::distance_of(&self.inner, dim, g, "max_gap")?),
            Some(g) => Some(g.extract::<f64>()?),
            None => None,
        };
        let how = strata::labelled::InterpolateNa {
            use_coordinate,
            limit,
            max_gap,
        };
        checked(self.inner.interpolate_na(dim, &how))
    }

    /// `scan` along each dim `dim` names in turn (`None`: every dim), as xarray's `cumsum`.
    pub(crate) fn scanned(
        &self,
        dim: Option<&Bound<'_, PyAny>>,
        scan: impl Fn(&DataArray, &str) -> Result<DataArray, LabelError>,
    ) -> PyResult<PyDataArray> {
        let mut a = self.inner.clone();
        for d in dims_of(&self.inner, dim)? {
            a = scan(&a, &d).map_err(err)?;
        }
        Ok(Self::wrap(a))
    }

    /// A statistic of this array and another over the dims `dim` names (`None`: every dim).
    pub(crate) fn paired(
        &self,
        dim: Option<&Bound<'_, PyAny>>,
        stat: impl FnOnce(&DataArray, Option<&[&str]>) -> Result<DataArray, LabelError>,
    ) -> PyResult<PyDataArray> {
        let dims = named_dims(dim)?;
        let refs: Option<Vec<&str>> = dims.as_ref().map(|d| d.iter().map(String::as_str).collect());
        checked(stat(&self.inner, refs.as_deref()))
    }

    /// `polyfit`: NaN-skipping, or with `skipna=False` NaN wherever a series has a NaN.
    pub(crate) fn fitted(&self, dim: &str, deg: u32, skipna: bool) -> PyResult<PyDataArray> {
        let fit = self.inner.polyfit(dim, deg).map_err(err)?;
        if skipna {
            return checked(Ok(fit));
        }
        let n = self.inner.shape()[self.inner.axis(dim).map_err(err)?];
        let whole = self.inner.count(dim).map_err(err)?.eq_scalar(n as f32);
        checked(Ok(fit.where_(&whole, f32::NAN)))
    }

    /// `interp`: each named dim in turn, its positions numbers or datetimes; linear only.
    pub(crate) fn interpolated(
        &self,
        coords: Option<&Bound<'_, PyDict>>,
        method: &str,
        positions: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyDataArray> {
        if method != "linear" {
            return Err(PyValueError::new_err(format!(
                "interp: strata interpolates linearly, not with method={method:?}"
            )));
        }
        let mut a = self.inner.clone();
        for dict in [coords, positions].into_iter().flatten() {
            for (dim, values) in dict.iter() {
                let dim: String = dim.extract()?;
                let labels: Vec<Label> = values
                    .try_iter()?
                    .map(|v| crate::convert::label(&v?))
                    .collect::<PyResult<_>>()?;
                let at = if labels.iter().all(|l| matches!(l, Label::Time(_))) && !labels.is_empty() {
                    CoordValues::Time(
                        labels
                            .iter()
                            .map(|l| match l {
                                Label::Time(t) => *t,
                                _ => unreachable!("all times"),
                            })
                            .collect(),
                    )
                } else {
                    let numbers = labels.iter().map(|l| match l {
                        Label::F64(v) => Ok(*v),
                        other => Err(PyTypeError::new_err(format!(
                            "interp along {dim:?}: {other:?} is not a number or a datetime"
                        ))),
                    });
                    CoordValues::F64(numbers.collect::<PyResult<_>>()?)
                };
                a = a.interp(&dim, &at).map_err(err)?;
            }
        }
        checked(Ok(a))
    }
}
