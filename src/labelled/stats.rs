//! Covariance and correlation of two labelled arrays over dims (xarray's `xr.cov` and
//! `xr.corr`): per pixel, how two time series move together (NDVI against rainfall, one band
//! against another), over the steps where both have a value; and the least-squares line
//! through each pixel's series (xarray's `polyfit`, degree 0 or 1: a greening trend).

use super::{Coord, CoordValues, DataArray, Join, LabelError};
use crate::array::Array;
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

    /// The least-squares polynomial of degree `deg` through each series along `dim`
    /// (xarray's `polyfit(dim, deg, skipna=True)["polyfit_coefficients"]`): the NaN steps of
    /// each series left out, positions from the dim's coordinate (times as nanoseconds since
    /// 1970, as xarray converts them; numbers as they are; no coordinate: 0, 1, 2...). The
    /// result has a `degree` dim first, highest degree first as xarray's (`[1, 0]`: slope, then
    /// intercept), then the other dims. Degree 1 is `cov(t, y) / var(t)` over the valid steps
    /// and `mean(y) - slope mean(t)`; degree 0 the mean. NaN where a series has fewer than
    /// `deg + 1` values (xarray's least squares returns a minimum-norm fit there).
    ///
    /// Lazy: the passes of [`DataArray::cov`] and one variance. The positions are centred in f64
    /// before they become f32, so nanosecond times keep their spacing.
    ///
    /// **Errors**: [`LabelError::NoDim`]; [`LabelError::Polyfit`] for a degree over 1 (a
    /// degree-2 coefficient of nanosecond times is about 1e-36, at the edge of f32) or a dim
    /// labelled by names.
    pub fn polyfit(&self, dim: &str, deg: u32) -> Result<DataArray, LabelError> {
        let axis = self.axis(dim)?;
        let bad = |why: &str| LabelError::Polyfit {
            dim: dim.to_string(),
            why: why.to_string(),
        };
        if deg > 1 {
            return Err(bad(
                "degrees over 1 are not offered: their coefficients of nanosecond times fall out of f32",
            ));
        }
        let n = self.shape()[axis];
        let coord = self.index_of(dim).ok();
        let positions: Vec<f64> = match coord.map(|c| &c.values) {
            None => (0..n).map(|i| i as f64).collect(),
            Some(CoordValues::F64(v)) => v.clone(),
            Some(CoordValues::Time(t)) => t
                .iter()
                .map(|t| t.timestamp_nanos_opt().map_or(f64::NAN, |ns| ns as f64))
                .collect(),
            Some(CoordValues::Str(_)) => return Err(bad("its labels are names, which give no positions")),
        };
        // centred in f64: nanoseconds since 1970 would keep 7 digits in f32, not their spacing
        let centre = positions.iter().sum::<f64>() / n.max(1) as f64;
        let centred = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[n]), |i| (positions[i[0]] - centre) as f32);
        let coords = coord.map(|c| vec![c.clone()]).unwrap_or_default();
        let t = DataArray::new(Array::from_ndarray(centred, [n.max(1)]), &[dim], coords)?;
        // the positions spread over the series (0 * y + t: NaN exactly where y is), so both
        // halves of every pair have this array's dims in its order
        let pairs = Pairs {
            a: &(self * 0.0) + &t,
            b: self.clone(),
            dims: vec![dim.to_string()],
        };
        let mean = |x: &DataArray| x.reduce(ReduceOp::NanMean, &[dim]);
        let mut coefficients = Vec::new();
        if deg == 1 {
            let spread = pairs.a.reduce(ReduceOp::NanVar { ddof: 0 }, &[dim])?;
            let slope = pairs.mean_product()? / spread;
            // the intercept at the centre, moved to position 0
            let intercept = (mean(&pairs.b)? - &slope * &mean(&pairs.a)?) - &slope * centre as f32;
            coefficients.push(slope);
            coefficients.push(intercept);
        } else {
            coefficients.push(mean(&pairs.b)?);
        }
        let first = &coefficients[0];
        let data = Array::stack(&coefficients.iter().map(|c| c.data.clone()).collect::<Vec<_>>(), 0);
        let mut dims = vec!["degree".to_string()];
        dims.extend(first.dims.iter().cloned());
        let mut coords = first.coords.clone();
        let degrees = (0..=deg).rev().map(f64::from).collect();
        coords.push(Coord::index("degree", CoordValues::F64(degrees)));
        Ok(DataArray {
            data: data.with_dims(&dims),
            dims,
            coords,
            name: Some("polyfit_coefficients".into()),
            held: None,
            ..first.clone()
        })
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
