//! [`StoreMeter`]: the counters every layer of a store adds to (requests, bytes, retries by
//! cause, timeouts, hedges, time waited), and the log of finished requests a dashboard takes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::expr::{IoCounters, IoMeter, RequestSpan, RetryCounts};

/// Why a request was sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// the transfer stalled or passed its whole-request limit
    Timeout,
    /// the server answered 429 or 5xx
    Status,
    /// the connection failed or the body was cut short
    Network,
    /// a signed URL was refused (403) and signed again
    Resign,
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

/// Finished requests a meter keeps for a dashboard to take.
const REQUEST_LOG: usize = 4096;

/// Counters shared by the layers of one store: each layer adds what it sees, and the store
/// reports the sums as an [`IoMeter`]. Every update is one relaxed atomic add.
#[derive(Debug, Default)]
pub struct StoreMeter {
    pub(crate) requests: AtomicU64,
    pub(crate) bytes: AtomicU64,
    retry_timeout: AtomicU64,
    retry_status: AtomicU64,
    retry_network: AtomicU64,
    retry_resign: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) hedges: AtomicU64,
    pub(crate) hedges_won: AtomicU64,
    pub(crate) wait_us: AtomicU64,
    pub(crate) missing_as_nodata: AtomicU64,
    /// requests being sent or received
    pub(crate) in_flight: AtomicU64,
    /// finished requests nobody has taken yet (the last `REQUEST_LOG` of them)
    finished: Mutex<VecDeque<RequestSpan>>,
}

impl StoreMeter {
    /// Counts one request that read `bytes` bytes (stores that read in one step).
    pub(crate) fn read(&self, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a retry for `cause`.
    pub(crate) fn retry(&self, cause: RetryCause) {
        let c = match cause {
            RetryCause::Timeout => &self.retry_timeout,
            RetryCause::Status => &self.retry_status,
            RetryCause::Network => &self.retry_network,
            RetryCause::Resign => &self.retry_resign,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters so far.
    pub fn snapshot(&self) -> IoCounters {
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
            missing_as_nodata: get(&self.missing_as_nodata),
        }
    }

    /// Keeps a finished request for [`IoMeter::take_requests`].
    pub(crate) fn log_request(&self, span: RequestSpan) {
        let mut log = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == REQUEST_LOG {
            log.pop_front();
        }
        log.push_back(span);
    }
}

impl IoMeter for StoreMeter {
    fn counters(&self) -> IoCounters {
        self.snapshot()
    }

    fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn take_requests(&self) -> Vec<RequestSpan> {
        let mut log = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        log.drain(..).collect()
    }
}
