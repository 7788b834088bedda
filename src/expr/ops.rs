//! The operation vocabulary of expressions: elementwise, reductions, filters.

use serde::Serialize;

/// One-input elementwise operations. All compute in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `sqrt(x)` (NaN for negative x)
    Sqrt,
    /// `e^x`
    Exp,
    /// natural logarithm (NaN for negative x, -inf at 0), numpy `log`
    Ln,
    /// `1` where x is NaN, else `0` (a mask)
    IsNan,
    /// logical not of a mask: `1` where x is `0`
    Not,
}

/// Two-input elementwise operations with numpy semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (IEEE: x/0 = ±inf, 0/0 = NaN)
    Div,
    /// `a ** b`
    Pow,
    /// `numpy.minimum` (NaN if either is NaN)
    Min,
    /// `numpy.maximum` (NaN if either is NaN)
    Max,
    /// `a < b` as a mask
    Lt,
    /// `a <= b` as a mask
    Le,
    /// `a > b` as a mask
    Gt,
    /// `a >= b` as a mask
    Ge,
    /// `a == b` as a mask (NaN is never equal)
    Eq,
    /// `a != b` as a mask (NaN is always unequal)
    Ne,
    /// logical and of masks
    And,
    /// logical or of masks
    Or,
    /// `b` where `a` is NaN, else `a` (xarray's `fillna`)
    FillNan,
    /// numpy's `bitwise_and` on the integer values (bit flags, such as Landsat's `QA_PIXEL`):
    /// each operand truncated toward zero and saturated to `u32`, the result back in f32;
    /// NaN where either is NaN. Exact (and equal on every backend) for values below 2^24,
    /// which every stored 8- or 16-bit code is.
    BitAnd,
    /// numpy's `bitwise_or` on the integer values, as [`BinaryOp::BitAnd`]
    BitOr,
}

impl BinaryOp {
    /// Whether the result is a mask (u8) rather than f32.
    pub fn yields_mask(self) -> bool {
        matches!(
            self,
            Self::Lt | Self::Le | Self::Gt | Self::Ge | Self::Eq | Self::Ne | Self::And | Self::Or
        )
    }

    /// The operator symbol or function name, for plans and graphs.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Pow => "**",
            Self::Min => "minimum",
            Self::Max => "maximum",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::And => "&",
            Self::Or => "|",
            Self::FillNan => "fillna",
            Self::BitAnd => "bitwise_and",
            Self::BitOr => "bitwise_or",
        }
    }
}

/// Reductions over one or more axes.
///
/// The `Nan*` forms skip NaN as numpy's `nan*` functions do (an all-NaN pixel gives NaN, 0 for
/// `NanSum`, and a count of 0); the plain forms propagate NaN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum ReduceOp {
    /// sum (NaN propagates)
    Sum,
    /// arithmetic mean (NaN propagates)
    Mean,
    /// minimum (NaN propagates)
    Min,
    /// maximum (NaN propagates)
    Max,
    /// median (NaN propagates; even count → mean of the two middle values)
    Median,
    /// sum of non-NaN values (0 when all are NaN, as numpy)
    NanSum,
    /// mean of non-NaN values
    NanMean,
    /// minimum of non-NaN values
    NanMin,
    /// maximum of non-NaN values
    NanMax,
    /// median of non-NaN values
    NanMedian,
    /// number of non-NaN values
    Count,
    /// variance of non-NaN values with `ddof` delta degrees of freedom
    NanVar {
        /// delta degrees of freedom (numpy's `ddof`)
        ddof: u32,
    },
    /// standard deviation of non-NaN values with `ddof`
    NanStd {
        /// delta degrees of freedom (numpy's `ddof`)
        ddof: u32,
    },
    /// true where any value is non-zero (masks)
    Any,
    /// true where every value is non-zero (masks)
    All,
    /// the `q`-th quantile, numpy's linear interpolation (NaN propagates); `q` in millionths
    /// (0..=1_000_000), so the op stays exact, hashable data
    Quantile {
        /// `q` × 10⁶
        millionths: u32,
    },
    /// the `q`-th quantile of non-NaN values, as `numpy.nanquantile` (`method="linear"`)
    NanQuantile {
        /// `q` × 10⁶
        millionths: u32,
    },
    /// the index of the first minimum along the reduced axes (numpy's `argmin`: a NaN counts
    /// as the minimum, so the first NaN's index where there is one); over several axes, the
    /// index into them flattened in C order. As f32, exact below 2^24.
    ArgMin,
    /// the index of the first maximum, as [`ReduceOp::ArgMin`] (numpy's `argmax`)
    ArgMax,
    /// the index of the first minimum of the non-NaN values (numpy's `nanargmin`, xarray's
    /// `argmin`); NaN where every value is NaN (numpy raises there)
    NanArgMin,
    /// the index of the first maximum of the non-NaN values, as [`ReduceOp::NanArgMin`]
    NanArgMax,
}

