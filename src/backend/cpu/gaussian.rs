//! Separable correlation in "valid" mode over a block already extended by its halo.
//!
//! The planner extends every block by the filter radius with the boundary mode applied, so
//! each pass here only shrinks one axis by `2r`. Each output element sums `w[k] * x[i + k]`
//! for k = 0..2r in that order, so results are bitwise identical whatever the chunking.
//! Along a non-last axis the sum is a sequence of axpy passes over contiguous rows (vectorised);
//! along the last axis the same axpy runs along the row.

use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Slice};

use super::layout::contiguous;
use rayon::prelude::*;

/// Correlates `x` with `weights` (length 2r+1) along `axis`, keeping only positions whose
/// window lies inside `x`: the axis shrinks by 2r. Parallel over output rows.
pub fn correlate_valid(x: &ArrayViewD<'_, f32>, axis: usize, weights: &[f32]) -> ArrayD<f32> {
    let data = contiguous(x.view());
    let shape = x.shape().to_vec();
    let r2 = weights.len() - 1;
    let n = shape[axis];
    let n_out = n.saturating_sub(r2);
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut out_shape = shape.clone();
    out_shape[axis] = n_out;
    let mut out = vec![0f32; outer * n_out * inner];
    if out.is_empty() {
        return ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("shape");
    }
    if inner == 1 {
        out.par_chunks_mut(n_out).enumerate().for_each(|(o, dst)| {
            let row = &data[o * n..(o + 1) * n];
            for (k, &w) in weights.iter().enumerate() {
                for (d, &v) in dst.iter_mut().zip(&row[k..k + n_out]) {
                    *d += w * v;
                }
            }
        });
    } else {
        out.par_chunks_mut(inner).enumerate().for_each(|(q, dst)| {
            let (o, i) = (q / n_out, q % n_out);
            for (k, &w) in weights.iter().enumerate() {
                let src = &data[(o * n + i + k) * inner..(o * n + i + k + 1) * inner];
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d += w * v;
                }
            }
        });
    }
    ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("shape")
}

/// Runs the passes in order over the extended block (the general path: gaussians over the
/// last two axes run in `tiles`, reading halos in place). With a constant boundary, positions
/// outside the array along axes not yet filtered are reset to the constant after each pass:
/// scipy pads each 1-D pass with the constant, not with the filtered constant.
pub fn separable(
    x: &ArrayViewD<'_, f32>,
    passes: &[(usize, Arc<Vec<f32>>)],
    constant: Option<&(f32, Vec<Range<usize>>)>,
) -> ArrayD<f32> {
    let mut cur: Option<ArrayD<f32>> = None;
    for (done, (axis, w)) in passes.iter().enumerate() {
        let mut next = correlate_valid(&cur.as_ref().map_or_else(|| x.view(), |c| c.view()), *axis, w);
        if let Some((c, inside)) = constant {
            for (later, _) in &passes[done + 1..] {
                let range = &inside[*later];
                let n = next.shape()[*later];
                next.slice_axis_mut(Axis(*later), Slice::from(0..range.start)).fill(*c);
                next.slice_axis_mut(Axis(*later), Slice::from(range.end.min(n)..n))
                    .fill(*c);
            }
        }
        cur = Some(next);
    }
    cur.unwrap_or_else(|| x.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn valid_correlation_by_hand() {
        let x = array![[1.0f32, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0], [5.0, 5.0, 5.0, 5.0]].into_dyn();
        let w = [0.25f32, 0.5, 0.25];
        let along_x = correlate_valid(&x.view(), 1, &w);
        assert_eq!(along_x, array![[2.0f32, 3.0], [20.0, 30.0], [5.0, 5.0]].into_dyn());
        let along_y = correlate_valid(&x.view(), 0, &w);
        assert_eq!(along_y, array![[6.5f32, 11.75, 17.0, 22.25]].into_dyn());
    }
}
