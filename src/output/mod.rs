//! Writing results: GeoTIFF (tiled, DEFLATE, georeferenced), `.npy`, PNG quicklooks, and Zarr v3
//! stores (`zarr`: sharded, streamed shard by shard). Every file is written atomically: into a
//! temporary file beside the target (for Zarr, in a scratch folder beside the store), synced,
//! then renamed over it, so a failed or interrupted run leaves either the old file or none,
//! never half of a new one.

mod figure;
mod geotiff;
mod png;
pub mod zarr;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{ArrayBase, IxDyn};

pub use figure::{write_figure, FigureStyle, Panel, PanelData};
pub use geotiff::{geotiff_bytes, write_geotiff, GeoTiffOptions, GeoTiffSample};
pub use png::{
    percentile, percentiles_streamed, write_png_band, write_png_mask, write_png_rgb, write_png_rgb_grid, ColorMap,
    Stretch,
};

/// What went wrong writing an output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// The file system refused (the path says which file).
    #[error("writing {path}: {source}")]
    Io {
        /// the file being written
        path: PathBuf,
        /// the cause
        source: std::io::Error,
    },
    /// The array cannot be written in this format.
    #[error("cannot write {path}: {reason}")]
    Unsupported {
        /// the file being written
        path: PathBuf,
        /// why
        reason: String,
    },
    /// An encoder failed.
    #[error("encoding {path}: {message}")]
    Encode {
        /// the file being written
        path: PathBuf,
        /// the encoder's message
        message: String,
    },
}

/// Writes `path` atomically: `write` fills a temporary file in the same directory (so the
/// rename cannot cross file systems), which is flushed, synced and renamed over `path`. On any
/// error the temporary file is removed and `path` is untouched.
///
/// **Errors**: [`OutputError::Io`] naming `path`, [`OutputError::Unsupported`] when `path`
/// names no file, or whatever `write` returns.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), OutputError>,
) -> Result<(), OutputError> {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().ok_or_else(|| OutputError::Unsupported {
        path: path.to_path_buf(),
        reason: "the path names no file".into(),
    })?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut out = BufWriter::new(File::create(&tmp).map_err(io)?);
        write(&mut out)?;
        out.flush().map_err(io)?;
        out.get_ref().sync_all().map_err(io)?;
        drop(out);
        std::fs::rename(&tmp, path).map_err(io)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes an f32 array as `.npy` (little-endian `<f4`, C order), atomically.
///
/// **Errors**: [`OutputError::Io`], [`OutputError::Encode`].
pub fn write_npy<S: ndarray::Data<Elem = f32>>(path: &Path, array: &ArrayBase<S, IxDyn>) -> Result<(), OutputError> {
    write_npy_any(path, array)
}

/// Writes a mask as `.npy` (`|u1`), atomically.
///
/// **Errors**: [`OutputError::Io`], [`OutputError::Encode`].
pub fn write_npy_mask<S: ndarray::Data<Elem = u8>>(path: &Path, mask: &ArrayBase<S, IxDyn>) -> Result<(), OutputError> {
    write_npy_any(path, mask)
}

/// Writes `bytes` (a JSON document, a report) to `path`, atomically.
///
/// **Errors**: [`OutputError::Io`] naming the file.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomic(path, |out| {
        out.write_all(bytes).map_err(|source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        })
    })
}

fn write_npy_any<T: ndarray_npy::WritableElement, S: ndarray::Data<Elem = T>>(
    path: &Path,
    array: &ArrayBase<S, IxDyn>,
) -> Result<(), OutputError> {
    use ndarray_npy::WriteNpyExt;
    write_atomic(path, |out| {
        array.write_npy(out).map_err(|e| OutputError::Encode {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-output-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = scratch("atomic");
        let path = dir.join("result.npy");
        std::fs::write(&path, b"old").unwrap();
        let err = write_atomic(&path, |out| {
            out.write_all(b"half of a new file").unwrap();
            Err(OutputError::Encode {
                path: path.clone(),
                message: "interrupted".into(),
            })
        });
        assert!(matches!(err, Err(OutputError::Encode { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "a temporary file was left: {names:?}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn npy_round_trips() {
        let dir = scratch("npy");
        let path = dir.join("a.npy");
        let a = ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3]), vec![1.0f32, f32::NAN, -0.0, 3.5, 1e30, 7.0]).unwrap();
        write_npy(&path, &a).unwrap();
        let b: ArrayD<f32> = ndarray_npy::read_npy(&path).unwrap();
        assert!(a.iter().zip(b.iter()).all(|(x, y)| x.to_bits() == y.to_bits()));
        assert!(write_npy(&dir.join("missing-dir").join("x.npy"), &a).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
