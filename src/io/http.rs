//! HTTP requests with retries: exponential backoff with full jitter on connect errors,
//! timeouts, cut bodies, 429 and 5xx; `Retry-After` honoured; 403 re-signs the href.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, CONTENT_RANGE, RANGE, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, StatusCode};

use super::href::redact;
use super::store::Shared;
use super::IoError;

/// What one attempt came to.
enum Attempt<T> {
    Done(T),
    Retry {
        reason: String,
        status: Option<u16>,
        after: Option<Duration>,
    },
    Fail(IoError),
}

/// The bytes `range` of `href` (exactly those: a 200 answer to a range request is cut down).
pub(crate) async fn get_range(shared: &Shared, href: &str, range: Range<u64>) -> Result<Bytes, IoError> {
    let header = format!("bytes={}-{}", range.start, range.end.saturating_sub(1));
    let want = range.end - range.start;
    if want == 0 {
        return Ok(Bytes::new());
    }
    let r = range.clone();
    with_retries(
        shared,
        href,
        range.clone(),
        |c, url| c.get(url).header(RANGE, header.as_str()),
        move |status, headers, body: Bytes| match status {
            StatusCode::PARTIAL_CONTENT => {
                let start = content_range(headers).map(|(s, _)| s);
                if body.len() as u64 != want || start.is_some_and(|s| s != r.start) {
                    Attempt::Retry {
                        reason: format!("answer has {} bytes from {start:?}, expected {want}", body.len()),
                        status: Some(206),
                        after: None,
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
    )
    .await
}

/// Up to `len` bytes from the start, and the total size when the server says it.
pub(crate) async fn get_prefix(shared: &Shared, href: &str, len: u64) -> Result<(Bytes, Option<u64>), IoError> {
    let header = format!("bytes=0-{}", len.saturating_sub(1));
    with_retries(
        shared,
        href,
        0..len,
        |c, url| c.get(url).header(RANGE, header.as_str()),
        |status, headers, body: Bytes| match status {
            StatusCode::PARTIAL_CONTENT => {
                let total = content_range(headers).and_then(|(_, t)| t);
                Attempt::Done((body, total))
            }
            _ => {
                let total = body.len() as u64;
                Attempt::Done((body.slice(..len.min(total) as usize), Some(total)))
            }
        },
    )
    .await
}

/// A request whose whole 2xx body is the answer (GET of a document, POST of a search).
pub(crate) async fn send_with_retries(
    shared: &Shared,
    href: &str,
    range: Range<u64>,
    build: impl Fn(&Client, &str) -> RequestBuilder,
) -> Result<Bytes, IoError> {
    with_retries(shared, href, range, build, |_, _, body| Attempt::Done(body)).await
}

async fn with_retries<T>(
    shared: &Shared,
    href: &str,
    range: Range<u64>,
    build: impl Fn(&Client, &str) -> RequestBuilder,
    accept: impl Fn(StatusCode, &HeaderMap, Bytes) -> Attempt<T>,
) -> Result<T, IoError> {
    let options = &shared.options;
    let limit = shared.host_limit(href);
    let mut resign = false;
    let attempts = options.retries + 1;
    for attempt in 1..=attempts {
        let url = shared.signed(href, resign);
        resign = false;
        let outcome = {
            let _permit = limit.acquire().await.expect("the host semaphore is never closed");
            shared.requests.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                shared.retries.fetch_add(1, Ordering::Relaxed);
            }
            match build(&shared.client, &url)
                .timeout(options.request_timeout)
                .send()
                .await
            {
                Err(e) => Attempt::Retry {
                    reason: describe(&e),
                    status: None,
                    after: None,
                },
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::FORBIDDEN && options.signer.is_some() {
                        // A signed URL that expired: sign again and retry at once.
                        resign = true;
                        Attempt::Retry {
                            reason: "403, URL signed again".into(),
                            status: Some(403),
                            after: Some(Duration::ZERO),
                        }
                    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                        Attempt::Retry {
                            reason: format!("HTTP {status}"),
                            status: Some(status.as_u16()),
                            after: retry_after(resp.headers()),
                        }
                    } else if status == StatusCode::RANGE_NOT_SATISFIABLE {
                        let len = content_range(resp.headers()).and_then(|(_, t)| t).unwrap_or(0);
                        Attempt::Fail(IoError::OutOfRange {
                            url: redact(href),
                            range: range.clone(),
                            len,
                        })
                    } else if !status.is_success() {
                        Attempt::Fail(IoError::Status {
                            url: redact(href),
                            range: range.clone(),
                            status: status.as_u16(),
                            attempts: attempt,
                        })
                    } else {
                        let headers = resp.headers().clone();
                        match resp.bytes().await {
                            Ok(body) => {
                                shared.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                                accept(status, &headers, body)
                            }
                            Err(e) => Attempt::Retry {
                                reason: describe(&e),
                                status: None,
                                after: None,
                            },
                        }
                    }
                }
            }
        };
        match outcome {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry { reason, status, after } => {
                if attempt == attempts {
                    return Err(match status {
                        Some(status) => IoError::Status {
                            url: redact(href),
                            range,
                            status,
                            attempts,
                        },
                        None => IoError::Network {
                            url: redact(href),
                            range,
                            message: reason,
                            attempts,
                        },
                    });
                }
                let wait = after.unwrap_or_else(|| backoff(options.backoff_base, options.backoff_max, attempt));
                tokio::time::sleep(wait.min(options.backoff_max)).await;
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// Full jitter: uniform in [0, min(max, base * 2^(attempt-1))].
fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let cap = base.saturating_mul(1u32 << (attempt - 1).min(20)).min(max);
    Duration::from_micros(fastrand::u64(0..=cap.as_micros() as u64))
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
    fn backoff_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for attempt in 1..40 {
            let d = backoff(base, max, attempt);
            assert!(d <= max.min(base * 2u32.pow((attempt - 1).min(20))));
        }
    }

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
