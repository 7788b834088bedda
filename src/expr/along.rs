//! Work along one axis that needs the axis whole: running scans, gap fills and moving windows
//! (xarray's `cumsum`, `ffill`, `interpolate_na`, `rolling(time=k)`), as plain data. A backend
//! runs each over the runs of pixels of a block that holds the axis whole; a job ships it to
//! a worker as it is.

use serde::{Deserialize, Serialize};

use super::{ExprError, ReduceOp};

/// A moving window along one axis: `size` steps ending at each step (or centred on it, an
/// even window reaching one step further back than forward, as xarray's), whose result needs
/// `min_periods` non-NaN values (xarray's `min_periods`; steps off the edge count as NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovingWindow {
    /// steps in a window, at least 1
    pub size: usize,
    /// centred on its step (`true`) or ending at it
    pub center: bool,
    /// non-NaN values a window needs for a result, 1 to `size`
    pub min_periods: usize,
}

impl MovingWindow {
    /// A window of `size` steps ending at each step that needs all of them (xarray's
    /// `rolling(dim=size)`).
    pub fn trailing(size: usize) -> MovingWindow {
        MovingWindow {
            size,
            center: false,
            min_periods: size,
        }
    }

    /// The offset from a step to the first step of its window.
    pub(crate) fn first(&self) -> isize {
        let size = self.size as isize;
        if self.center {
            -(size / 2)
        } else {
            1 - size
        }
    }

    /// The steps of the window at step `t` of `n`: `lo..hi`, clipped to the axis.
    pub(crate) fn steps(&self, t: usize, n: usize) -> (usize, usize) {
        let lo = t as isize + self.first();
        let hi = lo + self.size as isize;
        (lo.clamp(0, n as isize) as usize, hi.clamp(0, n as isize) as usize)
    }
}

/// What a window reduces to: the reductions moving windows and `coarsen` take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum WindowOp {
    Count,
    Sum,
    Mean,
    Min,
    Max,
    Var { ddof: u32, sqrt: bool },
    Median,
}

impl WindowOp {
    /// The window reduction of `op`, if it is one.
    pub(crate) fn of(op: ReduceOp) -> Option<WindowOp> {
        Some(match op {
            ReduceOp::Count => WindowOp::Count,
            ReduceOp::NanSum => WindowOp::Sum,
            ReduceOp::NanMean => WindowOp::Mean,
            ReduceOp::NanMin => WindowOp::Min,
            ReduceOp::NanMax => WindowOp::Max,
            ReduceOp::NanVar { ddof } => WindowOp::Var { ddof, sqrt: false },
            ReduceOp::NanStd { ddof } => WindowOp::Var { ddof, sqrt: true },
            ReduceOp::NanMedian => WindowOp::Median,
            _ => return None,
        })
    }

    /// The non-NaN values a window of `window` needs for a result (a variance also more
    /// than `ddof`).
    pub(crate) fn need(self, window: &MovingWindow) -> u32 {
        match self {
            WindowOp::Var { ddof, .. } => window.min_periods.max(ddof as usize + 1),
            _ => window.min_periods,
        }
        .clamp(1, u32::MAX as usize) as u32
    }
}

/// A running scan's accumulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScanOp {
    /// running sum (`cumsum`)
    Sum,
    /// running product (`cumprod`)
    Prod,
}

/// One kind of work along an axis held whole; every output step depends on the steps of the
/// same pixel only, so blocks may be cut anywhere across the other axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AlongOp {
    /// numpy's `nancumsum`/`cumsum` (`nancumprod`/`cumprod`): step `t` is the total of steps
    /// `0..=t`, in f64, rounded once; with `skipna` NaN counts as the identity, without, it
    /// makes every later step NaN
    Scan {
        /// sum or product
        op: ScanOp,
        /// NaN skipped (`nancumsum`) or propagated (`cumsum`)
        skipna: bool,
    },
    /// bottleneck's `push` (xarray's `ffill`, or `bfill` with `backward`): each NaN takes the
    /// last valid value seen, when at most `limit` NaN (itself included) lie since it
    Carry {
        /// from the next valid value (`bfill`) instead of the last
        backward: bool,
        /// the most NaN in a row filled (`None`: all)
        limit: Option<usize>,
    },
    /// numpy's `interp` between the valid neighbours at `positions` (xarray's linear
    /// `interpolate_na`): at most the first `limit` NaN of a gap, only gaps whose valid ends
    /// lie at most `max_gap` apart
    Interpolate {
        /// one position per index, strictly increasing (the coordinate)
        positions: Vec<f64>,
        /// the most NaN filled from a gap's start (`None`: all)
        limit: Option<usize>,
        /// the widest gap filled, in position units (`None`: any)
        max_gap: Option<f64>,
    },
    /// `op` (a NaN-skipping window reduction: count, sum, mean, min, max, var, std, median)
    /// over the moving window at every step
    Rolling {
        /// the reduction
        op: ReduceOp,
        /// the window
        window: MovingWindow,
    },
}

