//! A Cloud-Optimized GeoTIFF writer: tiled and DEFLATE-compressed, with internal overviews
//! (halved until one tile holds them), every directory before the pixel data and the smallest
//! overview's tiles first, as a COG reader expects. The TIFF structure goes through the `tiff`
//! crate's directory encoder, tiles through libdeflate; georeferencing as GeoTIFF tags (pixel
//! scale, tie point, GeoKey directory with the EPSG code) and GDAL's nodata tag, so GDAL and
//! rasterio read back the transform, CRS and nodata.

use std::io::{Seek, Write};
use std::path::Path;

use ndarray::{ArrayBase, Axis, IxDyn};
use tiff::encoder::TiffEncoder;
use tiff::tags::Tag;

use super::{write_bytes, OutputError};
use crate::geo::{Affine, Crs};

/// How a GeoTIFF is georeferenced and laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoTiffOptions {
    /// pixel corner → CRS coordinates (north-up: `b = d = 0`)
    pub transform: Affine,
    /// the CRS's EPSG code
    pub epsg: u32,
    /// the value that means "no data" (GDAL_NODATA); NaN for float results
    pub nodata: Option<f64>,
    /// tile edge in pixels (a multiple of 16, as TIFF requires)
    pub tile: u32,
    /// DEFLATE level (1..=12; 6 is zlib's default)
    pub level: i32,
    /// internal overviews, each half the size of the one before (nearest: the top-left pixel
    /// of every 2 × 2, so NaN and mask values stay what they are), until one tile holds the
    /// image; on by default, as a COG wants for images larger than a tile
    pub overviews: bool,
}

impl GeoTiffOptions {
    /// 256-pixel tiles, DEFLATE level 6, no nodata, overviews.
    pub fn new(transform: Affine, epsg: u32) -> Self {
        GeoTiffOptions {
            transform,
            epsg,
            nodata: None,
            tile: 256,
            level: 6,
            overviews: true,
        }
    }
}

/// Sample types a GeoTIFF holds: f32 (results), u16 (stored reflectance) and u8 (masks).
pub trait GeoTiffSample: Copy + bytemuck::Pod + Send + Sync {
    /// TIFF BitsPerSample
    const BITS: u16;
    /// TIFF SampleFormat (1 unsigned integer, 3 IEEE float)
    const FORMAT: u16;
    /// the value padding partial edge tiles
    fn pad(nodata: Option<f64>) -> Self;
}

impl GeoTiffSample for f32 {
    const BITS: u16 = 32;
    const FORMAT: u16 = 3;
    fn pad(nodata: Option<f64>) -> Self {
        nodata.map_or(0.0, |v| v as f32)
    }
}

impl GeoTiffSample for u16 {
    const BITS: u16 = 16;
    const FORMAT: u16 = 1;
    fn pad(nodata: Option<f64>) -> Self {
        nodata.map_or(0, |v| v as u16)
    }
}

impl GeoTiffSample for u8 {
    const BITS: u16 = 8;
    const FORMAT: u16 = 1;
    fn pad(nodata: Option<f64>) -> Self {
        nodata.map_or(0, |v| v as u8)
    }
}

/// Writes `array` — `(y, x)`, or `(band, y, x)` stored band by band — as a tiled, DEFLATE
/// GeoTIFF, atomically. Costs one compression pass over the data; the file is built in memory
/// tile by tile and written once.
///
/// **Errors**: [`OutputError::Unsupported`] for other ranks, a rotated transform, a tile size
/// that is not a multiple of 16 or a file beyond 4 GiB; [`OutputError::Encode`] from the
/// encoder; [`OutputError::Io`].
pub fn write_geotiff<T: GeoTiffSample, S: ndarray::Data<Elem = T>>(
    path: &Path,
    array: &ArrayBase<S, IxDyn>,
    options: &GeoTiffOptions,
) -> Result<(), OutputError> {
    write_bytes(path, &geotiff_bytes(path, array, options)?)
}

