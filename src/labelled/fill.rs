//! Gap filling along a named dim, as xarray's `ffill`, `bfill` and `interpolate_na`: the cloud
//! gaps of each pixel's time series filled from its neighbours in time.

use super::{CoordValues, DataArray, LabelError};

/// The keywords of [`DataArray::interpolate_na`], xarray's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterpolateNa {
    /// interpolate at the dim's coordinate values (xarray's `use_coordinate=True`, the
    /// default: uneven acquisition dates weigh by time) rather than at indices 0, 1, 2...
    pub use_coordinate: bool,
    /// fill at most the first `limit` NaN of each gap (`None`: all)
    pub limit: Option<usize>,
    /// fill only gaps whose valid ends lie at most this far apart: in the coordinate's units,
    /// seconds on a time coordinate, indices without `use_coordinate`
    pub max_gap: Option<f64>,
}

impl Default for InterpolateNa {
    fn default() -> Self {
        InterpolateNa {
            use_coordinate: true,
            limit: None,
            max_gap: None,
        }
    }
}

impl DataArray {
    /// NaN replaced by the last valid value before it along `dim` (xarray's `ffill(dim,
    /// limit)`): at most `limit` NaN in a row (`None`: all); NaN before the first valid value
    /// stay. Lazy: the dim is made whole in each block, then one pass per block (on the device
    /// on a GPU backend).
    ///
    /// **Errors**: [`LabelError::NoDim`]. A zero `limit` fails at compute.
    pub fn ffill(&self, dim: &str, limit: Option<usize>) -> Result<DataArray, LabelError> {
        Ok(self.relabel(self.data.ffill(self.axis(dim)? as isize, limit)))
    }

    /// NaN replaced by the next valid value after it along `dim` (xarray's `bfill(dim,
    /// limit)`), as [`DataArray::ffill`] backwards.
    ///
    /// **Errors**: [`LabelError::NoDim`]. A zero `limit` fails at compute.
    pub fn bfill(&self, dim: &str, limit: Option<usize>) -> Result<DataArray, LabelError> {
        Ok(self.relabel(self.data.bfill(self.axis(dim)? as isize, limit)))
    }

    /// NaN replaced by linear interpolation along `dim` between the valid values on either
    /// side (xarray's `interpolate_na(dim, method="linear")`): at the coordinate's values by
    /// default (times as nanoseconds, as xarray converts them), so a gap between acquisitions
    /// 16 and 32 days apart weighs by days. NaN before the first or after the last valid value
    /// stay, as does a pixel with fewer than two. Computed in f64 as `numpy.interp`, rounded
    /// once to f32 (on a GPU backend, on the device in f32 pairs, within 2e-6 relative). Lazy:
    /// the dim is made whole in each block, then one pass per block.
    ///
    /// **Errors**: [`LabelError::NoDim`]; [`LabelError::Interpolate`] for a coordinate of
    /// names, or one that does not increase strictly (xarray refuses both). A zero `limit` or a
    /// negative `max_gap` fails at compute.
    pub fn interpolate_na(&self, dim: &str, how: &InterpolateNa) -> Result<DataArray, LabelError> {
        let axis = self.axis(dim)?;
        let n = self.shape()[axis];
        let coord = self.index_of(dim).ok().filter(|_| how.use_coordinate);
        let (positions, per_second) = match coord.map(|c| &c.values) {
            None => ((0..n).map(|i| i as f64).collect::<Vec<_>>(), 1.0),
            Some(CoordValues::F64(v)) => (v.clone(), 1.0),
            Some(CoordValues::Time(t)) => (
                t.iter()
                    .map(|t| t.timestamp_nanos_opt().map_or(f64::NAN, |ns| ns as f64))
                    .collect(),
                1e9,
            ),
            Some(CoordValues::Str(_)) => {
                return Err(LabelError::Interpolate {
                    dim: dim.to_string(),
                    why: "its labels are names, which have no distance (use_coordinate=false interpolates by index)"
                        .into(),
                })
            }
        };
        if let Some(i) = positions
            .windows(2)
            .position(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
        {
            return Err(LabelError::Interpolate {
                dim: dim.to_string(),
                why: format!("its coordinate must increase strictly (index {i} to {})", i + 1),
            });
        }
        let max_gap = how.max_gap.map(|g| g * per_second);
        Ok(self.relabel(self.data.interpolate_na(axis as isize, &positions, how.limit, max_gap)))
    }
}
