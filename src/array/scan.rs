//! Running sums and products along one axis (xarray's `cumsum`/`cumprod`, numpy's
//! `nancumsum`/`nancumprod`), as one [`AlongOp::Scan`] node.

use super::Array;
use crate::expr::{AlongOp, ScanOp};

impl Array {
    /// The running sum along `axis` (xarray's `cumsum(dim)`): element `t` is the sum of steps
    /// `0..=t`. With `skipna` NaN counts as 0, as numpy's `nancumsum` (a NaN step repeats
    /// the total so far, leading NaN give 0); without, a NaN makes every later step NaN.
    /// Accumulated in f64, each step rounded once to f32 (numpy's f32 `cumsum` adds in f32, so
    /// it drifts from this by its own rounding over long axes).
    ///
    /// Lazy; the axis is made whole in each block (dask-backed xarray scans across blocks
    /// instead), then one pass per block (on the device on a GPU backend, as TwoSum pairs),
    /// O(1) per element.
    pub fn cumsum(&self, axis: isize, skipna: bool) -> Array {
        self.along_axis(
            axis,
            AlongOp::Scan {
                op: ScanOp::Sum,
                skipna,
            },
        )
    }

    /// The running product along `axis` (xarray's `cumprod(dim)`), as [`Array::cumsum`]
    /// with NaN counting as 1 under `skipna` (numpy's `nancumprod`).
    pub fn cumprod(&self, axis: isize, skipna: bool) -> Array {
        self.along_axis(
            axis,
            AlongOp::Scan {
                op: ScanOp::Prod,
                skipna,
            },
        )
    }
}