/// The bytes of the GeoTIFF [`write_geotiff`] writes (`path` only names it in errors), for
/// serving from memory.
///
/// **Errors**: as [`write_geotiff`], less the I/O.
pub fn geotiff_bytes<T: GeoTiffSample, S: ndarray::Data<Elem = T>>(
    path: &Path,
    array: &ArrayBase<S, IxDyn>,
    options: &GeoTiffOptions,
) -> Result<Vec<u8>, OutputError> {
    let unsupported = |reason: String| OutputError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    let planes = match array.ndim() {
        2 => array.view().insert_axis(Axis(0)),
        3 => array.view(),
        n => {
            return Err(unsupported(format!(
                "a GeoTIFF holds (y, x) or (band, y, x), not {n} axes"
            )))
        }
    };
    let planes = planes.into_dimensionality::<ndarray::Ix3>().expect("three axes");
    let (_, height, width) = planes.dim();
    let t = &options.transform;
    if t.b != 0.0 || t.d != 0.0 {
        return Err(unsupported(
            "a rotated transform (only north-up grids are written)".into(),
        ));
    }
    let tile = options.tile as usize;
    if tile == 0 || !tile.is_multiple_of(16) {
        return Err(unsupported(format!(
            "tile size {tile} is not a positive multiple of 16"
        )));
    }
    if options.epsg > u32::from(u16::MAX) {
        return Err(unsupported(format!(
            "EPSG:{} does not fit a GeoKey (16 bits)",
            options.epsg
        )));
    }
    let geographic = Crs::from_epsg(options.epsg)
        .map_err(|e| unsupported(format!("EPSG:{}: {e}", options.epsg)))?
        .is_geographic();
    let encode = |e: tiff::TiffError| OutputError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    // Full resolution, then halves while the image is larger than a tile.
    let mut levels: Vec<ndarray::Array3<T>> = Vec::new();
    if options.overviews {
        let mut size = (height, width);
        while size.0.max(size.1) > tile {
            let prev = levels.last().map_or(planes.view(), |l| l.view());
            let half = prev.slice(ndarray::s![.., ..;2, ..;2]).to_owned();
            size = (half.dim().1, half.dim().2);
            levels.push(half);
        }
    }
    let views: Vec<ndarray::ArrayView3<'_, T>> = std::iter::once(planes.view())
        .chain(levels.iter().map(|l| l.view()))
        .collect();
    let mut compressor = libdeflater::Compressor::new(
        libdeflater::CompressionLvl::new(options.level)
            .map_err(|_| unsupported(format!("DEFLATE level {}", options.level)))?,
    );
    // The smallest overview's tiles first, full resolution last (a reader of a preview stops
    // early); each level's tiles band by band, row by row.
    let mut body: Vec<u8> = Vec::new();
    let mut counts: Vec<Vec<u32>> = vec![Vec::new(); views.len()];
    for (level, view) in views.iter().enumerate().rev() {
        counts[level] =
            compress_tiles(view, tile, T::pad(options.nodata), &mut compressor, &mut body).map_err(|message| {
                OutputError::Encode {
                    path: path.to_path_buf(),
                    message,
                }
            })?;
    }
    let total = body.len();
    if total as u64 > u32::MAX as u64 - (1 << 20) {
        return Err(unsupported(format!(
            "{total} bytes of tiles exceed a classic TIFF's 4 GiB"
        )));
    }
    // Cloud-optimized order: the header and every directory first, then the tiles, so a
    // reader's first range request holds every tile's offset. The directories' size does not
    // depend on the offset values, so a first encoding with placeholders gives where the
    // tiles start.
    let shapes: Vec<(usize, usize, usize)> = views.iter().map(|v| v.dim()).collect();
    let directory = |offsets: &[Vec<u32>]| {
        let mut head = std::io::Cursor::new(Vec::with_capacity(4096));
        write_directories(
            &mut head,
            offsets,
            &counts,
            &shapes,
            (T::BITS, T::FORMAT),
            options,
            geographic,
        )
        .map(|()| head.into_inner())
        .map_err(encode)
    };
    let placeholders: Vec<Vec<u32>> = counts.iter().map(|c| vec![0; c.len()]).collect();
    let start = directory(&placeholders)?.len() as u32;
    let mut at = start;
    let mut offsets: Vec<Vec<u32>> = vec![Vec::new(); views.len()];
    for level in (0..views.len()).rev() {
        offsets[level] = counts[level]
            .iter()
            .map(|&n| {
                let here = at;
                at += n;
                here
            })
            .collect();
    }
    let mut file = directory(&offsets)?;
    if file.len() as u32 != start {
        return Err(unsupported("the TIFF directory changed size between passes".into()));
    }
    file.extend_from_slice(&body);
    Ok(file)
}

/// Compresses the tiles of `planes` (band by band, row by row, each padded to full size with
/// `pad`) onto `body`; returns their sizes. One scratch buffer, no allocation per tile.
fn compress_tiles<T: GeoTiffSample>(
    planes: &ndarray::ArrayView3<'_, T>,
    tile: usize,
    pad: T,
    compressor: &mut libdeflater::Compressor,
    body: &mut Vec<u8>,
) -> Result<Vec<u32>, String> {
    let (bands, height, width) = planes.dim();
    let (across, down) = (width.div_ceil(tile), height.div_ceil(tile));
    let mut counts = Vec::with_capacity(bands * across * down);
    let mut buf = vec![pad; tile * tile];
    let mut scratch = vec![0u8; compressor.zlib_compress_bound(tile * tile * std::mem::size_of::<T>())];
    for b in 0..bands {
        for ty in 0..down {
            for tx in 0..across {
                buf.fill(pad);
                for r in 0..tile.min(height - ty * tile) {
                    let row = planes.slice(ndarray::s![b, ty * tile + r, tx * tile..(tx * tile + tile).min(width)]);
                    for (d, &v) in buf[r * tile..].iter_mut().zip(row.iter()) {
                        *d = v;
                    }
                }
                let n = compressor
                    .zlib_compress(bytemuck::cast_slice(&buf), &mut scratch)
                    .map_err(|e| format!("DEFLATE: {e}"))?;
                body.extend_from_slice(&scratch[..n]);
                counts.push(n as u32);
            }
        }
    }
    Ok(counts)
}

