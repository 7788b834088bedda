//! Decoding the tiles of a window and placing their samples into an output array.

use std::ops::Range;
use std::sync::Arc;

use ::tiff::decoder::{Decoder, DecodingResult};
use ndarray::ArrayViewMut3;

use super::{limits, lzw, tiff_error, ImageLevel, Segments, SparseReader};
use crate::io::IoError;

/// A rectangle of one image level, for some bands: what a read asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileWindow {
    /// 0 for full resolution, 1.. for overviews
    pub level: usize,
    /// band indices (0-based), in output order
    pub bands: Vec<usize>,
    /// rows of the level
    pub rows: Range<u32>,
    /// columns of the level
    pub cols: Range<u32>,
}

impl TileWindow {
    /// The indices of the tiles (or strips) the window touches, in file order, each once.
    pub fn chunks(&self, level: &ImageLevel) -> Vec<usize> {
        if self.rows.is_empty() || self.cols.is_empty() {
            return Vec::new();
        }
        let ty = self.rows.start / level.chunk_height..(self.rows.end - 1) / level.chunk_height + 1;
        let tx = self.cols.start / level.chunk_width..(self.cols.end - 1) / level.chunk_width + 1;
        let planes: Vec<usize> = if level.planar { self.bands.clone() } else { vec![0] };
        let mut out = Vec::new();
        for &p in &planes {
            for y in ty.clone() {
                for x in tx.clone() {
                    out.push(level.chunk_index(y, x, p));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// A sample type the decoder produces, converted for output.
trait Sample: Copy {
    fn to_f64(self) -> f64;
}

macro_rules! sample {
    ($($t:ty),*) => {$(impl Sample for $t {
        #[inline]
        fn to_f64(self) -> f64 {
            self as f64
        }
    })*};
}
sample!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// Decodes the tiles of `window` from `tiles` (their fetched bytes) and writes the window into
/// `out` (bands, rows, cols), each sample through `map`. Pixels of the output outside the
/// window are left alone.
///
/// **Errors**: [`IoError::Tile`] naming the tile that failed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn decode_window<T>(
    url: &str,
    header: &Arc<Segments>,
    tiles: Arc<Segments>,
    file_len: Option<u64>,
    big_endian: bool,
    level: &ImageLevel,
    window: &TileWindow,
    out: &mut ArrayViewMut3<T>,
    map: impl Fn(f64) -> T + Copy,
) -> Result<(), IoError> {
    let tile_error = |tile: usize, message: String| IoError::Tile {
        url: url.to_string(),
        level: window.level,
        tile,
        range: level.chunk_range(tile),
        message,
    };
    let mut dec = None;
    let per_pixel = if level.planar { 1 } else { level.bands };
    for tile in window.chunks(level) {
        let per_plane = (level.chunks_across() * level.chunks_down()) as usize;
        let (plane, within) = (tile / per_plane, tile % per_plane);
        let x0 = (within as u32 % level.chunks_across()) * level.chunk_width;
        let y0 = (within as u32 / level.chunks_across()) * level.chunk_height;
        let (data, w, h) = if level.compression == 5 {
            let range = level.chunk_range(tile);
            let bytes = tiles
                .slice(range.clone())
                .or_else(|| header.slice(range))
                .ok_or_else(|| tile_error(tile, "its bytes were not fetched".into()))?;
            // Tiles are stored whole, edge tiles included; the last strip only has the rows left.
            let rows = if level.tiled {
                level.chunk_height
            } else {
                level.chunk_height.min(level.height - y0)
            };
            let data = lzw::decode(&bytes, level, rows as usize, big_endian).map_err(|m| tile_error(tile, m))?;
            (data, level.chunk_width, rows)
        } else {
            if dec.is_none() {
                let reader = SparseReader::new(header.clone(), tiles.clone(), file_len);
                let d = Decoder::new(reader)
                    .map(|d| d.with_limits(limits()))
                    .and_then(|mut d| d.seek_to_image(level.ifd).map(|()| d))
                    .map_err(|e| tiff_error(url, e, file_len))?;
                dec = Some(d);
            }
            let dec = dec.as_mut().expect("made above");
            let data = dec
                .read_chunk(tile as u32)
                .map_err(|e| tile_error(tile, e.to_string()))?;
            let (w, h) = dec.chunk_data_dimensions(tile as u32);
            (data, w, h)
        };
        let place = Placement {
            x0,
            y0,
            width: w as usize,
            height: h as usize,
            per_pixel,
            plane: level.planar.then_some(plane),
        };
        let ok = match &data {
            DecodingResult::U8(v) => place.copy(v, window, out, map),
            DecodingResult::I8(v) => place.copy(v, window, out, map),
            DecodingResult::U16(v) => place.copy(v, window, out, map),
            DecodingResult::I16(v) => place.copy(v, window, out, map),
            DecodingResult::U32(v) => place.copy(v, window, out, map),
            DecodingResult::I32(v) => place.copy(v, window, out, map),
            DecodingResult::U64(v) => place.copy(v, window, out, map),
            DecodingResult::I64(v) => place.copy(v, window, out, map),
            DecodingResult::F32(v) => place.copy(v, window, out, map),
            DecodingResult::F64(v) => place.copy(v, window, out, map),
            DecodingResult::F16(_) => false,
        };
        if !ok {
            return Err(tile_error(tile, "decoded tile has an unexpected size or type".into()));
        }
    }
    Ok(())
}

/// Where one decoded tile sits in its level.
struct Placement {
    x0: u32,
    y0: u32,
    width: usize,
    height: usize,
    per_pixel: usize,
    /// the band this tile holds, for planar files
    plane: Option<usize>,
}

impl Placement {
    /// Copies the tile's part of the window; false when the data is shorter than its shape.
    fn copy<S: Sample, T>(
        &self,
        data: &[S],
        window: &TileWindow,
        out: &mut ArrayViewMut3<T>,
        map: impl Fn(f64) -> T,
    ) -> bool {
        if data.len() < self.width * self.height * self.per_pixel {
            return false;
        }
        let rows = window.rows.start.max(self.y0)..window.rows.end.min(self.y0 + self.height as u32);
        let cols = window.cols.start.max(self.x0)..window.cols.end.min(self.x0 + self.width as u32);
        for (ob, &band) in window.bands.iter().enumerate() {
            let sample = match self.plane {
                Some(p) if p != band => continue,
                Some(_) => 0,
                None => band,
            };
            for r in rows.clone() {
                let src = &data[(r - self.y0) as usize * self.width * self.per_pixel..];
                let orow = (r - window.rows.start) as usize;
                for c in cols.clone() {
                    let s = src[(c - self.x0) as usize * self.per_pixel + sample];
                    out[[ob, orow, (c - window.cols.start) as usize]] = map(s.to_f64());
                }
            }
        }
        true
    }
}
