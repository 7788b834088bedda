//! Calendar resampling of a time dim (xarray's `resample(time="MS")`, `"QS"`, `"YS"`, `"W"`,
//! `"D"` and multiples such as `"2MS"`), and `dropna` along a dim.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use ndarray::{ArrayD, Axis, IxDyn};

use super::coords::{month_from_number, month_number};
use super::{Coord, CoordValues, DataArray, LabelError};
use crate::expr::{DType, ReduceOp};
use crate::Array;

/// The time steps of an array binned by calendar period, ready to reduce: one bin per period
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
    /// Bins `dim` (a time coordinate) by calendar period, as pandas names and anchors them:
    /// `"MS"`, `"QS"`, `"YS"` (month, quarter, year starts; bins labelled by their first
    /// instant), `"D"` (days from the first step's midnight), `"W"` (weeks ending on Sunday,
    /// labelled by that Sunday, as pandas' `W-SUN`), and multiples such as `"2MS"` or `"3D"`
    /// (counted from the period holding the first step). Reduce the bins with
    /// [`CalendarBins::reduce`] or its shorthands. Lazy; O(time steps).
    ///
    /// **Errors**: [`LabelError::NoCoord`] when `dim` has no time coordinate,
    /// [`LabelError::Frequency`] for another frequency (weekly multiples included).
    pub fn resample(&self, dim: &str, freq: &str) -> Result<CalendarBins, LabelError> {
        let period = Period::parse(freq)?;
        let CoordValues::Time(times) = &self.index_of(dim)?.values else {
            return Err(LabelError::NoCoord { dim: dim.to_string() });
        };
        let Some(first) = times.iter().min() else {
            return Err(LabelError::EmptyDim {
                op: "resample",
                dim: dim.to_string(),
            });
        };
        let bins: Vec<i64> = times.iter().map(|t| period.bin(first, t)).collect();
        let last = bins.iter().copied().max().unwrap_or(0);
        Ok(CalendarBins {
            array: self.clone(),
            dim: dim.to_string(),
            labels: bins.iter().map(|&b| b as usize).collect(),
            starts: (0..=last).map(|b| period.label(first, b)).collect(),
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
        let keep = self.kept_steps(axis, how)?;
        if keep.len() == self.shape()[axis] {
            return Ok(self.clone()); // nothing to drop: no copy
        }
        let out = self.isel_many(dim, &keep)?;
        Ok(match &self.held {
            Some(v) => out.holding(v.select(Axis(axis), &keep)),
            None => out,
        })
    }

    /// [`DataArray::dropna`] taking the array: computed values that nothing else holds are
    /// compacted where they lie (the kept steps moved down, the rest given back to the
    /// allocator), so dropping the empty months of a computed resample costs no second copy
    /// of it (one pass over the kept values). Otherwise as `dropna`.
    ///
    /// **Errors**: as [`DataArray::dropna`].
    pub fn into_dropna(mut self, dim: &str, how: DropHow) -> crate::Result<DataArray> {
        if self.held.is_none() || self.data.dtype() == DType::U8 {
            return self.dropna(dim, how);
        }
        let axis = self.axis(dim)?;
        let keep = self.kept_steps(axis, how)?;
        let shape = self.shape().to_vec();
        if keep.len() == shape[axis] {
            return Ok(self);
        }
        // The kept steps' labels, over a constant that holds no reference to the values.
        let chunks: Vec<usize> = match self.data.grid() {
            Some(g) => g.max_block_shape().iter().map(|&n| n.max(1)).collect(),
            None => shape.iter().map(|&n| n.max(1)).collect(),
        };
        let labels = self
            .relabel(Array::full(&shape, f32::NAN, chunks))
            .isel_many(dim, &keep)?;
        let held = self.held.take().expect("computed");
        drop(self);
        let values = if held.is_unique() {
            compact(held.into_owned(), axis, &keep)
        } else {
            held.select(Axis(axis), &keep)
        };
        Ok(labels.holding(values))
    }

    /// The steps of `axis` that `how` keeps, counted from the held values or computed.
    fn kept_steps(&self, axis: usize, how: DropHow) -> crate::Result<Vec<usize>> {
        let dim = self.dims[axis].clone();
        let dim = dim.as_str();
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
        Ok(keep)
    }
}

/// `values` with only the `keep` steps of `axis` (ascending), moved down in place: every kept
/// step goes to a place at or before where it was, so one forward pass of `copy_within`
/// suffices; the tail is then released. Falls back to a copy for a non-standard layout.
fn compact(values: ArrayD<f32>, axis: usize, keep: &[usize]) -> ArrayD<f32> {
    let shape = values.shape().to_vec();
    if !values.is_standard_layout() {
        return values.select(Axis(axis), keep);
    }
    let (mut flat, offset) = values.into_raw_vec_and_offset();
    if offset.unwrap_or(0) != 0 || flat.len() != shape.iter().product::<usize>() {
        // a view into a larger buffer (not what `holding` makes): copy the kept steps out
        let start = offset.unwrap_or(0);
        let n: usize = shape.iter().product();
        let restored = ArrayD::from_shape_vec(IxDyn(&shape), flat[start..start + n].to_vec()).expect("same shape");
        return restored.select(Axis(axis), keep);
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let mut dst = 0;
    for o in 0..outer {
        for &i in keep {
            let src = (o * n + i) * inner;
            flat.copy_within(src..src + inner, dst);
            dst += inner;
        }
    }
    flat.truncate(dst);
    flat.shrink_to_fit();
    let mut kept = shape;
    kept[axis] = keep.len();
    ArrayD::from_shape_vec(IxDyn(&kept), flat).expect("kept steps fill the shape")
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
        self.binned(a.data.group_reduce(op, axis, &self.labels, self.starts.len()))
    }

    /// The first non-NaN value of every bin, by time (xarray's `resample(...).first()`: the
    /// scenes of one day merged, say); NaN where a bin has none. Exact; lazy, fused (see
    /// [`TimeGroups::first`]).
    pub fn first(&self) -> DataArray {
        self.binned(self.picked(false))
    }

    /// The last non-NaN value of every bin, by time (xarray's `last()`).
    pub fn last(&self) -> DataArray {
        self.binned(self.picked(true))
    }

    fn picked(&self, last: bool) -> Array {
        let a = &self.array;
        let axis = a.axis(&self.dim).expect("checked by resample");
        super::groupby::first_valid(&a.data, axis, &self.labels, self.starts.len(), last)
    }

    /// `data` (one step per bin along the dim) labelled by the bins' starts.
    fn binned(&self, data: Array) -> DataArray {
        let a = &self.array;
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

    /// The NaN-skipping `q`-th quantile of every bin (numpy's linear method).
    ///
    /// **Errors**: [`LabelError::Quantile`] for `q` outside [0, 1].
    pub fn quantile(&self, q: f64) -> Result<DataArray, LabelError> {
        Ok(self.reduce(ReduceOp::nanquantile(q).ok_or(LabelError::Quantile { q })?))
    }

    /// The NaN-skipping mean of every bin.
    pub fn mean(&self) -> DataArray {
        self.reduce(ReduceOp::NanMean)
    }
}

/// A resampling frequency: `every` periods of `months` months, of days, or weeks ending Sunday.
#[derive(Debug, Clone, Copy)]
enum Period {
    Months { months: i64, every: i64 },
    Days { every: i64 },
    Weeks,
}

impl Period {
    fn parse(freq: &str) -> Result<Period, LabelError> {
        let bad = || LabelError::Frequency { freq: freq.to_string() };
        let digits = freq.chars().take_while(char::is_ascii_digit).count();
        let every: i64 = match &freq[..digits] {
            "" => 1,
            n => n.parse().ok().filter(|&n| n > 0).ok_or_else(bad)?,
        };
        Ok(match &freq[digits..] {
            "MS" => Period::Months { months: 1, every },
            "QS" | "QS-JAN" => Period::Months { months: 3, every },
            "YS" | "YS-JAN" | "AS" => Period::Months { months: 12, every },
            "D" => Period::Days { every },
            "W" | "W-SUN" if every == 1 => Period::Weeks,
            _ => return Err(bad()),
        })
    }

    /// The bin of `t`, counted from the one holding `first` (0).
    fn bin(&self, first: &DateTime<Utc>, t: &DateTime<Utc>) -> i64 {
        match *self {
            Period::Months { months, every } => {
                let origin = month_number(first).div_euclid(months) * months;
                (month_number(t) - origin).div_euclid(months * every)
            }
            Period::Days { every } => (day_number(t) - day_number(first)).div_euclid(every),
            Period::Weeks => (sunday_after(t) - sunday_after(first)).div_euclid(7),
        }
    }

    /// How pandas labels bin `b`: its first instant, or for weeks the Sunday that ends it.
    fn label(&self, first: &DateTime<Utc>, b: i64) -> DateTime<Utc> {
        match *self {
            Period::Months { months, every } => {
                let origin = month_number(first).div_euclid(months) * months;
                month_from_number(origin + b * months * every)
            }
            Period::Days { every } => day_start(day_number(first) + b * every),
            Period::Weeks => day_start(sunday_after(first) + 7 * b),
        }
    }
}

/// Days since the common era of `t`'s (UTC) date.
fn day_number(t: &DateTime<Utc>) -> i64 {
    i64::from(t.date_naive().num_days_from_ce())
}

/// The day number of the Sunday on or after `t`'s date.
fn sunday_after(t: &DateTime<Utc>) -> i64 {
    day_number(t) + 6 - i64::from(t.weekday().num_days_from_monday())
}

/// Midnight UTC of day number `d`.
fn day_start(d: i64) -> DateTime<Utc> {
    let date = NaiveDate::from_num_days_from_ce_opt(d as i32).expect("a date in chrono's range");
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
}
