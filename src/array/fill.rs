//! Gap filling along one axis: forward and backward fill (xarray's `ffill`/`bfill`, bottleneck's
//! `push`) and linear interpolation of NaN (xarray's `interpolate_na`): the cloud gaps of a
//! pixel's time series, each one [`AlongOp`] node.

use super::Array;
use crate::expr::AlongOp;

impl Array {
    /// NaN replaced by the last valid value before it along `axis` (xarray's `ffill(dim,
    /// limit)`): at most `limit` NaN in a row are filled (`None`: all), NaN before the first
    /// valid value stay. Lazy; the axis is made whole in each block, then one pass per block
    /// (on the device on a GPU backend), O(1) per element.
    pub fn ffill(&self, axis: isize, limit: Option<usize>) -> Array {
        self.along_axis(axis, AlongOp::Carry { backward: false, limit })
    }

    /// NaN replaced by the next valid value after it along `axis` (xarray's `bfill(dim,
    /// limit)`), as [`Array::ffill`] backwards.
    pub fn bfill(&self, axis: isize, limit: Option<usize>) -> Array {
        self.along_axis(axis, AlongOp::Carry { backward: true, limit })
    }

    /// NaN replaced by linear interpolation between the valid values on either side along
    /// `axis`, at `positions` (one per index, strictly increasing: the coordinate; xarray's
    /// `interpolate_na(dim, method="linear")`, computed as `numpy.interp` in f64, rounded once
    /// to f32). NaN before the first or after the last valid value stay, as does a lane with
    /// fewer than two valid values. `limit` fills only the first `limit` NaN of each gap;
    /// `max_gap` only gaps whose valid ends lie at most that far apart (in position units).
    /// Lazy; the axis is made whole in each block, then one pass per block (on the device on a
    /// GPU backend, within 2e-6 relative), O(gap) per element.
    ///
    /// **Errors** (at compute): `InvalidArgument` for positions that are not one per index,
    /// not finite or not strictly increasing, a zero `limit`, or a negative or NaN `max_gap`.
    pub fn interpolate_na(&self, axis: isize, positions: &[f64], limit: Option<usize>, max_gap: Option<f64>) -> Array {
        let op = AlongOp::Interpolate {
            positions: positions.to_vec(),
            limit,
            max_gap,
        };
        self.along_axis(axis, op)
    }
}
