//! Tiles decompressed by strata itself: none, LZW (weezl), DEFLATE (libdeflate), ZSTD (zstd);
//! then the predictor and byte order undone in place. PackBits goes through the `tiff` crate.
//!
//! Why not the `tiff` crate for these too: (1) tiff 0.11 demands an LZW end-of-information
//! code inside the byte count, which libtiff (so GDAL) sometimes writes one bit short at a
//! code-width switch (image-rs/image-tiff#391); libtiff's own reader stops once the tile is
//! full, and so do we. (2) Speed: reading a tile through `Read` copies it twice and allocates
//! per tile; here a tile decompresses in one call into a reused per-thread buffer of exactly
//! the tile's size (a hostile stream cannot make it grow), and libdeflate inflates faster than
//! the streaming inflaters (shared/TOOLING-NOTES.md).

use std::cell::RefCell;

use super::{ImageLevel, SampleType};

/// A decoded tile's samples in native byte order, borrowed from the per-thread buffer.
#[allow(missing_docs)]
pub(super) enum Samples<'a> {
    U8(&'a [u8]),
    I8(&'a [i8]),
    U16(&'a [u16]),
    I16(&'a [i16]),
    U32(&'a [u32]),
    I32(&'a [i32]),
    U64(&'a [u64]),
    I64(&'a [i64]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// Whether strata decompresses this TIFF compression itself.
pub(super) fn handles(compression: u16) -> bool {
    matches!(compression, 1 | 5 | 8 | 32946 | 50000)
}

struct Scratch {
    /// u64 words so every sample type can be viewed in place, aligned
    words: Vec<u64>,
    plane: Vec<u8>,
    inflater: libdeflater::Decompressor,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        words: Vec::new(),
        plane: Vec::new(),
        inflater: libdeflater::Decompressor::new(),
    });
}

/// Decodes one tile (or strip of `rows` rows) and hands its samples to `place`.
pub(super) fn with_tile<R>(
    compressed: &[u8],
    level: &ImageLevel,
    rows: usize,
    big_endian: bool,
    place: impl FnOnce(Samples<'_>) -> R,
) -> Result<R, String> {
    let per_pixel = if level.planar { 1 } else { level.bands };
    let size = level.sample.size();
    let row_bytes = level.chunk_width as usize * per_pixel * size;
    let len = row_bytes * rows;
    SCRATCH.with(|cell| {
        let mut guard = cell.borrow_mut();
        let scratch = &mut *guard;
        let words = len.div_ceil(8);
        if scratch.words.len() < words {
            scratch.words.resize(words, 0);
        }
        let raw = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut scratch.words[..words])[..len];
        decompress(compressed, level.compression, raw, &mut scratch.inflater)?;
        match level.predictor {
            3 => {
                if !matches!(level.sample, SampleType::F32 | SampleType::F64) {
                    return Err("floating-point predictor on integer samples".into());
                }
                for row in raw.chunks_exact_mut(row_bytes) {
                    undo_float_predictor(row, per_pixel, size, &mut scratch.plane);
                }
            }
            p => {
                let swap = big_endian != cfg!(target_endian = "big");
                fix_words(raw, size, swap, p == 2, per_pixel, row_bytes);
            }
        }
        let raw: &[u8] = raw;
        Ok(place(match level.sample {
            SampleType::U8 => Samples::U8(raw),
            SampleType::I8 => Samples::I8(bytemuck::cast_slice(raw)),
            SampleType::U16 => Samples::U16(bytemuck::cast_slice(raw)),
            SampleType::I16 => Samples::I16(bytemuck::cast_slice(raw)),
            SampleType::U32 => Samples::U32(bytemuck::cast_slice(raw)),
            SampleType::I32 => Samples::I32(bytemuck::cast_slice(raw)),
            SampleType::F32 => Samples::F32(bytemuck::cast_slice(raw)),
            SampleType::F64 => Samples::F64(bytemuck::cast_slice(raw)),
        }))
    })
}

/// Fills `out` exactly from the compressed stream.
fn decompress(
    compressed: &[u8],
    compression: u16,
    out: &mut [u8],
    inflater: &mut libdeflater::Decompressor,
) -> Result<(), String> {
    let want = out.len();
    let short = |n: usize| format!("stream ends after {n} of {want} bytes");
    match compression {
        1 => {
            if compressed.len() < out.len() {
                return Err(short(compressed.len()));
            }
            out.copy_from_slice(&compressed[..out.len()]);
        }
        5 => {
            let mut dec = weezl::decode::Decoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8);
            let (mut inp, mut filled) = (0, 0);
            while filled < out.len() {
                let r = dec.decode_bytes(&compressed[inp..], &mut out[filled..]);
                inp += r.consumed_in;
                filled += r.consumed_out;
                match r.status {
                    Ok(weezl::LzwStatus::Ok) if r.consumed_in + r.consumed_out > 0 => {}
                    Ok(_) => break,
                    Err(e) => return Err(format!("LZW: {e}")),
                }
            }
            if filled < out.len() {
                return Err(format!("LZW {}", short(filled)));
            }
        }
        8 | 32946 => {
            let n = inflater
                .zlib_decompress(compressed, out)
                .map_err(|e| format!("DEFLATE: {e}"))?;
            if n < out.len() {
                return Err(format!("DEFLATE {}", short(n)));
            }
        }
        50000 => {
            let n = zstd::bulk::decompress_to_buffer(compressed, out).map_err(|e| format!("ZSTD: {e}"))?;
            if n < out.len() {
                return Err(format!("ZSTD {}", short(n)));
            }
        }
        c => return Err(format!("compression {c} is not decoded here")),
    }
    Ok(())
}

/// Byte order to native, then (predictor 2) running sums per sample channel along each row;
/// the sums wrap on the unsigned bit pattern, as libtiff's `horAcc` does for every type.
fn fix_words(raw: &mut [u8], size: usize, swap: bool, horizontal: bool, per_pixel: usize, row_bytes: usize) {
    macro_rules! fix {
        ($t:ty) => {{
            let v: &mut [$t] = bytemuck::cast_slice_mut(raw);
            if swap {
                v.iter_mut().for_each(|w| *w = w.swap_bytes());
            }
            if horizontal {
                for row in v.chunks_exact_mut(row_bytes / size) {
                    if per_pixel == 1 {
                        // One running sum: no stride, no bounds checks.
                        let mut acc: $t = 0;
                        for w in row.iter_mut() {
                            acc = acc.wrapping_add(*w);
                            *w = acc;
                        }
                    } else {
                        for i in per_pixel..row.len() {
                            row[i] = row[i].wrapping_add(row[i - per_pixel]);
                        }
                    }
                }
            }
        }};
    }
    match size {
        1 => fix!(u8),
        2 => fix!(u16),
        4 => fix!(u32),
        _ => fix!(u64),
    }
}

/// libtiff's `fpAcc`: byte-wise running sums (stride = samples per pixel), then the bytes of
/// each sample gathered from their significance planes (most significant first).
fn undo_float_predictor(row: &mut [u8], per_pixel: usize, size: usize, planes: &mut Vec<u8>) {
    for i in per_pixel..row.len() {
        row[i] = row[i].wrapping_add(row[i - per_pixel]);
    }
    planes.clear();
    planes.extend_from_slice(row);
    let count = row.len() / size;
    for s in 0..count {
        for b in 0..size {
            let plane = if cfg!(target_endian = "big") { b } else { size - 1 - b };
            row[s * size + b] = planes[plane * count + s];
        }
    }
}
