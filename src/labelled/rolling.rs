//! Moving windows along one or more dims (xarray's `rolling(time=3, center=True,
//! min_periods=1)`): a cloud-gapped time series smoothed by a rolling median, a focal mean over
//! `x` and `y`.
//!
//! A window along one dim is [`Array::rolling`]: the dim made whole in each block, every window
//! reduced as its steps lie (on the device too, but for medians of over 64 steps). Over several dims (a focal window), a window's values at a step are the array
//! shifted by each offset the window spans, NaN where a shift runs off the edge, so a
//! reduction is lazy elementwise work over those shifts, fused into one kernel per block on
//! either backend; the median is one holistic reduction over the shifts stacked
//! on a new axis. Counts, sums, means and extremes of larger windows go dim by dim through
//! the one-dim kernel.

use super::{DataArray, LabelError};
use crate::array::{Array, MovingWindow};
use crate::expr::{Chunks, DType, ReduceOp};

/// Moving windows along some dims, ready to reduce (see [`DataArray::rolling`]).
#[derive(Debug, Clone)]
pub struct Rolling {
    array: DataArray,
    windows: Vec<Window>,
    min_periods: Option<usize>,
}

/// One dim's window: `size` steps, ending at each step or centred on it.
#[derive(Debug, Clone)]
struct Window {
    dim: String,
    size: usize,
    center: bool,
}

impl Window {
    /// The offsets from a step to the steps its window holds, first to last: `-(size-1)..=0`
    /// trailing; centred, `-(size/2)` on, as xarray (an even window reaches one step further
    /// back than forward).
    fn offsets(&self) -> std::ops::RangeInclusive<isize> {
        let size = self.size as isize;
        let first = if self.center { -(size / 2) } else { -(size - 1) };
        first..=first + size - 1
    }
}

/// The most steps a window over several dims may hold when it is reduced over its shifts
/// (medians and variances): each is one shifted copy of the array in the expression (a
/// 31 × 31 focal window). Counts, sums, means and extremes of larger windows go dim by dim.
const MAX_FOCAL_STEPS: usize = 1024;

/// Windows over several dims of more steps than this reduce dim by dim (counts, sums, means,
/// extremes): a pass per dim beats one read of the array per step.
const SEPARABLE_STEPS: usize = 32;

impl DataArray {
    /// Windows of `k` steps along each named dim (xarray's `rolling(time=k)` or
    /// `rolling(y=3, x=3)`), each ending at its step; [`Rolling::center`] centres them and
    /// [`Rolling::min_periods`] sets how many values a window needs (all of them by default,
    /// as xarray's). Reduce with [`Rolling::mean`], `sum`, `min`, `max`, `count`, `prod`,
    /// `median`, `var` or `std`; labels are unchanged.
    ///
    /// Lazy; O(1) until reduced. A window along one dim reduces in one pass per block, the dim made
    /// whole in each block, O(window) per step and pixel ([`Array::rolling`]; `prod` excepted).
    /// Over several dims, each reduction is elementwise work over the window's shifts (one per
    /// step it holds), fused into one kernel per block on either backend; the median stacks the
    /// shifts and reduces them as a median over time. Counts, sums, means and extremes of a
    /// window over 32 steps go dim by dim instead, one pass per dim, on the device too
    /// (O(sum of the sizes) per step, not O(product)).
    ///
    /// **Errors**: [`LabelError::NoDim`]; [`LabelError::Rolling`] for a window of 0, a dim
    /// named twice, or a window over several dims of more than 1024 steps.
    pub fn rolling(&self, windows: &[(&str, usize)]) -> Result<Rolling, LabelError> {
        for (i, &(dim, size)) in windows.iter().enumerate() {
            self.axis(dim)?;
            let bad = |why: &str| LabelError::Rolling {
                dim: dim.to_string(),
                window: size,
                why: why.to_string(),
            };
            if size == 0 {
                return Err(bad("a window holds at least one step"));
            }
            if windows[..i].iter().any(|&(d, _)| d == dim) {
                return Err(bad("the dim is named twice"));
            }
        }
        let steps: usize = windows.iter().map(|&(_, k)| k).product();
        if windows.len() > 1 && steps > MAX_FOCAL_STEPS {
            return Err(LabelError::Rolling {
                dim: windows.iter().map(|&(d, _)| d).collect::<Vec<_>>().join(", "),
                window: steps,
                why: format!(
                    "a window over several dims holds at most {MAX_FOCAL_STEPS} steps (the array is shifted once per step); a gaussian or a coarsen suits wider ones"
                ),
            });
        }
        Ok(Rolling {
            array: self.clone(),
            windows: windows
                .iter()
                .map(|&(dim, size)| Window {
                    dim: dim.to_string(),
                    size,
                    center: false,
                })
                .collect(),
            min_periods: None,
        })
    }
}

impl Rolling {
    /// The windows centred on their steps along every dim (`true`) or ending at them
    /// (`false`, the default), as xarray's `center=`. Free.
    pub fn center(mut self, center: bool) -> Rolling {
        for w in &mut self.windows {
            w.center = center;
        }
        self
    }

