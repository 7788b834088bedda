//! [`CogReader`]: opens TIFFs once per href (one header request, cached) and reads windows.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use ndarray::{Array3, ArrayViewMut3};
use tokio::sync::OnceCell;

use super::decode::decode_window;
use super::{parse_header, CogHeader, ImageLevel, ParseStop, Segments, TileWindow, MAX_HEADER_BYTES};
use crate::io::{redact, IoError, ObjectStore};

/// Header reads allowed per file before it is called corrupt (each finds missing bytes).
const MAX_HEADER_ROUNDS: usize = 32;

/// An opened TIFF: its parsed header and the header bytes (kept to decode tiles with).
#[derive(Debug)]
pub struct CogFile {
    href: String,
    url: String,
    header: CogHeader,
    segments: Arc<Segments>,
}

impl CogFile {
    /// A whole file already in memory (tests, fuzzing, small downloads). Costs one header parse.
    ///
    /// **Errors**: [`IoError::Format`] or [`IoError::Unsupported`].
    pub fn from_bytes(url: &str, bytes: bytes::Bytes) -> Result<CogFile, IoError> {
        let len = bytes.len() as u64;
        let mut segments = Segments::default();
        segments.insert(0, bytes);
        let segments = Arc::new(segments);
        match parse_header(url, segments.clone(), Some(len)) {
            Ok(header) => Ok(CogFile {
                href: url.to_string(),
                url: redact(url),
                header,
                segments,
            }),
            Err(ParseStop::Bad(e)) => Err(e),
            Err(ParseStop::Need(r)) => Err(IoError::Format {
                url: redact(url),
                message: format!(
                    "bytes {}..{} lie past the end of the file ({len} bytes)",
                    r.start, r.end
                ),
            }),
        }
    }

    /// The href it was opened from (unsigned; signing happens per request).
    pub fn href(&self) -> &str {
        &self.href
    }

    /// The href without its query string, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The parsed header.
    pub fn header(&self) -> &CogHeader {
        &self.header
    }

    /// The image level a window reads, after checking the window lies inside it.
    ///
    /// **Errors**: [`IoError::Window`].
    pub fn level_for(&self, window: &TileWindow) -> Result<&ImageLevel, IoError> {
        let bad = |height, width, count| IoError::Window {
            url: self.url.clone(),
            rows: window.rows.clone(),
            cols: window.cols.clone(),
            bands: window.bands.clone(),
            height,
            width,
            count,
        };
        let level = self.header.levels.get(window.level).ok_or_else(|| bad(0, 0, 0))?;
        if window.rows.end > level.height
            || window.cols.end > level.width
            || window.rows.start > window.rows.end
            || window.cols.start > window.cols.end
            || window.bands.iter().any(|&b| b >= level.bands)
        {
            return Err(bad(level.height, level.width, level.bands));
        }
        Ok(level)
    }

    /// The byte ranges to fetch for a window: each needed tile once, minus those the header
    /// read already holds.
    ///
    /// **Errors**: [`IoError::Window`].
    pub fn tile_ranges(&self, window: &TileWindow) -> Result<Vec<Range<u64>>, IoError> {
        let level = self.level_for(window)?;
        let held = self.segments.prefix_len();
        Ok(window
            .chunks(level)
            .into_iter()
            .map(|t| level.chunk_range(t))
            .filter(|r| r.end > held && !r.is_empty())
            .collect())
    }

    /// Fetches the tiles of a window (all requests in flight at once, coalesced).
    ///
    /// **Errors**: the store's errors; [`IoError::Window`].
    pub async fn fetch_tiles(&self, store: &ObjectStore, window: &TileWindow) -> Result<Arc<Segments>, IoError> {
        let ranges = self.tile_ranges(window)?;
        let bytes = store.get_ranges(&self.href, &ranges).await?;
        let mut tiles = Segments::default();
        for (r, b) in ranges.iter().zip(bytes) {
            tiles.insert(r.start, b);
        }
        Ok(Arc::new(tiles))
    }

