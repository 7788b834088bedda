//! Decoding the tiles of a window and placing their samples into an output array.

use std::ops::Range;
use std::sync::Arc;

use ::tiff::decoder::{Decoder, DecodingResult};
use ndarray::{s, ArrayViewMut3};

use super::codec::{self, Samples};
use super::{limits, tiff_error, ImageLevel, Segments, SparseReader};
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
    let per_plane = (level.chunks_across() * level.chunks_down()) as usize;
    for tile in window.chunks(level) {
        let (plane, within) = (tile / per_plane, tile % per_plane);
        let x0 = (within as u32 % level.chunks_across()) * level.chunk_width;
        let y0 = (within as u32 / level.chunks_across()) * level.chunk_height;
        let mut place = Placement {
            x0,
            y0,
            width: level.chunk_width as usize,
            height: level.chunk_height as usize,
            per_pixel,
            plane: level.planar.then_some(plane),
        };
        let placed = if codec::handles(level.compression) {
            let range = level.chunk_range(tile);
            let bytes = tiles
                .slice(range.clone())
                .or_else(|| header.slice(range))
                .ok_or_else(|| tile_error(tile, "its bytes were not fetched".into()))?;
            // Tiles are stored whole, edge tiles included; the last strip has only the rows left.
            if !level.tiled {
                place.height = level.chunk_height.min(level.height - y0) as usize;
            }
            codec::with_tile(&bytes, level, place.height, big_endian, |samples| {
                place.copy(samples, window, out, map)
            })
            .map_err(|m| tile_error(tile, m))?
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
            // The tiff crate crops edge tiles to the image.
            let (w, h) = dec.chunk_data_dimensions(tile as u32);
            (place.width, place.height) = (w as usize, h as usize);
            match &data {
                DecodingResult::U8(v) => place.copy(Samples::U8(v), window, out, map),
                DecodingResult::I8(v) => place.copy(Samples::I8(v), window, out, map),
                DecodingResult::U16(v) => place.copy(Samples::U16(v), window, out, map),
                DecodingResult::I16(v) => place.copy(Samples::I16(v), window, out, map),
                DecodingResult::U32(v) => place.copy(Samples::U32(v), window, out, map),
                DecodingResult::I32(v) => place.copy(Samples::I32(v), window, out, map),
                DecodingResult::U64(v) => place.copy(Samples::U64(v), window, out, map),
                DecodingResult::I64(v) => place.copy(Samples::I64(v), window, out, map),
                DecodingResult::F32(v) => place.copy(Samples::F32(v), window, out, map),
                DecodingResult::F64(v) => place.copy(Samples::F64(v), window, out, map),
                DecodingResult::F16(_) => false,
            }
        };
        if !placed {
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
    fn copy<T>(
        &self,
        samples: Samples<'_>,
        window: &TileWindow,
        out: &mut ArrayViewMut3<T>,
        map: impl Fn(f64) -> T,
    ) -> bool {
        match samples {
            Samples::U8(d) => self.copy_typed(d, window, out, map),
            Samples::I8(d) => self.copy_typed(d, window, out, map),
            Samples::U16(d) => self.copy_typed(d, window, out, map),
            Samples::I16(d) => self.copy_typed(d, window, out, map),
            Samples::U32(d) => self.copy_typed(d, window, out, map),
            Samples::I32(d) => self.copy_typed(d, window, out, map),
            Samples::U64(d) => self.copy_typed(d, window, out, map),
            Samples::I64(d) => self.copy_typed(d, window, out, map),
            Samples::F32(d) => self.copy_typed(d, window, out, map),
            Samples::F64(d) => self.copy_typed(d, window, out, map),
        }
    }

    fn copy_typed<S: Sample, T>(
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
        if rows.is_empty() || cols.is_empty() {
            return true;
        }
        let (oc0, oc1) = (
            (cols.start - window.cols.start) as usize,
            (cols.end - window.cols.start) as usize,
        );
        for (ob, &band) in window.bands.iter().enumerate() {
            let sample = match self.plane {
                Some(p) if p != band => continue,
                Some(_) => 0,
                None => band,
            };
            for r in rows.clone() {
                let start =
                    ((r - self.y0) as usize * self.width + (cols.start - self.x0) as usize) * self.per_pixel + sample;
                let orow = (r - window.rows.start) as usize;
                let mut dst = out.slice_mut(s![ob, orow, oc0..oc1]);
                match (dst.as_slice_mut(), self.per_pixel) {
                    (Some(d), 1) => {
                        for (d, &v) in d.iter_mut().zip(&data[start..start + (oc1 - oc0)]) {
                            *d = map(v.to_f64());
                        }
                    }
                    _ => {
                        for (d, &v) in dst.iter_mut().zip(data[start..].iter().step_by(self.per_pixel)) {
                            *d = map(v.to_f64());
                        }
                    }
                }
            }
        }
        true
    }
}
