//! Computing labelled arrays: results come back as labelled in-memory arrays (xarray's
//! `.compute()`), or as plain ndarrays (`.values`).

use ndarray::{ArrayD, ArrayViewD};

use super::{DataArray, LabelError};
use crate::array::{compute_many, Array};
use crate::exec::{ComputeOptions, ExecReport};
use crate::expr::DType;

impl DataArray {
    /// Computes the values with default options and returns them labelled as `self`, held in
    /// memory (xarray's `.compute()`): later operations read them instead of recomputing.
    /// Costs the computation plus the result's `nbytes`.
    ///
    /// **Errors**: any build, plan or execution error; the [`LabelError`] kept from building
    /// (operands whose labels differed).
    pub fn compute(&self) -> crate::Result<DataArray> {
        Ok(self.compute_with(&ComputeOptions::default())?.0)
    }

    /// [`DataArray::compute`] with options, and the run's report.
    ///
    /// **Errors**: as [`DataArray::compute`].
    pub fn compute_with(&self, options: &ComputeOptions) -> crate::Result<(DataArray, ExecReport)> {
        let (mut out, report) = compute_all(&[self], options)?;
        Ok((out.remove(0), report))
    }

    /// The values as an ndarray (numpy's `.values`; masks as 0.0/1.0): a copy of the held
    /// values of a computed array, else computed with default options.
    ///
    /// **Errors**: as [`DataArray::compute`].
    pub fn values(&self) -> crate::Result<ArrayD<f32>> {
        self.check_labels()?;
        match &self.held {
            Some(v) => Ok(v.to_owned()),
            None => self.data.compute(),
        }
    }

    /// The values of a mask as bytes (0 or 1), from the held values or computed; other values
    /// are cast as [`Array::astype`] casts them (truncated, saturated, NaN → 0).
    ///
    /// **Errors**: as [`DataArray::compute`].
    pub fn mask_values(&self) -> crate::Result<ArrayD<u8>> {
        self.check_labels()?;
        match &self.held {
            Some(v) if self.data.dtype() == DType::U8 => Ok(v.mapv(|x| u8::from(x != 0.0))),
            _ => self.data.compute_mask(),
        }
    }

    /// A view of the held values of a computed array (`None` for a lazy one). Free.
    pub fn held(&self) -> Option<ArrayViewD<'_, f32>> {
        self.held.as_ref().map(|v| v.view())
    }

    /// Computes and keeps the blocks in memory, labels unchanged (dask's `persist`).
    ///
    /// **Errors**: as [`DataArray::compute`].
    pub fn persist(&self) -> crate::Result<DataArray> {
        self.check_labels()?;
        Ok(self.relabel(self.data.persist()?))
    }

    /// The first error met while building this array, without computing anything: operands
    /// whose labels or dims could not be lined up (the differing labels named), then errors of
    /// the array underneath (shapes, axes). Such an array's `shape()` is empty; this says why.
    /// Free.
    ///
    /// **Errors**: [`crate::Error::Label`] or [`crate::Error::Plan`].
    pub fn check(&self) -> crate::Result<()> {
        self.check_labels()?;
        self.data.check()?;
        Ok(())
    }

    /// The labelling error kept from building, if any. Free.
    ///
    /// **Errors**: [`LabelError`] (operands whose labels differed, say).
    pub(super) fn check_labels(&self) -> Result<(), LabelError> {
        match &self.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// `values` wrapped as the in-memory data of `self`'s labels, chunked as `self` was.
    pub(super) fn holding(&self, values: ArrayD<f32>) -> DataArray {
        let chunks: Vec<usize> = self
            .data
            .grid()
            .map(|g| g.max_block_shape().to_vec())
            .unwrap_or_else(|| values.shape().to_vec())
            .into_iter()
            .map(|n| n.max(1))
            .collect();
        let values = values.into_shared();
        let data = if self.data.dtype() == DType::U8 {
            Array::from_mask(values.mapv(|v| v != 0.0), chunks)
        } else {
            Array::from_shared(values.clone(), chunks)
        };
        DataArray {
            held: Some(values),
            ..self.relabel(data)
        }
    }
}

/// Computes several labelled arrays in one run, sharing their common work (a stack's reads,
/// say), and returns them labelled and in memory, in order, with the run's report.
///
/// **Errors**: the first build, plan or execution error, or labelling error kept from building.
pub fn compute_all(arrays: &[&DataArray], options: &ComputeOptions) -> crate::Result<(Vec<DataArray>, ExecReport)> {
    for a in arrays {
        a.check_labels()?;
    }
    let data: Vec<&Array> = arrays.iter().map(|a| &a.data).collect();
    let (values, report) = compute_many(&data, options)?;
    let out = arrays.iter().zip(values).map(|(a, v)| a.holding(v)).collect();
    Ok((out, report))
}
