//! Fuzzes the TIFF header/IFD parser and the tile decoders on arbitrary bytes: any input must
//! give a header or a typed error, never a panic, a hang or a huge allocation.
//!
//! `cargo fuzz run -s none tiff_header -- -max_total_time=600` (see shared/TOOLING-NOTES.md);
//! seeds: tests/data/cog/*.tif.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::io::{CogFile, TileWindow};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = CogFile::from_bytes("fuzz.tif", bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    for (level, l) in file.header().levels.iter().enumerate() {
        let window = TileWindow {
            level,
            bands: vec![0],
            rows: 0..l.height.min(64),
            cols: 0..l.width.min(64),
        };
        let mut out = ndarray::Array3::<f64>::zeros((1, window.rows.len(), window.cols.len()));
        let _ = file.decode_into(&window, Default::default(), &mut out.view_mut(), |v| v);
    }
});
