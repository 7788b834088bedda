//! Block aggregation over windows of consecutive steps (xarray's `coarsen(x=4, y=4).mean()`):
//! a coarser raster for display or for matching another grid's resolution.

use super::{Coord, CoordValues, DataArray, LabelError};
use crate::array::{Array, Slice};
use crate::expr::ReduceOp;

/// What to do with the steps left over when a dim's length is not a multiple of its window
/// (xarray's `boundary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// refuse: the length must be a multiple (xarray's default)
    Exact,
    /// drop the steps past the last whole window
    Trim,
}

/// Windows of `k` consecutive steps along some dims, ready to aggregate (see
/// [`DataArray::coarsen`]).
#[derive(Debug, Clone)]
pub struct Coarsen {
    array: DataArray,
    windows: Vec<(String, usize)>,
}

impl DataArray {
    /// Windows of `k` steps along each named dim, xarray's `coarsen(x=k, y=k, boundary=...)`;
    /// aggregate with [`Coarsen::mean`], `sum`, `min`, `max` or `count` (NaN-skipping, as
    /// xarray's on floats). Each coarse label is its window's mean label (the centre of a
    /// coarse pixel, with pixel-centre x/y); with top-left x/y coordinates it is the window's
    /// first, so the labels keep naming top-left corners. The resolution grows by `k` on x and
    /// y. Labels of names along a coarsened dim are dropped. [`Coarsen::median`], `var`, `std`
    /// and [`Coarsen::reduce`] take the rest of strata's reductions. Lazy; O(labels).
    ///
    /// **Errors**: [`LabelError::NoDim`]; [`LabelError::Coarsen`] for a window of 0 or longer
    /// than the dim, or (with [`Boundary::Exact`]) a length that is not a multiple of it.
    pub fn coarsen(&self, windows: &[(&str, usize)], boundary: Boundary) -> Result<Coarsen, LabelError> {
        let mut array = self.clone();
        for (i, &(dim, k)) in windows.iter().enumerate() {
            if windows[..i].iter().any(|&(d, _)| d == dim) {
                return Err(LabelError::Coarsen {
                    dim: dim.to_string(),
                    size: array.shape()[array.axis(dim)?],
                    window: k,
                    why: "the dim is named twice".into(),
                });
            }
            let n = array.shape()[array.axis(dim)?];
            let bad = |why: &str| LabelError::Coarsen {
                dim: dim.to_string(),
                size: n,
                window: k,
                why: why.to_string(),
            };
            if k == 0 || k > n {
                return Err(bad("a window must hold 1 to all of the dim's steps"));
            }
            if !n.is_multiple_of(k) {
                match boundary {
                    Boundary::Exact => return Err(bad("not a multiple (boundary \"trim\" drops the rest)")),
                    Boundary::Trim => array = array.isel_slice(dim, Slice::range(0, (n - n % k) as isize))?,
                }
            }
        }
        Ok(Coarsen {
            array,
            windows: windows.iter().map(|&(d, k)| (d.to_string(), k)).collect(),
        })
    }
}

impl Coarsen {
    /// The NaN-skipping mean of every window (NaN where a window has no value), its sum in
    /// f64.
    pub fn mean(&self) -> DataArray {
        self.reduce(ReduceOp::NanMean)
    }

    /// The NaN-skipping sum of every window (0 for a window of NaN only), in f64.
    pub fn sum(&self) -> DataArray {
        self.reduce(ReduceOp::NanSum)
    }

    /// The smallest non-NaN value of every window.
    pub fn min(&self) -> DataArray {
        self.reduce(ReduceOp::NanMin)
    }

    /// The largest non-NaN value of every window.
    pub fn max(&self) -> DataArray {
        self.reduce(ReduceOp::NanMax)
    }

    /// The number of non-NaN values in every window.
    pub fn count(&self) -> DataArray {
        self.reduce(ReduceOp::Count)
    }

    /// The NaN-skipping median of every window (NaN where it has no value).
    pub fn median(&self) -> DataArray {
        self.reduce(ReduceOp::NanMedian)
    }

    /// The NaN-skipping variance of every window over `n - ddof` (f64 accumulation).
    pub fn var(&self, ddof: u32) -> DataArray {
        self.reduce(ReduceOp::NanVar { ddof })
    }

