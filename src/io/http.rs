//! [`HttpStore`]: byte ranges over HTTP(S), one attempt per call. A transfer that stalls or
//! passes its whole-request limit is abandoned, and a GET slower than its host's recent peers
//! is hedged with a duplicate (see `tail`). Failures come back typed, marked transient or not
//! ([`IoError::transient`]), for [`Retrying`](super::Retrying) to act on; 403 is left to
//! [`Signing`](super::Signing).

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_RANGE, RANGE, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, StatusCode};
use tokio::sync::Semaphore;

use super::href::{host_of, redact};
use super::meter::{RetryCause, StoreMeter};
use super::storage::{ReadableStore, StoreFuture};
use super::tail::{HedgeBudget, HostLatency, Phase, Progress};
use super::{IoError, StoreOptions};
use crate::expr::RequestSpan;

/// One host's request limit and recent waits.
pub(crate) struct Host {
    pub(crate) limit: Semaphore,
    pub(crate) latency: Mutex<HostLatency>,
}

/// State shared by an HTTP store's requests.
pub(crate) struct Shared {
    options: StoreOptions,
    client: Client,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    meter: Arc<StoreMeter>,
    hedge_budget: HedgeBudget,
}

impl Shared {
    /// The host of `url`: its request limit and latency history.
    fn host(&self, url: &str) -> Arc<Host> {
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
}

/// Reads `http://` and `https://` objects with range requests: at most
/// [`StoreOptions::max_requests_per_host`] in flight per host, stalls detected from the host's
/// recent waits ([`StallTimeouts`](super::StallTimeouts)), slow reads hedged within a budget
/// ([`Hedging`](super::Hedging)). One attempt per call: wrap it in
/// [`Retrying`](super::Retrying) for retries. Cloning is cheap; clones share connections,
/// limits and counters.
#[derive(Clone)]
pub struct HttpStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStore")
            .field("options", &self.shared.options)
            .finish()
    }
}

impl HttpStore {
    /// A store with these options (its retry, coalescing and signer fields are for the
    /// wrappers and unused here). Costs building an HTTP client (TLS roots included).
    ///
    /// **Errors**: [`IoError::Client`] when the client cannot be built.
    pub fn new(options: StoreOptions) -> Result<Self, IoError> {
        Self::with_meter(options, Arc::default())
    }

    /// A store counting into `meter` (one store's layers share one).
    pub(crate) fn with_meter(options: StoreOptions, meter: Arc<StoreMeter>) -> Result<Self, IoError> {
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(options.max_requests_per_host)
            .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| IoError::Client(e.to_string()))?;
        Ok(HttpStore {
            shared: Arc::new(Shared {
                options,
                client,
                hosts: Mutex::default(),
                meter,
                hedge_budget: HedgeBudget::default(),
            }),
        })
    }

    /// Requests, bytes, timeouts and hedges so far. A few atomic loads.
    pub fn stats(&self) -> crate::expr::IoCounters {
        self.shared.meter.snapshot()
    }

    /// POSTs a JSON body and returns the response body (a STAC API search, say). One attempt;
    /// never hedged, since a POST need not be safe to repeat.
    ///
    /// **Errors**: as `get_range`.
    pub async fn post_json(&self, href: &str, body: &serde_json::Value) -> Result<Bytes, IoError> {
        let body = body.to_string();
        send_whole(&self.shared, href, false, |c, url| {
            c.post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
    }
}

impl ReadableStore for HttpStore {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        Box::pin(get_range(&self.shared, href, range))
    }

    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)> {
        Box::pin(get_prefix(&self.shared, href, len))
    }

    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes> {
        Box::pin(send_whole(&self.shared, href, true, |c, url| c.get(url)))
    }
}

/// What one attempt came to.
pub(crate) enum Attempt<T> {
    Done(T),
    Retry {
        reason: String,
        status: Option<u16>,
        after: Option<Duration>,
        cause: RetryCause,
    },
    Fail(IoError),
}

