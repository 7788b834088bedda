//! TIFF and GeoTIFF headers, parsed once per file from the bytes fetched so far.
//!
//! Headers are parsed by the `tiff` crate (maintained, with allocation limits and IFD cycle
//! checks). Its `Decoder` reads through `Read + Seek`, so it gets a [`SparseReader`] over the
//! fetched header ranges; a read of bytes not yet fetched is recorded and fetched, then parsing
//! starts again. Tiles are decompressed by maintained codec crates called directly
//! (weezl, libdeflate, zstd; see `codec`), and PackBits, which has no maintained stand-alone
//! crate, by the `tiff` crate's decoder over the fetched tile ranges.

mod codec;
mod decode;
pub(crate) mod geokeys;
mod reader;
mod view;

use std::ops::Range;
use std::sync::Arc;

use ::tiff::decoder::{ChunkType, Decoder, Limits};
use ::tiff::tags::Tag;
use ::tiff::TiffError;

pub use decode::TileWindow;
pub use geokeys::GeoInfo;
pub use reader::{CogFile, CogReader};
pub use view::{Segments, SparseReader};

use super::IoError;

/// The most image levels (full resolution plus overviews) read from one file; a longer IFD
/// chain is treated as hostile.
const MAX_LEVELS: usize = 64;
/// The largest tile or strip accepted, compressed or decoded.
pub(crate) const MAX_CHUNK_BYTES: u64 = 256 << 20;
/// The largest header (IFDs and their arrays) fetched.
pub(crate) const MAX_HEADER_BYTES: u64 = 64 << 20;

/// A sample's type in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[allow(missing_docs)]
pub enum SampleType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    F64,
}

impl SampleType {
    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            SampleType::U8 | SampleType::I8 => 1,
            SampleType::U16 | SampleType::I16 => 2,
            SampleType::U32 | SampleType::I32 | SampleType::F32 => 4,
            SampleType::F64 => 8,
        }
    }

    fn from_tags(format: u16, bits: u16) -> Option<SampleType> {
        Some(match (format, bits) {
            (1, 8) => SampleType::U8,
            (2, 8) => SampleType::I8,
            (1, 16) => SampleType::U16,
            (2, 16) => SampleType::I16,
            (1, 32) => SampleType::U32,
            (2, 32) => SampleType::I32,
            (3, 32) => SampleType::F32,
            (3, 64) => SampleType::F64,
            _ => return None,
        })
    }
}

/// One image of a file: the full-resolution image or an overview.
#[derive(Debug, Clone)]
pub struct ImageLevel {
    /// position of its IFD in the file's chain
    pub ifd: usize,
    /// pixels across
    pub width: u32,
    /// pixels down
    pub height: u32,
    /// samples per pixel (bands)
    pub bands: usize,
    /// sample type
    pub sample: SampleType,
    /// bands stored in separate tiles (PlanarConfiguration 2) rather than interleaved
    pub planar: bool,
    /// tiled (true) or stripped
    pub tiled: bool,
    /// tile (or strip) width in pixels
    pub chunk_width: u32,
    /// tile height (or rows per strip)
    pub chunk_height: u32,
    /// the TIFF compression code (1 none, 5 LZW, 8 or 32946 DEFLATE, 32773 PackBits, 50000 ZSTD)
    pub compression: u16,
    /// the TIFF predictor (1 none, 2 horizontal, 3 floating point)
    pub predictor: u16,
    /// byte offset of each tile or strip
    pub offsets: Vec<u64>,
    /// compressed size of each tile or strip
    pub byte_counts: Vec<u64>,
}

impl ImageLevel {
    /// Tiles (or strips) across.
    pub fn chunks_across(&self) -> u32 {
        self.width.div_ceil(self.chunk_width)
    }

    /// Tiles (or strips) down.
    pub fn chunks_down(&self) -> u32 {
        self.height.div_ceil(self.chunk_height)
    }

    /// The index of tile (row `ty`, column `tx`) holding `band` (planar files have a tile set
    /// per band).
    pub fn chunk_index(&self, ty: u32, tx: u32, band: usize) -> usize {
        let per_plane = (self.chunks_across() * self.chunks_down()) as usize;
        let plane = if self.planar { band } else { 0 };
        plane * per_plane + (ty * self.chunks_across() + tx) as usize
    }

    /// The bytes of tile `index`.
    pub fn chunk_range(&self, index: usize) -> Range<u64> {
        self.offsets[index]..self.offsets[index] + self.byte_counts[index]
    }
}

