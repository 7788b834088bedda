//! Selection by position (`isel`) and by label (`sel`, `loc`), with xarray's semantics:
//! a scalar selection drops the dim and leaves its labels as scalar coordinates; a label
//! slice is closed at both ends and runs in the coordinate's own order, so a descending `y`
//! is sliced from the larger value to the smaller, as in the tutorial's
//! `.loc[..., y + buffer : y - buffer, x - buffer : x + buffer]`.

use std::cmp::Ordering;

use super::coords::Key;
use super::{CoordValues, DataArray, Label, LabelError};
use crate::array::Slice;

impl DataArray {
    /// The element `index` of `dim` (negative counts from the end); the dim is dropped and
    /// its coordinates become scalars (xarray's `isel(dim=index)`). Lazy; O(coordinates).
    ///
    /// **Errors**: [`LabelError::NoDim`], or [`LabelError::OutOfRange`] for an index out of range.
    pub fn isel(&self, dim: &str, index: isize) -> Result<DataArray, LabelError> {
        let axis = self.axis(dim)?;
        let n = self.shape()[axis] as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(LabelError::OutOfRange {
                op: "isel",
                dim: dim.to_string(),
                index,
                len: n as usize,
            });
        }
        let data = self.data.index(axis as isize, i);
        let mut out = self.relabel(data);
        out.dims.remove(axis);
        out.data = out.data.with_dims(&out.dims);
        for c in &mut out.coords {
            if c.dim.as_deref() == Some(dim) {
                c.values = c.values.take(&[i as usize]);
                c.dim = None;
            }
        }
        Ok(out)
    }

    /// The elements `indices` of `dim`, in that order (xarray's `isel(dim=[...])`); the dim
    /// stays. Lazy; O(coordinates).
    ///
    /// **Errors**: [`LabelError::NoDim`], or [`LabelError::OutOfRange`] for an index out of range.
    pub fn isel_many(&self, dim: &str, indices: &[usize]) -> Result<DataArray, LabelError> {
        let axis = self.axis(dim)?;
        let n = self.shape()[axis];
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(LabelError::OutOfRange {
                op: "isel",
                dim: dim.to_string(),
                index: bad as isize,
                len: n,
            });
        }
        let list: Vec<isize> = indices.iter().map(|&i| i as isize).collect();
        Ok(self.take_coords(dim, indices, self.data.take(axis as isize, &list)))
    }

    /// The dims in the order `dims` names them (xarray's `transpose`); coordinates unchanged.
    /// Lazy: one selection (see [`Array::transpose`](crate::Array::transpose)).
    ///
    /// **Errors**: [`LabelError::NoDim`] for a dim the array lacks,
    /// [`LabelError::Shape`] when `dims` does not name every dim once.
    pub fn transpose(&self, dims: &[&str]) -> Result<DataArray, LabelError> {
        let axes: Vec<usize> = dims.iter().map(|d| self.axis(d)).collect::<Result<_, _>>()?;
        let mut sorted = axes.clone();
        sorted.sort_unstable();
        if sorted != (0..self.dims.len()).collect::<Vec<_>>() {
            return Err(LabelError::Shape {
                what: format!("transpose to {dims:?}"),
                expected: format!("every dim of {:?} once", self.dims),
                found: format!("{} names", dims.len()),
            });
        }
        let mut out = self.relabel(self.data.transpose(&axes));
        out.dims = dims.iter().map(|d| d.to_string()).collect();
        out.data = out.data.with_dims(&out.dims);
        Ok(out)
    }

    /// Exactly `nx` × `ny` pixels around the point (`x`, `y`) in the array's CRS: the pixel
    /// nearest the point is the window's centre (for an even size, the first right and below
    /// it). The area of interest of a notebook (`stack.loc[..., y+b:y-b, x-b:x+b]`) without its
    /// off-by-one. Lazy; O(x and y coordinates).
    ///
    /// **Errors**: [`LabelError::NoCoord`] without numeric x/y coordinates,
    /// [`LabelError::OutOfRange`] when the window leaves the array.
    pub fn around(&self, x: f64, y: f64, nx: usize, ny: usize) -> Result<DataArray, LabelError> {
        let window = |dim: &str, at: f64, n: usize| -> Result<Slice, LabelError> {
            let values = self.f64_coord(dim)?;
            let nearest = values
                .iter()
                .enumerate()
                .min_by(|a, b| (a.1 - at).abs().total_cmp(&(b.1 - at).abs()))
                .map_or(0, |(i, _)| i);
            let start = nearest as isize - (n / 2) as isize;
            if start < 0 || start as usize + n > values.len() {
                return Err(LabelError::OutOfRange {
                    op: "around",
                    dim: dim.to_string(),
                    index: if start < 0 { start } else { start + n as isize - 1 },
                    len: values.len(),
                });
            }
            Ok(Slice::range(start, start + n as isize))
        };
        let (sx, sy) = (window("x", x, nx)?, window("y", y, ny)?);
        self.isel_slice("y", sy)?.isel_slice("x", sx)
    }

    /// Exactly `nx` × `ny` pixels centred in `bounds` (in the array's CRS): [`around`](Self::around)
    /// the box's centre.
    ///
    /// **Errors**: as [`around`](Self::around).
    pub fn within(&self, bounds: crate::geo::Bounds, nx: usize, ny: usize) -> Result<DataArray, LabelError> {
        let (cx, cy) = ((bounds.min_x + bounds.max_x) / 2.0, (bounds.min_y + bounds.max_y) / 2.0);
        self.around(cx, cy, nx, ny)
    }

    /// numpy slicing of `dim` by position (xarray's `isel(dim=slice(...))`). Lazy.
    ///
    /// **Errors**: [`LabelError::NoDim`], or [`LabelError::BadSlice`] for a zero step.
    pub fn isel_slice(&self, dim: &str, slice: Slice) -> Result<DataArray, LabelError> {
        let axis = self.axis(dim)?;
        let (start, step, len) = slice
            .resolve(self.shape()[axis])
            .map_err(|reason| LabelError::BadSlice {
                op: "isel",
                dim: dim.to_string(),
                reason,
            })?;
        let indices: Vec<usize> = (0..len)
            .map(|k| (start as isize + k as isize * step) as usize)
            .collect();
        let mut slices = vec![Slice::all(); axis + 1];
        slices[axis] = slice;
        Ok(self.take_coords(dim, &indices, self.data.slice(&slices)))
    }

    fn take_coords(&self, dim: &str, indices: &[usize], data: crate::Array) -> DataArray {
        let mut out = self.relabel(data);
        for c in &mut out.coords {
            if c.dim.as_deref() == Some(dim) {
                c.values = c.values.take(indices);
            }
        }
        out
    }

    /// The position of `label` along `dim` (exact match), as xarray's `sel(dim=label)`; the
    /// dim is dropped. A time period given as text (`"2020-03"`) keeps the dim and selects
    /// every step inside it, as pandas does. Lazy; O(coordinate length).
    ///
    /// **Errors**: [`LabelError::NoLabel`] when nothing matches (naming the label and dim),
    /// [`LabelError::LabelType`] for a label of the wrong kind.
    pub fn sel(&self, dim: &str, label: impl Into<Label>) -> Result<DataArray, LabelError> {
        let label = label.into();
        let values = &self.index_of(dim)?.values;
        let key = label.key_for(dim, values)?;
        let hits: Vec<usize> = (0..values.len())
            .filter(|&i| inside(values, i, Some(&key), Some(&key)))
            .collect();
        match (&key, hits.as_slice()) {
            (_, []) => Err(LabelError::NoLabel {
                dim: dim.to_string(),
                label: label.to_string(),
            }),
            (Key::Time(a, b), _) if a != b => self.isel_many(dim, &hits),
            (_, [first, ..]) => self.isel(dim, *first as isize),
        }
    }

    /// The positions of `labels` along `dim`, in that order (xarray's `sel(dim=[...])`, as the
    /// tutorial's `sel(band=['red', 'green', 'blue'])`); the dim stays. Lazy.
    ///
    /// **Errors**: as [`DataArray::sel`], for the first label missing.
    pub fn sel_many<L: Into<Label> + Clone>(&self, dim: &str, labels: &[L]) -> Result<DataArray, LabelError> {
        let values = &self.index_of(dim)?.values;
        let mut indices = Vec::with_capacity(labels.len());
        for l in labels {
            let label: Label = l.clone().into();
            let key = label.key_for(dim, values)?;
            let i = (0..values.len())
                .find(|&i| inside(values, i, Some(&key), Some(&key)))
                .ok_or_else(|| LabelError::NoLabel {
                    dim: dim.to_string(),
                    label: label.to_string(),
                })?;
            indices.push(i);
        }
        self.isel_many(dim, &indices)
    }

    /// The step of `dim` whose label lies nearest `label`, xarray's `sel(dim=label,
    /// method="nearest", tolerance=...)` (a pixel's time series: `sel_nearest("x", x, None)`
    /// then `"y"`); the dim is dropped. A tie goes to the larger label, as pandas decides; a
    /// time given as text stands for its first instant; `tolerance` is in the coordinate's
    /// units (seconds on a time coordinate). Lazy; O(coordinate length).
    ///
    /// **Errors**: [`LabelError::NotNear`] beyond `tolerance`; [`LabelError::NotMonotonic`]
    /// for an unsorted coordinate (as pandas); [`LabelError::NoDistance`] on names;
    /// [`LabelError::LabelType`] for a label of the wrong kind (checked first).
    pub fn sel_nearest(
        &self,
        dim: &str,
        label: impl Into<Label>,
        tolerance: Option<f64>,
    ) -> Result<DataArray, LabelError> {
        let i = self.nearest(dim, &label.into(), tolerance)?;
        self.isel(dim, i as isize)
    }

    /// The steps of `dim` nearest each of `labels`, in that order (repeats allowed), as
    /// [`DataArray::sel_nearest`]; the dim stays. Lazy.
    ///
    /// **Errors**: as [`DataArray::sel_nearest`], for the first label that fails.
    pub fn sel_nearest_many<L: Into<Label> + Clone>(
        &self,
        dim: &str,
        labels: &[L],
        tolerance: Option<f64>,
    ) -> Result<DataArray, LabelError> {
        let indices = labels
            .iter()
            .map(|l| self.nearest(dim, &l.clone().into(), tolerance))
            .collect::<Result<Vec<_>, _>>()?;
        self.isel_many(dim, &indices)
    }

    /// The position along `dim` nearest `label` (see [`DataArray::sel_nearest`]).
    fn nearest(&self, dim: &str, label: &Label, tolerance: Option<f64>) -> Result<usize, LabelError> {
        let values = &self.index_of(dim)?.values;
        let key = label.key_for(dim, values)?;
        if let CoordValues::Str(_) = values {
            return Err(LabelError::NoDistance {
                dim: dim.to_string(),
                coord_type: values.type_name(),
            });
        }
        let n = values.len();
        sorted(dim, values)?;
        let distance = |i: usize| -> Result<f64, LabelError> {
            match (values, &key) {
                (CoordValues::F64(v), Key::F64(x)) => Ok((v[i] - x).abs()),
                (CoordValues::Time(t), Key::Time(at, _)) => {
                    let d = t[i] - *at;
                    Ok(d.num_nanoseconds()
                        .map_or(d.num_seconds() as f64, |ns| ns as f64 / 1e9)
                        .abs())
                }
                _ => Err(LabelError::NoDistance {
                    dim: dim.to_string(),
                    coord_type: values.type_name(),
                }),
            }
        };
        let mut best: Option<(usize, f64)> = None;
        for i in 0..n {
            let d = distance(i)?;
            // the smaller distance wins; on a tie the larger label (pandas' nearest indexer)
            let better = match best {
                None => !d.is_nan(),
                Some((j, bd)) => d < bd || (d == bd && order(values, i, j) == Ordering::Greater),
            };
            if better {
                best = Some((i, d));
            }
        }
        let (i, d) = best.ok_or_else(|| LabelError::NoLabel {
            dim: dim.to_string(),
            label: label.to_string(),
        })?;
        match tolerance {
            Some(t) if d > t => Err(LabelError::NotNear {
                dim: dim.to_string(),
                label: label.to_string(),
                nearest: values.label(i).to_string(),
                distance: d,
                tolerance: t,
            }),
            _ => Ok(i),
        }
    }

    /// The label slice `start ..= stop` of `dim` (xarray's `.loc[start:stop]`): both ends
    /// included, in the coordinate's order: on a descending coordinate (y) `start` is the
    /// larger value. Ends need not be labels; a slice the wrong way round is empty, as in
    /// xarray. Lazy.
    ///
    /// **Errors**: [`LabelError::NotMonotonic`] for an unsorted coordinate,
    /// [`LabelError::LabelType`] for a label of the wrong kind.
    pub fn loc(&self, dim: &str, start: impl Into<Label>, stop: impl Into<Label>) -> Result<DataArray, LabelError> {
        self.loc_range(dim, Some(start.into()), Some(stop.into()))
    }

    /// [`DataArray::loc`] with either end open (`None` runs to that end of the coordinate).
    ///
    /// **Errors**: as [`DataArray::loc`].
    pub fn loc_range(&self, dim: &str, start: Option<Label>, stop: Option<Label>) -> Result<DataArray, LabelError> {
        let values = &self.index_of(dim)?.values;
        let key = |l: &Option<Label>| l.as_ref().map(|l| l.key_for(dim, values)).transpose();
        let (lo, hi) = (key(&start)?, key(&stop)?);
        let n = values.len();
        let ascending = sorted(dim, values)?;
        let keep: Vec<usize> = (0..n)
            .filter(|&i| {
                if ascending {
                    inside(values, i, lo.as_ref(), hi.as_ref())
                } else {
                    inside(values, i, hi.as_ref(), lo.as_ref())
                }
            })
            .collect();
        let range = match (keep.first(), keep.last()) {
            (Some(&a), Some(&b)) => a..b + 1,
            _ => 0..0,
        };
        self.isel_slice(dim, Slice::range(range.start as isize, range.end as isize))
    }
}