/// The bytes `range` of `href` (exactly those: a 200 answer to a range request is cut down).
async fn get_range(shared: &Shared, href: &str, range: Range<u64>) -> Result<Bytes, IoError> {
    let header = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
    let want = range.end - range.start;
    if want == 0 {
        return Ok(Bytes::new());
    }
    let r = range.clone();
    let call = Call {
        shared,
        href,
        range: range.clone(),
        hedge: true,
        build: |c: &Client, url: &str| c.get(url).header(RANGE, header.as_str()),
        accept: move |status, headers: &HeaderMap, body: Bytes| match status {
            StatusCode::PARTIAL_CONTENT => {
                let (start, total) = content_range(headers).map_or((None, None), |(s, t)| (Some(s), t));
                if let Some(len) = total.filter(|&t| t < r.end) {
                    // the server cut the range at the object's end
                    return Attempt::Fail(IoError::OutOfRange {
                        url: redact(href),
                        range: r.clone(),
                        len,
                    });
                }
                if body.len() as u64 != want || start.is_some_and(|s| s != r.start) {
                    Attempt::Retry {
                        reason: format!("answer has {} bytes from {start:?}, expected {want}", body.len()),
                        status: Some(206),
                        after: None,
                        cause: RetryCause::Network,
                    }
                } else {
                    Attempt::Done(body)
                }
            }
            _ if body.len() as u64 >= r.end => Attempt::Done(body.slice(r.start as usize..r.end as usize)),
            _ => Attempt::Fail(IoError::OutOfRange {
                url: redact(href),
                range: r.clone(),
                len: body.len() as u64,
            }),
        },
    };
    call.run().await
}

/// Up to `len` bytes from the start, and the total size when the server says it.
async fn get_prefix(shared: &Shared, href: &str, len: u64) -> Result<(Bytes, Option<u64>), IoError> {
    let header = format!("bytes=0-{}", len.saturating_sub(1));
    let call = Call {
        shared,
        href,
        range: 0..len,
        hedge: true,
        build: |c: &Client, url: &str| c.get(url).header(RANGE, header.as_str()),
        accept: |status, headers: &HeaderMap, body: Bytes| match status {
            StatusCode::PARTIAL_CONTENT => {
                let total = content_range(headers).and_then(|(_, t)| t);
                Attempt::Done((body, total))
            }
            _ => {
                let total = body.len() as u64;
                Attempt::Done((body.slice(..len.min(total) as usize), Some(total)))
            }
        },
    };
    match call.run().await {
        // 416 for bytes from 0: the object is empty
        Err(IoError::OutOfRange { len, .. }) => Ok((Bytes::new(), Some(len))),
        other => other,
    }
}

/// A request whose whole 2xx body is the answer (GET of a document, POST of a search).
/// `hedge`: whether a slow one may be duplicated (only for requests safe to repeat).
async fn send_whole(
    shared: &Shared,
    href: &str,
    hedge: bool,
    build: impl Fn(&Client, &str) -> RequestBuilder,
) -> Result<Bytes, IoError> {
    let call = Call {
        shared,
        href,
        range: super::WHOLE,
        hedge,
        build,
        accept: |_, _: &HeaderMap, body| Attempt::Done(body),
    };
    call.run().await
}

/// One logical request: how to build it and what its answer means.
struct Call<'a, B, A> {
    shared: &'a Shared,
    href: &'a str,
    /// the bytes asked for (`WHOLE` when the whole body is the answer)
    range: Range<u64>,
    /// whether a slow attempt may be duplicated
    hedge: bool,
    build: B,
    accept: A,
}

/// Re-reads the host's limits this often while waiting, so they follow what its other
/// requests show.
const RECHECK: Duration = Duration::from_millis(50);

