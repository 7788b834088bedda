//! [`ObjectStore`]: byte ranges from local files and HTTP servers, many in flight.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;

use super::coalesce::coalesce;
use super::href::{host_of, redact};
use super::http;
use super::tail::{HedgeBudget, Hedging, HostLatency, StallTimeouts};
use super::{HrefSigner, IoError};
use crate::expr::{IoCounters, IoMeter, RequestSpan, RetryCounts};

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

/// One host's request limit and recent waits.
pub(crate) struct Host {
    pub(crate) limit: Semaphore,
    pub(crate) latency: Mutex<HostLatency>,
}

/// Why a request was sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RetryCause {
    Timeout,
    Status,
    Network,
    Resign,
}

/// A store's counters (see [`IoCounters`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes: AtomicU64,
    retry_timeout: AtomicU64,
    retry_status: AtomicU64,
    retry_network: AtomicU64,
    retry_resign: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) hedges: AtomicU64,
    pub(crate) hedges_won: AtomicU64,
    wait_us: AtomicU64,
}

impl RetryCause {
    /// How the dashboard labels a request retried for this cause.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RetryCause::Timeout => "retried: timeout",
            RetryCause::Status => "retried: status",
            RetryCause::Network => "retried: network",
            RetryCause::Resign => "retried: re-signed",
        }
    }
}

impl Counters {
    pub(crate) fn retry(&self, cause: RetryCause) {
        let c = match cause {
            RetryCause::Timeout => &self.retry_timeout,
            RetryCause::Status => &self.retry_status,
            RetryCause::Network => &self.retry_network,
            RetryCause::Resign => &self.retry_resign,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> IoCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IoCounters {
            requests: get(&self.requests),
            bytes: get(&self.bytes),
            retries: RetryCounts {
                timeout: get(&self.retry_timeout),
                status: get(&self.retry_status),
                network: get(&self.retry_network),
                resign: get(&self.retry_resign),
            },
            timeouts: get(&self.timeouts),
            hedges: get(&self.hedges),
            hedges_won: get(&self.hedges_won),
            wait_us: get(&self.wait_us),
        }
    }
}

/// State shared by a store's in-flight requests.
pub(crate) struct Shared {
    pub(crate) options: StoreOptions,
    pub(crate) client: reqwest::Client,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    signed: Mutex<HashMap<String, Arc<str>>>,
    pub(crate) counters: Counters,
    pub(crate) hedge_budget: HedgeBudget,
    /// requests being sent or received
    pub(crate) in_flight: AtomicU64,
    /// finished requests nobody has taken yet (the last `REQUEST_LOG` of them)
    finished: Mutex<std::collections::VecDeque<RequestSpan>>,
}

/// Finished requests a store keeps for a dashboard to take.
const REQUEST_LOG: usize = 4096;

impl IoMeter for Shared {
    fn counters(&self) -> IoCounters {
        self.counters.snapshot()
    }

    fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn take_requests(&self) -> Vec<RequestSpan> {
        let mut log = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        log.drain(..).collect()
    }
}

impl Shared {
    /// Keeps a finished request for [`IoMeter::take_requests`].
    pub(crate) fn log_request(&self, span: RequestSpan) {
        let mut log = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == REQUEST_LOG {
            log.pop_front();
        }
        log.push_back(span);
    }
}

impl Shared {
    /// The host of `url`: its request limit and latency history.
    pub(crate) fn host(&self, url: &str) -> Arc<Host> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(host_of(url).to_string())
            .or_insert_with(|| {
                Arc::new(Host {
                    limit: Semaphore::new(self.options.max_requests_per_host.max(1)),
                    latency: Mutex::default(),
                })
            })
            .clone()
    }

    /// The href to fetch: signed once and remembered, or signed again when `refresh`.
    pub(crate) fn signed(&self, href: &str, refresh: bool) -> Arc<str> {
        let Some(signer) = &self.options.signer else {
            return href.into();
        };
        let mut signed = self.signed.lock().unwrap_or_else(|e| e.into_inner());
        if !refresh {
            if let Some(s) = signed.get(href) {
                return s.clone();
            }
        }
        let s: Arc<str> = signer(href).into();
        signed.insert(href.to_string(), s.clone());
        s
    }
}

/// The runtime every store's requests run on: two threads, since they only wait on sockets.
fn runtime() -> &'static tokio::runtime::Runtime {
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

/// Reads byte ranges from local paths, `file://` URLs and `http(s)://` URLs.
///
/// HTTP requests run concurrently on a shared tokio runtime, at most
/// [`StoreOptions::max_requests_per_host`] per host, retried with exponential backoff and full
/// jitter, and coalesced when close. A transfer that stalls is abandoned after an interval
/// learned from the host's recent waits ([`StallTimeouts`]), and a range request slower than
/// its peers is hedged with a duplicate, within a budget ([`Hedging`]). Cloning is cheap and clones share connections, limits
/// and counters.
#[derive(Clone)]
pub struct ObjectStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore")
            .field("options", &self.shared.options)
            .finish()
    }
}

