//! [`ObjectStore`]: the store strata reads through. It routes each href once, by scheme or
//! mounted prefix, to a store built from capabilities: local files, and HTTP wrapped in
//! signing, retries and coalescing.

use std::future::Future;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;

use super::file::FileStore;
use super::href::redact;
use super::http::HttpStore;
use super::meter::StoreMeter;
use super::storage::{runtime, ReadableStore};
use super::tail::{Hedging, StallTimeouts};
use super::wrap::{with_retries, Coalescing, RetryPolicy, Retrying, Signing};
use super::{HrefSigner, IoError};
use crate::expr::{IoCounters, IoMeter};

/// How an [`ObjectStore`] talks to servers.
#[derive(Clone)]
pub struct StoreOptions {
    /// Requests in flight per host at once (GDAL under stackstac keeps about 2). Default 64: at
    /// a 40 ms round trip the tutorial's reads wait on latency, and 64 against 32 cut its wall
    /// time from 11.1 to 8.3 s for at most 34 MB more peak memory (`scripts/tutorial_memory.sh`);
    /// object stores serve far more per client.
    pub max_requests_per_host: usize,
    /// Retries after the first attempt for connect errors, timeouts, cut bodies, 429 and 5xx.
    pub retries: u32,
    /// First backoff; doubled each retry, with full jitter.
    pub backoff_base: Duration,
    /// Longest backoff (and the cap on a server's `Retry-After`).
    pub backoff_max: Duration,
    /// Limit on one request, headers and body, before its size is counted: the whole limit is
    /// this plus one second per `min_throughput` bytes, so a slow link that keeps sending is
    /// never cut off. A *stalled* transfer is found much sooner, by `stall`.
    pub request_timeout: Duration,
    /// The slowest transfer rate (bytes per second) the whole-request limit allows for.
    pub min_throughput: u64,
    /// How long a transfer may receive nothing before it is abandoned and retried.
    pub stall: StallTimeouts,
    /// When a duplicate of a slow range request goes out ([`Hedging::off`] for never).
    pub hedging: Hedging,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Ranges of one object closer than this are fetched in one request.
    pub coalesce_gap: u64,
    /// Longest coalesced request.
    pub coalesce_max: u64,
    /// Bytes read at the start of a TIFF to parse its header (grown when the IFDs need more).
    pub header_prefetch: u64,
    /// Rewrites hrefs before fetching (URL signing); re-applied on 403.
    pub signer: Option<HrefSigner>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_requests_per_host: 64,
            retries: 6,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            min_throughput: 64 << 10,
            stall: StallTimeouts::default(),
            hedging: Hedging::default(),
            connect_timeout: Duration::from_secs(10),
            coalesce_gap: 64 << 10,
            coalesce_max: 16 << 20,
            header_prefetch: 32 << 10,
            signer: None,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("max_requests_per_host", &self.max_requests_per_host)
            .field("retries", &self.retries)
            .field("request_timeout", &self.request_timeout)
            .field("min_throughput", &self.min_throughput)
            .field("stall", &self.stall)
            .field("hedging", &self.hedging)
            .field("coalesce_gap", &self.coalesce_gap)
            .field("header_prefetch", &self.header_prefetch)
            .field("signer", &self.signer.is_some())
            .finish()
    }
}

impl StoreOptions {
    /// The retry fields as a [`RetryPolicy`].
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
        }
    }
}

/// A store with the wrappers `ObjectStore` puts around every route.
type Routed = Arc<dyn ReadableStore>;

struct Inner {
    options: StoreOptions,
    meter: Arc<StoreMeter>,
    /// local paths and `file://`
    local: Routed,
    /// `http(s)://`: signed (when a signer is set), retried, coalesced
    remote: Routed,
    /// the bare HTTP store, for POSTs
    http: HttpStore,
    signing: Option<Arc<Signing<HttpStore>>>,
    /// prefixes routed to stores the program added, longest first
    mounts: RwLock<Vec<(String, Routed)>>,
}