impl<B, A, T> Call<'_, B, A>
where
    B: Fn(&Client, &str) -> RequestBuilder,
    A: Fn(StatusCode, &HeaderMap, Bytes) -> Attempt<T>,
{
    /// One attempt (hedged when allowed), its failure typed.
    async fn run(&self) -> Result<T, IoError> {
        let host = self.shared.host(self.href);
        let may_hedge = self.hedge && self.shared.options.hedging.enabled();
        match self.hedged(&host, self.href, may_hedge).await {
            Attempt::Done(v) => Ok(v),
            Attempt::Fail(e) => Err(e),
            Attempt::Retry {
                reason,
                status,
                after,
                cause,
            } => Err(match (cause, status) {
                (RetryCause::Status, Some(status)) => IoError::Status {
                    url: redact(self.href),
                    range: self.range.clone(),
                    status,
                    attempts: 1,
                    retry_after: after,
                },
                _ => IoError::Network {
                    url: redact(self.href),
                    range: self.range.clone(),
                    message: reason,
                    attempts: 1,
                    timed_out: cause == RetryCause::Timeout,
                },
            }),
        }
    }

    /// One attempt, duplicated once it has waited longer than the host's recent requests
    /// did (within the budget, at most once per call); the first complete answer wins and
    /// the other transfer is dropped, which closes its connection.
    async fn hedged(&self, host: &Host, url: &str, may_hedge: bool) -> Attempt<T> {
        let shared = self.shared;
        let hedging = &shared.options.hedging;
        let first = Progress::new();
        let primary = self.transfer(host, url, &first, false);
        tokio::pin!(primary);
        if !may_hedge {
            return primary.await;
        }
        loop {
            let (phase, waited) = first.waiting();
            let after = match phase {
                Phase::Queued => None,
                _ => lock(host).hedge_after(phase, hedging),
            };
            let nap = match after {
                Some(after) if waited >= after => {
                    if shared.hedge_budget.try_take(hedging) {
                        break;
                    }
                    RECHECK
                }
                Some(after) => (after - waited).min(RECHECK),
                None => RECHECK,
            };
            tokio::select! {
                out = &mut primary => return out,
                _ = tokio::time::sleep(nap) => {}
            }
        }
        shared.meter.hedges.fetch_add(1, Ordering::Relaxed);
        let second = Progress::new();
        let hedge = self.transfer(host, url, &second, true);
        tokio::pin!(hedge);
        tokio::select! {
            out = &mut primary => match out {
                Attempt::Retry { .. } => won_by_hedge(shared, hedge.await),
                done_or_failed => done_or_failed,
            },
            out = &mut hedge => match out {
                Attempt::Retry { .. } => primary.await,
                other => won_by_hedge(shared, other),
            },
        }
    }

    /// Sends once and reads the whole body, abandoning the transfer when it stalls or passes
    /// its whole-request limit. The request is logged for dashboards however it ends
    /// (dropped: `cancelled read`).
    async fn transfer(&self, host: &Host, url: &str, progress: &Progress, is_hedge: bool) -> Attempt<T> {
        let _permit = host.limit.acquire().await.expect("the host semaphore is never closed");
        let mut log = RequestLog::begin(self.shared, self.href, self.range.clone());
        let out = self.exchange(host, url, progress, is_hedge, &log).await;
        log.outcome = match &out {
            Attempt::Done(_) if is_hedge => "hedged read",
            Attempt::Done(_) => "read",
            Attempt::Retry { cause, .. } => cause.name(),
            Attempt::Fail(_) => "failed read",
        };
        out
    }

    async fn exchange(
        &self,
        host: &Host,
        url: &str,
        progress: &Progress,
        is_hedge: bool,
        log: &RequestLog<'_>,
    ) -> Attempt<T> {
        let shared = self.shared;
        let options = &shared.options;
        shared.meter.requests.fetch_add(1, Ordering::Relaxed);
        if !is_hedge {
            shared.hedge_budget.count_request();
        }
        progress.advance(Phase::Headers);
        let began = Instant::now();
        let rate = options.min_throughput.max(1) as f64;
        let limit_for = |bytes: u64| options.request_timeout + Duration::from_secs_f64(bytes as f64 / rate);
        // A whole-object read knows its size only from the headers (below).
        let asked = if self.range == super::WHOLE {
            0
        } else {
            self.range.end - self.range.start
        };
        let mut deadline = began + limit_for(asked);
        let resp = match watch(
            (self.build)(&shared.client, url).send(),
            progress,
            host,
            shared,
            deadline,
        )
        .await
        {
            Err(overdue) => return self.overdue(overdue, deadline - began),
            Ok(Err(e)) => return network_retry(&e),
            Ok(Ok(resp)) => resp,
        };
        let headers_wait = progress.advance(Phase::Body);
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Attempt::Retry {
                reason: format!("HTTP {status}"),
                status: Some(status.as_u16()),
                after: retry_after(resp.headers()),
                cause: RetryCause::Status,
            };
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            let len = content_range(resp.headers()).and_then(|(_, t)| t).unwrap_or(0);
            return Attempt::Fail(IoError::OutOfRange {
                url: redact(self.href),
                range: self.range.clone(),
                len,
            });
        }
        if !status.is_success() {
            return Attempt::Fail(IoError::Status {
                url: redact(self.href),
                range: self.range.clone(),
                status: status.as_u16(),
                attempts: 1,
                retry_after: None,
            });
        }
        let headers = resp.headers().clone();
        let expected = resp.content_length();
        if let Some(len) = expected {
            deadline = deadline.max(began + limit_for(len));
        }
        let mut resp = resp;
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut longest = Duration::ZERO;
        loop {
            match watch(resp.chunk(), progress, host, shared, deadline).await {
                Err(overdue) => return self.overdue(overdue, deadline - began),
                Ok(Err(e)) => return network_retry(&e),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    longest = longest.max(progress.advance(Phase::Body));
                    shared.meter.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    log.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    chunks.push(chunk);
                }
            }
        }
        lock(host).record(headers_wait, longest, &options.hedging);
        accept_body(&self.accept, status, &headers, chunks, expected)
    }

    fn overdue(&self, overdue: Overdue, limit: Duration) -> Attempt<T> {
        self.shared.meter.timeouts.fetch_add(1, Ordering::Relaxed);
        let reason = match overdue {
            Overdue::Stalled(phase, waited) => {
                let what = if phase == Phase::Body { "body bytes" } else { "headers" };
                format!("timed out: no {what} for {:.1} s", waited.as_secs_f64())
            }
            Overdue::Deadline => format!("timed out: whole-request limit of {:.1} s", limit.as_secs_f64()),
        };
        Attempt::Retry {
            reason,
            status: None,
            after: None,
            cause: RetryCause::Timeout,
        }
    }
}

