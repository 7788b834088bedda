//! The I/O layer's error: every variant names the object (query string removed) and the bytes.

use std::ops::Range;

/// What went wrong reading bytes or a TIFF. URLs are redacted: signed query strings never
/// appear (see [`redact`](super::redact)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The server answered with an error status, after retrying what is retryable.
    #[error("HTTP {status} reading {url} bytes {}..{} (after {attempts} attempt(s))", range.start, range.end)]
    Status {
        /// the object, redacted
        url: String,
        /// the bytes asked for
        range: Range<u64>,
        /// the last status
        status: u16,
        /// requests made
        attempts: u32,
    },
    /// The connection failed, timed out or was cut short, after retrying.
    #[error("network error reading {url} bytes {}..{}: {message} (after {attempts} attempt(s))", range.start, range.end)]
    Network {
        /// the object, redacted
        url: String,
        /// the bytes asked for
        range: Range<u64>,
        /// what the client said
        message: String,
        /// requests made
        attempts: u32,
    },
    /// A local file could not be read.
    #[error("cannot read {path} bytes {}..{}: {source}", range.start, range.end)]
    File {
        /// the file
        path: String,
        /// the bytes asked for
        range: Range<u64>,
        /// the OS error
        source: std::io::Error,
    },
    /// Bytes past the end of the object were asked for.
    #[error("{url}: bytes {}..{} asked for, but the object has {len} bytes", range.start, range.end)]
    OutOfRange {
        /// the object, redacted
        url: String,
        /// the bytes asked for
        range: Range<u64>,
        /// the object's size
        len: u64,
    },
    /// The href's scheme is not one strata reads.
    #[error("cannot read {href}: only local paths, file:// and http(s):// are supported")]
    UnsupportedHref {
        /// the href, redacted
        href: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
    /// The file is not a TIFF strata can read, or its header is corrupt.
    #[error("{url}: not a readable TIFF: {message}")]
    Format {
        /// the object, redacted
        url: String,
        /// what is wrong
        message: String,
    },
    /// The TIFF uses a feature strata does not read.
    #[error("{url}: unsupported TIFF: {message}")]
    Unsupported {
        /// the object, redacted
        url: String,
        /// the feature
        message: String,
    },
    /// One tile or strip could not be decoded.
    #[error("{url}: tile {tile} (level {level}, bytes {}..{}) cannot be decoded: {message}", range.start, range.end)]
    Tile {
        /// the object, redacted
        url: String,
        /// image level: 0 full resolution, 1.. overviews
        level: usize,
        /// the tile's (or strip's) index in the file
        tile: usize,
        /// its bytes
        range: Range<u64>,
        /// what the decoder said
        message: String,
    },
    /// A window outside the image was asked for.
    #[error("{url}: window rows {rows:?} cols {cols:?} bands {bands:?} outside the {height}x{width}x{count} image")]
    Window {
        /// the object, redacted
        url: String,
        /// rows asked for
        rows: Range<u32>,
        /// columns asked for
        cols: Range<u32>,
        /// bands asked for
        bands: Vec<usize>,
        /// image height
        height: u32,
        /// image width
        width: u32,
        /// bands in the image
        count: usize,
    },
}
