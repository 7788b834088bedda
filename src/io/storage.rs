//! Storage by capability: [`ReadableStore`] reads byte ranges of objects, [`WritableStore`]
//! puts and deletes whole objects. Local files ([`FileStore`](super::FileStore)) and memory
//! ([`MemoryStore`]) implement both, HTTP ([`HttpStore`](super::HttpStore)) reads only; coalescing,
//! retries and URL signing wrap any of them ([`Coalescing`](super::Coalescing),
//! [`Retrying`](super::Retrying), [`Signing`](super::Signing)).
//!
//! Every store keeps one contract, checked for each by `tests/store_conformance.rs`:
//! - `get_range` returns exactly the bytes asked for; an empty range returns no bytes;
//!   a range past the end is [`IoError::OutOfRange`] carrying the object's size;
//! - `get_prefix(n)` returns the first `min(n, size)` bytes and the size when known;
//! - `get_ranges` returns each range's bytes in the order asked, duplicates and overlaps
//!   included;
//! - a missing object is an error for which [`IoError::is_not_found`] holds.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;

use super::IoError;

/// The future a store's method returns: boxed, so stores can sit behind `dyn` and wrap each
/// other. Costs one allocation per call.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, IoError>> + Send + 'a>>;

/// A store that reads byte ranges of objects named by hrefs.
///
/// Implement the three single-object methods; `get_ranges` defaults to one `get_range` per
/// range, all in flight at once (wrap the store in [`Coalescing`](super::Coalescing) to merge
/// close ones).
pub trait ReadableStore: Send + Sync {
    /// Exactly the bytes `range` of `href`.
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes>;

    /// Up to `len` bytes from the start of `href` (fewer if it is shorter), and its total size
    /// when the store knows it.
    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)>;

    /// The whole object.
    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes>;

    /// Each of `ranges` of `href`, in order; fails with the first error.
    fn get_ranges<'a>(&'a self, href: &'a str, ranges: &'a [Range<u64>]) -> StoreFuture<'a, Vec<Bytes>> {
        Box::pin(futures_util::future::try_join_all(
            ranges.iter().map(|r| self.get_range(href, r.clone())),
        ))
    }
}

/// A store that writes whole objects. A reader sees an object's old bytes or its new ones,
/// never a mixture: stores that cannot replace atomically write aside and rename.
pub trait WritableStore: Send + Sync {
    /// Writes `bytes` as the whole of `href`, replacing what was there.
    fn put<'a>(&'a self, href: &'a str, bytes: Bytes) -> StoreFuture<'a, ()>;

    /// Removes `href`; removing a missing object is not an error.
    fn delete<'a>(&'a self, href: &'a str) -> StoreFuture<'a, ()>;
}

/// A shared store is a store (how `ObjectStore` holds its routes).
impl<S: ReadableStore + ?Sized> ReadableStore for Arc<S> {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        (**self).get_range(href, range)
    }
    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)> {
        (**self).get_prefix(href, len)
    }
    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes> {
        (**self).get_all(href)
    }
    fn get_ranges<'a>(&'a self, href: &'a str, ranges: &'a [Range<u64>]) -> StoreFuture<'a, Vec<Bytes>> {
        (**self).get_ranges(href, ranges)
    }
}

/// The runtime every store's requests run on: two threads, since they only wait on sockets
/// (file reads go to its blocking pool).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("strata-io")
            .enable_all()
            .build()
            .expect("the I/O runtime starts")
    })
}

/// Runs a store's future on strata's I/O runtime and blocks until it is done, for callers
/// outside async code (a custom store in a test, say). Must not be called from inside the
/// runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// Objects held in memory, keyed by href: for tests, and for data a program made itself.
/// Reads are slices of the stored buffers (no copies). Clones share the objects.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    objects: Arc<RwLock<HashMap<String, Bytes>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `bytes` under `href` without a runtime (what `put` does).
    pub fn insert(&self, href: &str, bytes: impl Into<Bytes>) {
        let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
        objects.insert(href.to_string(), bytes.into());
    }

    /// The hrefs held, sorted.
    pub fn hrefs(&self) -> Vec<String> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let mut hrefs: Vec<String> = objects.keys().cloned().collect();
        hrefs.sort();
        hrefs
    }

    fn object(&self, href: &str) -> Result<Bytes, IoError> {
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        objects.get(href).cloned().ok_or_else(|| IoError::Missing {
            url: super::redact(href),
        })
    }
}

impl ReadableStore for MemoryStore {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        Box::pin(async move {
            if range.is_empty() {
                return Ok(Bytes::new());
            }
            let object = self.object(href)?;
            let len = object.len() as u64;
            if range.end > len {
                return Err(IoError::OutOfRange {
                    url: super::redact(href),
                    range,
                    len,
                });
            }
            Ok(object.slice(range.start as usize..range.end as usize))
        })
    }

    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)> {
        Box::pin(async move {
            let object = self.object(href)?;
            let size = object.len() as u64;
            Ok((object.slice(..len.min(size) as usize), Some(size)))
        })
    }

    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes> {
        Box::pin(async move { self.object(href) })
    }
}

impl WritableStore for MemoryStore {
    fn put<'a>(&'a self, href: &'a str, bytes: Bytes) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.insert(href, bytes);
            Ok(())
        })
    }

    fn delete<'a>(&'a self, href: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
            objects.remove(href);
            Ok(())
        })
    }
}