/// One request in flight; logged in the store's finished requests when dropped.
struct RequestLog<'s> {
    shared: &'s Shared,
    start: Instant,
    url: &'s str,
    range: Range<u64>,
    bytes: std::sync::atomic::AtomicU64,
    outcome: &'static str,
}

impl<'s> RequestLog<'s> {
    fn begin(shared: &'s Shared, url: &'s str, range: Range<u64>) -> Self {
        shared.meter.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestLog {
            shared,
            start: Instant::now(),
            url,
            range,
            bytes: Default::default(),
            outcome: "cancelled read",
        }
    }
}

impl Drop for RequestLog<'_> {
    fn drop(&mut self) {
        self.shared.meter.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.shared.meter.log_request(RequestSpan {
            start: self.start,
            end: Instant::now(),
            url: redact(self.url),
            range: self.range.clone(),
            bytes: self.bytes.load(Ordering::Relaxed),
            outcome: self.outcome,
        });
    }
}

/// The body as one buffer of its own size, judged by `accept`.
///
/// Why a copy even of a body that came in one piece: hyper hands out slices of the
/// connection's read buffer (up to ~400 KB), and a slice keeps the whole buffer alive while
/// the body waits to be decoded, so each waiting tile held twice its size and the connection
/// allocated a fresh buffer for its next response. Copied, the connection reuses its buffer.
/// On the 32-scene tutorial this took the peak resident memory from 387–404 MB to 362–377 MB
/// (3 runs each, one build) for a memcpy of the 689 MB fetched (about 0.1 s of CPU).
fn accept_body<T>(
    accept: &impl Fn(StatusCode, &HeaderMap, Bytes) -> Attempt<T>,
    status: StatusCode,
    headers: &HeaderMap,
    chunks: Vec<Bytes>,
    expected: Option<u64>,
) -> Attempt<T> {
    // one exact-size copy; the chunks (and hyper's buffer with them) go when this returns
    let body = Bytes::from(chunks.concat());
    if expected.is_some_and(|e| e != body.len() as u64) {
        return Attempt::Retry {
            reason: format!("body cut short: {} of {} bytes", body.len(), expected.unwrap_or(0)),
            status: None,
            after: None,
            cause: RetryCause::Network,
        };
    }
    accept(status, headers, body)
}