/// What a TIFF's header says: its levels, georeferencing and nodata.
#[derive(Debug, Clone)]
pub struct CogHeader {
    /// full resolution first, then overviews in file order (masks are skipped)
    pub levels: Vec<ImageLevel>,
    /// GeoTIFF georeferencing, when present
    pub geo: Option<GeoInfo>,
    /// the GDAL_NODATA tag
    pub nodata: Option<f64>,
    /// the file's size in bytes, when the server said it
    pub file_len: Option<u64>,
    /// "MM" byte order (most significant byte first)
    pub big_endian: bool,
}

/// A check of ours that a header failed.
#[derive(Debug)]
enum Problem {
    /// the file is corrupt or hostile
    Bad(String),
    /// the file is valid but uses a feature strata does not read
    Unsupported(String),
}

/// Why a parse over the bytes held so far stopped.
#[derive(Debug)]
pub(crate) enum ParseStop {
    /// these bytes are needed: fetch them and parse again
    Need(Range<u64>),
    /// the file is bad
    Bad(IoError),
}

pub(crate) fn limits() -> Limits {
    let mut l = Limits::default();
    l.decoding_buffer_size = 256 << 20;
    l.ifd_value_size = 16 << 20;
    l.intermediate_buffer_size = 256 << 20;
    l
}

/// Parses the header from the segments held. Runs in microseconds; called again after each
/// fetch of missing bytes.
pub(crate) fn parse_header(url: &str, segments: Arc<Segments>, file_len: Option<u64>) -> Result<CogHeader, ParseStop> {
    let big_endian = segments.slice(0..2).is_some_and(|b| &b[..] == b"MM");
    let reader = SparseReader::new(segments, Arc::default(), file_len);
    let missing = reader.missing();
    let parsed = read_header(reader, file_len, big_endian);
    let need = missing.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (parsed, need) {
        (Ok(Ok(h)), _) => Ok(h),
        (Ok(Err(Problem::Bad(message))), _) => Err(ParseStop::Bad(IoError::Format {
            url: url.to_string(),
            message,
        })),
        (Ok(Err(Problem::Unsupported(message))), _) => Err(ParseStop::Bad(IoError::Unsupported {
            url: url.to_string(),
            message,
        })),
        (Err(_), Some(range)) => Err(ParseStop::Need(range)),
        (Err(e), None) => Err(ParseStop::Bad(tiff_error(url, e, file_len))),
    }
}

pub(crate) fn tiff_error(url: &str, e: TiffError, file_len: Option<u64>) -> IoError {
    match e {
        TiffError::UnsupportedError(u) => IoError::Unsupported {
            url: url.to_string(),
            message: u.to_string(),
        },
        TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => IoError::Format {
            url: url.to_string(),
            message: match file_len {
                Some(n) => format!("an offset or size points past the end of the file ({n} bytes)"),
                None => "an offset or size points past the end of the file".into(),
            },
        },
        other => IoError::Format {
            url: url.to_string(),
            message: other.to_string(),
        },
    }
}

/// `Err` is the tiff crate's (maybe a miss); `Ok(Err)` is a check of ours that failed.
fn read_header(
    reader: SparseReader,
    file_len: Option<u64>,
    big_endian: bool,
) -> Result<Result<CogHeader, Problem>, TiffError> {
    let mut dec = Decoder::new(reader)?.with_limits(limits());
    let geo = geokeys::read(&mut dec)?;
    let nodata = match dec.find_tag(Tag::GdalNodata)? {
        Some(v) => {
            let text = v.into_string()?;
            let text = text.trim().trim_end_matches('\0');
            match text.to_ascii_lowercase().as_str() {
                "nan" | "-nan" => Some(f64::NAN),
                "inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                t => match t.parse::<f64>() {
                    Ok(v) => Some(v),
                    Err(_) => return Ok(Err(Problem::Bad(format!("GDAL_NODATA {text:?} is not a number")))),
                },
            }
        }
        None => None,
    };
    let mut levels = Vec::new();
    let mut ifd = 0;
    loop {
        let subfile = dec.find_tag_unsigned::<u32>(Tag::NewSubfileType)?.unwrap_or(0);
        // Bit 2 marks a transparency mask (GDAL's internal masks): not an image level.
        if subfile & 4 == 0 {
            match read_level(&mut dec, ifd, file_len)? {
                Ok(level) => levels.push(level),
                Err(Problem::Bad(m)) => return Ok(Err(Problem::Bad(format!("image {ifd}: {m}")))),
                Err(Problem::Unsupported(m)) => return Ok(Err(Problem::Unsupported(format!("image {ifd}: {m}")))),
            }
        }
        if !dec.more_images() {
            break;
        }
        ifd += 1;
        if ifd >= MAX_LEVELS {
            return Ok(Err(Problem::Bad(format!(
                "more than {MAX_LEVELS} images in the IFD chain"
            ))));
        }
        dec.next_image()?;
    }
    if levels.is_empty() {
        return Ok(Err(Problem::Bad("no image".into())));
    }
    Ok(Ok(CogHeader {
        levels,
        geo,
        nodata,
        file_len,
        big_endian,
    }))
}