/// Writes the TIFF header and one directory per level (full resolution first, then the
/// overviews, marked reduced-resolution), no pixel data, for tiles at `offsets`.
fn write_directories<W: Write + Seek>(
    w: &mut W,
    offsets: &[Vec<u32>],
    counts: &[Vec<u32>],
    shapes: &[(usize, usize, usize)],
    sample: (u16, u16),
    options: &GeoTiffOptions,
    geographic: bool,
) -> tiff::TiffResult<()> {
    let mut encoder = TiffEncoder::new(w)?;
    for (level, &shape) in shapes.iter().enumerate() {
        let mut dir = encoder.image_directory()?;
        if level > 0 {
            dir.write_tag(Tag::NewSubfileType, 1u32)?; // a reduced-resolution image
        }
        write_directory(&mut dir, &offsets[level], &counts[level], shape, sample, options)?;
        if level == 0 {
            write_georeferencing(&mut dir, options, geographic)?;
        } else if let Some(nd) = options.nodata {
            dir.write_tag(Tag::GdalNodata, nodata_text(nd).as_str())?;
        }
        dir.finish()?;
    }
    Ok(())
}

/// The image tags of one directory: size, samples, DEFLATE, tiles.
fn write_directory<W: Write + Seek, K: tiff::encoder::TiffKind>(
    dir: &mut tiff::encoder::DirectoryEncoder<'_, W, K>,
    offsets: &[u32],
    counts: &[u32],
    (bands, height, width): (usize, usize, usize),
    (bits, format): (u16, u16),
    options: &GeoTiffOptions,
) -> tiff::TiffResult<()> {
    dir.write_tag(Tag::ImageWidth, width as u32)?;
    dir.write_tag(Tag::ImageLength, height as u32)?;
    dir.write_tag(Tag::BitsPerSample, vec![bits; bands].as_slice())?;
    dir.write_tag(Tag::Compression, 8u16)?; // DEFLATE (zlib)
    dir.write_tag(Tag::PhotometricInterpretation, 1u16)?; // BlackIsZero
    dir.write_tag(Tag::SamplesPerPixel, bands as u16)?;
    if bands > 1 {
        // bands beyond the one BlackIsZero describes, declared so readers need not guess
        dir.write_tag(Tag::ExtraSamples, vec![0u16; bands - 1].as_slice())?; // unspecified
    }
    dir.write_tag(Tag::PlanarConfiguration, 2u16)?; // band by band
    dir.write_tag(Tag::TileWidth, options.tile)?;
    dir.write_tag(Tag::TileLength, options.tile)?;
    dir.write_tag(Tag::TileOffsets, offsets)?;
    dir.write_tag(Tag::TileByteCounts, counts)?;
    dir.write_tag(Tag::SampleFormat, vec![format; bands].as_slice())
}

/// The georeferencing tags (transform, GeoKeys with the EPSG code) and GDAL's nodata.
fn write_georeferencing<W: Write + Seek, K: tiff::encoder::TiffKind>(
    dir: &mut tiff::encoder::DirectoryEncoder<'_, W, K>,
    options: &GeoTiffOptions,
    geographic: bool,
) -> tiff::TiffResult<()> {
    let t = &options.transform;
    dir.write_tag(Tag::ModelPixelScaleTag, [t.a, -t.e, 0.0].as_slice())?;
    dir.write_tag(Tag::ModelTiepointTag, [0.0, 0.0, 0.0, t.c, t.f, 0.0].as_slice())?;
    let keys = crate::io::tiff::geokeys::directory(options.epsg as u16, geographic);
    dir.write_tag(Tag::GeoKeyDirectoryTag, keys.as_slice())?;
    if let Some(nd) = options.nodata {
        dir.write_tag(Tag::GdalNodata, nodata_text(nd).as_str())?;
    }
    Ok(())
}

/// GDAL's text for a nodata value.
fn nodata_text(nd: f64) -> String {
    if nd.is_nan() {
        "nan".to_string()
    } else {
        format!("{nd}")
    }
}