/// Whether `values` ascend (true) or descend (false): [`LabelError::NotMonotonic`] when
/// neither, as label slices and nearest labels need (pandas refuses them too).
fn sorted(dim: &str, values: &CoordValues) -> Result<bool, LabelError> {
    let n = values.len();
    if (1..n).all(|i| order(values, i - 1, i) != Ordering::Greater) {
        Ok(true)
    } else if (1..n).all(|i| order(values, i - 1, i) != Ordering::Less) {
        Ok(false)
    } else {
        Err(LabelError::NotMonotonic { dim: dim.to_string() })
    }
}

/// Whether value `i` lies in the closed interval from `lo` to `hi` (either open when `None`);
/// a time key stands for its whole period.
fn inside(values: &CoordValues, i: usize, lo: Option<&Key>, hi: Option<&Key>) -> bool {
    let above = lo.is_none_or(|k| compare(values, i, k, false) != Ordering::Less);
    let below = hi.is_none_or(|k| compare(values, i, k, true) != Ordering::Greater);
    above && below
}

/// Value `i` against a key: against a period's first instant, or its last when `upper`.
fn compare(values: &CoordValues, i: usize, key: &Key, upper: bool) -> Ordering {
    match (values, key) {
        (CoordValues::F64(v), Key::F64(k)) => v[i].partial_cmp(k).unwrap_or(Ordering::Less),
        (CoordValues::Str(v), Key::Str(k)) => v[i].as_str().cmp(k.as_str()),
        (CoordValues::Time(v), Key::Time(a, b)) => v[i].cmp(if upper { b } else { a }),
        // key_for made the key from these values' type
        _ => Ordering::Less,
    }
}

fn order(values: &CoordValues, i: usize, j: usize) -> Ordering {
    match values {
        CoordValues::F64(v) => v[i].partial_cmp(&v[j]).unwrap_or(Ordering::Less),
        CoordValues::Str(v) => v[i].cmp(&v[j]),
        CoordValues::Time(v) => v[i].cmp(&v[j]),
    }
}
