//! Lining up the labels of two arrays (xarray's `align(join=...)`) and relabelling one dim
//! (`reindex`), NaN where a label is new.

use std::collections::HashMap;

use super::{Coord, CoordValues, DataArray, LabelError};
use crate::array::Array;
use crate::expr::DType;

/// Which labels the shared dims of two arrays keep (xarray's `join`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Join {
    /// the labels both have, in the left operand's order (xarray's default for arithmetic)
    #[default]
    Inner,
    /// every label of either, sorted (as pandas' union), NaN where an operand lacks one
    Outer,
    /// the left operand's labels; the right one is reindexed to them
    Left,
    /// the labels must be equal ([`LabelError::Misaligned`] otherwise)
    Exact,
}

/// A label as a hashable key (f64 by bits, instants by nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    F64(u64),
    Time(i64),
    Str(String),
}

fn keys(values: &CoordValues) -> Vec<Key> {
    match values {
        // +0 and -0 are one label
        CoordValues::F64(v) => v.iter().map(|x| Key::F64((x + 0.0).to_bits())).collect(),
        CoordValues::Time(v) => v
            .iter()
            .map(|t| Key::Time(t.timestamp_nanos_opt().unwrap_or(t.timestamp() * 1_000_000_000)))
            .collect(),
        CoordValues::Str(v) => v.iter().cloned().map(Key::Str).collect(),
    }
}

/// The labels `join` keeps of `a` and `b` (same kind), or `None` when they are equal.
fn joined(dim: &str, a: &CoordValues, b: &CoordValues, join: Join) -> Result<Option<CoordValues>, LabelError> {
    if a == b {
        return Ok(None);
    }
    let in_b: std::collections::HashSet<Key> = keys(b).into_iter().collect();
    let in_a: std::collections::HashSet<Key> = keys(a).into_iter().collect();
    let out = match join {
        Join::Exact => {
            return Err(LabelError::Misaligned {
                op: "align".into(),
                dim: dim.to_string(),
                left: a.brief(),
                right: b.brief(),
            })
        }
        Join::Left => a.clone(),
        Join::Inner => {
            let kept: Vec<usize> = keys(a)
                .iter()
                .enumerate()
                .filter(|(_, k)| in_b.contains(k))
                .map(|(i, _)| i)
                .collect();
            a.take(&kept)
        }
        Join::Outer => {
            let extra: Vec<usize> = keys(b)
                .iter()
                .enumerate()
                .filter(|(_, k)| !in_a.contains(k))
                .map(|(i, _)| i)
                .collect();
            let mut union = match (a, b.take(&extra)) {
                (CoordValues::F64(x), CoordValues::F64(y)) => CoordValues::F64([x.clone(), y].concat()),
                (CoordValues::Time(x), CoordValues::Time(y)) => CoordValues::Time([x.clone(), y].concat()),
                (CoordValues::Str(x), CoordValues::Str(y)) => CoordValues::Str([x.clone(), y].concat()),
                _ => return Err(mismatched(dim, a, b)),
            };
            match &mut union {
                CoordValues::F64(v) => v.sort_by(f64::total_cmp),
                CoordValues::Time(v) => v.sort(),
                CoordValues::Str(v) => v.sort(),
            }
            union
        }
    };
    if out.is_empty() {
        return Err(LabelError::EmptyDim {
            op: "align",
            dim: dim.to_string(),
        });
    }
    Ok(Some(out))
}

fn mismatched(dim: &str, a: &CoordValues, b: &CoordValues) -> LabelError {
    LabelError::Misaligned {
        op: "align".into(),
        dim: dim.to_string(),
        left: a.brief(),
        right: b.brief(),
    }
}

impl DataArray {
    /// Both arrays relabelled so their shared dims carry the same labels, as `join` says
    /// (xarray's `xr.align(a, b, join=...)`). Arithmetic between labelled arrays takes the
    /// inner join first, as xarray's does. Lazy: a selection, or for new labels a take from
    /// the data with one NaN step appended; O(labels) to match them.
    ///
    /// **Errors**: [`LabelError::Misaligned`] for an exact join of different labels, or labels
    /// of different kinds; [`LabelError::EmptyDim`] when the join keeps no label.
    pub fn align(&self, other: &DataArray, join: Join) -> Result<(DataArray, DataArray), LabelError> {
        let (mut a, mut b) = (self.clone(), other.clone());
        for dim in self.dims.iter().filter(|d| other.dims.contains(d)) {
            let (Ok(ca), Ok(cb)) = (self.index_of(dim), other.index_of(dim)) else {
                continue;
            };
            if let Some(labels) = joined(dim, &ca.values, &cb.values, join)? {
                a = a.reindex(dim, &labels)?;
                b = b.reindex(dim, &labels)?;
            }
        }
        Ok((a, b))
    }

    /// The array with `dim` labelled by `labels`: each label's values where the array has that
    /// label, NaN where it does not (a mask becomes f32 then). Coordinates along `dim` other
    /// than its index are kept when every label exists, dropped otherwise. Lazy.
    ///
    /// **Errors**: [`LabelError::NoCoord`] when `dim` has no index coordinate,
    /// [`LabelError::Misaligned`] for labels of another kind.
    pub fn reindex(&self, dim: &str, labels: &CoordValues) -> Result<DataArray, LabelError> {
        let have = &self.index_of(dim)?.values;
        if std::mem::discriminant(have) != std::mem::discriminant(labels) {
            return Err(mismatched(dim, have, labels));
        }
        if have == labels {
            return Ok(self.clone());
        }
        let at: HashMap<Key, usize> = keys(have).into_iter().enumerate().map(|(i, k)| (k, i)).collect();
        let positions: Vec<Option<usize>> = keys(labels).iter().map(|k| at.get(k).copied()).collect();
        let axis = self.axis(dim)?;
        let mut out = if positions.iter().all(Option::is_some) {
            let idx: Vec<usize> = positions.iter().map(|p| p.expect("all present")).collect();
            self.isel_many(dim, &idx)?
        } else {
            let n = have.len();
            let mut step = self.shape().to_vec();
            step[axis] = 1;
            let chunks: Vec<usize> = step.iter().map(|&s| s.max(1)).collect();
            let data = self.data.astype(DType::F32);
            let padded = Array::concatenate(&[data, Array::full(&step, f32::NAN, chunks)], axis as isize);
            let idx: Vec<isize> = positions.iter().map(|p| p.unwrap_or(n) as isize).collect();
            let mut out = self.relabel(padded.take(axis as isize, &idx));
            out.coords.retain(|c| c.dim.as_deref() != Some(dim));
            out
        };
        out.coords.retain(|c| !(c.dim.as_deref() == Some(dim) && c.name == dim));
        out.coords.push(Coord::index(dim, labels.clone()));
        Ok(out)
    }
}
