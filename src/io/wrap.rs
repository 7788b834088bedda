//! Wrappers that add a capability to any [`ReadableStore`]: [`Coalescing`] merges close
//! ranges into fewer requests, [`Retrying`] retries transient failures with backoff,
//! [`Signing`] rewrites hrefs (URL signing) and signs again on 403.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::coalesce::coalesce;
use super::meter::{RetryCause, StoreMeter};
use super::storage::{ReadableStore, StoreFuture};
use super::{HrefSigner, IoError};

/// Merges the ranges of one `get_ranges` call that lie within `max_gap` bytes of each other
/// (up to `max_len` per request) into one request each, and hands every caller a slice of the
/// shared buffer (no copies). All merged requests are in flight at once.
#[derive(Debug, Clone)]
pub struct Coalescing<S> {
    inner: S,
    max_gap: u64,
    max_len: u64,
}

impl<S> Coalescing<S> {
    /// `inner`, with ranges closer than `max_gap` bytes fetched together, at most `max_len`
    /// bytes per request.
    pub fn new(inner: S, max_gap: u64, max_len: u64) -> Self {
        Coalescing {
            inner,
            max_gap,
            max_len,
        }
    }
}

impl<S: ReadableStore> ReadableStore for Coalescing<S> {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        self.inner.get_range(href, range)
    }

    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)> {
        self.inner.get_prefix(href, len)
    }

    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes> {
        self.inner.get_all(href)
    }

    fn get_ranges<'a>(&'a self, href: &'a str, ranges: &'a [Range<u64>]) -> StoreFuture<'a, Vec<Bytes>> {
        Box::pin(async move {
            let groups = coalesce(ranges, self.max_gap, self.max_len);
            let fetched =
                futures_util::future::try_join_all(groups.iter().map(|g| self.inner.get_range(href, g.range.clone())))
                    .await?;
            let mut out = vec![Bytes::new(); ranges.len()];
            for (g, bytes) in groups.iter().zip(fetched) {
                for &m in &g.members {
                    let r = &ranges[m];
                    let (a, b) = ((r.start - g.range.start) as usize, (r.end - g.range.start) as usize);
                    out[m] = bytes.slice(a..b);
                }
            }
            Ok(out)
        })
    }
}

/// How [`Retrying`] retries: how often, and how long it waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff; doubled each retry, with full jitter.
    pub backoff_base: Duration,
    /// Longest backoff (and the cap on a server's `Retry-After`).
    pub backoff_max: Duration,
}

/// Retries what [`IoError::transient`] calls transient (timeouts, cut or refused connections,
/// 429, 5xx) with exponential backoff and full jitter, honouring a server's `Retry-After`.
/// Anything else fails at once. The final error carries the number of attempts made.
#[derive(Debug, Clone)]
pub struct Retrying<S> {
    inner: S,
    policy: RetryPolicy,
    meter: Arc<StoreMeter>,
}

impl<S> Retrying<S> {
    /// `inner`, retried by `policy`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        Self::with_meter(inner, policy, Arc::default())
    }

    /// `inner`, retried by `policy`, counting retries by cause into `meter`.
    pub(crate) fn with_meter(inner: S, policy: RetryPolicy, meter: Arc<StoreMeter>) -> Self {
        Retrying { inner, policy, meter }
    }

    /// Retries so far, by cause. A few atomic loads.
    pub fn stats(&self) -> crate::expr::IoCounters {
        self.meter.snapshot()
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `policy` runs out of retries.
pub(crate) async fn with_retries<T, F, Fut>(policy: &RetryPolicy, meter: &StoreMeter, attempt: F) -> Result<T, IoError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, IoError>>,
{
    let attempts = policy.retries + 1;
    for n in 1..=attempts {
        let e = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some((cause, after)) = e.transient() else {
            return Err(e.after_attempts(n));
        };
        if n == attempts {
            return Err(e.after_attempts(n));
        }
        meter.retry(cause);
        let wait = after.unwrap_or_else(|| backoff(policy.backoff_base, policy.backoff_max, n));
        tokio::time::sleep(wait.min(policy.backoff_max)).await;
    }
    unreachable!("the loop returns on its last attempt")
}

impl<S: ReadableStore> ReadableStore for Retrying<S> {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        Box::pin(with_retries(&self.policy, &self.meter, move || {
            self.inner.get_range(href, range.clone())
        }))
    }

    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)> {
        Box::pin(with_retries(&self.policy, &self.meter, move || {
            self.inner.get_prefix(href, len)
        }))
    }

    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes> {
        Box::pin(with_retries(&self.policy, &self.meter, move || {
            self.inner.get_all(href)
        }))
    }
}

