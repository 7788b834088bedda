//! Separable correlation in "valid" mode over a block already extended by its halo.
//!
//! The planner extends every block by the filter radius with the boundary mode applied, so
//! each pass here only shrinks one axis by `2r`. Each output element sums `w[k] * x[i + k]`
//! for k = 0..2r in that order, so results are bitwise identical whatever the chunking.
//! Along a non-last axis the sum is a sequence of axpy passes over contiguous rows (vectorised);
//! along the last axis the same axpy runs along the row.

use std::mem::MaybeUninit;
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

/// Runs the passes in order over the extended block. With a constant boundary, positions
/// outside the array along axes not yet filtered are reset to the constant after each pass:
/// scipy pads each 1-D pass with the constant, not with the filtered constant.
pub fn separable(
    x: &ArrayViewD<'_, f32>,
    passes: &[(usize, Arc<Vec<f32>>)],
    constant: Option<&(f32, Vec<Range<usize>>)>,
) -> ArrayD<f32> {
    let nd = x.ndim();
    if nd >= 2 && !passes.is_empty() && passes.iter().all(|(a, _)| *a + 2 >= nd) {
        let one = Arc::new(vec![1.0f32]);
        let wy = passes.iter().find(|(a, _)| *a == nd - 2).map_or(&one, |(_, w)| w);
        let wx = passes.iter().find(|(a, _)| *a == nd - 1).map_or(&one, |(_, w)| w);
        let fill = constant
            .filter(|_| wx.len() > 1)
            .map(|(c, inside)| (*c, inside[nd - 1].clone()));
        return last_two_axes(x, wy, wx, fill);
    }
    let mut cur: Option<ArrayD<f32>> = None;
    for (done, (axis, w)) in passes.iter().enumerate() {
        let next = correlate_valid(&cur.as_ref().map_or_else(|| x.view(), |c| c.view()), *axis, w);
        let mut next = next;
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

/// Output rows per strip: the strip's vertical result (rows × extended width) stays in L2.
const STRIP_ROWS: usize = 8;

thread_local! {
    static STRIP: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Both passes over the last two axes, strip by strip: the vertical pass of a few output rows
/// goes to a small per-thread buffer, the horizontal pass from there to the output. No
/// intermediate array, so no page faults; each output element sums in the same order as
/// [`correlate_valid`] (0 + w0 x0 + w1 x1 + ...), so both paths agree bitwise.
fn last_two_axes(x: &ArrayViewD<'_, f32>, wy: &[f32], wx: &[f32], fill: Option<(f32, Range<usize>)>) -> ArrayD<f32> {
    let data = contiguous(x.view());
    let nd = x.ndim();
    let (hy, wxt) = (x.shape()[nd - 2], x.shape()[nd - 1]);
    let (h, w) = (hy.saturating_sub(wy.len() - 1), wxt.saturating_sub(wx.len() - 1));
    let batch: usize = x.shape()[..nd - 2].iter().product();
    let mut shape = x.shape().to_vec();
    shape[nd - 2] = h;
    shape[nd - 1] = w;
    let n = batch * h * w;
    let mut out: Vec<f32> = Vec::with_capacity(n);
    if n > 0 {
        out.spare_capacity_mut()[..n]
            .par_chunks_mut(h * w)
            .enumerate()
            .for_each(|(b, ob)| {
                let plane = &data[b * hy * wxt..(b + 1) * hy * wxt];
                ob.par_chunks_mut(STRIP_ROWS * w).enumerate().for_each(|(s, os)| {
                    STRIP.with_borrow_mut(|tmp| {
                        let rows = os.len() / w;
                        tmp.clear();
                        tmp.resize(rows * wxt, 0.0);
                        for r in 0..rows {
                            let t = &mut tmp[r * wxt..(r + 1) * wxt];
                            let i = s * STRIP_ROWS + r;
                            for (k, &wk) in wy.iter().enumerate() {
                                let src = &plane[(i + k) * wxt..(i + k + 1) * wxt];
                                t.iter_mut().zip(src).for_each(|(d, &v)| *d += wk * v);
                            }
                            if let Some((c, inside)) = &fill {
                                t[..inside.start.min(wxt)].fill(*c);
                                t[inside.end.min(wxt)..].fill(*c);
                            }
                            let o = &mut os[r * w..(r + 1) * w];
                            o.iter_mut().for_each(|d| *d = MaybeUninit::new(0.0));
                            // SAFETY: every element was just initialised.
                            let o = unsafe { &mut *(o as *mut [MaybeUninit<f32>] as *mut [f32]) };
                            for (k, &wk) in wx.iter().enumerate() {
                                o.iter_mut().zip(&t[k..k + w]).for_each(|(d, &v)| *d += wk * v);
                            }
                        }
                    })
                });
            });
        // SAFETY: the parallel loops above wrote all n elements.
        unsafe { out.set_len(n) };
    }
    ArrayD::from_shape_vec(IxDyn(&shape), out).expect("shape")
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