impl AlongOp {
    /// The name xarray gives it.
    pub fn name(&self) -> &'static str {
        match self {
            AlongOp::Scan { op: ScanOp::Sum, .. } => "cumsum",
            AlongOp::Scan { op: ScanOp::Prod, .. } => "cumprod",
            AlongOp::Carry { backward: false, .. } => "ffill",
            AlongOp::Carry { backward: true, .. } => "bfill",
            AlongOp::Interpolate { .. } => "interpolate_na",
            AlongOp::Rolling { .. } => "rolling",
        }
    }

    /// Whether it can run over an axis of `n` steps: an `InvalidArgument` naming what is
    /// wrong (positions that are not one per index, not finite or not strictly increasing; a
    /// zero `limit`; a negative or NaN `max_gap`; a rolling op that is not a window
    /// reduction, an empty window or a `min_periods` outside 1 to its size). O(n).
    pub fn check(&self, n: usize) -> Result<(), ExprError> {
        let bad = |reason: String| {
            Err(ExprError::InvalidArgument {
                op: self.name().to_string(),
                reason,
            })
        };
        let limit = match self {
            AlongOp::Scan { .. } => None,
            AlongOp::Carry { limit, .. } => *limit,
            AlongOp::Interpolate {
                positions,
                limit,
                max_gap,
            } => {
                if positions.len() != n {
                    return bad(format!("{} positions for an axis of {n}", positions.len()));
                }
                if let Some(i) = positions
                    .windows(2)
                    .position(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
                {
                    return bad(format!(
                        "positions must increase strictly (index {i}: {}, then {})",
                        positions[i],
                        positions[i + 1]
                    ));
                }
                if positions.iter().any(|p| !p.is_finite()) {
                    return bad("positions must be finite".into());
                }
                if max_gap.is_some_and(|g| g.is_nan() || g < 0.0) {
                    return bad(format!("max_gap {max_gap:?} must be 0 or more"));
                }
                *limit
            }
            AlongOp::Rolling { op, window } => {
                if WindowOp::of(*op).is_none() {
                    return bad(format!("{} is not a moving-window reduction", op.name()));
                }
                if window.size == 0 {
                    return bad("a window holds at least one step".into());
                }
                if window.min_periods == 0 || window.min_periods > window.size {
                    return bad(format!(
                        "min_periods {} must be 1 to the window's {} steps",
                        window.min_periods, window.size
                    ));
                }
                None
            }
        };
        if limit == Some(0) {
            return bad("limit must be greater than 0 (None fills every gap)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn travels_as_json_and_back() {
        let ops = [
            AlongOp::Scan {
                op: ScanOp::Prod,
                skipna: false,
            },
            AlongOp::Carry {
                backward: true,
                limit: Some(2),
            },
            AlongOp::Interpolate {
                positions: vec![0.0, 1.5, 4.0],
                limit: None,
                max_gap: Some(3.0),
            },
            AlongOp::Rolling {
                op: ReduceOp::NanStd { ddof: 1 },
                window: MovingWindow {
                    size: 4,
                    center: true,
                    min_periods: 2,
                },
            },
        ];
        for op in ops {
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(serde_json::from_str::<AlongOp>(&json).unwrap(), op, "{json}");
        }
    }

    #[test]
    fn centred_even_windows_reach_further_back() {
        let w = MovingWindow {
            size: 4,
            center: true,
            min_periods: 1,
        };
        // at step 5 of 7: steps 3..=6
        assert_eq!(w.steps(5, 7), (3, 7));
        // clipped at both ends
        assert_eq!(w.steps(0, 7), (0, 2));
        assert_eq!(MovingWindow::trailing(3).steps(1, 7), (0, 2));
    }
}