/// Full jitter: uniform in [0, min(max, base * 2^(attempt-1))].
fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let cap = base.saturating_mul(1u32 << (attempt - 1).min(20)).min(max);
    Duration::from_micros(fastrand::u64(0..=cap.as_micros() as u64))
}

/// Fetches each href as `signer` rewrites it (a signed URL, say), remembering the result; a
/// 403 signs the href again and retries once at once, since signatures expire.
pub struct Signing<S> {
    inner: S,
    signer: HrefSigner,
    signed: std::sync::Mutex<std::collections::HashMap<String, Arc<str>>>,
    meter: Arc<StoreMeter>,
}

impl<S> std::fmt::Debug for Signing<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signing").finish_non_exhaustive()
    }
}

impl<S> Signing<S> {
    /// `inner`, reading hrefs as `signer` rewrites them.
    pub fn new(inner: S, signer: HrefSigner) -> Self {
        Self::with_meter(inner, signer, Arc::default())
    }

    /// As `new`, counting re-signs into `meter`.
    pub(crate) fn with_meter(inner: S, signer: HrefSigner, meter: Arc<StoreMeter>) -> Self {
        Signing {
            inner,
            signer,
            signed: Default::default(),
            meter,
        }
    }

    /// The href to fetch: signed once and remembered, or signed again when `refresh`.
    pub(crate) fn sign(&self, href: &str, refresh: bool) -> Arc<str> {
        let mut signed = self.signed.lock().unwrap_or_else(|e| e.into_inner());
        if !refresh {
            if let Some(s) = signed.get(href) {
                return s.clone();
            }
        }
        let s: Arc<str> = (self.signer)(href).into();
        signed.insert(href.to_string(), s.clone());
        s
    }

    /// Runs `call` on the signed href, and once more on a fresh signature after a 403.
    pub(crate) async fn signed<T, F, Fut>(&self, href: &str, call: F) -> Result<T, IoError>
    where
        F: Fn(Arc<str>) -> Fut,
        Fut: Future<Output = Result<T, IoError>>,
    {
        match call(self.sign(href, false)).await {
            Err(IoError::Status { status: 403, .. }) => {
                self.meter.retry(RetryCause::Resign);
                call(self.sign(href, true)).await
            }
            other => other,
        }
    }
}

impl<S: ReadableStore> ReadableStore for Signing<S> {
    fn get_range<'a>(&'a self, href: &'a str, range: Range<u64>) -> StoreFuture<'a, Bytes> {
        Box::pin(self.signed(href, move |url| {
            let range = range.clone();
            async move { self.inner.get_range(&url, range).await }
        }))
    }

    fn get_prefix<'a>(&'a self, href: &'a str, len: u64) -> StoreFuture<'a, (Bytes, Option<u64>)> {
        Box::pin(self.signed(href, move |url| async move { self.inner.get_prefix(&url, len).await }))
    }

    fn get_all<'a>(&'a self, href: &'a str) -> StoreFuture<'a, Bytes> {
        Box::pin(self.signed(href, move |url| async move { self.inner.get_all(&url).await }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..40 {
            let d = backoff(base, max, attempt);
            assert!(d <= max.min(base * 2u32.pow((attempt - 1).min(20))));
        }
    }
}