    /// Decodes a window from fetched tiles into `out` (bands, rows, cols), each sample
    /// through `map`. CPU-bound: run it on rayon, not on the I/O runtime.
    ///
    /// **Errors**: [`IoError::Tile`] for a tile that does not decode; [`IoError::Window`].
    pub fn decode_into<T>(
        &self,
        window: &TileWindow,
        tiles: Arc<Segments>,
        out: &mut ArrayViewMut3<T>,
        map: impl Fn(f64) -> T + Copy,
    ) -> Result<(), IoError> {
        let level = self.level_for(window)?;
        let want = (window.bands.len(), window.rows.len(), window.cols.len());
        if out.dim() != want {
            return Err(IoError::Window {
                url: self.url.clone(),
                rows: window.rows.clone(),
                cols: window.cols.clone(),
                bands: window.bands.clone(),
                height: out.dim().1 as u32,
                width: out.dim().2 as u32,
                count: out.dim().0,
            });
        }
        decode_window(
            &self.url,
            &self.segments,
            tiles,
            self.header.file_len,
            self.header.big_endian,
            level,
            window,
            out,
            map,
        )
    }
}

/// Opens TIFFs through an [`ObjectStore`], parsing each header once: concurrent opens of the
/// same href share one header request.
#[derive(Debug)]
pub struct CogReader {
    store: ObjectStore,
    files: Mutex<HashMap<String, Arc<OnceCell<Arc<CogFile>>>>>,
}

impl CogReader {
    /// A reader over `store`.
    pub fn new(store: ObjectStore) -> Self {
        CogReader {
            store,
            files: Mutex::default(),
        }
    }

    /// The store it reads through.
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// The file at `href`, its header fetched (one request of
    /// [`StoreOptions::header_prefetch`](crate::io::StoreOptions) bytes, more only when the
    /// IFDs reach beyond) and parsed on first use, cached after.
    ///
    /// **Errors**: the store's errors; [`IoError::Format`] or [`IoError::Unsupported`] for a
    /// file strata cannot read. Failures are not cached.
    pub async fn open(&self, href: &str) -> Result<Arc<CogFile>, IoError> {
        let cell = {
            let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            files.entry(href.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| open_file(&self.store, href)).await.cloned()
    }

    /// Blocking form of [`open`](Self::open).
    ///
    /// **Errors**: as `open`.
    pub fn open_blocking(&self, href: &str) -> Result<Arc<CogFile>, IoError> {
        self.store.block_on(self.open(href))
    }

    /// Reads a window as f64 (every supported sample type converts exactly), shaped
    /// (bands, rows, cols). Blocking: fetches the header if needed, then the tiles.
    ///
    /// **Errors**: as [`open`](Self::open), [`CogFile::fetch_tiles`] and [`CogFile::decode_into`].
    pub fn read_window(&self, href: &str, window: &TileWindow) -> Result<Array3<f64>, IoError> {
        let file = self.open_blocking(href)?;
        let tiles = self.store.block_on(file.fetch_tiles(&self.store, window))?;
        let mut out = Array3::zeros((window.bands.len(), window.rows.len(), window.cols.len()));
        file.decode_into(window, tiles, &mut out.view_mut(), |v| v)?;
        Ok(out)
    }
}

async fn open_file(store: &ObjectStore, href: &str) -> Result<Arc<CogFile>, IoError> {
    let url = redact(href);
    let (prefix, len) = store.get_prefix(href, store.options().header_prefetch.max(16)).await?;
    let mut segments = Segments::default();
    segments.insert(0, prefix);
    for _ in 0..MAX_HEADER_ROUNDS {
        let need = match parse_header(&url, Arc::new(segments.clone()), len) {
            Ok(header) => {
                return Ok(Arc::new(CogFile {
                    href: href.to_string(),
                    url,
                    header,
                    segments: Arc::new(segments),
                }))
            }
            Err(ParseStop::Bad(e)) => return Err(e),
            Err(ParseStop::Need(r)) => r,
        };
        // Grow the prefix (IFDs and their arrays usually follow each other), or fetch a
        // lone far range with some slack.
        let have = segments.prefix_len();
        let mut fetch = if need.start <= have.saturating_mul(2) {
            have..need.end.max(have.saturating_mul(2))
        } else {
            need.start..need.end.max(need.start + (16 << 10))
        };
        if let Some(len) = len {
            fetch.end = fetch.end.min(len);
        }
        if fetch.is_empty() || segments.len() + (fetch.end - fetch.start) > MAX_HEADER_BYTES {
            return Err(IoError::Format {
                url,
                message: format!(
                    "the header needs bytes {}..{}, past the end of the file or beyond {} MiB of header",
                    need.start,
                    need.end,
                    MAX_HEADER_BYTES >> 20
                ),
            });
        }
        let bytes = store.get_ranges(href, std::slice::from_ref(&fetch)).await?;
        segments.insert(fetch.start, bytes.into_iter().next().unwrap_or_default());
    }
    Err(IoError::Format {
        url,
        message: format!("the header needed more than {MAX_HEADER_ROUNDS} reads"),
    })
}