/// Reads byte ranges from local paths, `file://` URLs, `http(s)://` URLs and any prefix a
/// program [mounts](Self::mount) a store at.
///
/// Built from the storage capabilities in this module: HTTP requests run concurrently on a
/// shared tokio runtime, at most [`StoreOptions::max_requests_per_host`] per host; a transfer
/// that stalls is abandoned after an interval learned from the host's recent waits
/// ([`StallTimeouts`]), a slow range request is hedged within a budget ([`Hedging`]), and
/// failures are retried with exponential backoff and full jitter ([`Retrying`]). Close ranges
/// are coalesced ([`Coalescing`]) for every route. Cloning is cheap; clones share connections,
/// limits, mounts and counters.
#[derive(Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mounts: Vec<String> = self.mounts().iter().map(|(p, _)| p.clone()).collect();
        f.debug_struct("ObjectStore")
            .field("options", &self.inner.options)
            .field("mounts", &mounts)
            .finish()
    }
}

impl ObjectStore {
    /// A store with these options. Costs building an HTTP client (TLS roots included).
    ///
    /// **Errors**: [`IoError::Client`] when the client cannot be built.
    pub fn new(options: StoreOptions) -> Result<Self, IoError> {
        let meter = Arc::new(StoreMeter::default());
        let http = HttpStore::with_meter(options.clone(), meter.clone())?;
        let signing = options
            .signer
            .clone()
            .map(|signer| Arc::new(Signing::with_meter(http.clone(), signer, meter.clone())));
        let unsigned: Routed = match &signing {
            Some(s) => s.clone(),
            None => Arc::new(http.clone()),
        };
        let coalesced =
            |store: Routed| -> Routed { Arc::new(Coalescing::new(store, options.coalesce_gap, options.coalesce_max)) };
        let remote = coalesced(Arc::new(Retrying::with_meter(
            unsigned,
            options.retry_policy(),
            meter.clone(),
        )));
        let local = coalesced(Arc::new(FileStore::with_meter(meter.clone())));
        Ok(ObjectStore {
            inner: Arc::new(Inner {
                options,
                meter,
                local,
                remote,
                http,
                signing,
                mounts: RwLock::default(),
            }),
        })
    }

    /// Routes hrefs starting with `prefix` (`mem://`, `s3://bucket/`, ...) to `store`, wrapped
    /// in this store's coalescing; the href reaches it whole. A later mount of the same prefix
    /// replaces the earlier one; the longest matching prefix wins. Shared by all clones.
    pub fn mount(&self, prefix: &str, store: impl ReadableStore + 'static) {
        let options = &self.inner.options;
        let store: Routed = Arc::new(Coalescing::new(store, options.coalesce_gap, options.coalesce_max));
        let mut mounts = self.inner.mounts.write().unwrap_or_else(|e| e.into_inner());
        mounts.retain(|(p, _)| p != prefix);
        mounts.push((prefix.to_string(), store));
        mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    }

