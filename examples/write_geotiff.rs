//! Writes a small float GeoTIFF (two bands, NaN nodata, UTM 10N) and a mask GeoTIFF (EPSG:4326)
//! into a directory, for `scripts/check_geotiff.sh` to read back with GDAL (rasterio).
//!
//! Run: `cargo run --release --example write_geotiff -- DIR`

use ndarray::{ArrayD, IxDyn};
use strata::geo::Affine;
use strata::output::{write_geotiff, write_npy, GeoTiffOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "geotiff-out".into()));
    std::fs::create_dir_all(&dir)?;
    let data = ArrayD::from_shape_fn(IxDyn(&[2, 300, 530]), |ix| {
        if (ix[1] * 7 + ix[2] * 3) % 41 == 0 {
            f32::NAN
        } else {
            (ix[0] as f32 + 1.0) * 0.001 * ix[1] as f32 - 0.37 * ix[2] as f32
        }
    });
    let utm = Affine::north_up(545_000.0, 4_185_000.0, 30.0, 30.0);
    let options = GeoTiffOptions {
        nodata: Some(f64::NAN),
        ..GeoTiffOptions::new(utm, 32610)
    };
    write_geotiff(&dir.join("float.tif"), &data, &options)?;
    write_npy(&dir.join("float.npy"), &data)?;
    let mask = ArrayD::from_shape_fn(IxDyn(&[33, 47]), |ix| u8::from((ix[0] + ix[1]) % 3 == 0));
    let geo = Affine::north_up(-122.6, 37.9, 0.001, 0.001);
    write_geotiff(
        &dir.join("mask.tif"),
        &mask,
        &GeoTiffOptions {
            tile: 16,
            ..GeoTiffOptions::new(geo, 4326)
        },
    )?;
    println!("wrote {}/float.tif, float.npy, mask.tif", dir.display());
    Ok(())
}