    /// The NaN-skipping standard deviation of every window over `n - ddof`.
    pub fn std(&self, ddof: u32) -> DataArray {
        self.reduce(ReduceOp::NanStd { ddof })
    }

    /// Every window reduced by `op` (xarray's `coarsen(...).reduce`), any reduction strata
    /// has. The NaN-skipping sums, counts, extremes, means, variances and medians are
    /// [`Array::coarsen`]: blocks cut on window edges, each one pass on the host. The others
    /// (quantiles, NaN-propagating reductions) are one group reduction along a lone dim, else
    /// the window's strided cuts stacked on a new axis and reduced over it (one read of the
    /// array per step a window holds). Lazy.
    pub fn reduce(&self, op: ReduceOp) -> DataArray {
        let a = &self.array;
        let mut windows = vec![1; a.dims.len()];
        for (dim, k) in &self.windows {
            windows[a.axis(dim).expect("checked by coarsen")] = *k;
        }
        if crate::expr::WindowOp::of(op).is_some() {
            return self.coarse_labels(a.data.coarsen(op, &windows));
        }
        self.whole_windows(op)
    }

    /// `op` over each window's values at once.
    fn whole_windows(&self, op: ReduceOp) -> DataArray {
        let a = &self.array;
        if let [(dim, k)] = &self.windows[..] {
            let (axis, labels) = self.window_labels(dim, *k);
            return self.coarse_labels(a.data.group_reduce(op, axis as isize, &labels, labels.len() / k));
        }
        // the window's i-th step along each dim, for every combination: one strided cut each
        let mut cuts = vec![a.data.clone()];
        for (dim, k) in &self.windows {
            let axis = a.axis(dim).expect("checked by coarsen");
            cuts = cuts
                .iter()
                .flat_map(|c| {
                    (0..*k).map(move |o| {
                        let mut s = vec![Slice::all(); c.ndim()];
                        s[axis] = Slice::new(Some(o as isize), None, *k as isize);
                        c.slice(&s)
                    })
                })
                .collect();
        }
        self.coarse_labels(Array::stack(&cuts, 0).reduce(op, 0))
    }

    /// The axis of `dim` and each of its steps' window.
    fn window_labels(&self, dim: &str, k: usize) -> (usize, Vec<usize>) {
        let axis = self.array.axis(dim).expect("checked by coarsen");
        (axis, (0..self.array.shape()[axis]).map(|s| s / k).collect())
    }

    /// `data` (one value per window) under the coarse labels: each coarsened dim's coordinates
    /// one per window, the resolution times the window along x and y.
    fn coarse_labels(&self, data: Array) -> DataArray {
        let a = &self.array;
        let mut out = a.clone();
        for (dim, k) in &self.windows {
            out.coords = out.coords.into_iter().filter_map(|c| coarse(c, dim, *k, a)).collect();
            match dim.as_str() {
                "x" => out.attrs.resolution = out.attrs.resolution.map(|(rx, ry)| (rx * *k as f64, ry)),
                "y" => out.attrs.resolution = out.attrs.resolution.map(|(rx, ry)| (rx, ry * *k as f64)),
                _ => {}
            }
        }
        out.data = data.with_dims(&out.dims);
        out.held = None;
        out
    }
}

/// Coordinate `c` after windows of `k` along `dim`: unchanged off that dim; else one label per
/// window (the mean, or the first for top-left x/y), `None` for names.
fn coarse(c: Coord, dim: &str, k: usize, array: &DataArray) -> Option<Coord> {
    if c.dim.as_deref() != Some(dim) {
        return Some(c);
    }
    let first = array.attrs.xy_coords == crate::geo::XyCoords::TopLeft && (dim == "x" || dim == "y");
    let values = match &c.values {
        CoordValues::F64(v) => CoordValues::F64(
            v.chunks_exact(k)
                .map(|w| if first { w[0] } else { w.iter().sum::<f64>() / k as f64 })
                .collect(),
        ),
        CoordValues::Time(t) => CoordValues::Time(
            t.chunks_exact(k)
                .map(|w| {
                    // the mean offset from the window's first instant: no range limit
                    let d = w
                        .iter()
                        .map(|t| *t - w[0])
                        .fold(chrono::TimeDelta::zero(), |a, b| a + b);
                    w[0] + d / k as i32
                })
                .collect(),
        ),
        CoordValues::Str(_) => return None,
    };
    Some(Coord { values, ..c })
}
