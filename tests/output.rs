//! Outputs through the public API: GeoTIFFs read back (by strata's reader, which is checked
//! against GDAL on 93 fixtures) with the same pixels, transform, EPSG and nodata; bad requests
//! are typed errors that leave no file behind.

use std::path::PathBuf;

use ndarray::{ArrayD, IxDyn};
use strata::geo::Affine;
use strata::io::{CogReader, ObjectStore, StoreOptions, TileWindow};
use strata::output::{write_geotiff, GeoTiffOptions, OutputError};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-out-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_back(
    path: &std::path::Path,
    bands: usize,
    height: u32,
    width: u32,
) -> (ndarray::Array3<f64>, Option<f64>, Affine, Option<u32>) {
    let reader = CogReader::new(ObjectStore::new(StoreOptions::default()).unwrap());
    let href = path.to_str().unwrap();
    let file = reader.open_blocking(href).unwrap();
    let header = file.header();
    let geo = header.geo.clone().expect("georeferenced");
    let window = TileWindow {
        level: 0,
        bands: (0..bands).collect(),
        rows: 0..height,
        cols: 0..width,
    };
    (
        reader.read_window(href, &window).unwrap(),
        header.nodata,
        geo.transform,
        geo.epsg,
    )
}

#[test]
fn a_float_geotiff_reads_back_with_its_pixels_transform_crs_and_nodata() {
    let dir = scratch("float");
    let path = dir.join("smoothed.tif");
    // Two bands, edge tiles on both axes (300 x 530 in 256 tiles), NaN holes.
    let data = ArrayD::from_shape_fn(IxDyn(&[2, 300, 530]), |ix| {
        if (ix[1] * 7 + ix[2] * 3) % 41 == 0 {
            f32::NAN
        } else {
            (ix[0] as f32 + 1.0) * 0.001 * ix[1] as f32 - 0.37 * ix[2] as f32
        }
    });
    let transform = Affine::north_up(545_000.0, 4_185_000.0, 30.0, 30.0);
    let options = GeoTiffOptions {
        nodata: Some(f64::NAN),
        ..GeoTiffOptions::new(transform, 32610)
    };
    write_geotiff(&path, &data, &options).unwrap();
    let (back, nodata, t, epsg) = read_back(&path, 2, 300, 530);
    assert_eq!((t, epsg), (transform, Some(32610)));
    // Cloud-optimized order: header, directory, then the tiles back to back to the end.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"II*\0");
    let ifd = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let entries = u16::from_le_bytes(bytes[ifd..ifd + 2].try_into().unwrap()) as usize;
    let mut dec = tiff::decoder::Decoder::new(std::io::Cursor::new(&bytes)).unwrap();
    let offsets = dec.get_tag_u32_vec(tiff::tags::Tag::TileOffsets).unwrap();
    let counts = dec.get_tag_u32_vec(tiff::tags::Tag::TileByteCounts).unwrap();
    assert_eq!(offsets.len(), 2 * 2 * 3);
    assert!(
        offsets[0] as usize >= ifd + 2 + 12 * entries + 4,
        "a tile before the directory ends"
    );
    assert!(
        offsets.windows(2).zip(&counts).all(|(w, &n)| w[0] + n == w[1]),
        "tiles in order"
    );
    assert_eq!((offsets[11] + counts[11]) as usize, bytes.len());
    assert!(nodata.is_some_and(f64::is_nan), "{nodata:?}");
    // Internal overviews, halved until a tile holds them (530 x 300 → 265 x 150 → 133 x 75),
    // each the top-left pixel of every 2 × 2 of the level before; their directories come
    // before any tile, and their tiles before full resolution's, smallest first.
    let reader = CogReader::new(ObjectStore::new(StoreOptions::default()).unwrap());
    let href = path.to_str().unwrap();
    let levels: Vec<(u32, u32)> = reader
        .open_blocking(href)
        .unwrap()
        .header()
        .levels
        .iter()
        .map(|l| (l.width, l.height))
        .collect();
    assert_eq!(levels, [(530, 300), (265, 150), (133, 75)]);
    let mut first_tile = Vec::new();
    let mut dec = tiff::decoder::Decoder::new(std::io::Cursor::new(&bytes)).unwrap();
    loop {
        first_tile.push(dec.get_tag_u32_vec(tiff::tags::Tag::TileOffsets).unwrap()[0]);
        if !dec.more_images() {
            break;
        }
        dec.next_image().unwrap();
    }
    assert!(
        first_tile.windows(2).all(|w| w[0] > w[1]),
        "smallest overview first: {first_tile:?}"
    );
    for (level, step) in [(1u32, 2usize), (2, 4)] {
        let (w, h) = levels[level as usize];
        let window = TileWindow {
            level: level as usize,
            bands: vec![0, 1],
            rows: 0..h,
            cols: 0..w,
        };
        let over = reader.read_window(href, &window).unwrap();
        for ((b, r, c), got) in over.indexed_iter() {
            let want = data[[b, r * step, c * step]];
            assert!(
                (got.is_nan() && want.is_nan()) || *got == f64::from(want),
                "level {level} at {b},{r},{c}"
            );
        }
    }
    for ((i, &got), &want) in back.indexed_iter().zip(data.iter()) {
        assert!(
            (got.is_nan() && want.is_nan()) || got == f64::from(want),
            "at {i:?}: {got} vs {want}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_mask_geotiff_in_a_geographic_crs_reads_back() {
    let dir = scratch("mask");
    let path = dir.join("mask.tif");
    let mask = ArrayD::from_shape_fn(IxDyn(&[33, 47]), |ix| u8::from((ix[0] + ix[1]) % 3 == 0));
    let transform = Affine::north_up(-122.6, 37.9, 0.001, 0.001);
    write_geotiff(
        &path,
        &mask,
        &GeoTiffOptions {
            tile: 16,
            ..GeoTiffOptions::new(transform, 4326)
        },
    )
    .unwrap();
    let (back, nodata, t, epsg) = read_back(&path, 1, 33, 47);
    assert_eq!((t, epsg, nodata), (transform, Some(4326), None));
    assert!(back.iter().zip(mask.iter()).all(|(&g, &w)| g == f64::from(w)));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_requests_are_typed_errors_and_leave_no_file() {
    let dir = scratch("bad");
    let t = Affine::north_up(0.0, 0.0, 1.0, 1.0);
    let one_axis = ArrayD::<f32>::zeros(IxDyn(&[5]));
    let path = dir.join("a.tif");
    let err = write_geotiff(&path, &one_axis, &GeoTiffOptions::new(t, 32610)).unwrap_err();
    assert!(matches!(err, OutputError::Unsupported { .. }), "{err}");
    let img = ArrayD::<f32>::zeros(IxDyn(&[4, 4]));
    let rotated = Affine { b: 0.5, ..t };
    assert!(matches!(
        write_geotiff(&path, &img, &GeoTiffOptions::new(rotated, 32610)),
        Err(OutputError::Unsupported { .. })
    ));
    let odd_tiles = GeoTiffOptions {
        tile: 100,
        ..GeoTiffOptions::new(t, 32610)
    };
    assert!(matches!(
        write_geotiff(&path, &img, &odd_tiles),
        Err(OutputError::Unsupported { .. })
    ));
    let missing = dir.join("no-such-dir").join("b.tif");
    let err = write_geotiff(&missing, &img, &GeoTiffOptions::new(t, 32610)).unwrap_err();
    assert!(
        matches!(&err, OutputError::Io { path, .. } if path == &missing),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "nothing was left behind");
    std::fs::remove_dir_all(&dir).ok();
}

/// A PNG's size and RGBA bytes.
fn decode_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgba);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn quicklooks_stretch_colour_and_stack_panels() {
    use strata::output::{write_png_band, write_png_mask, write_png_rgb_grid, ColorMap, Stretch};
    let dir = scratch("png");
    // Two time steps of a 3-band 2 x 3 image, values k/10; one NaN pixel in step 1.
    let mut rgb = ndarray::Array4::from_shape_fn((2, 3, 2, 3), |(t, b, y, x)| {
        ((t * 18 + b * 6 + y * 3 + x) % 11) as f32 / 10.0
    });
    rgb[[1, 2, 0, 0]] = f32::NAN;
    let path = dir.join("rgb.png");
    write_png_rgb_grid(&path, rgb.view(), Stretch::Range { vmin: 0.0, vmax: 1.0 }).unwrap();
    let (w, h, px) = decode_png(&path);
    assert_eq!((w, h), (3, 2 + 4 + 2), "two panels and a 4-row gap");
    let at = |x: usize, y: usize| &px[(y * 3 + x) * 4..(y * 3 + x) * 4 + 4];
    // step 0, pixel (y 1, x 2): bands (5, 11 % 11 = 0, 17 % 11 = 6) / 10 → 128, 0, 153
    assert_eq!(at(2, 1), &[128, 0, 153, 255]);
    assert_eq!(at(0, 3)[3], 0, "the gap is transparent");
    assert_eq!(at(0, 6)[3], 0, "a NaN band makes the pixel transparent");
    // The robust stretch maps the 2nd..98th percentiles of all values to 0..255.
    let robust = dir.join("robust.png");
    write_png_rgb_grid(&robust, rgb.view(), Stretch::ROBUST).unwrap();
    let mut all: Vec<f32> = rgb.iter().copied().filter(|v| !v.is_nan()).collect();
    let (lo, hi) = (
        strata::output::percentile(&mut all, 2.0),
        strata::output::percentile(&mut all, 98.0),
    );
    let (_, _, px) = decode_png(&robust);
    let want = ((f64::from(rgb[[0, 0, 1, 2]]) - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0;
    assert_eq!(f64::from(px[(3 + 2) * 4]), want.round());
    // A band through Greys_r with vmin/vmax: the low end black, the high end white, NaN clear.
    let band = ndarray::arr2(&[[0.0f32, 0.5], [1.0, f32::NAN]]);
    let bpath = dir.join("band.png");
    write_png_band(
        &bpath,
        band.view(),
        Stretch::Range { vmin: 0.0, vmax: 1.0 },
        ColorMap::GreysR,
    )
    .unwrap();
    let (_, _, px) = decode_png(&bpath);
    assert_eq!(
        (&px[0..4], &px[8..12], px[15]),
        (&[0u8, 0, 0, 255][..], &[255u8, 255, 255, 255][..], 0)
    );
    let mpath = dir.join("mask.png");
    write_png_mask(&mpath, ndarray::arr2(&[[1u8, 0]]).view()).unwrap();
    assert_eq!(decode_png(&mpath).2, vec![255, 255, 255, 255, 0, 0, 0, 255]);
    // A wrong band count is a typed error and writes nothing.
    let two = ndarray::Array4::<f32>::zeros((1, 2, 2, 2));
    assert!(matches!(
        write_png_rgb_grid(&dir.join("bad.png"), two.view(), Stretch::ROBUST),
        Err(OutputError::Unsupported { .. })
    ));
    assert!(!dir.join("bad.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
