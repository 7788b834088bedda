//! A small HTTP/1.1 server on loopback: static files with Range support, a static STAC API
//! (search with paging), latency with a long tail, per-connection bandwidth limits and
//! injected faults (error statuses, resets, cut bodies, stalls before or after the headers). Tests, benchmarks and the
//! tutorial's embedded catalog run the real network path against it.
//!
//! One thread per connection, keep-alive, `TCP_NODELAY` (without it a small answer on a
//! reused connection waits ~40 ms for the client's delayed ACK, which object stores don't add).

mod faults;
pub mod landsat;
mod stac_api;
mod wire;

use std::collections::HashMap;
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use faults::{Fault, FaultPlan};
pub use stac_api::StacCatalog;
use wire::{read_request, Request, Response};

/// One request the server answered, for tests that count requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    /// GET or POST
    pub method: String,
    /// path without the query string
    pub path: String,
    /// the Range header's (start, end exclusive), if any
    pub range: Option<(u64, u64)>,
    /// the fault injected instead of a normal answer, if any
    pub fault: Option<Fault>,
}

/// How long the server waits before each answer: `typical`, except for a `slow_share` of
/// requests (drawn at random, seeded) that wait `slow` (a long tail).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LatencyProfile {
    /// most requests' delay
    pub typical: Duration,
    /// the tail's delay
    pub slow: Duration,
    /// share of requests in the tail, 0 to 1
    pub slow_share: f64,
}

impl LatencyProfile {
    /// Every request waits `d`.
    pub fn fixed(d: Duration) -> LatencyProfile {
        LatencyProfile {
            typical: d,
            slow: d,
            slow_share: 0.0,
        }
    }
}

struct Latency {
    profile: LatencyProfile,
    rng: fastrand::Rng,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            profile: LatencyProfile::default(),
            rng: fastrand::Rng::with_seed(19),
        }
    }
}

impl Latency {
    fn draw(&mut self) -> Duration {
        let p = self.profile;
        if p.slow_share > 0.0 && self.rng.f64() < p.slow_share {
            p.slow
        } else {
            p.typical
        }
    }
}

#[derive(Default)]
struct State {
    root: Option<PathBuf>,
    files: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    catalog: Mutex<Option<StacCatalog>>,
    latency: Mutex<Latency>,
    /// bytes per second per connection, 0 for no limit
    bandwidth: AtomicU64,
    faults: Mutex<FaultPlan>,
    log: Mutex<Vec<RequestLog>>,
    stop: AtomicBool,
}

/// A running server; stops when dropped.
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish()
    }
}

impl Server {
    /// Starts a server on 127.0.0.1 (a free port) serving files under `root` (if any) and
    /// whatever [`add_file`](Self::add_file) adds. Costs a listening socket and a thread.
    ///
    /// **Errors**: the socket could not be bound.
    pub fn start(root: Option<PathBuf>) -> std::io::Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            root,
            ..Default::default()
        });
        let s = state.clone();
        std::thread::Builder::new()
            .name("loopback-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if s.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let s = s.clone();
                        let _ = std::thread::Builder::new()
                            .name("loopback-conn".into())
                            .spawn(move || serve(stream, &s));
                    }
                }
            })?;
        Ok(Server { addr, state })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `bytes` at `path` (which starts with `/`); an `Arc` is shared, not copied.
    pub fn add_file(&self, path: &str, bytes: impl Into<Arc<Vec<u8>>>) {
        self.state
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), bytes.into());
    }

    /// Serves a STAC API at `/` (landing page) and `/search` (POST and GET).
    pub fn set_catalog(&self, catalog: StacCatalog) {
        *self.state.catalog.lock().unwrap_or_else(|e| e.into_inner()) = Some(catalog);
    }

    /// Delay added before every answer (a WAN round trip, say 40 ms).
    pub fn set_latency(&self, latency: Duration) {
        self.set_latency_profile(LatencyProfile::fixed(latency));
    }

    /// Delays with a long tail: most answers after `typical`, a share after `slow`.
    pub fn set_latency_profile(&self, profile: LatencyProfile) {
        self.state.latency.lock().unwrap_or_else(|e| e.into_inner()).profile = profile;
    }

    /// Sends bodies at most `bytes_per_second` on each connection (a slow but healthy link);
    /// 0 lifts the limit.
    pub fn set_bandwidth(&self, bytes_per_second: u64) {
        self.state.bandwidth.store(bytes_per_second, Ordering::Relaxed);
    }

    /// Faults to inject from now on.
    pub fn set_faults(&self, plan: FaultPlan) {
        *self.state.faults.lock().unwrap_or_else(|e| e.into_inner()) = plan;
    }

    /// Every request answered so far.
    pub fn log(&self) -> Vec<RequestLog> {
        self.state.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.state.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

fn serve(stream: TcpStream, state: &State) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some(req)) = read_request(&mut reader) {
        if state.stop.load(Ordering::Relaxed) {
            return;
        }
        let latency = state.latency.lock().unwrap_or_else(|e| e.into_inner()).draw();
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        let fault = state.faults.lock().unwrap_or_else(|e| e.into_inner()).next(&req.path);
        state.log.lock().unwrap_or_else(|e| e.into_inner()).push(RequestLog {
            method: req.method.clone(),
            path: req.path.clone(),
            range: req.range,
            fault,
        });
        let keep_alive = match fault {
            Some(f) => faults::inject(f, &req, &mut writer, &state.stop, |r| answer(state, r)),
            None => {
                let r = answer(state, &req);
                let bandwidth = state.bandwidth.load(Ordering::Relaxed);
                r.write_partial(&mut writer, r.body.len(), req.method == "HEAD", bandwidth)
                    .is_ok()
            }
        };
        if !keep_alive {
            return;
        }
    }
}

/// The normal answer to a request.
fn answer(state: &State, req: &Request) -> Response {
    if let Some(catalog) = state.catalog.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if let Some(resp) = catalog.answer(req) {
            return resp;
        }
    }
    let added = {
        let files = state.files.lock().unwrap_or_else(|e| e.into_inner());
        files.get(&req.path).cloned()
    };
    if let Some(bytes) = added {
        return Response::file(&bytes, req.range_header.as_deref());
    }
    match &state.root {
        Some(root) if !req.path.contains("..") => {
            let path = root.join(req.path.trim_start_matches('/'));
            let read = || -> std::io::Result<Response> {
                use std::os::unix::fs::FileExt;
                let file = std::fs::File::open(&path)?;
                let len = file.metadata()?.len();
                Response::ranged(len, req.range_header.as_deref(), |r| {
                    let mut buf = vec![0u8; (r.end - r.start) as usize];
                    file.read_exact_at(&mut buf, r.start)?;
                    Ok(buf)
                })
            };
            read().unwrap_or_else(|_| Response::status(404, "not found"))
        }
        _ => Response::status(404, "not found"),
    }
}
