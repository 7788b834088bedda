//! Bytes from storage and the Cloud-Optimized GeoTIFFs in them.
//!
//! Fetching is async (tokio + reqwest, many requests in flight); decoding is sync and runs on
//! the caller's threads (rayon), so decoding never blocks the runtime and fetches never wait
//! behind a decode.
//!
//! Storage comes by capability: [`ReadableStore`] (ranged reads), implemented by
//! [`FileStore`], [`HttpStore`] and [`MemoryStore`], and [`WritableStore`] (whole-object
//! writes), implemented by the file and memory stores;
//! [`Coalescing`], [`Retrying`] and [`Signing`] wrap any store. [`ObjectStore`] routes hrefs to
//! them (local paths, `file://`, `http(s)://`, mounted prefixes) with per-host concurrency
//! limits, stall detection and hedged requests; [`CogReader`] parses TIFF headers once per URL
//! and decodes tiles.

mod coalesce;
mod error;
mod file;
mod href;
mod http;
mod meter;
mod storage;
mod store;
mod tail;
pub mod tiff;
mod wrap;

pub use coalesce::{coalesce, CoalescedRange};
pub use error::IoError;
pub(crate) use error::WHOLE;
pub use file::FileStore;
pub use href::{redact, HrefSigner};
pub use http::HttpStore;
pub use meter::{RetryCause, StoreMeter};
pub use storage::{block_on, MemoryStore, ReadableStore, StoreFuture, WritableStore};
pub use store::{ObjectStore, StoreOptions};
pub use tail::{Hedging, StallTimeouts, MIN_SAMPLES};
pub use tiff::{CogFile, CogHeader, CogReader, ImageLevel, SampleType, TileWindow};
pub use wrap::{Coalescing, RetryPolicy, Retrying, Signing};
