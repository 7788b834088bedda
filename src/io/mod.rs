//! Bytes from storage and the Cloud-Optimized GeoTIFFs in them.
//!
//! Fetching is async (tokio + reqwest, many requests in flight); decoding is sync and runs on
//! the caller's threads (rayon), so decoding never blocks the runtime and fetches never wait
//! behind a decode. [`ObjectStore`] reads byte ranges from local paths, `file://` and
//! `http(s)://` with retries, per-host concurrency limits, coalescing, stall detection and hedged
//! requests; [`CogReader`] parses
//! TIFF headers once per URL and decodes tiles.

mod coalesce;
mod error;
mod href;
mod http;
mod store;
mod tail;
pub mod tiff;

pub use coalesce::{coalesce, CoalescedRange};
pub use error::IoError;
pub use href::{redact, HrefSigner};
pub use store::{ObjectStore, StoreOptions};
pub use tail::{Hedging, StallTimeouts, MIN_SAMPLES};
pub use tiff::{CogFile, CogHeader, CogReader, ImageLevel, SampleType, TileWindow};
