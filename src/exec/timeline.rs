//! What a run did over time, for the live dashboard and the HTML report: task spans by lane
//! (worker threads, device submissions, device copies, network requests), memory held against
//! the budget, I/O counters, and progress by operation and output.
//!
//! Bounded on any run: the last [`SPANS_KEPT`] spans are kept and older ones are summed per
//! lane and kind ([`LaneTotal`]); the memory and I/O series keep at most [`SERIES_KEPT`]
//! points, halving their resolution when full (a memory point keeps the larger of the two
//! it replaces, so peaks survive).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{Backend, TransferSpan};
use crate::expr::{IoCounters, IoMeter, RequestSpan};
use crate::plan::{TaskGraph, TaskKind};

/// Spans kept for drawing; older ones are summed in [`Timeline::aggregated`].
pub const SPANS_KEPT: usize = 20_000;

/// Points kept per series.
pub const SERIES_KEPT: usize = 2048;

/// The run's settings, shown in a dashboard's header.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunHeader {
    /// backend name
    pub backend: String,
    /// the GPU adapter's name and driver, if any
    pub adapter: Option<String>,
    /// worker threads
    pub threads: usize,
    /// memory budget in bytes
    pub memory_budget: u64,
    /// tasks in the graph
    pub tasks: usize,
    /// when the run began (UTC, RFC 3339)
    pub started: String,
}

/// The tasks of one operation and kind (one node of the graph view).
#[derive(Debug, Clone, Serialize)]
pub struct TaskGroup {
    /// the expression operation
    pub label: String,
    /// task kind (`fused`, `median`, ...)
    pub kind: &'static str,
    /// tasks in the group
    pub tasks: u64,
    /// of those, finished
    pub done: u64,
    /// of those, running now
    pub running: u64,
    /// groups whose results these tasks read
    pub deps: Vec<u32>,
}

/// Blocks of one requested result, and how many are computed.
#[derive(Debug, Clone, Serialize)]
pub struct OutputProgress {
    /// the operation that produces it
    pub name: String,
    /// its blocks
    pub blocks: u64,
    /// of those, computed
    pub done: u64,
}

/// One rectangle of the task stream.
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// index into [`Timeline::lanes`]
    pub lane: u32,
    /// task kind, or `upload`/`download`, or the request's outcome
    pub kind: &'static str,
    /// the task's group, for tasks
    pub group: Option<u32>,
    /// start, microseconds since the run began
    pub start_us: u64,
    /// end, microseconds since the run began
    pub end_us: u64,
    /// bytes produced, copied or received
    pub bytes: u64,
    /// the block (tasks), or the object and byte range (requests; no query string)
    pub what: String,
}

/// Spans no longer kept, summed per lane and kind.
#[derive(Debug, Clone, Serialize)]
pub struct LaneTotal {
    /// index into [`Timeline::lanes`]
    pub lane: u32,
    /// task kind or transfer
    pub kind: &'static str,
    /// spans summed
    pub count: u64,
    /// their summed duration in microseconds
    pub busy_us: u64,
    /// their summed bytes
    pub bytes: u64,
}

/// Memory held at one moment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemorySample {
    /// microseconds since the run began
    pub t_us: u64,
    /// bytes held by results and reservations (what the budget limits)
    pub host: u64,
    /// bytes of results held on the device
    pub device: u64,
}

/// The I/O counters at one moment, since the run began.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IoSample {
    /// microseconds since the run began
    pub t_us: u64,
    /// requests, bytes, retries by cause, hedges so far
    pub io: IoCounters,
    /// requests in flight
    pub in_flight: u64,
}

/// Everything a dashboard draws, as data (the HTML report embeds it).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Timeline {
    /// settings
    pub header: RunHeader,
    /// lane names: `worker N`, `gpu submit`, `gpu upload`, `gpu download`, `network`
    pub lanes: Vec<String>,
    /// operations and their progress
    pub groups: Vec<TaskGroup>,
    /// requested results and their progress
    pub outputs: Vec<OutputProgress>,
    /// the most recent spans, oldest first
    pub spans: Vec<Span>,
    /// spans recorded in all (those before `spans` are in `aggregated`)
    pub spans_total: u64,
    /// older spans, summed
    pub aggregated: Vec<LaneTotal>,
    /// memory over time
    pub memory: Vec<MemorySample>,
    /// I/O over time
    pub io: Vec<IoSample>,
    /// microseconds since the run began, when this was taken
    pub now_us: u64,
    /// whether the run has ended
    pub finished: bool,
}