impl ReduceOp {
    /// Whether this reduction needs every value along the reduced axes at once (no partial
    /// state to combine): the planner makes those axes whole before it runs.
    pub fn is_holistic(self) -> bool {
        matches!(
            self,
            Self::Median | Self::NanMedian | Self::Quantile { .. } | Self::NanQuantile { .. }
        ) || self.arg_extreme().is_some()
    }

    /// For an index-of-extreme reduction: whether it seeks the maximum, and whether it skips
    /// NaN.
    pub fn arg_extreme(self) -> Option<(bool, bool)> {
        match self {
            Self::ArgMin => Some((false, false)),
            Self::ArgMax => Some((true, false)),
            Self::NanArgMin => Some((false, true)),
            Self::NanArgMax => Some((true, true)),
            _ => None,
        }
    }

    /// How many f64 lanes a partial state of this reduction keeps per output element: the
    /// sum or extreme alone; with a count (means, NaN-skipping extremes); with the sum of
    /// squared deviations (variance); none for a holistic reduction.
    pub(crate) fn partial_lanes(self) -> usize {
        match self {
            Self::Sum | Self::NanSum | Self::Count | Self::Min | Self::Max | Self::Any | Self::All => 1,
            Self::Mean | Self::NanMean | Self::NanMin | Self::NanMax => 2,
            Self::NanVar { .. } | Self::NanStd { .. } => 3,
            Self::Median | Self::NanMedian | Self::Quantile { .. } | Self::NanQuantile { .. } => 0,
            Self::ArgMin | Self::ArgMax | Self::NanArgMin | Self::NanArgMax => 0,
        }
    }

    /// The NaN-skipping `q`-th quantile (`q` in [0, 1], kept to six decimals), or `None` for a
    /// `q` outside [0, 1] or NaN.
    pub fn nanquantile(q: f64) -> Option<ReduceOp> {
        (0.0..=1.0).contains(&q).then(|| ReduceOp::NanQuantile {
            millionths: (q * 1e6).round() as u32,
        })
    }

    /// For a quantile: `q` × 10⁶ and whether NaN is skipped; for a median: 500000 likewise.
    pub fn order_statistic(self) -> Option<(u32, bool)> {
        match self {
            Self::Median => Some((500_000, false)),
            Self::NanMedian => Some((500_000, true)),
            Self::Quantile { millionths } => Some((millionths, false)),
            Self::NanQuantile { millionths } => Some((millionths, true)),
            _ => None,
        }
    }

    /// Whether the result is a mask.
    pub fn yields_mask(self) -> bool {
        matches!(self, Self::Any | Self::All)
    }

