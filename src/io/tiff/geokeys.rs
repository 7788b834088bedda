//! GeoTIFF georeferencing: the model tags and the GeoKey directory, read as GDAL reads them.

use ::tiff::decoder::Decoder;
use ::tiff::tags::Tag;
use ::tiff::TiffError;

use crate::geo::Affine;

const GT_MODEL_TYPE: u16 = 1024;
const GT_RASTER_TYPE: u16 = 1025;
const GEOGRAPHIC_TYPE: u16 = 2048;
const PROJECTED_CS_TYPE: u16 = 3072;
/// GeoKey value meaning "user-defined" (no EPSG code).
const USER_DEFINED: u16 = 32767;

/// The GeoKey directory of a north-up raster in EPSG `epsg` (version 1.1.0, three keys: the
/// model type, PixelIsArea, and the projected or geographic CRS code), as written by
/// [`crate::output::write_geotiff`] and read back by [`read`].
pub(crate) fn directory(epsg: u16, geographic: bool) -> [u16; 16] {
    let (model, crs_key) = if geographic {
        (2, GEOGRAPHIC_TYPE)
    } else {
        (1, PROJECTED_CS_TYPE)
    };
    #[rustfmt::skip]
    let keys = [
        1, 1, 0, 3,
        GT_MODEL_TYPE, 0, 1, model,
        GT_RASTER_TYPE, 0, 1, 1,
        crs_key, 0, 1, epsg,
    ];
    keys
}

/// Where a GeoTIFF's pixels are on the Earth.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GeoInfo {
    /// pixel corner → CRS coordinates (GDAL's convention: PixelIsPoint rasters are shifted by
    /// half a pixel so the transform always addresses pixel corners)
    pub transform: Affine,
    /// the CRS's EPSG code, when the keys name one
    pub epsg: Option<u32>,
}

/// Reads the georeferencing of the current IFD, or `None` when it has no model tags.
pub(super) fn read<R: std::io::Read + std::io::Seek>(dec: &mut Decoder<R>) -> Result<Option<GeoInfo>, TiffError> {
    let keys = dec
        .find_tag(Tag::GeoKeyDirectoryTag)?
        .map(|v| v.into_u16_vec())
        .transpose()?;
    let key = |id: u16| -> Option<u16> {
        let keys = keys.as_ref()?;
        // Header: version, revision, minor, count; then (id, location, count, value) entries.
        let count = *keys.get(3)? as usize;
        keys.get(4..4 + 4 * count)?
            .chunks_exact(4)
            .find(|e| e[0] == id && e[1] == 0)
            .map(|e| e[3])
    };
    let pixel_is_point = key(GT_RASTER_TYPE) == Some(2);
    let epsg = match key(GT_MODEL_TYPE) {
        Some(2) => key(GEOGRAPHIC_TYPE),
        _ => key(PROJECTED_CS_TYPE).or_else(|| key(GEOGRAPHIC_TYPE)),
    }
    .filter(|&c| c != 0 && c != USER_DEFINED)
    .map(u32::from);

    let matrix = dec
        .find_tag(Tag::ModelTransformationTag)?
        .map(|v| v.into_f64_vec())
        .transpose()?;
    let scale = dec
        .find_tag(Tag::ModelPixelScaleTag)?
        .map(|v| v.into_f64_vec())
        .transpose()?;
    let tie = dec
        .find_tag(Tag::ModelTiepointTag)?
        .map(|v| v.into_f64_vec())
        .transpose()?;
    let mut transform = match (matrix, scale, tie) {
        (Some(m), _, _) if m.len() >= 8 => Affine {
            a: m[0],
            b: m[1],
            c: m[3],
            d: m[4],
            e: m[5],
            f: m[7],
        },
        (_, Some(s), Some(t)) if s.len() >= 2 && t.len() >= 6 => Affine {
            a: s[0],
            b: 0.0,
            c: t[3] - t[0] * s[0],
            d: 0.0,
            e: -s[1],
            f: t[4] + t[1] * s[1],
        },
        _ => return Ok(None),
    };
    if pixel_is_point {
        // The tie point is a pixel centre: move the origin to the corner, as GDAL does.
        transform.c -= 0.5 * (transform.a + transform.b);
        transform.f -= 0.5 * (transform.d + transform.e);
    }
    Ok(Some(GeoInfo { transform, epsg }))
}
