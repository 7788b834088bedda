//! Memory-layout helpers. Element-by-element iteration over `IxDyn` views costs tens of
//! nanoseconds per element, so everything here moves whole rows (last-axis lanes) instead.

use std::borrow::Cow;

use ndarray::{ArrayViewD, ArrayViewMutD, Axis};

/// The view's elements in C order: borrowed when already contiguous, else copied lane by lane
/// (a memcpy per row when rows are contiguous).
pub fn contiguous<T: Copy>(v: ArrayViewD<'_, T>) -> Cow<'_, [T]> {
    if let Some(s) = v.to_slice() {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(v.len());
    if v.ndim() == 0 {
        out.extend(v.iter().copied());
        return Cow::Owned(out);
    }
    for lane in v.lanes(Axis(v.ndim() - 1)) {
        match lane.to_slice() {
            Some(s) => out.extend_from_slice(s),
            None => out.extend(lane.iter().copied()),
        }
    }
    Cow::Owned(out)
}

/// The rows (last-axis lanes) of a view in C order, when each row is contiguous.
pub fn rows<'a, T>(v: ArrayViewD<'a, T>) -> Option<Vec<&'a [T]>> {
    if v.ndim() == 0 {
        return None;
    }
    let last = Axis(v.ndim() - 1);
    if v.len_of(last) > 1 && v.stride_of(last) != 1 {
        return None;
    }
    let (len, lead) = (v.len_of(last), &v.shape()[..v.ndim() - 1]);
    let strides = &v.strides()[..v.ndim() - 1];
    let count: usize = lead.iter().product();
    let mut idx = vec![0usize; lead.len()];
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let offset: isize = idx.iter().zip(strides).map(|(&i, &s)| i as isize * s).sum();
        // SAFETY: `idx` is a valid index of the leading axes and the row's `len` elements are
        // contiguous (stride 1), so the slice lies inside the view, which lives for 'a.
        out.push(unsafe { std::slice::from_raw_parts(v.as_ptr().offset(offset), len) });
        for a in (0..idx.len()).rev() {
            idx[a] += 1;
            if idx[a] < lead[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    Some(out)
}

/// The rows (last-axis lanes) of a mutable view in C order, when each row is contiguous.
pub fn rows_mut<'a, T>(v: &'a mut ArrayViewMutD<'_, T>) -> Option<Vec<&'a mut [T]>> {
    if v.ndim() == 0 {
        return None;
    }
    let last = Axis(v.ndim() - 1);
    if v.len_of(last) > 1 && v.stride_of(last) != 1 {
        return None;
    }
    v.lanes_mut(last).into_iter().map(|lane| lane.into_slice()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array3};

    #[test]
    fn copies_windows_row_by_row() {
        let a = Array3::from_shape_fn((3, 4, 5), |(i, j, k)| (i * 100 + j * 10 + k) as i32).into_dyn();
        let w = a.slice(s![1.., 1..3, 2..]).into_dyn();
        assert_eq!(contiguous(w.view()).to_vec(), w.iter().copied().collect::<Vec<_>>());
        let mut b = a.clone();
        let mut v = b.slice_mut(s![.., 1..3, 2..]).into_dyn();
        let rows = rows_mut(&mut v).unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[0].len(), 3);
    }
}
