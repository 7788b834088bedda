//! f32 in JSON with its non-finite values: JSON numbers cannot be NaN or infinite, so those
//! are written as the strings `"NaN"`, `"inf"` and `"-inf"` (what Zarr metadata does for fill
//! values), everything else as a number. Use with `#[serde(with = "crate::expr::nonfinite")]`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes `v` as a number, or as `"NaN"`, `"inf"`, `"-inf"`.
///
/// **Errors**: the serializer's.
pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        "NaN".serialize(s)
    } else if v.is_infinite() {
        if *v > 0.0 { "inf" } else { "-inf" }.serialize(s)
    } else {
        v.serialize(s)
    }
}

/// Reads a number or one of the three strings.
///
/// **Errors**: anything else.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Number(f32),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::Number(v) => Ok(v),
        Either::Text(t) => match t.as_str() {
            "NaN" => Ok(f32::NAN),
            "inf" => Ok(f32::INFINITY),
            "-inf" => Ok(f32::NEG_INFINITY),
            other => Err(serde::de::Error::custom(format!("{other:?} is not a number"))),
        },
    }
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct V(#[serde(with = "super")] f32);

    #[test]
    fn non_finite_values_round_trip() {
        for v in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.5, 1e30] {
            let text = serde_json::to_string(&V(v)).unwrap();
            let back: V = serde_json::from_str(&text).unwrap();
            assert!(
                back.0.to_bits() == v.to_bits() || (v.is_nan() && back.0.is_nan()),
                "{text}"
            );
        }
        assert_eq!(serde_json::to_string(&V(f32::NAN)).unwrap(), "\"NaN\"");
    }
}
