//! Linear interpolation onto new coordinate values along a dim (xarray's `interp(time=...)`):
//! a series resampled to regular dates, a profile read between pixel centres.

use super::{Coord, CoordValues, DataArray, LabelError};
use crate::array::Array;

impl DataArray {
    /// The values at `at` along `dim`, linear between the two steps around each (xarray's
    /// `interp({dim: at})`, `method="linear"`, scipy's `interp1d`): `y_lo + (y_hi - y_lo) w`,
    /// `w` the position's fraction of the way between them in coordinate units (times as
    /// nanoseconds, in f64). NaN outside the coordinate's range, and where either neighbour
    /// is NaN (as scipy's, even on a step itself: the neighbours of a position on step `k > 0`
    /// are `k - 1` and `k`). The dim takes `at` as its coordinate; other coordinates along it
    /// are dropped.
    ///
    /// Lazy: two selections of the neighbouring steps (gathers, on the device too) and one
    /// fused elementwise expression; O(steps + `at`) to find the neighbours.
    ///
    /// **Errors**: [`LabelError::NoDim`]; [`LabelError::Interp`] for a dim without a numeric or
    /// time coordinate (or indices), one that does not increase strictly, or `at` of another
    /// kind than the coordinate.
    pub fn interp(&self, dim: &str, at: &CoordValues) -> Result<DataArray, LabelError> {
        let axis = self.axis(dim)?;
        let n = self.shape()[axis];
        let bad = |why: String| LabelError::Interp {
            dim: dim.to_string(),
            why,
        };
        let nanos = |t: &[chrono::DateTime<chrono::Utc>]| -> Vec<f64> {
            t.iter()
                .map(|t| t.timestamp_nanos_opt().map_or(f64::NAN, |ns| ns as f64))
                .collect()
        };
        let coord = self.index_of(dim).ok().map(|c| &c.values);
        let (from, to) = match (coord, at) {
            (None, CoordValues::F64(p)) => ((0..n).map(|i| i as f64).collect(), p.clone()),
            (Some(CoordValues::F64(x)), CoordValues::F64(p)) => (x.clone(), p.clone()),
            (Some(CoordValues::Time(x)), CoordValues::Time(p)) => (nanos(x), nanos(p)),
            (Some(CoordValues::Str(_)), _) => return Err(bad("its labels are names, which have no positions".into())),
            (_, at) => {
                return Err(bad(format!(
                    "the new positions ({}) are not of the coordinate's kind",
                    at.brief()
                )))
            }
        };
        if let Some(i) = from
            .windows(2)
            .position(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return Err(bad(format!(
                "its coordinate must increase strictly (index {i} to {})",
                i + 1
            )));
        }
        if n == 0 {
            return Err(bad("the dim is empty".into()));
        }
        // per new position: the neighbouring steps and the fraction of the way between them
        let (mut lo, mut hi, mut w) = (Vec::new(), Vec::new(), Vec::new());
        for &p in &to {
            let inside = p >= from[0] && p <= from[n - 1];
            // scipy's searchsorted(x, p) - 1, clipped to [0, n - 2]: x[lo] < p <= x[hi]
            let below = from.partition_point(|&x| x < p);
            let l = below.saturating_sub(1).min(n.saturating_sub(2));
            let h = (l + 1).min(n - 1);
            lo.push(l);
            hi.push(h);
            w.push(match (inside, h == l) {
                (false, _) => f32::NAN,
                (true, true) => 0.0,
                (true, false) => ((p - from[l]) / (from[h] - from[l])) as f32,
            });
        }
        let y_lo = self.isel_many(dim, &lo)?;
        let y_hi = self.isel_many(dim, &hi)?;
        let mut shape = vec![1; self.dims.len()];
        shape[axis] = to.len();
        let weights = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), w).expect("one weight per position");
        let block: Vec<usize> = shape.iter().map(|&s| s.max(1)).collect();
        let data = &y_lo.data + &(&(&y_hi.data - &y_lo.data) * &Array::from_ndarray(weights, block));
        let mut out = y_lo.relabel(data);
        out.coords.retain(|c| c.dim.as_deref() != Some(dim));
        out.coords.push(Coord::index(dim, at.clone()));
        Ok(out)
    }
}