/// A hedge's answer, counted as a win when it is one.
fn won_by_hedge<T>(shared: &Shared, out: Attempt<T>) -> Attempt<T> {
    if matches!(out, Attempt::Done(_)) {
        shared.meter.hedges_won.fetch_add(1, Ordering::Relaxed);
    }
    out
}

fn network_retry<T>(e: &reqwest::Error) -> Attempt<T> {
    Attempt::Retry {
        reason: describe(e),
        status: None,
        after: None,
        cause: RetryCause::Network,
    }
}

fn lock(host: &Host) -> std::sync::MutexGuard<'_, HostLatency> {
    host.latency.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a transfer was abandoned.
enum Overdue {
    /// nothing arrived in this phase for this long
    Stalled(Phase, Duration),
    /// the whole-request limit passed
    Deadline,
}

/// Waits for `fut` while the transfer keeps making progress: fails once it has waited longer
/// than the host's stall interval for its phase, or `deadline` passes.
async fn watch<F: Future>(
    fut: F,
    progress: &Progress,
    host: &Host,
    shared: &Shared,
    deadline: Instant,
) -> Result<F::Output, Overdue> {
    tokio::pin!(fut);
    loop {
        let (phase, waited) = progress.waiting();
        let limit = lock(host).stall_after(phase, &shared.options.stall);
        let now = Instant::now();
        if now >= deadline {
            return Err(Overdue::Deadline);
        }
        if waited >= limit {
            return Err(Overdue::Stalled(phase, waited));
        }
        let nap = (limit - waited).min(deadline - now).min(RECHECK * 4);
        tokio::select! {
            out = &mut fut => return Ok(out),
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form falls back to the backoff).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// `Content-Range: bytes a-b/total` → (a, total); `bytes */total` → (0, total).
fn content_range(headers: &HeaderMap) -> Option<(u64, Option<u64>)> {
    let v = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let rest = v.trim().strip_prefix("bytes")?.trim();
    let (span, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok();
    let start = span
        .split_once('-')
        .and_then(|(a, _)| a.trim().parse().ok())
        .unwrap_or(0);
    Some((start, total))
}

/// The client's error and its causes, without the URL (it may carry a signature).
fn describe(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connect failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "body cut short".to_string()
    } else {
        "request failed".to_string()
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = redact_urls(&c.to_string());
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    msg
}

/// Any URL inside a message loses its query string.
fn redact_urls(text: &str) -> String {
    text.split(' ')
        .map(|w| if w.contains("://") { redact(w) } else { w.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_RANGE, "bytes 10-19/300".parse().unwrap());
        assert_eq!(content_range(&h), Some((10, Some(300))));
        h.insert(CONTENT_RANGE, "bytes */300".parse().unwrap());
        assert_eq!(content_range(&h), Some((0, Some(300))));
        h.insert(CONTENT_RANGE, "bytes 0-9/*".parse().unwrap());
        assert_eq!(content_range(&h), Some((0, None)));
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    }
}
