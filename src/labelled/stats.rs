//! Covariance and correlation of two labelled arrays over dims (xarray's `xr.cov` and
//! `xr.corr`): per pixel, how two time series move together (NDVI against rainfall, one band
//! against another), over the steps where both have a value.

use super::{DataArray, Join, LabelError};
use crate::expr::ReduceOp;

impl DataArray {
    /// The covariance of `self` and `other` over `dims` (`None`: every dim), as xarray's
    /// `xr.cov(a, b, dim, ddof)`: the two are lined up by label (inner join) and broadcast by
    /// dim name; only the positions where both have a value count; each is demeaned by its
    /// own mean over those positions; the mean of the products is scaled by `n / (n - ddof)`
    /// (`n` the count of pairs). NaN where no pair is left, and where `n == ddof` (0 / 0, as
    /// xarray's). xarray's default `ddof` is 1.
    ///
    /// Lazy; its passes over the data are the means, the count and the mean of the products
    /// (reductions accumulate in f64, the demeaned values are f32, as xarray's on f32 data).
    ///
    /// **Errors**: [`LabelError::NoDim`] for a dim neither array has; the alignment's errors.
    pub fn cov(&self, other: &DataArray, dims: Option<&[&str]>, ddof: u32) -> Result<DataArray, LabelError> {
        let pairs = Pairs::of(self, other, dims)?;
        let dims = pairs.dims();
        let n = pairs.a.reduce(ReduceOp::Count, &dims)?;
        // n / (n - ddof): inf at n == ddof, so 0 there gives NaN as xarray's
        let adjust = &n / (&n - ddof as f32);
        Ok(pairs.mean_product()? * adjust)
    }

    /// The Pearson correlation of `self` and `other` over `dims` (`None`: every dim), as
    /// xarray's `xr.corr(a, b, dim)`: the covariance of the pairs where both have a value
    /// (see [`DataArray::cov`]) over the product of their standard deviations. NaN where no
    /// pair is left or a series is constant over its pairs (0 / 0).
    ///
    /// Lazy; the passes of [`DataArray::cov`] and the two standard deviations.
    ///
    /// **Errors**: as [`DataArray::cov`].
    pub fn corr(&self, other: &DataArray, dims: Option<&[&str]>) -> Result<DataArray, LabelError> {
        let pairs = Pairs::of(self, other, dims)?;
        let dims = pairs.dims();
        let std = |x: &DataArray| x.reduce(ReduceOp::NanStd { ddof: 0 }, &dims);
        Ok(pairs.mean_product()? / (std(&pairs.a)? * std(&pairs.b)?))
    }
}

/// Two arrays lined up and broadcast, each NaN wherever either is: the pairs a covariance
/// reads.
struct Pairs {
    a: DataArray,
    b: DataArray,
    dims: Vec<String>,
}

impl Pairs {
    fn of(left: &DataArray, right: &DataArray, dims: Option<&[&str]>) -> Result<Pairs, LabelError> {
        let (left, right) = left.align(right, Join::Inner)?;
        let valid = left.isnan().not().and(&right.isnan().not());
        let a = left.where_(&valid, f32::NAN);
        let b = right.where_(&valid, f32::NAN);
        let dims: Vec<String> = match dims {
            Some(d) => d.iter().map(|d| d.to_string()).collect(),
            None => a.dims().to_vec(),
        };
        for d in &dims {
            a.axis(d)?;
        }
        Ok(Pairs { a, b, dims })
    }

    fn dims(&self) -> Vec<&str> {
        self.dims.iter().map(String::as_str).collect()
    }

    /// The mean over the dims of the demeaned products (the covariance with `ddof` 0).
    fn mean_product(&self) -> Result<DataArray, LabelError> {
        let dims = self.dims();
        let da = &self.a - &self.a.reduce(ReduceOp::NanMean, &dims)?;
        let db = &self.b - &self.b.reduce(ReduceOp::NanMean, &dims)?;
        (&da * &db).reduce(ReduceOp::NanMean, &dims)
    }
}
