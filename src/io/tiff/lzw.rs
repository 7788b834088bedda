//! LZW tiles, decoded with weezl and un-predicted here rather than by the `tiff` crate.
//!
//! tiff 0.11 demands an end-of-information code inside the byte count; libtiff (so GDAL)
//! sometimes writes that code one bit short at a code-width switch, and libtiff's own reader
//! stops once the tile is full. So do we: decode until the tile's bytes are filled, into a
//! buffer of exactly that size (a hostile stream cannot make us allocate more), then undo
//! the predictor and the byte order as libtiff does.

use ::tiff::decoder::DecodingResult;

use super::{ImageLevel, SampleType};

/// Decodes one LZW tile or strip of `rows` rows into native-order samples.
pub(super) fn decode(
    compressed: &[u8],
    level: &ImageLevel,
    rows: usize,
    big_endian: bool,
) -> Result<DecodingResult, String> {
    let per_pixel = if level.planar { 1 } else { level.bands };
    let size = level.sample.size();
    let row_bytes = level.chunk_width as usize * per_pixel * size;
    let mut raw = vec![0u8; row_bytes * rows];
    let mut dec = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
    let (mut inp, mut filled) = (0, 0);
    while filled < raw.len() {
        let r = dec.decode_bytes(&compressed[inp..], &mut raw[filled..]);
        inp += r.consumed_in;
        filled += r.consumed_out;
        match r.status {
            Ok(weezl::LzwStatus::Ok) if r.consumed_in + r.consumed_out > 0 => {}
            Ok(_) => break,
            Err(e) => return Err(format!("LZW: {e}")),
        }
    }
    if filled < raw.len() {
        return Err(format!("LZW stream ends after {filled} of {} bytes", raw.len()));
    }
    if level.predictor == 3 {
        if !matches!(level.sample, SampleType::F32 | SampleType::F64) {
            return Err("floating-point predictor on integer samples".into());
        }
        for row in raw.chunks_exact_mut(row_bytes) {
            undo_float_predictor(row, per_pixel, size);
        }
        return Ok(floats(&raw, level.sample));
    }
    let swap = big_endian != cfg!(target_endian = "big");
    let horizontal = level.predictor == 2;
    macro_rules! words {
        ($t:ty) => {{
            let mut v: Vec<$t> = raw
                .chunks_exact(std::mem::size_of::<$t>())
                .map(|b| {
                    let w = <$t>::from_ne_bytes(b.try_into().expect("exact chunk"));
                    if swap {
                        w.swap_bytes()
                    } else {
                        w
                    }
                })
                .collect();
            if horizontal {
                let row_len = row_bytes / std::mem::size_of::<$t>();
                for row in v.chunks_exact_mut(row_len) {
                    for i in per_pixel..row.len() {
                        row[i] = row[i].wrapping_add(row[i - per_pixel]);
                    }
                }
            }
            v
        }};
    }
    // Same-size casts only (no copies): the predictor adds on the unsigned bit patterns.
    use bytemuck::cast_vec;
    Ok(match level.sample {
        SampleType::U8 => DecodingResult::U8(words!(u8)),
        SampleType::I8 => DecodingResult::I8(cast_vec(words!(u8))),
        SampleType::U16 => DecodingResult::U16(words!(u16)),
        SampleType::I16 => DecodingResult::I16(cast_vec(words!(u16))),
        SampleType::U32 => DecodingResult::U32(words!(u32)),
        SampleType::I32 => DecodingResult::I32(cast_vec(words!(u32))),
        SampleType::F32 => DecodingResult::F32(cast_vec(words!(u32))),
        SampleType::F64 => DecodingResult::F64(cast_vec(words!(u64))),
    })
}

/// libtiff's `fpAcc`: byte-wise running sums (stride = samples per pixel), then the bytes of
/// each sample gathered from their significance planes (most significant first).
fn undo_float_predictor(row: &mut [u8], per_pixel: usize, size: usize) {
    for i in per_pixel..row.len() {
        row[i] = row[i].wrapping_add(row[i - per_pixel]);
    }
    let planes = row.to_vec();
    let count = row.len() / size;
    for s in 0..count {
        for b in 0..size {
            let plane = if cfg!(target_endian = "big") { b } else { size - 1 - b };
            row[s * size + b] = planes[plane * count + s];
        }
    }
}

/// Native-order float bytes as typed samples (one copy).
fn floats(bytes: &[u8], sample: SampleType) -> DecodingResult {
    match sample {
        SampleType::F64 => DecodingResult::F64(bytemuck::pod_collect_to_vec(bytes)),
        _ => DecodingResult::F32(bytemuck::pod_collect_to_vec(bytes)),
    }
}
