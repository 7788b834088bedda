//! Corrupt, truncated and hostile TIFFs give typed errors: no panics, hangs or huge allocations.

use std::path::PathBuf;

use strata::io::{CogReader, IoError, ObjectStore, StoreOptions, TileWindow};

/// One IFD entry: tag, type (3 SHORT, 4 LONG), count, value or offset.
type Entry = (u16, u16, u32, u32);

/// A little-endian classic TIFF: the IFD at 8, `payload` pieces at their offsets.
fn tiff(entries: &[Entry], next_ifd: u32, payload: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"II*\0".to_vec();
    out.extend(8u32.to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|e| e.0);
    for (tag, typ, count, value) in sorted {
        out.extend(tag.to_le_bytes());
        out.extend(typ.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(value.to_le_bytes());
    }
    out.extend(next_ifd.to_le_bytes());
    for (at, bytes) in payload {
        let end = *at as usize + bytes.len();
        if out.len() < end {
            out.resize(end, 0);
        }
        out[*at as usize..end].copy_from_slice(bytes);
    }
    out
}

fn longs(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A valid 64x32 u8 image in two 32x32 uncompressed tiles; tile t holds value t*100 + row.
fn valid_entries() -> (Vec<Entry>, Vec<(u32, Vec<u8>)>) {
    let entries = vec![
        (256, 3, 1, 64),
        (257, 3, 1, 32),
        (258, 3, 1, 8),
        (259, 3, 1, 1),
        (262, 3, 1, 1),
        (277, 3, 1, 1),
        (322, 3, 1, 32),
        (323, 3, 1, 32),
        (324, 4, 2, 400),
        (325, 4, 2, 408),
        (339, 3, 1, 1),
    ];
    let tile = |t: u8| (0..32 * 32).map(|i| t * 100 + (i / 32) as u8).collect::<Vec<u8>>();
    let payload = vec![
        (400, longs(&[1000, 2024])),
        (408, longs(&[1024, 1024])),
        (1000, tile(0)),
        (2024, tile(1)),
    ];
    (entries, payload)
}

fn with(entries: &[Entry], tag: u16, typ: u16, count: u32, value: u32) -> Vec<Entry> {
    let mut e: Vec<Entry> = entries.iter().copied().filter(|e| e.0 != tag).collect();
    e.push((tag, typ, count, value));
    e
}

fn write(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("strata-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

fn read_all(href: &str) -> Result<ndarray::Array3<f64>, IoError> {
    let reader = CogReader::new(ObjectStore::new(StoreOptions::default()).unwrap());
    let file = reader.open_blocking(href)?;
    let level = &file.header().levels[0];
    let w = TileWindow {
        level: 0,
        bands: vec![0],
        rows: 0..level.height,
        cols: 0..level.width,
    };
    reader.read_window(href, &w)
}

#[test]
fn the_hand_made_tiff_is_valid() {
    let (e, p) = valid_entries();
    let got = read_all(&write("valid.tif", &tiff(&e, 0, &p))).unwrap();
    assert_eq!(got[[0, 5, 3]], 5.0);
    assert_eq!(got[[0, 31, 40]], 131.0);
}

#[test]
fn hostile_files_are_typed_errors() {
    let (e, p) = valid_entries();
    let valid = tiff(&e, 0, &p);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        (
            "garbage",
            (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(),
        ),
        ("header only", valid[..8].to_vec()),
        ("truncated in the IFD", valid[..60].to_vec()),
        ("truncated in the tiles", valid[..1500].to_vec()),
        ("IFD past the end", {
            let mut v = valid.clone();
            v[4..8].copy_from_slice(&1_000_000u32.to_le_bytes());
            v
        }),
        (
            "tile offset past the end",
            tiff(
                &e,
                0,
                &[
                    (400, longs(&[1000, 90_000_000])),
                    (408, longs(&[1024, 1024])),
                    p[2].clone(),
                    p[3].clone(),
                ],
            ),
        ),
        (
            "4 GiB tile",
            tiff(
                &e,
                0,
                &[
                    (400, longs(&[1000, 2024])),
                    (408, longs(&[1024, 0xFFFF_FFF0])),
                    p[2].clone(),
                    p[3].clone(),
                ],
            ),
        ),
        ("a tag of 2^30 values", tiff(&with(&e, 324, 4, 1 << 30, 400), 0, &p)),
        (
            "terapixel image",
            tiff(&with(&with(&e, 256, 4, 1, 1 << 31), 257, 4, 1, 1 << 31), 0, &p),
        ),
        (
            "tile count disagrees with the size",
            tiff(&with(&e, 256, 3, 1, 200), 0, &p),
        ),
        ("zero tile width", tiff(&with(&e, 322, 3, 1, 0), 0, &p)),
        ("cyclic IFD chain", tiff(&e, 8, &p)),
        ("unsupported compression (JPEG)", tiff(&with(&e, 259, 3, 1, 7), 0, &p)),
        ("12-bit samples", tiff(&with(&e, 258, 3, 1, 12), 0, &p)),
        ("corrupt DEFLATE tile", tiff(&with(&e, 259, 3, 1, 8), 0, &p)),
        ("corrupt LZW tile", tiff(&with(&e, 259, 3, 1, 5), 0, &p)),
        ("corrupt ZSTD tile", tiff(&with(&e, 259, 3, 1, 50000), 0, &p)),
    ];
    // A two-IFD loop (0 → 1 → 0).
    let mut two = tiff(&e, 3000, &p);
    let second = tiff(&e, 8, &[]);
    two.resize(3000, 0);
    two.extend_from_slice(&second[8..]);
    cases.push(("two-IFD loop", two));
    for (name, bytes) in cases {
        let href = write(&format!("{}.tif", name.replace(' ', "_")), &bytes);
        let started = std::time::Instant::now();
        let result = std::panic::catch_unwind(|| read_all(&href));
        let result = result.unwrap_or_else(|_| panic!("{name}: panicked"));
        assert!(started.elapsed().as_secs() < 5, "{name}: took {:?}", started.elapsed());
        match result {
            Err(IoError::Unsupported { url, message }) => {
                assert!(
                    name.contains("unsupported") || name.contains("12-bit"),
                    "{name}: {message}"
                );
                assert!(url.ends_with(".tif"), "{name}: {url}");
            }
            Err(IoError::Format { url, message }) => {
                assert!(url.ends_with(".tif"), "{name}: {url}");
                assert!(!message.is_empty());
            }
            Err(IoError::Tile { tile, range, .. }) => {
                assert!(tile < 2, "{name}: tile {tile}");
                assert_eq!(range.end - range.start, 1024, "{name}");
            }
            Err(IoError::OutOfRange { .. }) => {}
            Ok(_) if name == "cyclic IFD chain" || name == "two-IFD loop" => {
                // Reading the first image of a looping chain is fine as long as it ends.
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}
