//! Defences against slow answers: how long a transfer may go without bytes before it is
//! abandoned (the stall interval), and how long before a duplicate goes out (the hedge
//! delay), both drawn from what each host has shown recently; and the store's hedge budget.
//!
//! Both limits measure a *wait*, not a whole request: the wait for the headers, or for the
//! next bytes of the body. A large body on a slow link keeps making progress, so it is never
//! cut off or duplicated for its size; a stalled one is found within a few recent waits.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// When a transfer that receives nothing is abandoned and retried: after `multiplier` times
/// the host's recent 99th-percentile wait (for headers, or between body bytes), kept between
/// `floor` and `ceiling`. Until a host has answered [`MIN_SAMPLES`] requests the interval is
/// the ceiling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StallTimeouts {
    /// times the recent 99th-percentile wait (default 10)
    pub multiplier: f64,
    /// shortest stall interval (default 1 s)
    pub floor: Duration,
    /// longest stall interval, and the interval before a host has history (default 30 s)
    pub ceiling: Duration,
}

impl Default for StallTimeouts {
    fn default() -> Self {
        StallTimeouts {
            multiplier: 10.0,
            floor: Duration::from_secs(1),
            ceiling: Duration::from_secs(30),
        }
    }
}

/// When a duplicate of a slow request goes out: once it has waited (for its headers, or for
/// its next bytes) `multiplier` times the host's recent `percentile` wait, and at least
/// `floor`. The first complete answer wins and the other request is cancelled. At most one
/// hedge per request, and hedges stay within `burst + budget * requests` for the store.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hedging {
    /// hedges allowed per request sent (default 0.05; 0, with `burst` 0, switches hedging off)
    pub budget: f64,
    /// hedges allowed beyond the budget, so a run's first requests can be hedged (default 2)
    pub burst: u64,
    /// the percentile of recent waits a request is compared with (default 0.9)
    pub percentile: f64,
    /// times that percentile (default 2)
    pub multiplier: f64,
    /// shortest hedge delay (default 20 ms)
    pub floor: Duration,
}

impl Default for Hedging {
    fn default() -> Self {
        Hedging {
            budget: 0.05,
            burst: 2,
            percentile: 0.9,
            multiplier: 2.0,
            floor: Duration::from_millis(20),
        }
    }
}

impl Hedging {
    /// No hedged requests.
    pub fn off() -> Hedging {
        Hedging {
            budget: 0.0,
            burst: 0,
            ..Default::default()
        }
    }

    /// Whether hedges can go out at all.
    pub fn enabled(&self) -> bool {
        self.budget > 0.0 || self.burst > 0
    }
}

/// Requests a host must have answered before its waits are trusted.
pub const MIN_SAMPLES: usize = 8;

/// Waits kept per host and phase.
const WINDOW: usize = 128;

/// Which wait a transfer is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// waiting for a permit to send (not counted)
    Queued = 0,
    /// sent, waiting for the headers
    Headers = 1,
    /// headers in, waiting for body bytes
    Body = 2,
}

/// One phase's recent waits, in seconds, and their percentiles (kept current on each sample).
#[derive(Debug, Default)]
struct Waits {
    ring: Vec<f32>,
    next: usize,
    seen: usize,
    p99: f32,
    p_hedge: f32,
}

impl Waits {
    fn record(&mut self, wait: Duration, hedge_percentile: f64) {
        let w = wait.as_secs_f32();
        if self.ring.len() < WINDOW {
            self.ring.push(w);
        } else {
            self.ring[self.next] = w;
        }
        self.next = (self.next + 1) % WINDOW;
        self.seen += 1;
        let mut sorted = self.ring.clone();
        sorted.sort_by(f32::total_cmp);
        let at = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
        self.p99 = at(0.99);
        self.p_hedge = at(hedge_percentile.clamp(0.0, 1.0));
    }

    fn known(&self) -> bool {
        self.seen >= MIN_SAMPLES
    }
}

/// What one host has shown recently: the wait for headers, and each request's longest wait
/// for body bytes.
#[derive(Debug, Default)]
pub(crate) struct HostLatency {
    headers: Waits,
    body: Waits,
}

impl HostLatency {
    /// Records a completed request's waits. Costs sorting a window of 128.
    pub(crate) fn record(&mut self, headers: Duration, longest_body_wait: Duration, hedging: &Hedging) {
        self.headers.record(headers, hedging.percentile);
        self.body.record(longest_body_wait, hedging.percentile);
    }

    fn waits(&self, phase: Phase) -> &Waits {
        match phase {
            Phase::Body => &self.body,
            _ => &self.headers,
        }
    }

    /// How long a transfer in `phase` may go without progress.
    pub(crate) fn stall_after(&self, phase: Phase, limits: &StallTimeouts) -> Duration {
        let w = self.waits(phase);
        if !w.known() {
            return limits.ceiling;
        }
        let d = Duration::from_secs_f64(f64::from(w.p99) * limits.multiplier);
        d.clamp(limits.floor, limits.ceiling.max(limits.floor))
    }

