//! Calendar resampling of a time dim (xarray's `resample(time="MS")` and `"YS"`), and
//! `dropna` along a dim.

use chrono::{DateTime, Utc};
use ndarray::Axis;

use super::coords::{month_from_number, month_number};
use super::{Coord, CoordValues, DataArray, LabelError};
use crate::expr::ReduceOp;

/// The time steps of an array binned by calendar month or year, ready to reduce: one bin per period
/// from the first to the last one present, empty periods included (they reduce to NaN, as in
/// xarray, for `dropna` to remove).
#[derive(Debug, Clone)]
pub struct CalendarBins {
    array: DataArray,
    dim: String,
    labels: Vec<usize>,
    starts: Vec<DateTime<Utc>>,
}

/// Which steps `dropna` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropHow {
    /// steps whose every value is NaN
    All,
    /// steps with any NaN value
    Any,
}

impl DataArray {
    /// Bins `dim` (a time coordinate) by calendar period: `"MS"` (month start) or `"YS"`
    /// (year start), as pandas names them. Reduce the bins with [`CalendarBins::reduce`] or
    /// its shorthands; the result's `dim` is labelled by each period's first instant (UTC
    /// midnight). Lazy; O(time steps).
    ///
    /// **Errors**: [`LabelError::NoCoord`] when `dim` has no time coordinate,
    /// [`LabelError::Frequency`] for another frequency.
    pub fn resample(&self, dim: &str, freq: &str) -> Result<CalendarBins, LabelError> {
        let months_per_bin = match freq {
            "MS" => 1,
            "YS" => 12,
            _ => return Err(LabelError::Frequency { freq: freq.to_string() }),
        };
        let CoordValues::Time(times) = &self.index_of(dim)?.values else {
            return Err(LabelError::NoCoord { dim: dim.to_string() });
        };
        let bin = |t: &DateTime<Utc>| month_number(t).div_euclid(months_per_bin);
        let (Some(first), Some(last)) = (times.iter().map(bin).min(), times.iter().map(bin).max()) else {
            return Err(LabelError::EmptyDim {
                op: "resample",
                dim: dim.to_string(),
            });
        };
        Ok(CalendarBins {
            array: self.clone(),
            dim: dim.to_string(),
            labels: times.iter().map(|t| (bin(t) - first) as usize).collect(),
            starts: (first..=last).map(|b| month_from_number(b * months_per_bin)).collect(),
        })
    }

    /// Removes the steps of `dim` that are all NaN (`DropHow::All`) or have any NaN
    /// (`DropHow::Any`), as xarray's `dropna`. The values decide: a computed array counts its
    /// held values (one pass); a lazy one is **computed** once (a count of non-NaN values per
    /// step, with default options; compute or persist first when it is expensive and used
    /// again). Returns the kept steps, held values included for a computed array.
    ///
    /// **Errors**: [`crate::Error`] from computing, or a label error for a missing dim.
    pub fn dropna(&self, dim: &str, how: DropHow) -> crate::Result<DataArray> {
        let axis = self.axis(dim)?;
        let counts: Vec<usize> = match &self.held {
            Some(v) => v
                .axis_iter(Axis(axis))
                .map(|step| step.iter().filter(|x| !x.is_nan()).count())
                .collect(),
            None => {
                let others: Vec<&str> = self.dims.iter().filter(|d| *d != dim).map(String::as_str).collect();
                let counts = self.reduce(ReduceOp::Count, &others)?.data.compute()?;
                counts.iter().map(|&c| c as usize).collect()
            }
        };
        let per_step: usize = (0..self.dims.len())
            .filter(|&k| k != axis)
            .map(|k| self.shape()[k])
            .product();
        let keep: Vec<usize> = (0..counts.len())
            .filter(|&i| match how {
                DropHow::All => counts[i] > 0,
                DropHow::Any => counts[i] == per_step,
            })
            .collect();
        if keep.len() == counts.len() {
            return Ok(self.clone()); // nothing to drop: no copy
        }
        let out = self.isel_many(dim, &keep)?;
        Ok(match &self.held {
            Some(v) => out.holding(v.select(Axis(axis), &keep)),
            None => out,
        })
    }
}

impl CalendarBins {
    /// The first instant of every bin, in order.
    pub fn starts(&self) -> &[DateTime<Utc>] {
        &self.starts
    }

    /// The bin of every step of the dim.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Reduces every bin with `op`; the dim becomes one step per bin, labelled by the bins'
    /// starts, and the other coordinates along it (item ids) are dropped. Lazy: one
    /// group-reduce node.
    pub fn reduce(&self, op: ReduceOp) -> DataArray {
        let a = &self.array;
        let axis = a.axis(&self.dim).expect("checked by resample") as isize;
        let data = a.data.group_reduce(op, axis, &self.labels, self.starts.len());
        let mut out = a.relabel(data);
        out.coords.retain(|c| c.dim.as_deref() != Some(self.dim.as_str()));
        out.coords
            .insert(0, Coord::index(&self.dim, CoordValues::Time(self.starts.clone())));
        out
    }

    /// The NaN-skipping median of every bin (the tutorial's `.median("time")`).
    pub fn median(&self) -> DataArray {
        self.reduce(ReduceOp::NanMedian)
    }

    /// The NaN-skipping mean of every bin.
    pub fn mean(&self) -> DataArray {
        self.reduce(ReduceOp::NanMean)
    }
}