/// A series that halves its resolution when full.
#[derive(Debug)]
struct Series<T> {
    points: Vec<T>,
}

impl<T> Default for Series<T> {
    fn default() -> Self {
        Series { points: Vec::new() }
    }
}

impl<T: Copy> Series<T> {
    fn push(&mut self, p: T, merge: impl Fn(T, T) -> T) {
        if self.points.len() == SERIES_KEPT {
            let halved: Vec<T> = self.points.chunks(2).map(|c| merge(c[0], c[c.len() - 1])).collect();
            self.points = halved;
        }
        self.points.push(p);
    }
}

/// The live state behind the lock.
#[derive(Default)]
struct Live {
    groups: Vec<TaskGroup>,
    outputs: Vec<OutputProgress>,
    spans: VecDeque<Span>,
    spans_total: u64,
    aggregated: BTreeMap<(u32, &'static str), LaneTotal>,
    memory: Series<MemorySample>,
    io: Series<IoSample>,
    finished: bool,
}

impl Live {
    fn push_span(&mut self, span: Span) {
        if self.spans.len() == SPANS_KEPT {
            if let Some(old) = self.spans.pop_front() {
                let total = self.aggregated.entry((old.lane, old.kind)).or_insert(LaneTotal {
                    lane: old.lane,
                    kind: old.kind,
                    count: 0,
                    busy_us: 0,
                    bytes: 0,
                });
                total.count += 1;
                total.busy_us += old.end_us.saturating_sub(old.start_us);
                total.bytes += old.bytes;
            }
        }
        self.spans.push_back(span);
        self.spans_total += 1;
    }
}

/// Records a run as it goes. The run loop calls it on task start and end and when memory
/// changes (a lock and a push each); a dashboard reads snapshots from another thread.
pub struct Monitor {
    began: Instant,
    header: RunHeader,
    lanes: Vec<String>,
    /// group of every task
    task_group: Vec<u32>,
    /// outputs every task completes a block of
    task_outputs: HashMap<usize, Vec<u32>>,
    meters: Vec<(Arc<dyn IoMeter>, IoCounters)>,
    live: Mutex<Live>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("header", &self.header).finish()
    }
}

/// Lanes after the workers.
const LANE_SUBMIT: usize = 0;
const LANE_UPLOAD: usize = 1;
const LANE_DOWNLOAD: usize = 2;
const LANE_NETWORK: usize = 3;

