//! Grouping by a component of a time coordinate (xarray's `groupby("time.month")` and
//! `"time.season"`: climatologies across years), shifts and differences along a dim (`shift`,
//! `diff`).

use chrono::Datelike;

use super::{Coord, CoordValues, DataArray, LabelError};
use crate::array::{Array, Slice};
use crate::expr::{BinaryOp, ReduceOp};

/// The steps of a time dim grouped by a calendar component, ready to reduce: one group per
/// value present, in xarray's order (months ascending; seasons `DJF`, `JJA`, `MAM`, `SON`).
#[derive(Debug, Clone)]
pub struct TimeGroups {
    array: DataArray,
    dim: String,
    labels: Vec<usize>,
    coord: Coord,
}

impl DataArray {
    /// Groups `key`'s time dim by a component: `"time.month"` (1-12) or `"time.season"`
    /// (`DJF`, `MAM`, `JJA`, `SON`). Reduce with [`TimeGroups::reduce`] or its shorthands; the
    /// time dim becomes the component's dim (`month`, `season`). Lazy; O(time steps).
    ///
    /// **Errors**: [`LabelError::GroupKey`] for another key, [`LabelError::NoCoord`] when the
    /// dim has no time coordinate.
    pub fn groupby(&self, key: &str) -> Result<TimeGroups, LabelError> {
        let bad = || LabelError::GroupKey { key: key.to_string() };
        let (dim, part) = key.split_once('.').ok_or_else(bad)?;
        let CoordValues::Time(times) = &self.index_of(dim)?.values else {
            return Err(LabelError::NoCoord { dim: dim.to_string() });
        };
        let (name, values): (&str, Vec<String>) = match part {
            "month" => ("month", times.iter().map(|t| format!("{:02}", t.month())).collect()),
            "season" => ("season", times.iter().map(|t| season(t.month()).to_string()).collect()),
            _ => return Err(bad()),
        };
        let mut groups = values.clone();
        groups.sort();
        groups.dedup();
        let labels = values
            .iter()
            .map(|v| groups.binary_search(v).expect("every value is a group"))
            .collect();
        let coord_values = match name {
            "month" => CoordValues::F64(groups.iter().map(|m| m.parse().expect("two digits")).collect()),
            _ => CoordValues::Str(groups),
        };
        Ok(TimeGroups {
            array: self.clone(),
            dim: dim.to_string(),
            labels,
            coord: Coord::index(name, coord_values),
        })
    }
}

impl DataArray {
    /// `len` steps of NaN along `axis`, chunked as this array elsewhere: the lead of a
    /// window or a shift.
    fn nan_steps(&self, axis: usize, len: usize) -> Array {
        let mut shape = self.shape().to_vec();
        shape[axis] = len;
        let mut chunks: Vec<usize> = self
            .data
            .grid()
            .map(|g| g.max_block_shape().to_vec())
            .unwrap_or_else(|| shape.clone())
            .into_iter()
            .map(|c| c.max(1))
            .collect();
        chunks[axis] = len.max(1);
        Array::full(&shape, f32::NAN, chunks)
    }

    /// The values moved `by` steps along `dim` (later for positive `by`), NaN where nothing
    /// moved in (a mask becomes 0/1 floats); labels unchanged (xarray's `shift(dim=by)`).
    /// Lazy: a slice and a NaN lead concatenated.
    ///
    /// **Errors**: [`LabelError::NoDim`].
    pub fn shift(&self, dim: &str, by: isize) -> Result<DataArray, LabelError> {
        let axis = self.axis(dim)?;
        let n = self.shape()[axis];
        let k = by.unsigned_abs().min(n);
        if k == 0 {
            return Ok(self.clone());
        }
        // a mask shifts as floats (NaN moves in), as xarray promotes booleans
        let data = self.data.astype(crate::expr::DType::F32);
        let mut kept = vec![Slice::all(); self.dims.len()];
        let lead = self.nan_steps(axis, k);
        let parts = if by > 0 {
            kept[axis] = Slice::range(0, (n - k) as isize);
            [lead, data.slice(&kept)]
        } else {
            kept[axis] = Slice::range(k as isize, n as isize);
            [data.slice(&kept), lead]
        };
        let data = if k == n {
            self.nan_steps(axis, n)
        } else {
            Array::concatenate(&parts, axis as isize)
        };
        Ok(self.relabel(data))
    }

    /// The `n`-th difference along `dim`, each step minus the one before, labelled by the
    /// later step (xarray's `diff(dim, n)`, `label="upper"`): `n` steps shorter. Lazy: two
    /// slices subtracted per order.
    ///
    /// **Errors**: [`LabelError::NoDim`].
    pub fn diff(&self, dim: &str, n: usize) -> Result<DataArray, LabelError> {
        let mut out = self.clone();
        for _ in 0..n {
            let len = out.shape()[out.axis(dim)?] as isize;
            if len == 0 {
                break;
            }
            let later = out.isel_slice(dim, Slice::range(1, len))?;
            let earlier = out.isel_slice(dim, Slice::range(0, len - 1))?;
            out = later.relabel(&later.data - &earlier.data);
        }
        Ok(out)
    }

    /// The running sum along `dim` (xarray's `cumsum(dim, skipna)`): NaN counts as 0 with
    /// `skipna` (xarray's default for floats), else makes every later step NaN; labels kept.
    /// f64 totals, each step rounded once. Lazy: the dim is made whole in each block, then one
    /// pass per block (on the device on a GPU backend).
    ///
    /// **Errors**: [`LabelError::NoDim`].
    pub fn cumsum(&self, dim: &str, skipna: bool) -> Result<DataArray, LabelError> {
        Ok(self.relabel(self.data.cumsum(self.axis(dim)? as isize, skipna)))
    }