impl ObjectStore {
    /// A store with these options. Costs building an HTTP client (TLS roots included).
    ///
    /// **Errors**: [`IoError::Client`] when the client cannot be built.
    pub fn new(options: StoreOptions) -> Result<Self, IoError> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(options.max_requests_per_host)
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IoError::Client(e.to_string()))?;
        Ok(ObjectStore {
            shared: Arc::new(Shared {
                options,
                client,
                hosts: Mutex::default(),
                signed: Mutex::default(),
                counters: Counters::default(),
                hedge_budget: HedgeBudget::default(),
                in_flight: AtomicU64::new(0),
                finished: Mutex::default(),
            }),
        })
    }

    /// The options it was built with.
    pub fn options(&self) -> &StoreOptions {
        &self.shared.options
    }

    /// Requests, bytes, retries by cause, timeouts and hedges so far. A few atomic loads.
    pub fn stats(&self) -> IoCounters {
        self.shared.counters.snapshot()
    }

    /// The store's counters as an [`IoMeter`], for sources reading through it (the execution
    /// report sums them over a run).
    pub fn meter(&self) -> Arc<dyn IoMeter> {
        self.shared.clone()
    }

    /// Runs a future on the I/O runtime and blocks until it is done. Must not be called from
    /// inside the runtime (from a rayon worker or the main thread is right).
    /// The time blocked counts in the store's `wait_us` (the report's time waiting on reads).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let began = std::time::Instant::now();
        let out = runtime().block_on(future);
        let waited = began.elapsed().as_micros() as u64;
        self.shared.counters.wait_us.fetch_add(waited, Ordering::Relaxed);
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
        get_ranges(self.shared.clone(), href, ranges).await
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
        match local_path(href)? {
            Some(path) => {
                let (bytes, size) = read_file(&self.shared, &path, Span::Prefix(len))?;
                Ok((bytes, Some(size)))
            }
            None => http::get_prefix(&self.shared, href, len).await,
        }
    }

    /// The whole object (a STAC document, say).
    ///
    /// **Errors**: as `get_ranges`.
    pub async fn get_all(&self, href: &str) -> Result<Bytes, IoError> {
        match local_path(href)? {
            Some(path) => {
                let bytes = std::fs::read(&path).map_err(|e| file_error(&path, 0..u64::MAX, e))?;
                self.shared.counters.requests.fetch_add(1, Ordering::Relaxed);
                Ok(bytes.into())
            }
            None => http::send_with_retries(&self.shared, href, true, |c, url| c.get(url)).await,
        }
    }

    /// POSTs a JSON body and returns the response body (a STAC API search, say). Retried
    /// like range reads.
    ///
    /// **Errors**: as `get_ranges`; local hrefs are [`IoError::UnsupportedHref`].
    pub async fn post_json(&self, href: &str, body: &serde_json::Value) -> Result<Bytes, IoError> {
        if local_path(href)?.is_some() {
            return Err(IoError::UnsupportedHref { href: redact(href) });
        }
        let body = body.to_string();
        http::send_with_retries(&self.shared, href, false, |c, url| {
            c.post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}

async fn get_ranges(shared: Arc<Shared>, href: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>, IoError> {
    let groups = coalesce(ranges, shared.options.coalesce_gap, shared.options.coalesce_max);
    let fetched: Vec<Bytes> = match local_path(href)? {
        Some(path) => groups
            .iter()
            .map(|g| read_file(&shared, &path, Span::Exact(g.range.clone())).map(|(b, _)| b))
            .collect::<Result<_, _>>()?,
        None => {
            let handles: Vec<_> = groups
                .iter()
                .map(|g| {
                    let shared = shared.clone();
                    let href = href.to_string();
                    let range = g.range.clone();
                    tokio::spawn(async move { http::get_range(&shared, &href, range).await })
                })
                .collect();
            let mut out = Vec::with_capacity(handles.len());
            for (h, g) in handles.into_iter().zip(&groups) {
                out.push(h.await.unwrap_or_else(|e| {
                    Err(IoError::Network {
                        url: redact(href),
                        range: g.range.clone(),
                        message: format!("request task failed: {e}"),
                        attempts: 0,
                    })
                })?);
            }
            out
        }
    };
    let mut out = vec![Bytes::new(); ranges.len()];
    for (g, bytes) in groups.iter().zip(fetched) {
        for &m in &g.members {
            let r = &ranges[m];
            let (a, b) = ((r.start - g.range.start) as usize, (r.end - g.range.start) as usize);
            out[m] = bytes.slice(a..b);
        }
    }
    Ok(out)
}

/// `Some(path)` for local paths and `file://` URLs, `None` for http(s).
fn local_path(href: &str) -> Result<Option<String>, IoError> {
    if let Some(rest) = href.strip_prefix("file://") {
        return Ok(Some(rest.to_string()));
    }
    if href.starts_with("http://") || href.starts_with("https://") {
        return Ok(None);
    }
    if href.contains("://") {
        return Err(IoError::UnsupportedHref { href: redact(href) });
    }
    Ok(Some(href.to_string()))
}

fn file_error(path: &str, range: Range<u64>, source: std::io::Error) -> IoError {
    IoError::File {
        path: path.to_string(),
        range,
        source,
    }
}

/// What to read of a file: exactly these bytes, or up to this many from the start.
enum Span {
    Exact(Range<u64>),
    Prefix(u64),
}

/// Reads from a local file with one open; returns the bytes and the file's size.
fn read_file(shared: &Shared, path: &str, span: Span) -> Result<(Bytes, u64), IoError> {
    let asked = match &span {
        Span::Exact(r) => r.clone(),
        Span::Prefix(n) => 0..*n,
    };
    let file = std::fs::File::open(path).map_err(|e| file_error(path, asked.clone(), e))?;
    let size = file.metadata().map_err(|e| file_error(path, asked.clone(), e))?.len();
    let range = match span {
        Span::Exact(r) if r.end > size => {
            return Err(IoError::OutOfRange {
                url: path.to_string(),
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
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    shared.counters.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
    Ok((buf.into(), size))
}