impl Monitor {
    /// A monitor for `graph`, run with `header.threads` workers from `began`. Costs a pass
    /// over the tasks (grouping them by operation and kind).
    pub fn new(graph: &TaskGraph, mut header: RunHeader, began: Instant) -> Monitor {
        header.tasks = graph.tasks.len();
        header.started = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut index: HashMap<(u64, &'static str), u32> = HashMap::new();
        let mut groups: Vec<TaskGroup> = Vec::new();
        let mut task_group = Vec::with_capacity(graph.tasks.len());
        for task in &graph.tasks {
            let kind = task.kind.name();
            let g = *index.entry((task.node.0, kind)).or_insert_with(|| {
                groups.push(TaskGroup {
                    label: task.label.clone(),
                    kind,
                    tasks: 0,
                    done: 0,
                    running: 0,
                    deps: Vec::new(),
                });
                (groups.len() - 1) as u32
            });
            groups[g as usize].tasks += 1;
            for &d in &task.deps {
                let dg: u32 = task_group[d];
                if dg != g && !groups[g as usize].deps.contains(&dg) {
                    groups[g as usize].deps.push(dg);
                }
            }
            task_group.push(g);
        }
        let mut task_outputs: HashMap<usize, Vec<u32>> = HashMap::new();
        let outputs = graph
            .outputs
            .iter()
            .enumerate()
            .map(|(o, out)| {
                for &t in &out.tasks {
                    task_outputs.entry(t).or_default().push(o as u32);
                }
                let name = out
                    .tasks
                    .first()
                    .map(|&t| graph.tasks[t].label.clone())
                    .unwrap_or_default();
                OutputProgress {
                    name,
                    blocks: out.tasks.len() as u64,
                    done: 0,
                }
            })
            .collect();
        let mut lanes: Vec<String> = (0..header.threads).map(|i| format!("worker {i}")).collect();
        lanes.extend(["gpu submit", "gpu upload", "gpu download", "network"].map(String::from));
        let meters = io_meters(graph);
        let mut io = Series::default();
        if !meters.is_empty() {
            let zero = IoSample {
                t_us: 0,
                io: IoCounters::default(),
                in_flight: 0,
            };
            io.push(zero, |_, b| b);
        }
        Monitor {
            began,
            header,
            lanes,
            task_group,
            task_outputs,
            meters,
            live: Mutex::new(Live {
                groups,
                outputs,
                spans: VecDeque::new(),
                spans_total: 0,
                aggregated: BTreeMap::new(),
                memory: Series::default(),
                io,
                finished: false,
            }),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_us(&self) -> u64 {
        self.began.elapsed().as_micros() as u64
    }

    fn us(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.began).as_micros() as u64
    }

    fn lane(&self, after_workers: usize) -> u32 {
        (self.header.threads + after_workers) as u32
    }

    /// Task `t` was handed to a worker.
    pub fn started(&self, t: usize) {
        let g = self.task_group[t] as usize;
        self.live().groups[g].running += 1;
    }

    /// Task `t` ended (`ok`: with a result). Its span goes on its worker's lane, or on the
    /// device submission lane when it ran on the device.
    #[allow(clippy::too_many_arguments)]
    pub fn finished(
        &self,
        graph: &TaskGraph,
        t: usize,
        ok: bool,
        start_us: u64,
        end_us: u64,
        thread: usize,
        device: bool,
    ) {
        let g = self.task_group[t];
        let task = &graph.tasks[t];
        let lane = if device {
            self.lane(LANE_SUBMIT)
        } else {
            thread.min(self.header.threads.saturating_sub(1)) as u32
        };
        let span = Span {
            lane,
            kind: task.kind.name(),
            group: Some(g),
            start_us,
            end_us,
            bytes: task.out_bytes,
            what: format!("{} block {:?}", task.label, task.block),
        };
        let mut live = self.live();
        let group = &mut live.groups[g as usize];
        group.running = group.running.saturating_sub(1);
        if ok {
            group.done += 1;
            if let Some(outs) = self.task_outputs.get(&t) {
                for &o in outs {
                    live.outputs[o as usize].done += 1;
                }
            }
        }
        live.push_span(span);
    }

    /// The bytes held changed.
    pub fn memory(&self, host: u64, device: u64) {
        let t_us = self.now_us();
        self.live()
            .memory
            .push(MemorySample { t_us, host, device }, |a, b| MemorySample {
                t_us: b.t_us,
                host: a.host.max(b.host),
                device: a.device.max(b.device),
            });
    }

    /// Takes what the stores and the backend recorded since the last call: an I/O sample,
    /// the finished requests, the device copies.
    pub fn poll(&self, backend: Option<&dyn Backend>) {
        let mut io = IoCounters::default();
        let mut in_flight = 0;
        let mut requests: Vec<RequestSpan> = Vec::new();
        for (meter, before) in &self.meters {
            io = io.plus(&meter.counters().since(before));
            in_flight += meter.in_flight();
            requests.extend(meter.take_requests());
        }
        let transfers: Vec<TransferSpan> = backend.map(|b| b.take_transfer_spans()).unwrap_or_default();
        let t_us = self.now_us();
        let mut live = self.live();
        if !self.meters.is_empty() {
            live.io.push(IoSample { t_us, io, in_flight }, |_, b| b);
        }
        for r in requests {
            let range = if r.range.end > r.range.start {
                format!(" bytes {}..{}", r.range.start, r.range.end)
            } else {
                String::new()
            };
            live.push_span(Span {
                lane: self.lane(LANE_NETWORK),
                kind: r.outcome,
                group: None,
                start_us: self.us(r.start),
                end_us: self.us(r.end),
                bytes: r.bytes,
                what: format!("{}{range}", r.url),
            });
        }
        for x in transfers {
            let (lane, kind) = if x.upload {
                (LANE_UPLOAD, "upload")
            } else {
                (LANE_DOWNLOAD, "download")
            };
            live.push_span(Span {
                lane: self.lane(lane),
                kind,
                group: None,
                start_us: self.us(x.start),
                end_us: self.us(x.end),
                bytes: x.bytes,
                what: format!("{} bytes", x.bytes),
            });
        }
    }

    /// The I/O counters since the run began.
    pub fn io_since_start(&self) -> IoCounters {
        self.meters.iter().fold(IoCounters::default(), |sum, (m, before)| {
            sum.plus(&m.counters().since(before))
        })
    }

    /// Marks the run ended.
    pub fn finish(&self) {
        self.live().finished = true;
    }

    /// Everything so far, with the spans after the first `spans_seen` (all when 0, or when
    /// those have been dropped already). Costs a copy of the series and of the spans given.
    pub fn snapshot(&self, spans_seen: u64) -> Timeline {
        let now_us = self.now_us();
        let live = self.live();
        let kept_from = live.spans_total - live.spans.len() as u64;
        let skip = spans_seen.saturating_sub(kept_from).min(live.spans.len() as u64) as usize;
        Timeline {
            header: self.header.clone(),
            lanes: self.lanes.clone(),
            groups: live.groups.clone(),
            outputs: live.outputs.clone(),
            spans: live.spans.iter().skip(skip).cloned().collect(),
            spans_total: live.spans_total,
            aggregated: live.aggregated.values().cloned().collect(),
            memory: live.memory.points.clone(),
            io: live.io.points.clone(),
            now_us,
            finished: live.finished,
        }
    }

    /// How long since the run began.
    pub fn elapsed(&self) -> Duration {
        self.began.elapsed()
    }
}

/// The distinct stores `graph`'s sources read through, with their counters now.
pub(super) fn io_meters(graph: &TaskGraph) -> Vec<(Arc<dyn IoMeter>, IoCounters)> {
    let mut meters: Vec<(Arc<dyn IoMeter>, IoCounters)> = Vec::new();
    for task in &graph.tasks {
        let TaskKind::Source { source, .. } = &task.kind else {
            continue;
        };
        let Some(meter) = source.io_meter() else {
            continue;
        };
        let known = meters
            .iter()
            .any(|(m, _)| std::ptr::addr_eq(Arc::as_ptr(m), Arc::as_ptr(&meter)));
        if !known {
            // Requests of earlier runs are not this run's.
            let _ = meter.take_requests();
            let now = meter.counters();
            meters.push((meter, now));
        }
    }
    meters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_series_halves_and_keeps_its_peaks() {
        let mut s: Series<MemorySample> = Series::default();
        for i in 0..(SERIES_KEPT as u64 * 3) {
            let host = if i == 1001 { 999_999 } else { i % 7 };
            s.push(
                MemorySample {
                    t_us: i,
                    host,
                    device: 0,
                },
                |a, b| MemorySample {
                    t_us: b.t_us,
                    host: a.host.max(b.host),
                    device: 0,
                },
            );
        }
        assert!(s.points.len() <= SERIES_KEPT);
        assert!(s.points.iter().any(|p| p.host == 999_999), "the peak survives halving");
        assert!(s.points.windows(2).all(|w| w[0].t_us < w[1].t_us));
        assert_eq!(s.points.last().unwrap().t_us, SERIES_KEPT as u64 * 3 - 1);
    }

    #[test]
    fn a_million_spans_and_samples_stay_bounded() {
        let mut live = Live::default();
        for i in 0..1_000_000u64 {
            live.push_span(Span {
                lane: (i % 3) as u32,
                kind: if i % 2 == 0 { "fused" } else { "source" },
                group: Some(0),
                start_us: i,
                end_us: i + 1,
                bytes: 1,
                what: String::new(),
            });
            live.memory.push(
                MemorySample {
                    t_us: i,
                    host: i,
                    device: 0,
                },
                |a, b| MemorySample {
                    t_us: b.t_us,
                    host: a.host.max(b.host),
                    device: 0,
                },
            );
        }
        assert_eq!(live.spans.len(), SPANS_KEPT);
        assert!(live.memory.points.len() <= SERIES_KEPT);
        assert_eq!(live.aggregated.len(), 6, "one total per lane and kind");
        let counted: u64 = live.aggregated.values().map(|t| t.count).sum::<u64>() + SPANS_KEPT as u64;
        assert_eq!(counted, 1_000_000);
    }

    #[test]
    fn old_spans_are_summed_per_lane_and_kind() {
        let mut live = Live::default();
        let n = SPANS_KEPT as u64 + 10;
        for i in 0..n {
            live.push_span(Span {
                lane: (i % 2) as u32,
                kind: "fused",
                group: Some(0),
                start_us: i,
                end_us: i + 3,
                bytes: 5,
                what: String::new(),
            });
        }
        assert_eq!(live.spans.len(), SPANS_KEPT);
        assert_eq!(live.spans_total, n);
        let summed: u64 = live.aggregated.values().map(|t| t.count).sum();
        assert_eq!(summed, 10);
        assert_eq!(live.aggregated.values().map(|t| t.busy_us).sum::<u64>(), 30);
        assert_eq!(live.spans.front().unwrap().start_us, 10, "the oldest ten went");
    }
}
