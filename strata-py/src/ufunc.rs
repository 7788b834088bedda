//! numpy's ufunc protocol on strata arrays (`__array_ufunc__`): the ufuncs strata has as lazy
//! operations give strata arrays; any other is NotImplemented, so numpy raises.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use strata::expr::BinaryOp;

use crate::array::PyDataArray;

/// `ufunc(*inputs)` on `slf` as a lazy strata array, or NotImplemented (see
/// `DataArray.__array_ufunc__`).
pub fn array_ufunc(
    slf: &Bound<'_, PyDataArray>,
    ufunc: &Bound<'_, PyAny>,
    method: &str,
    inputs: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Py<PyAny>> {
    let py = slf.py();
    let name: String = ufunc.getattr("__name__")?.extract()?;
    let me = slf.get();
    let out = if method != "__call__" || kwargs.is_some_and(|k| !k.is_empty()) {
        None
    } else if inputs.len() == 1 {
        match name.as_str() {
            "sqrt" => Some(me.inner.sqrt()),
            "exp" => Some(me.inner.exp()),
            "log" => Some(me.inner.log()),
            "absolute" | "fabs" => Some(me.inner.abs()),
            "negative" => Some(-&me.inner),
            "isnan" => Some(me.inner.isnan()),
            "logical_not" => Some(me.inner.not()),
            // numpy's invert of floats is an error; of booleans, not
            "invert" if me.inner.data().dtype() == strata::DType::U8 => Some(me.inner.not()),
            _ => None,
        }
        .map(PyDataArray::wrap)
    } else if inputs.len() == 2 {
        let op = match name.as_str() {
            "add" => Some(BinaryOp::Add),
            "subtract" => Some(BinaryOp::Sub),
            "multiply" => Some(BinaryOp::Mul),
            "true_divide" | "divide" => Some(BinaryOp::Div),
            "power" => Some(BinaryOp::Pow),
            "maximum" => Some(BinaryOp::Max),
            "minimum" => Some(BinaryOp::Min),
            "equal" => Some(BinaryOp::Eq),
            "not_equal" => Some(BinaryOp::Ne),
            "greater" => Some(BinaryOp::Gt),
            "greater_equal" => Some(BinaryOp::Ge),
            "less" => Some(BinaryOp::Lt),
            "less_equal" => Some(BinaryOp::Le),
            "logical_and" => Some(BinaryOp::And),
            "logical_or" => Some(BinaryOp::Or),
            "bitwise_and" => Some(me.logical_or_bits(BinaryOp::And, BinaryOp::BitAnd)),
            "bitwise_or" => Some(me.logical_or_bits(BinaryOp::Or, BinaryOp::BitOr)),
            _ => None,
        };
        match op {
            Some(op)
                if inputs
                    .iter()
                    .all(|x| x.cast::<PyDataArray>().is_ok() || x.extract::<f32>().is_ok()) =>
            {
                let (a, b) = (inputs.get_item(0)?, inputs.get_item(1)?);
                // numpy asks the first operand that overrides ufuncs: this array is the
                // left one unless a plain number stands before it
                Some(if a.is(slf) {
                    me.arith(&b, op, false)?
                } else {
                    me.arith(&a, op, true)?
                })
            }
            // another operand type: NotImplemented lets it take its turn (NEP 13)
            _ => None,
        }
    } else {
        None
    };
    Ok(match out {
        Some(a) => Bound::new(py, a)?.into_any().unbind(),
        None => py.NotImplemented(),
    })
}
