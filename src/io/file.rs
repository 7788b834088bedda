//! [`FileStore`]: local files (plain paths and `file://` URLs). Positional reads run on the
//! I/O runtime's blocking pool, never on the threads that wait on sockets.

use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::meter::StoreMeter;
use super::storage::{ReadableStore, StoreFuture, WritableStore};
use super::IoError;

/// Reads and writes local files. Writes are atomic: the bytes go to a temporary file beside
/// the target (or in a scratch folder on the same file system), are synced, and are renamed
/// over it.
#[derive(Debug, Clone, Default)]
pub struct FileStore {
    meter: Arc<StoreMeter>,
}

impl FileStore {
    /// A store counting into its own meter.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store counting into `meter` (one store's layers share one).
    pub(crate) fn with_meter(meter: Arc<StoreMeter>) -> Self {
        FileStore { meter }
    }

    /// Requests and bytes read so far. A few atomic loads.
    pub fn stats(&self) -> crate::expr::IoCounters {
        self.meter.snapshot()
    }

    /// Writes `bytes` to `target` atomically, through a temporary file in `scratch` (the
    /// target's folder when `None`; it must be on the same file system). Creates missing
    /// parent folders. Blocking: costs the write, an fsync and a rename.
    ///
    /// **Errors**: [`IoError::File`] naming the target.
    pub(crate) fn write_atomic(target: &Path, bytes: &[u8], scratch: Option<&Path>) -> Result<(), IoError> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let fail = |e: std::io::Error| IoError::File {
            path: target.display().to_string(),
            range: 0..bytes.len() as u64,
            source: e,
        };
        let parent = target.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(fail)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().replace('/', "_"))
            .unwrap_or_default();
        let tmp = scratch.unwrap_or(parent).join(format!(
            ".{name}.{}-{}.strata-tmp",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, target)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(fail)
    }
}

/// The path an href names: `file://` stripped, anything else taken as a path.
fn path_of(href: &str) -> PathBuf {
    PathBuf::from(href.strip_prefix("file://").unwrap_or(href))
}

fn file_error(path: &Path, range: Range<u64>, source: std::io::Error) -> IoError {
    IoError::File {
        path: path.display().to_string(),
        range,
        source,
    }
}

/// What to read of a file: exactly these bytes, or up to this many from the start.
enum Span {
    Exact(Range<u64>),
    Prefix(u64),
}

/// Reads from a local file with one open (blocking); returns the bytes and the file's size.
fn read_file(meter: &StoreMeter, path: &Path, span: Span) -> Result<(Bytes, u64), IoError> {
    let asked = match &span {
        Span::Exact(r) => r.clone(),
        Span::Prefix(n) => 0..*n,
    };
    let file = std::fs::File::open(path).map_err(|e| file_error(path, asked.clone(), e))?;
    let size = file.metadata().map_err(|e| file_error(path, asked.clone(), e))?.len();
    let range = match span {
        Span::Exact(r) if r.end > size => {
            return Err(IoError::OutOfRange {
                url: path.display().to_string(),
                range: r,
                len: size,
            })
        }
        Span::Exact(r) => r,
        Span::Prefix(n) => 0..n.min(size),
    };
    let mut buf = vec![0u8; (range.end - range.start) as usize];
    file.read_exact_at(&mut buf, range.start)
        .map_err(|e| file_error(path, range.clone(), e))?;
    meter.read(buf.len() as u64);
    Ok((buf.into(), size))
}

/// Runs blocking file work on the current runtime's blocking pool, or inline when there is no
/// runtime (a caller polling the future itself).
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, IoError> + Send + 'static,
) -> Result<T, IoError> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.spawn_blocking(work).await.unwrap_or_else(|e| {
            Err(IoError::File {
                path: String::new(),
                range: 0..0,
                source: std::io::Error::other(format!("file task failed: {e}")),
            })
        }),
        Err(_) => work(),
    }
}

impl ReadableStore for FileStore {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        let meter = self.meter.clone();
        let path = path_of(href);
        Box::pin(async move {
            if range.is_empty() {
                return Ok(Bytes::new());
            }
            off_runtime(move || read_file(&meter, &path, Span::Exact(range)).map(|(b, _)| b)).await
        })
    }

    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)> {
        let meter = self.meter.clone();
        let path = path_of(href);
        Box::pin(async move {
            let (bytes, size) = off_runtime(move || read_file(&meter, &path, Span::Prefix(len))).await?;
            Ok((bytes, Some(size)))
        })
    }

    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes> {
        let meter = self.meter.clone();
        let path = path_of(href);
        Box::pin(async move {
            off_runtime(move || {
                let bytes = std::fs::read(&path).map_err(|e| file_error(&path, super::WHOLE, e))?;
                meter.read(bytes.len() as u64);
                Ok(Bytes::from(bytes))
            })
            .await
        })
    }
}

impl WritableStore for FileStore {
    fn put<'a>(&'a self, href: &'a str, bytes: Bytes) -> StoreFuture<'a, ()> {
        let path = path_of(href);
        Box::pin(off_runtime(move || FileStore::write_atomic(&path, &bytes, None)))
    }

    fn delete<'a>(&'a self, href: &'a str) -> StoreFuture<'a, ()> {
        let path = path_of(href);
        Box::pin(off_runtime(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(file_error(&path, super::WHOLE, e)),
            _ => Ok(()),
        }))
    }
}
