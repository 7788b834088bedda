//! Moving windows along one axis (xarray's `rolling(time=k, center=..., min_periods=...)`,
//! bottleneck's `move_mean`, `move_median`...): a cloud-gapped time series smoothed pixel by
//! pixel, as one [`AlongOp::Rolling`] node.

use super::Array;
use crate::expr::{AlongOp, MovingWindow, ReduceOp};

impl Array {
    /// `op` over the moving window at every step along `axis` (xarray's
    /// `rolling(dim=k, center=..., min_periods=...).mean()` and so on): NaN where a window
    /// holds fewer than `min_periods` non-NaN values (and, for a variance, no more than
    /// `ddof`); the shape is unchanged. `op` is one of `Count`, `NanSum`, `NanMean`, `NanMin`,
    /// `NanMax`, `NanVar`, `NanStd` and `NanMedian`. Sums, means and variances accumulate in
    /// f64 (variances in two passes), rounded once.
    ///
    /// Lazy; the axis is made whole in each block, then each block is one pass (on the device
    /// on a GPU backend, but for medians of over 64 steps), O(`size`) per step
    /// and pixel (a median sorts each window, O(`size`²) with a vectorised network up to 16
    /// steps).
    ///
    /// **Errors** (at compute): `InvalidArgument` for another op, a window of 0 or a
    /// `min_periods` outside 1 to `size`.
    pub fn rolling(&self, op: ReduceOp, axis: isize, window: MovingWindow) -> Array {
        self.along_axis(axis, AlongOp::Rolling { op, window })
    }
}

#[cfg(test)]
mod tests {
    use crate::expr::MovingWindow;

    #[test]
    fn bad_windows_are_errors_of_the_array() {
        let a = crate::Array::from_ndarray(ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[4, 3])), [2, 3]);
        let w = |size, min_periods| MovingWindow {
            size,
            center: false,
            min_periods,
        };
        for (op, window, why) in [
            (crate::ReduceOp::Median, w(2, 1), "not a moving-window reduction"),
            (crate::ReduceOp::NanMean, w(0, 1), "at least one step"),
            (crate::ReduceOp::NanMean, w(3, 0), "min_periods 0"),
            (crate::ReduceOp::NanMean, w(3, 4), "min_periods 4"),
        ] {
            let err = a.rolling(op, 0, window).check().unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        }
        assert!(
            a.rolling(crate::ReduceOp::NanMean, 2, w(2, 1)).check().is_err(),
            "no axis 2"
        );
        // a mask rolls as 0/1 floats
        let mask = a.eq_scalar(0.0).rolling(crate::ReduceOp::NanSum, 0, w(2, 1));
        assert_eq!(
            mask.compute().unwrap().into_raw_vec_and_offset().0,
            [1., 1., 1., 2., 2., 2., 2., 2., 2., 2., 2., 2.]
        );
    }
}