    fn mounts(&self) -> Vec<(String, Routed)> {
        self.inner.mounts.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The store that reads `href`.
    fn route(&self, href: &str) -> Result<Routed, IoError> {
        {
            let mounts = self.inner.mounts.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, store)) = mounts.iter().find(|(p, _)| href.starts_with(p.as_str())) {
                return Ok(store.clone());
            }
        }
        if href.starts_with("http://") || href.starts_with("https://") {
            return Ok(self.inner.remote.clone());
        }
        if href.contains("://") && !href.starts_with("file://") {
            return Err(IoError::UnsupportedHref { href: redact(href) });
        }
        Ok(self.inner.local.clone())
    }

    /// The options it was built with.
    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// Requests, bytes, retries by cause, timeouts and hedges so far. A few atomic loads.
    pub fn stats(&self) -> IoCounters {
        self.inner.meter.snapshot()
    }

    /// Counts one block read of a missing object answered with nodata instead of failing
    /// (the report's `missing_as_nodata`). One atomic add.
    pub(crate) fn count_missing_as_nodata(&self) {
        self.inner.meter.missing_as_nodata.fetch_add(1, Ordering::Relaxed);
    }

    /// The store's counters as an [`IoMeter`], for sources reading through it (the execution
    /// report sums them over a run).
    pub fn meter(&self) -> Arc<dyn IoMeter> {
        self.inner.meter.clone()
    }

    /// Runs a future on the I/O runtime and blocks until it is done. Must not be called from
    /// inside the runtime (from a rayon worker or the main thread is right).
    /// The time blocked counts in the store's `wait_us` (the report's time waiting on reads).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let began = std::time::Instant::now();
        let out = runtime().block_on(future);
        let waited = began.elapsed().as_micros() as u64;
        self.inner.meter.wait_us.fetch_add(waited, Ordering::Relaxed);
        out
    }

    /// Runs a future on the I/O runtime in the background (for callers that pipeline several
    /// reads); `block_on` the handle to wait.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        runtime().spawn(future)
    }

    /// Fetches `ranges` of `href`, coalescing close ones, all requests in flight at once.
    /// Returns the bytes of each range in order (slices of shared buffers, no copies).
    ///
    /// **Errors**: the first failed request, after retries ([`IoError::Status`],
    /// [`IoError::Network`], [`IoError::File`], [`IoError::OutOfRange`]).
    pub async fn get_ranges(&self, href: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, IoError> {
        self.route(href)?.get_ranges(href, ranges).await
    }

    /// Blocking form of [`get_ranges`](Self::get_ranges).
    ///
    /// **Errors**: as `get_ranges`.
    pub fn get_ranges_blocking(&self, href: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, IoError> {
        self.block_on(self.get_ranges(href, ranges))
    }

    /// The first `len` bytes (fewer if the object is shorter) and the object's total size
    /// when the server or file system says it.
    ///
    /// **Errors**: as `get_ranges`.
    pub async fn get_prefix(&self, href: &str, len: u64) -> Result<(Bytes, Option<u64>), IoError> {
        self.route(href)?.get_prefix(href, len).await
    }

    /// The whole object (a STAC document, say).
    ///
    /// **Errors**: as `get_ranges`.
    pub async fn get_all(&self, href: &str) -> Result<Bytes, IoError> {
        self.route(href)?.get_all(href).await
    }

    /// POSTs a JSON body and returns the response body (a STAC API search, say). Signed and
    /// retried like range reads; never hedged.
    ///
    /// **Errors**: as `get_ranges`; hrefs that are not http(s) are [`IoError::UnsupportedHref`].
    pub async fn post_json(&self, href: &str, body: &serde_json::Value) -> Result<Bytes, IoError> {
        if !(href.starts_with("http://") || href.starts_with("https://")) {
            return Err(IoError::UnsupportedHref { href: redact(href) });
        }
        let inner = &self.inner;
        with_retries(&inner.options.retry_policy(), &inner.meter, || async {
            match &inner.signing {
                Some(signing) => {
                    signing
                        .signed(href, |url| async move { inner.http.post_json(&url, body).await })
                        .await
                }
                None => inner.http.post_json(href, body).await,
            }
        })
        .await
    }
}

/// An `ObjectStore` is itself a store: each call goes to the route its href picks.
impl ReadableStore for ObjectStore {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> super::StoreFuture<'a, Bytes> {
        Box::pin(async move { self.route(href)?.get_range(href, range).await })
    }

    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> super::StoreFuture<'a, (Bytes, Option<u64>)> {
        Box::pin(self.get_prefix(href, len))
    }

    fn get_all<'a>(&'a self, href: &'a str) -> super::StoreFuture<'a, Bytes> {
        Box::pin(self.get_all(href))
    }

    fn get_ranges<'a>(&'a self, href: &'a str, ranges: &'a [Range<u64>]) -> super::StoreFuture<'a, Vec<Bytes>> {
        Box::pin(self.get_ranges(href, ranges))
    }
}