    /// The windows along `dim` alone centred or not (xarray's `center={"x": True, ...}`). Free.
    ///
    /// **Errors**: [`LabelError::Rolling`] when `dim` has no window.
    pub fn center_dim(mut self, dim: &str, center: bool) -> Result<Rolling, LabelError> {
        let w = self
            .windows
            .iter_mut()
            .find(|w| w.dim == dim)
            .ok_or_else(|| LabelError::Rolling {
                dim: dim.to_string(),
                window: 0,
                why: "no window along this dim".into(),
            })?;
        w.center = center;
        Ok(self)
    }

    /// A window's result needs at least `n` non-NaN values, else it is NaN (xarray's
    /// `min_periods`; by default every step of the window, so a window running off the edge or
    /// holding a NaN gives NaN). Steps off the edge count as NaN. Free.
    ///
    /// **Errors**: [`LabelError::Rolling`] for `n` of 0 or more than a window holds.
    pub fn min_periods(mut self, n: usize) -> Result<Rolling, LabelError> {
        if n == 0 || n > self.window_len() {
            return Err(LabelError::Rolling {
                dim: self
                    .windows
                    .iter()
                    .map(|w| w.dim.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                window: self.window_len(),
                why: format!("min_periods {n} must be 1 to the window's {} steps", self.window_len()),
            });
        }
        self.min_periods = Some(n);
        Ok(self)
    }

    /// The number of steps a whole window holds (the product over its dims). Free.
    pub fn window_len(&self) -> usize {
        self.windows.iter().map(|w| w.size).product()
    }

    /// The number of non-NaN values of each window, NaN where it is under `min_periods`
    /// (xarray's `count`). Lazy (costs as [`DataArray::rolling`]).
    pub fn count(&self) -> DataArray {
        self.reduce(ReduceOp::Count)
    }

    /// The NaN-skipping sum of each window, NaN where it holds fewer than `min_periods`
    /// values. Lazy (costs as [`DataArray::rolling`]).
    pub fn sum(&self) -> DataArray {
        self.reduce(ReduceOp::NanSum)
    }

    /// The NaN-skipping product of each window, gated as [`Rolling::sum`]. Lazy: elementwise
    /// work over the window's shifts, fused, along one dim too.
    pub fn prod(&self) -> DataArray {
        let shifted = self.shifted();
        let prod = fold(&shifted, 1.0, |a, b| a * b);
        self.gated(&prod, &count_of(&shifted), 1)
    }

    /// The mean of each window's values (its sum over its count), gated as
    /// [`Rolling::sum`]. Lazy (costs as [`DataArray::rolling`]).
    pub fn mean(&self) -> DataArray {
        self.reduce(ReduceOp::NanMean)
    }

    /// The smallest value of each window, gated as [`Rolling::sum`]. Lazy (costs as
    /// [`DataArray::rolling`]).
    pub fn min(&self) -> DataArray {
        self.reduce(ReduceOp::NanMin)
    }

    /// The largest value of each window, gated as [`Rolling::sum`]. Lazy (costs as
    /// [`DataArray::rolling`]).
    pub fn max(&self) -> DataArray {
        self.reduce(ReduceOp::NanMax)
    }

    /// The NaN-skipping median of each window (xarray's, bottleneck's `move_median`), gated
    /// as [`Rolling::sum`]. Lazy (costs as [`DataArray::rolling`]).
    pub fn median(&self) -> DataArray {
        self.reduce(ReduceOp::NanMedian)
    }

    /// The NaN-skipping variance of each window over `count - ddof` (xarray's `var(ddof=)`),
    /// NaN where the window has fewer than `min_periods` values or no more than `ddof`. Two
    /// passes (the mean, then squared deviations), so it does not lose digits as a sum of
    /// squares does. Lazy (costs as [`DataArray::rolling`]).
    pub fn var(&self, ddof: u32) -> DataArray {
        self.reduce(ReduceOp::NanVar { ddof })
    }

    /// The square root of [`Rolling::var`]. Lazy (costs as [`DataArray::rolling`]).
    pub fn std(&self, ddof: u32) -> DataArray {
        self.reduce(ReduceOp::NanStd { ddof })
    }

    /// Every window reduced by `op`: `Count`, `NanSum`, `NanMean`, `NanMin`, `NanMax`,
    /// `NanMedian`, `NanVar` or `NanStd` (xarray's rolling reductions; another op gives an
    /// array whose error says so at compute). Lazy (costs as [`DataArray::rolling`]).
    pub fn reduce(&self, op: ReduceOp) -> DataArray {
        if let [w] = &self.windows[..] {
            let axis = self.array.axis(&w.dim).expect("checked by rolling");
            let window = MovingWindow {
                size: w.size,
                center: w.center,
                min_periods: self.min_periods.unwrap_or(w.size),
            };
            return self.array.relabel(self.array.data.rolling(op, axis as isize, window));
        }
        if let Some(separable) = self.dim_by_dim(op) {
            return separable;
        }
        let shifted = self.shifted();
        let count = count_of(&shifted);
        let sum = || fold(&shifted, 0.0, |a, b| a + b);
        let (value, need) = match op {
            ReduceOp::Count => (count.clone(), 1),
            ReduceOp::NanSum => (sum(), 1),
            ReduceOp::NanMean => (&sum() / &count, 1),
            ReduceOp::NanMin => (fold(&shifted, f32::INFINITY, |a, b| a.minimum(b)), 1),
            ReduceOp::NanMax => (fold(&shifted, f32::NEG_INFINITY, |a, b| a.maximum(b)), 1),
            ReduceOp::NanMedian => (Array::stack(&shifted, 0).reduce(ReduceOp::NanMedian, 0), 1),
            ReduceOp::NanVar { ddof } | ReduceOp::NanStd { ddof } => {
                let mean = &sum() / &count;
                let squares: Vec<Array> = shifted
                    .iter()
                    .map(|s| {
                        let d = s - &mean;
                        &d * &d
                    })
                    .collect();
                let var = &fold(&squares, 0.0, |a, b| a + b) / &(&count - ddof as f32);
                let value = match op {
                    ReduceOp::NanStd { .. } => var.sqrt(),
                    _ => var,
                };
                (value, ddof as usize + 1)
            }
            // the one-dim kernel's error, named the same way
            _ => (self.array.data.rolling(op, 0, MovingWindow::trailing(1)), 1),
        };
        self.gated(&value, &count, need)
    }

    /// A count, sum, mean or extreme over a window of more than [`SEPARABLE_STEPS`] steps,
    /// dim by dim through the one-dim kernel: a window's count is the sum along the last dim
    /// of the counts along the others, its sum the sum of sums, its extreme the extreme of
    /// extremes (each pass's empty windows NaN, which the next skips). O(sum of the sizes) per
    /// step instead of O(product); each pass rounds its sums to f32. `None` for another op or
    /// a smaller window (its shifts fuse into one kernel, on the device too).
    fn dim_by_dim(&self, op: ReduceOp) -> Option<DataArray> {
        if self.window_len() <= SEPARABLE_STEPS {
            return None;
        }
        let along = |first: ReduceOp, then: ReduceOp| -> Array {
            let mut data = self.array.data.clone();
            for (i, w) in self.windows.iter().enumerate() {
                let axis = self.array.axis(&w.dim).expect("checked by rolling");
                let window = MovingWindow {
                    size: w.size,
                    center: w.center,
                    min_periods: 1,
                };
                data = data.rolling(if i == 0 { first } else { then }, axis as isize, window);
            }
            data
        };
        let count = along(ReduceOp::Count, ReduceOp::NanSum);
        let value = match op {
            ReduceOp::Count => count.clone(),
            ReduceOp::NanSum => along(ReduceOp::NanSum, ReduceOp::NanSum),
            ReduceOp::NanMean => &along(ReduceOp::NanSum, ReduceOp::NanSum) / &count,
            ReduceOp::NanMin | ReduceOp::NanMax => along(op, op),
            _ => return None,
        };
        Some(self.gated(&value, &count, 1))
    }

    /// The array seen from every offset of the window (the product over its dims), as floats:
    /// at each step, the value that many steps away, NaN off the edge.
    fn shifted(&self) -> Vec<Array> {
        let mut out = vec![self.array.clone()];
        for w in &self.windows {
            out = out
                .iter()
                .flat_map(|a| {
                    w.offsets()
                        .map(move |o| a.shift(&w.dim, -o).expect("dims checked by rolling"))
                })
                .collect();
        }
        out.into_iter().map(|a| a.data.astype(DType::F32)).collect()
    }

    /// `value` where `count` reaches `min_periods` (and at least `need`), else NaN, labelled
    /// as the array.
    fn gated(&self, value: &Array, count: &Array, need: usize) -> DataArray {
        let need = self.min_periods.unwrap_or(self.window_len()).max(need);
        let nan = Array::full(value.shape(), f32::NAN, Chunks::PerAxis(value.chunks()));
        self.array.relabel(count.ge(need as f32).where_(value, &nan))
    }
}

/// The number of non-NaN values across `shifted`, step by step.
fn count_of(shifted: &[Array]) -> Array {
    let valid: Vec<Array> = shifted.iter().map(|s| s.isnan().not().astype(DType::F32)).collect();
    fold(&valid, 0.0, |a, b| a + b)
}

/// `combine` over `shifted`, each NaN taken as `skip` (the identity of `combine`).
fn fold(shifted: &[Array], skip: f32, combine: impl Fn(&Array, &Array) -> Array) -> Array {
    let mut it = shifted.iter().map(|s| s.fillna(skip));
    let first = it.next().expect("a window holds at least one step");
    it.fold(first, |acc, s| combine(&acc, &s))
}
