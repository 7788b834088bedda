//! The live dashboard: a small HTTP server (axum, on a one-thread tokio runtime of its own)
//! serving one page that follows a run over Server-Sent Events, and the same page as a
//! self-contained HTML report.
//!
//! The page (`page.html`, hand-written SVG, nothing fetched from elsewhere) draws progress by
//! output and task kind, the task stream by lane, memory against the budget, I/O over time and
//! the graph of operations coloured by state. The server is read-only, binds to loopback
//! unless told otherwise, and never shows a URL's query string (request spans carry redacted
//! URLs only). A browser that disconnects costs the run nothing: the run loop only records,
//! and each page's stream reads snapshots on the server's own thread.

mod report;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

pub use report::report_html;

use super::timeline::Monitor;

/// The page: HTML, CSS and the script that draws a [`Timeline`](super::Timeline).
pub(super) const PAGE: &str = include_str!("page.html");

/// How often a page is sent what changed.
const TICK: Duration = Duration::from_millis(250);

/// Where to serve a run's dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dashboard {
    /// `host:port` to listen on, e.g. `127.0.0.1:8787`
    pub addr: String,
    /// allow an address other than loopback (the page is then visible to the network)
    pub allow_remote: bool,
}

impl Dashboard {
    /// A dashboard on `addr` (loopback only).
    pub fn at(addr: impl Into<String>) -> Dashboard {
        Dashboard {
            addr: addr.into(),
            allow_remote: false,
        }
    }

    /// From `STRATA_DASHBOARD` (an address), with `STRATA_DASHBOARD_REMOTE=1` allowing a
    /// non-loopback one; `None` when unset.
    pub fn from_env() -> Option<Dashboard> {
        let addr = crate::settings::free_text("STRATA_DASHBOARD")?;
        Some(Dashboard {
            addr: addr.trim().to_string(),
            allow_remote: crate::settings::flag("STRATA_DASHBOARD_REMOTE")
                .ok()
                .flatten()
                .unwrap_or(false),
        })
    }
}

/// Why a dashboard could not start (before any work ran).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The address does not parse as `host:port` with an IP host.
    #[error("dashboard address {addr:?} is not an IP address and port (such as 127.0.0.1:8787)")]
    BadAddress {
        /// what was given
        addr: String,
    },
    /// A non-loopback address without `allow_remote`.
    #[error(
        "dashboard address {addr} is not loopback: the page would be visible to the network; set allow_remote (STRATA_DASHBOARD_REMOTE=1) to serve it there"
    )]
    NotLoopback {
        /// the address
        addr: SocketAddr,
    },
    /// The address could not be bound (in use, or not ours).
    #[error("cannot serve the dashboard on {addr}: {source}")]
    Bind {
        /// the address
        addr: SocketAddr,
        /// what the OS said
        source: std::io::Error,
    },
}

/// A running dashboard server; stops when dropped (after its pages got the final state, or
/// half a second).
pub(crate) struct DashboardServer {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    streams: Arc<AtomicUsize>,
}

impl DashboardServer {
    /// Validates the address, binds it and starts serving `monitor`. Costs a thread.
    ///
    /// **Errors**: [`DashboardError`] for a bad, non-loopback (without opt-in) or busy address.
    pub(crate) fn start(options: &Dashboard, monitor: Arc<Monitor>) -> Result<DashboardServer, DashboardError> {
        let addr: SocketAddr = options.addr.parse().map_err(|_| DashboardError::BadAddress {
            addr: options.addr.clone(),
        })?;
        if !addr.ip().is_loopback() && !options.allow_remote {
            return Err(DashboardError::NotLoopback { addr });
        }
        let listener = std::net::TcpListener::bind(addr).map_err(|source| DashboardError::Bind { addr, source })?;
        let bind_err = |source| DashboardError::Bind { addr, source };
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("strata-dashboard")
            .enable_all()
            .build()
            .map_err(bind_err)?;
        let streams = Arc::new(AtomicUsize::new(0));
        let app = {
            let for_snapshot = monitor.clone();
            let (for_events, streams) = (monitor, streams.clone());
            Router::new()
                .route("/", get(|| async { Html(PAGE) }))
                .route(
                    "/snapshot",
                    get(move || {
                        let monitor = for_snapshot.clone();
                        async move { snapshot_json(&monitor, 0).into_response() }
                    }),
                )
                .route(
                    "/events",
                    get(move || {
                        let (monitor, streams) = (for_events.clone(), streams.clone());
                        async move { events(monitor, streams) }
                    }),
                )
        };
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(bind_err)?
        };
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        eprintln!("strata dashboard: http://{addr}/");
        Ok(DashboardServer {
            addr,
            runtime: Some(runtime),
            streams,
        })
    }

    /// The address it serves on.
    #[allow(dead_code)]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DashboardServer {
    fn drop(&mut self) {
        // Pages end their stream once they were sent the finished state.
        let until = Instant::now() + Duration::from_millis(500);
        while self.streams.load(Ordering::Acquire) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(100));
        }
    }
}

fn snapshot_json(monitor: &Monitor, seen: u64) -> String {
    serde_json::to_string(&monitor.snapshot(seen)).expect("a timeline serialises")
}

/// A page's stream: what changed every tick, until the finished state went out.
fn events(monitor: Arc<Monitor>, streams: Arc<AtomicUsize>) -> impl IntoResponse {
    /// Counts the stream while it lives (a dropped connection drops it).
    struct Live(Arc<AtomicUsize>);
    impl Drop for Live {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    streams.fetch_add(1, Ordering::AcqRel);
    // (monitor, spans already sent, first event, finished state sent, the count guard)
    let state = (monitor, 0u64, true, false, Live(streams));
    let stream = futures_util::stream::unfold(state, |(monitor, seen, first, done, live)| async move {
        if done {
            return None;
        }
        if !first {
            tokio::time::sleep(TICK).await;
        }
        monitor.poll(None);
        let snap = monitor.snapshot(seen);
        let (total, finished) = (snap.spans_total, snap.finished);
        let json = serde_json::to_string(&snap).expect("a timeline serialises");
        let event = Event::default().data(json);
        Some((
            Ok::<_, std::convert::Infallible>(event),
            (monitor, total, false, finished, live),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
