//! The I/O layer's error: variants name the object (query string removed) and, for reads, the
//! bytes.

use std::ops::Range;
use std::time::Duration;

use super::meter::RetryCause;

/// The range an error names when the whole object was asked for.
pub(crate) const WHOLE: Range<u64> = 0..u64::MAX;

/// " bytes a..b", or nothing for a whole-object read.
fn bytes_of(range: &Range<u64>) -> String {
    if *range == WHOLE {
        String::new()
    } else {
        format!(" bytes {}..{}", range.start, range.end)
    }
}

/// What went wrong reading bytes or a TIFF. URLs are redacted: signed query strings never
/// appear (see [`redact`](super::redact)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The server answered with an error status (the last one, when [`Retrying`](super::Retrying)
    /// retried it).
    #[error("HTTP {status} reading {url}{} (after {attempts} attempt(s))", bytes_of(range))]
    Status {
        /// the object, redacted
        url: String,
        /// the bytes asked for
        range: Range<u64>,
        /// the last status
        status: u16,
        /// requests made
        attempts: u32,
        /// how long the server asked the client to wait (`Retry-After`)
        retry_after: Option<Duration>,
    },
    /// The connection failed, timed out or was cut short (on the last attempt, when retried).
    #[error(
        "network error reading {url}{}: {message} (after {attempts} attempt(s))",
        bytes_of(range)
    )]
    Network {
        /// the object, redacted
        url: String,
        /// the bytes asked for
        range: Range<u64>,
        /// what the client said
        message: String,
        /// requests made
        attempts: u32,
        /// whether the last attempt was abandoned for taking too long (stalled, or past its
        /// whole-request limit) rather than failing
        timed_out: bool,
    },
    /// A local file could not be read.
    #[error("cannot read {path}{}: {source}", bytes_of(range))]
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
    /// A store holds nothing under this href.
    #[error("{url}: no such object")]
    Missing {
        /// the object, redacted
        url: String,
    },
    /// The href's scheme is not one strata reads.
    #[error("cannot read {href}: only local paths, file://, http(s):// and mounted prefixes are supported")]
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

impl IoError {
    /// The object the error is about (redacted URL, or a file's path), when it names one.
    pub fn url(&self) -> Option<&str> {
        match self {
            IoError::Status { url, .. }
            | IoError::Network { url, .. }
            | IoError::OutOfRange { url, .. }
            | IoError::Missing { url, .. }
            | IoError::Format { url, .. }
            | IoError::Unsupported { url, .. }
            | IoError::Tile { url, .. }
            | IoError::Window { url, .. } => Some(url),
            IoError::File { path, .. } => Some(path),
            IoError::UnsupportedHref { .. } | IoError::Client(_) => None,
        }
    }

    /// Whether the error says the object does not exist: a missing file, HTTP 404 or 410, or
    /// [`IoError::Missing`].
    pub fn is_not_found(&self) -> bool {
        match self {
            IoError::File { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            IoError::Status { status, .. } => matches!(status, 404 | 410),
            IoError::Missing { .. } => true,
            _ => false,
        }
    }

    /// When another attempt may succeed: why, and how long the server asked to wait. `None`
    /// for errors that repeat (not found, out of range, corrupt data, other 4xx).
    pub fn transient(&self) -> Option<(RetryCause, Option<Duration>)> {
        match self {
            IoError::Status {
                status, retry_after, ..
            } if *status == 429 || *status >= 500 => Some((RetryCause::Status, *retry_after)),
            IoError::Network { timed_out: true, .. } => Some((RetryCause::Timeout, None)),
            IoError::Network { .. } => Some((RetryCause::Network, None)),
            _ => None,
        }
    }

    /// The error with its attempt count set to `n` (for errors that count attempts).
    pub(crate) fn after_attempts(mut self, n: u32) -> Self {
        if let IoError::Status { attempts, .. } | IoError::Network { attempts, .. } = &mut self {
            *attempts = n;
        }
        self
    }
}
