//! Stored samples of a block, decoded where they are used. A source that can hand over its
//! samples as 16-bit codes plus one decode table per plane lets a device receive two bytes per
//! pixel (u8, u16 and i16 rasters) instead of four, and decode them itself with a table lookup
//! that is bitwise the CPU's decode by construction.

use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

/// Codes a table maps: every 16-bit value.
pub const TABLE_LEN: usize = 1 << 16;

/// How a stored sample becomes a physical value (stackstac's rule, and the CPU stack's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeSpec {
    /// multiplier (`raster:bands` scale)
    pub scale: f64,
    /// addend (`raster:bands` offset)
    pub offset: f64,
    /// the stored value meaning "no data"
    pub nodata: Option<f64>,
    /// whether scale and offset apply
    pub rescale: bool,
    /// the value of nodata (and of pixels no item covers)
    pub fill: f32,
}

impl DecodeSpec {
    /// `fill` for NaN or nodata; else `v * scale + offset` in f64, rounded once to f32 (or `v`
    /// as f32 without rescaling).
    #[inline]
    pub fn value(&self, v: f64) -> f32 {
        if v.is_nan() || self.nodata.is_some_and(|nd| v == nd) {
            self.fill
        } else if self.rescale {
            (v * self.scale + self.offset) as f32
        } else {
            v as f32
        }
    }
}

/// The stored sample types that fit a 16-bit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredType {
    /// unsigned 8-bit: code = value; code 256 means "no item here"
    U8,
    /// unsigned 16-bit: code = value
    U16,
    /// signed 16-bit: code = value + 32768
    I16,
}

impl StoredType {
    /// The code of a stored value (which must be of this type).
    #[inline]
    pub fn code(self, v: f64) -> u16 {
        match self {
            StoredType::U8 | StoredType::U16 => v as u16,
            StoredType::I16 => (v as i32 + 32768) as u16,
        }
    }

    /// The stored value of a code; `None` for codes no value has (u8 codes above 255).
    pub fn value(self, code: u16) -> Option<f64> {
        match self {
            StoredType::U8 => (code < 256).then_some(f64::from(code)),
            StoredType::U16 => Some(f64::from(code)),
            StoredType::I16 => Some(f64::from(i32::from(code) - 32768)),
        }
    }

    /// The code for pixels no item covers, which decodes to the fill: 256 for u8; the nodata
    /// value's code for u16 and i16, when nodata is one of their values (otherwise every code
    /// is a real value and there is none).
    pub fn fill_code(self, nodata: Option<f64>) -> Option<u16> {
        let nd = nodata.filter(|v| v.fract() == 0.0);
        match self {
            StoredType::U8 => Some(256),
            StoredType::U16 => nd.filter(|v| (0.0..=65535.0).contains(v)).map(|v| v as u16),
            StoredType::I16 => nd.filter(|v| (-32768.0..=32767.0).contains(v)).map(|v| self.code(v)),
        }
    }
}

/// Code → physical value for one stored type and spec: [`TABLE_LEN`] f32 (256 KiB).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeTable {
    /// `values[code]`
    pub values: Vec<f32>,
}

impl DecodeTable {
    /// The table of `spec` over every code of `stored`; codes with no value decode to the
    /// fill. Costs 65536 evaluations of [`DecodeSpec::value`].
    pub fn new(stored: StoredType, spec: &DecodeSpec) -> Self {
        let values = (0..TABLE_LEN)
            .map(|c| stored.value(c as u16).map_or(spec.fill, |v| spec.value(v)))
            .collect();
        DecodeTable { values }
    }

    /// A table decoding every code to `fill` (a plane no item covers).
    pub fn all(fill: f32) -> Self {
        DecodeTable {
            values: vec![fill; TABLE_LEN],
        }
    }
}

/// A block as stored codes: `codes` in C order, and for every plane (all axes but the last two)
/// the table that decodes it.
#[derive(Debug, Clone)]
pub struct RawBlock {
    /// the block's shape (at least two axes)
    pub shape: Vec<usize>,
    /// one code per element, C order
    pub codes: Vec<u16>,
    /// per plane, an index into `tables`
    pub plane_table: Vec<u32>,
    /// the distinct tables
    pub tables: Vec<Arc<DecodeTable>>,
}