    /// How long a transfer in `phase` may go without progress before it is hedged; `None`
    /// while the host has too little history.
    pub(crate) fn hedge_after(&self, phase: Phase, hedging: &Hedging) -> Option<Duration> {
        let w = self.waits(phase);
        w.known()
            .then(|| Duration::from_secs_f64(f64::from(w.p_hedge) * hedging.multiplier).max(hedging.floor))
    }
}

/// One transfer's progress, shared between the transfer and whoever watches it for stalls.
#[derive(Debug)]
pub(crate) struct Progress {
    origin: Instant,
    phase: AtomicU8,
    /// microseconds since `origin` of the last event (sent, headers, bytes)
    last: AtomicU64,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        Progress {
            origin: Instant::now(),
            phase: AtomicU8::new(Phase::Queued as u8),
            last: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// Something arrived (or the request went out, in `phase`); returns the wait it ended.
    pub(crate) fn advance(&self, phase: Phase) -> Duration {
        let now = self.now_us();
        let before = self.last.swap(now, Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
        Duration::from_micros(now.saturating_sub(before))
    }

    /// The phase and how long it has waited.
    pub(crate) fn waiting(&self) -> (Phase, Duration) {
        let phase = match self.phase.load(Ordering::Relaxed) {
            1 => Phase::Headers,
            2 => Phase::Body,
            _ => Phase::Queued,
        };
        let waited = self.now_us().saturating_sub(self.last.load(Ordering::Relaxed));
        (phase, Duration::from_micros(waited))
    }
}

/// The store's hedges so far against its budget.
#[derive(Debug, Default)]
pub(crate) struct HedgeBudget {
    primaries: AtomicU64,
    hedges: AtomicU64,
}

impl HedgeBudget {
    /// A request (not a hedge) went out.
    pub(crate) fn count_request(&self) {
        self.primaries.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes one hedge if the budget allows.
    pub(crate) fn try_take(&self, hedging: &Hedging) -> bool {
        let allowed = hedging.burst as f64 + hedging.budget * self.primaries.load(Ordering::Relaxed) as f64;
        let taken = self.hedges.fetch_add(1, Ordering::Relaxed);
        if (taken + 1) as f64 > allowed {
            self.hedges.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_history_means_ceiling_and_no_hedge() {
        let h = HostLatency::default();
        let s = StallTimeouts::default();
        assert_eq!(h.stall_after(Phase::Headers, &s), s.ceiling);
        assert_eq!(h.hedge_after(Phase::Body, &Hedging::default()), None);
    }

    #[test]
    fn limits_follow_the_hosts_waits_within_floor_and_ceiling() {
        let hedging = Hedging::default();
        let stall = StallTimeouts::default();
        let mut h = HostLatency::default();
        // 9 of 10 headers after 40 ms, one after 300 ms; bodies wait 1 ms.
        for i in 0..100 {
            let headers = if i % 10 == 9 { 300 } else { 40 };
            h.record(Duration::from_millis(headers), Duration::from_millis(1), &hedging);
        }
        // p90 of headers is 40 ms (the 90th of 100 sorted waits), doubled: 80 ms.
        let hedge = h.hedge_after(Phase::Headers, &hedging).unwrap();
        assert!((hedge.as_secs_f64() - 0.080).abs() < 1e-6, "{hedge:?}");
        // p99 is 300 ms, times 10: 3 s.
        let st = h.stall_after(Phase::Headers, &stall);
        assert!((st.as_secs_f64() - 3.0).abs() < 1e-5, "{st:?}");
        // Bodies: 1 ms waits give 2 ms, raised to the 20 ms floor; the stall to the 1 s floor.
        assert_eq!(h.hedge_after(Phase::Body, &hedging), Some(hedging.floor));
        assert_eq!(h.stall_after(Phase::Body, &stall), stall.floor);
        // A very slow host is capped at the ceiling.
        for _ in 0..200 {
            h.record(Duration::from_secs(20), Duration::from_secs(20), &hedging);
        }
        assert_eq!(h.stall_after(Phase::Body, &stall), stall.ceiling);
    }

    #[test]
    fn budget_allows_burst_plus_share() {
        let hedging = Hedging::default();
        let b = HedgeBudget::default();
        assert!(b.try_take(&hedging) && b.try_take(&hedging));
        assert!(!b.try_take(&hedging), "burst of 2 spent");
        for _ in 0..40 {
            b.count_request();
        }
        // 2 + 0.05 * 40 = 4 allowed, 2 taken.
        assert!(b.try_take(&hedging) && b.try_take(&hedging));
        assert!(!b.try_take(&hedging));
        assert!(!HedgeBudget::default().try_take(&Hedging::off()));
    }
}