    /// The running product along `dim` (xarray's `cumprod(dim, skipna)`), as
    /// [`DataArray::cumsum`] with NaN counting as 1 under `skipna`.
    ///
    /// **Errors**: [`LabelError::NoDim`].
    pub fn cumprod(&self, dim: &str, skipna: bool) -> Result<DataArray, LabelError> {
        Ok(self.relabel(self.data.cumprod(self.axis(dim)? as isize, skipna)))
    }
}

/// The meteorological season of a month, as xarray names it.
fn season(month: u32) -> &'static str {
    match month {
        12 | 1 | 2 => "DJF",
        3..=5 => "MAM",
        6..=8 => "JJA",
        _ => "SON",
    }
}

impl TimeGroups {
    /// The group of every step of the time dim.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Reduces every group with `op`; the time dim becomes the component's dim, labelled by
    /// the groups, and the other coordinates along it are dropped. Lazy: one group-reduce node.
    pub fn reduce(&self, op: ReduceOp) -> DataArray {
        let a = &self.array;
        let axis = a.axis(&self.dim).expect("checked by groupby");
        let data = a
            .data
            .group_reduce(op, axis as isize, &self.labels, self.coord.values.len());
        self.grouped(data)
    }

    /// The first non-NaN value of every group, by time (xarray's `first()`; NaN where a group
    /// has none). Exact: values are chosen, never computed. Lazy: per group, a `fillna` tree
    /// over its steps (as [`DataArray::mosaic`]), fused.
    pub fn first(&self) -> DataArray {
        self.grouped(self.picked(false))
    }

    /// The last non-NaN value of every group, by time (xarray's `last()`), as
    /// [`TimeGroups::first`].
    pub fn last(&self) -> DataArray {
        self.grouped(self.picked(true))
    }

    fn picked(&self, last: bool) -> Array {
        let a = &self.array;
        let axis = a.axis(&self.dim).expect("checked by groupby");
        first_valid(&a.data, axis, &self.labels, self.coord.values.len(), last)
    }

    /// `data` (one step per group along the time dim) under the groups' labels.
    fn grouped(&self, data: Array) -> DataArray {
        let a = &self.array;
        let axis = a.axis(&self.dim).expect("checked by groupby");
        let mut out = a.relabel(data);
        out.dims[axis] = self.coord.name.clone();
        out.data = out.data.with_dims(&out.dims);
        out.coords.retain(|c| c.dim.as_deref() != Some(self.dim.as_str()));
        out.coords.insert(0, self.coord.clone());
        out
    }

    /// The NaN-skipping mean of every group (a climatology).
    pub fn mean(&self) -> DataArray {
        self.reduce(ReduceOp::NanMean)
    }

    /// The NaN-skipping `q`-th quantile of every group (numpy's linear method).
    ///
    /// **Errors**: [`LabelError::Quantile`] for `q` outside [0, 1].
    pub fn quantile(&self, q: f64) -> Result<DataArray, LabelError> {
        Ok(self.reduce(ReduceOp::nanquantile(q).ok_or(LabelError::Quantile { q })?))
    }

    /// The NaN-skipping median of every group.
    pub fn median(&self) -> DataArray {
        self.reduce(ReduceOp::NanMedian)
    }
}

/// Per group of steps along `axis` (step `i` in group `labels[i]`), each pixel's first non-NaN
/// value in step order (the last, with `last`); NaN where the group has none or no steps. A
/// balanced `fillna` tree over each group's steps (exact and fused, as a mosaic), the groups
/// joined along `axis`.
pub(super) fn first_valid(data: &Array, axis: usize, labels: &[usize], groups: usize, last: bool) -> Array {
    let data = data.astype(crate::expr::DType::F32);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for (i, &g) in labels.iter().enumerate() {
        members[g].push(i);
    }
    let step = |i: usize| data.index(axis as isize, i as isize);
    let mut plane = data.shape().to_vec();
    plane.remove(axis);
    let mut chunks: Vec<usize> = data
        .grid()
        .map(|g| g.max_block_shape().to_vec())
        .unwrap_or_else(|| data.shape().to_vec());
    chunks.remove(axis);
    let parts: Vec<Array> = members
        .iter_mut()
        .map(|m| {
            if last {
                m.reverse();
            }
            let picked = match m.is_empty() {
                true => Array::full(&plane, f32::NAN, chunks.iter().map(|&c| c.max(1)).collect::<Vec<_>>()),
                false => fillna_tree(m, &step),
            };
            picked.expand_dims(axis as isize)
        })
        .collect();
    Array::concatenate(&parts, axis as isize)
}

/// The first non-NaN value of `step(i)` over `steps` in order, per pixel: a balanced tree of
/// `fillna` (any split mosaics the same, since `fillna` is associative), so the expression's
/// depth is logarithmic. `steps` is not empty.
pub(super) fn fillna_tree(steps: &[usize], step: &dyn Fn(usize) -> Array) -> Array {
    match steps {
        [i] => step(*i),
        _ => {
            let (top, below) = steps.split_at(steps.len() / 2);
            fillna_tree(top, step).binary(BinaryOp::FillNan, &fillna_tree(below, step))
        }
    }
}
