//! Injected faults: what a flaky object store does.

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::wire::{Request, Response};

/// One misbehaviour, in place of a normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 500 Internal Server Error
    ServerError,
    /// 503 with `Retry-After: 0`
    Unavailable,
    /// 429 Too Many Requests with `Retry-After` in seconds
    TooManyRequests {
        /// seconds
        retry_after: u64,
    },
    /// 403 Forbidden (an expired signature)
    Forbidden,
    /// the connection is closed without an answer
    Reset,
    /// headers promise the whole body, half of it is sent, then the connection closes
    Truncated,
    /// nothing is sent for this long, then the connection closes
    Stall {
        /// milliseconds
        millis: u64,
    },
    /// the headers are sent, then nothing for this long, then the connection closes (the
    /// object stores' long tail)
    StallAfterHeaders {
        /// milliseconds
        millis: u64,
    },
    /// the headers and half the body are sent, then nothing for this long, then the
    /// connection closes
    StallMidBody {
        /// milliseconds
        millis: u64,
    },
}

/// Which requests get which fault: every `every`-th request whose path contains `path_filter`
/// gets the next fault of `cycle`, at most `limit` in all. The default injects nothing.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// faults handed out in turn
    pub cycle: Vec<Fault>,
    /// one request in this many is faulted (1: all)
    pub every: u64,
    /// only paths containing this
    pub path_filter: String,
    /// most faults injected
    pub limit: u64,
    seen: u64,
    injected: u64,
}

impl FaultPlan {
    /// A plan handing out `cycle` to one matching request in `every`.
    pub fn new(cycle: Vec<Fault>, every: u64) -> FaultPlan {
        FaultPlan {
            cycle,
            every: every.max(1),
            path_filter: String::new(),
            limit: u64::MAX,
            seen: 0,
            injected: 0,
        }
    }

    /// Only requests whose path contains `filter`.
    pub fn on_paths(mut self, filter: &str) -> FaultPlan {
        self.path_filter = filter.to_string();
        self
    }

    /// At most `n` faults.
    pub fn at_most(mut self, n: u64) -> FaultPlan {
        self.limit = n;
        self
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected
    }

    pub(super) fn next(&mut self, path: &str) -> Option<Fault> {
        if self.cycle.is_empty() || !path.contains(&self.path_filter) || self.injected >= self.limit {
            return None;
        }
        self.seen += 1;
        if !(self.seen - 1).is_multiple_of(self.every) {
            return None;
        }
        let f = self.cycle[(self.injected % self.cycle.len() as u64) as usize];
        self.injected += 1;
        Some(f)
    }
}

/// Sleeps `millis`, or until the server stops.
fn nap(millis: u64, stop: &AtomicBool) {
    let until = Instant::now() + Duration::from_millis(millis);
    while !stop.load(Ordering::Relaxed) {
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            return;
        };
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Writes the fault; returns whether the connection stays open.
pub(super) fn inject(
    fault: Fault,
    req: &Request,
    w: &mut TcpStream,
    stop: &AtomicBool,
    normal: impl Fn(&Request) -> Response,
) -> bool {
    let mut status = |code: u16, extra: Option<(&str, String)>| {
        let mut r = Response::status(code, "injected fault");
        if let Some((k, v)) = extra {
            r.headers.push((k.into(), v));
        }
        r.write_to(w, false).is_ok()
    };
    match fault {
        Fault::ServerError => status(500, None),
        Fault::Unavailable => status(503, Some(("Retry-After", "0".into()))),
        Fault::TooManyRequests { retry_after } => status(429, Some(("Retry-After", retry_after.to_string()))),
        Fault::Forbidden => status(403, None),
        Fault::Reset => {
            let _ = w.shutdown(std::net::Shutdown::Both);
            false
        }
        Fault::Truncated => {
            let r = normal(req);
            let _ = r.write_partial(w, r.body.len() / 2, false, 0);
            let _ = w.flush();
            let _ = w.shutdown(std::net::Shutdown::Both);
            false
        }
        Fault::Stall { millis } => {
            nap(millis, stop);
            let _ = w.shutdown(std::net::Shutdown::Both);
            false
        }
        Fault::StallAfterHeaders { millis } | Fault::StallMidBody { millis } => {
            let r = normal(req);
            let send = if matches!(fault, Fault::StallMidBody { .. }) {
                r.body.len() / 2
            } else {
                0
            };
            let _ = r.write_partial(w, send, false, 0);
            nap(millis, stop);
            let _ = w.shutdown(std::net::Shutdown::Both);
            false
        }
    }
}