    /// What a reduction of no values gives, as numpy: 0 for sums, counts and `any`, 1 for
    /// `all`, NaN for means, variances, NaN-skipping extremes and medians; `None` for `min`,
    /// `max` and the arg forms, which numpy refuses ("zero-size array to reduction operation",
    /// "attempt to get argmax of an empty sequence").
    pub fn empty_value(self) -> Option<f32> {
        match self {
            Self::Sum | Self::NanSum | Self::Count | Self::Any => Some(0.0),
            Self::All => Some(1.0),
            Self::Min | Self::Max | Self::NanMin | Self::NanMax => None,
            Self::ArgMin | Self::ArgMax | Self::NanArgMin | Self::NanArgMax => None,
            _ => Some(f32::NAN),
        }
    }

    /// A short name, as numpy spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Mean => "mean",
            Self::Min => "min",
            Self::Max => "max",
            Self::Median => "median",
            Self::NanSum => "nansum",
            Self::NanMean => "nanmean",
            Self::NanMin => "nanmin",
            Self::NanMax => "nanmax",
            Self::NanMedian => "nanmedian",
            Self::Count => "count",
            Self::NanVar { .. } => "nanvar",
            Self::NanStd { .. } => "nanstd",
            Self::Any => "any",
            Self::All => "all",
            Self::Quantile { .. } => "quantile",
            Self::NanQuantile { .. } => "nanquantile",
            Self::ArgMin => "argmin",
            Self::ArgMax => "argmax",
            Self::NanArgMin => "nanargmin",
            Self::NanArgMax => "nanargmax",
        }
    }
}

/// How a filter sees values beyond the array edge, with `scipy.ndimage` names.
///
/// For an axis holding `a b c d`:
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub enum BoundaryMode {
    /// `d c b a | a b c d | d c b a` (scipy `reflect`, the default; numpy `symmetric`)
    Reflect,
    /// `d c b | a b c d | c b a` (scipy `mirror`; numpy `reflect`)
    Mirror,
    /// `a a a a | a b c d | d d d d`
    Nearest,
    /// `k k k k | a b c d | k k k k` for the given constant
    Constant(#[serde(with = "crate::expr::nonfinite")] f32),
    /// `a b c d | a b c d | a b c d` (dask's `periodic`)
    Wrap,
}

impl BoundaryMode {
    /// The source index that position `i` (which may lie outside `0..n`) reads, or `None` when
    /// it reads the constant. `n` must be positive.
    pub fn map_index(self, i: i64, n: usize) -> Option<usize> {
        let n = n as i64;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let j = match self {
            Self::Constant(_) => return None,
            Self::Nearest => i.clamp(0, n - 1),
            Self::Wrap => i.rem_euclid(n),
            Self::Reflect => {
                let m = i.rem_euclid(2 * n);
                if m < n {
                    m
                } else {
                    2 * n - 1 - m
                }
            }
            Self::Mirror => {
                if n == 1 {
                    0
                } else {
                    let m = i.rem_euclid(2 * n - 2);
                    if m < n {
                        m
                    } else {
                        2 * n - 2 - m
                    }
                }
            }
        };
        Some(j as usize)
    }

    /// The constant read outside the array, if this mode has one.
    pub fn constant(self) -> Option<f32> {
        match self {
            Self::Constant(c) => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BoundaryMode::*;

    fn extend(mode: super::BoundaryMode) -> Vec<Option<usize>> {
        (-4..8).map(|i| mode.map_index(i, 4)).collect()
    }

    #[test]
    fn boundary_modes_match_scipy_docs() {
        let s = |v: &[usize]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        // a b c d = 0 1 2 3, four positions each side.
        assert_eq!(extend(Reflect), s(&[3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]));
        assert_eq!(extend(Mirror), s(&[2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]));
        assert_eq!(extend(Nearest), s(&[0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3]));
        assert_eq!(extend(Wrap), s(&[0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]));
        assert_eq!(Constant(0.0).map_index(-1, 4), None);
        assert_eq!(Mirror.map_index(-3, 1), Some(0));
    }
}