fn read_level<R: std::io::Read + std::io::Seek>(
    dec: &mut Decoder<R>,
    ifd: usize,
    file_len: Option<u64>,
) -> Result<Result<ImageLevel, Problem>, TiffError> {
    let (width, height) = dec.dimensions()?;
    let bands = dec.find_tag_unsigned::<u16>(Tag::SamplesPerPixel)?.unwrap_or(1) as usize;
    let bits = dec
        .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)?
        .unwrap_or_else(|| vec![1]);
    let formats = dec
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)?
        .unwrap_or_else(|| vec![1]);
    let planar = dec.find_tag_unsigned::<u16>(Tag::PlanarConfiguration)?.unwrap_or(1) == 2;
    let compression = dec.find_tag_unsigned::<u16>(Tag::Compression)?.unwrap_or(1);
    let predictor = dec.find_tag_unsigned::<u16>(Tag::Predictor)?.unwrap_or(1);
    let tiled = dec.get_chunk_type() == ChunkType::Tile;
    let (chunk_width, chunk_height) = dec.chunk_dimensions();
    let (off_tag, count_tag) = if tiled {
        (Tag::TileOffsets, Tag::TileByteCounts)
    } else {
        (Tag::StripOffsets, Tag::StripByteCounts)
    };
    let offsets = dec.find_tag_unsigned_vec::<u64>(off_tag)?.unwrap_or_default();
    let byte_counts = dec.find_tag_unsigned_vec::<u64>(count_tag)?.unwrap_or_default();

    if width == 0 || height == 0 || bands == 0 || chunk_width == 0 || chunk_height == 0 {
        return Ok(Err(Problem::Bad(format!(
            "empty image or tile: {width}x{height}, {bands} samples, tiles {chunk_width}x{chunk_height}"
        ))));
    }
    if bits.iter().any(|&b| b != bits[0]) || formats.iter().any(|&f| f != formats[0]) {
        return Ok(Err(Problem::Unsupported("bands of different sample types".into())));
    }
    let Some(sample) = SampleType::from_tags(formats[0], bits[0]) else {
        return Ok(Err(Problem::Unsupported(format!(
            "sample format {} with {} bits is not supported",
            formats[0], bits[0]
        ))));
    };
    if !matches!(compression, 1 | 5 | 8 | 32946 | 32773 | 50000) {
        return Ok(Err(Problem::Unsupported(format!(
            "compression {compression} is not supported (none, LZW, DEFLATE, PackBits, ZSTD are)"
        ))));
    }
    let per_pixel = if planar { 1 } else { bands as u64 };
    let chunk_bytes = chunk_width as u64 * chunk_height as u64 * per_pixel * sample.size() as u64;
    if chunk_bytes > MAX_CHUNK_BYTES {
        return Ok(Err(Problem::Bad(format!(
            "a {chunk_width}x{chunk_height} tile of {per_pixel} samples decodes to {chunk_bytes} bytes, over the {} MiB limit",
            MAX_CHUNK_BYTES >> 20
        ))));
    }
    let per_plane = width.div_ceil(chunk_width) as u64 * height.div_ceil(chunk_height) as u64;
    let expected = per_plane * if planar { bands as u64 } else { 1 };
    if offsets.len() as u64 != expected || byte_counts.len() as u64 != expected {
        return Ok(Err(Problem::Bad(format!(
            "{} offsets and {} byte counts, but a {width}x{height} image in {chunk_width}x{chunk_height} {} needs {expected}",
            offsets.len(),
            byte_counts.len(),
            if tiled { "tiles" } else { "strips" }
        ))));
    }
    for (i, (&o, &n)) in offsets.iter().zip(&byte_counts).enumerate() {
        let end = o.checked_add(n);
        if n > MAX_CHUNK_BYTES || end.is_none() || file_len.is_some_and(|len| end.unwrap_or(u64::MAX) > len) {
            return Ok(Err(Problem::Bad(format!(
                "chunk {i} at {o} with {n} bytes lies past the end of the file or is too large"
            ))));
        }
    }
    Ok(Ok(ImageLevel {
        ifd,
        width,
        height,
        bands,
        sample,
        planar,
        tiled,
        chunk_width,
        chunk_height,
        compression,
        predictor,
        offsets,
        byte_counts,
    }))
}