impl RawBlock {
    /// Elements per plane (the last two axes).
    pub fn plane_len(&self) -> usize {
        self.shape.iter().rev().take(2).product()
    }

    /// Whether the codes cover the shape and every plane names a table: what a backend checks
    /// before trusting a source's raw block.
    ///
    /// **Errors**: what does not match, in words.
    pub fn check(&self) -> Result<(), String> {
        let n: usize = self.shape.iter().product();
        if self.shape.len() < 2 || self.codes.len() != n {
            return Err(format!("{} codes for shape {:?}", self.codes.len(), self.shape));
        }
        if self.plane_table.len() * self.plane_len() != n {
            return Err(format!("{} planes for shape {:?}", self.plane_table.len(), self.shape));
        }
        match self.plane_table.iter().find(|&&t| t as usize >= self.tables.len()) {
            Some(t) => Err(format!("plane table {t} of {}", self.tables.len())),
            None => Ok(()),
        }
    }

    /// The decoded block on the CPU: the reference a device decode matches bitwise. One pass.
    pub fn decode_cpu(&self) -> ArrayD<f32> {
        let plane_len = self.plane_len().max(1);
        let values = self
            .codes
            .iter()
            .enumerate()
            .map(|(i, &c)| self.tables[self.plane_table[i / plane_len] as usize].values[c as usize])
            .collect();
        ArrayD::from_shape_vec(IxDyn(&self.shape), values).expect("codes cover the shape")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landsat() -> DecodeSpec {
        DecodeSpec {
            scale: 2.75e-05,
            offset: -0.2,
            nodata: Some(0.0),
            rescale: true,
            fill: f32::NAN,
        }
    }

    #[test]
    fn codes_round_trip_and_fill_codes_decode_to_the_fill() {
        assert_eq!(StoredType::I16.code(-32768.0), 0);
        assert_eq!(StoredType::I16.value(StoredType::I16.code(-5.0)), Some(-5.0));
        assert_eq!(StoredType::U8.value(256), None);
        assert_eq!(StoredType::U8.fill_code(None), Some(256));
        assert_eq!(StoredType::U16.fill_code(None), None);
        assert_eq!(StoredType::U16.fill_code(Some(0.5)), None);
        assert_eq!(StoredType::I16.fill_code(Some(-9999.0)), Some(32768 - 9999));
        let t = DecodeTable::new(StoredType::U16, &landsat());
        assert!(t.values[0].is_nan(), "nodata 0 is the fill");
        // 7273 DN is 7273 * 2.75e-5 - 0.2 = 0.0000075 in f64, rounded once to f32
        assert_eq!(t.values[7273], (7273.0f64 * 2.75e-05 - 0.2) as f32);
        let u8t = DecodeTable::new(StoredType::U8, &landsat());
        assert!(u8t.values[256].is_nan() && u8t.values[65535].is_nan());
        assert_eq!(u8t.values[255], (255.0f64 * 2.75e-05 - 0.2) as f32);
    }

    #[test]
    fn a_raw_block_decodes_plane_by_plane() {
        let tables = vec![
            Arc::new(DecodeTable::new(StoredType::U16, &landsat())),
            Arc::new(DecodeTable::all(-1.0)),
        ];
        let raw = RawBlock {
            shape: vec![2, 1, 2],
            codes: vec![0, 10000, 5, 6],
            plane_table: vec![0, 1],
            tables,
        };
        let d = raw.decode_cpu();
        assert!(d[[0, 0, 0]].is_nan());
        assert_eq!(d[[0, 0, 1]], (10000.0f64 * 2.75e-05 - 0.2) as f32);
        assert_eq!((d[[1, 0, 0]], d[[1, 0, 1]]), (-1.0, -1.0));
        assert_eq!(raw.check(), Ok(()));
        let short = RawBlock {
            plane_table: vec![0, 2],
            ..raw.clone()
        };
        assert!(short.check().unwrap_err().contains("plane table 2"));
    }
}
