//! The run loop: a priority-ordered ready queue, a byte budget, a rayon pool.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::IsTerminal;
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ndarray::ArrayViewMutD;

use super::dashboard::DashboardServer;
use super::release::{fix_thresholds, release_free_pages, FreedMemory};
use super::{ComputeOptions, ExecError, ExecReport, Monitor, Progress, RunHeader, TaskRecord};
use crate::backend::{Backend, BackendError, Placement, ResultMemory, Value};
use crate::expr::Block;
use crate::plan::{TaskGraph, TaskKind};

/// Depth-first post-order from the outputs: a task's rank is when a single thread running the
/// graph depth-first would finish it. Running in this order finishes one output block before
/// starting the sources of the next, so memory streams instead of piling up. Output blocks
/// are visited by place (their start on the last two axes, y then x), every output's block at
/// a place before the next place: outputs that read the same source tiles (the bands of one
/// stack) consume them together, and each tile is freed before the next is read.
fn priorities(graph: &TaskGraph) -> Vec<usize> {
    let n = graph.tasks.len();
    let mut rank = vec![usize::MAX; n];
    let mut next = 0;
    let mut stack: Vec<(usize, bool)> = Vec::new();
    let mut order: Vec<((usize, usize), usize, usize)> = Vec::new();
    for (o, out) in graph.outputs.iter().enumerate() {
        let per_axis = out.grid.blocks_per_axis();
        let nd = per_axis.len();
        for (b, &root) in out.tasks.iter().enumerate() {
            let region = out.grid.region(&crate::expr::unravel(b, &per_axis));
            let start = |k: usize| if nd >= k { region[nd - k].start } else { 0 };
            order.push(((start(2), start(1)), o, root));
        }
    }
    // stable: blocks at one place keep output order, then C order within an output
    order.sort_by_key(|&(place, o, _)| (place, o));
    for (_, _, root) in order {
        stack.push((root, false));
        while let Some((t, expanded)) = stack.pop() {
            if rank[t] != usize::MAX {
                continue;
            }
            if expanded {
                rank[t] = next;
                next += 1;
                continue;
            }
            stack.push((t, true));
            for &d in graph.tasks[t].deps.iter().rev() {
                if rank[d] == usize::MAX {
                    stack.push((d, false));
                }
            }
        }
    }
    rank
}

fn describe(graph: &TaskGraph, t: usize) -> String {
    let task = &graph.tasks[t];
    format!("#{t} {} ({}) block {:?}", task.label, task.kind.name(), task.block)
}

/// Waits for the next message, at most `patience` when given (`None` after that). On a rayon
/// worker (a `compute` nested in parallel code) it keeps running pool work while it waits, so
/// a pool whose workers all wait still progresses.
fn next_message(rx: &mpsc::Receiver<Msg>, patience: Option<Duration>) -> Option<Msg> {
    let began = Instant::now();
    if rayon::current_thread_index().is_none() {
        return match patience {
            None => Some(rx.recv().expect("a running task reports")),
            Some(p) => rx.recv_timeout(p).ok(),
        };
    }
    loop {
        match rx.try_recv() {
            Ok(msg) => return Some(msg),
            Err(mpsc::TryRecvError::Empty) => {
                if patience.is_some_and(|p| began.elapsed() >= p) {
                    return None;
                }
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    std::thread::yield_now();
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => unreachable!("the sender lives in this function's caller"),
        }
    }
}

/// What workers and the device tell the run loop.
enum Msg {
    /// a task finished
    Done(Done),
    /// a device value's host copy can be read without waiting
    HostReady(usize),
    /// a device value was brought to the host (into its host copy, or straight into its
    /// output's destination when `direct`)
    Fetched {
        task: usize,
        direct: bool,
        result: Result<(), ExecError>,
    },
}

struct Done {
    task: usize,
    /// the value, or `None` when it went straight to the output sink
    result: Result<Option<Value>, ExecError>,
    start_us: u64,
    end_us: u64,
    thread: usize,
    placement: Placement,
}

/// Where finished output blocks go.
///
/// An output block that nothing else reads is written straight into [`OutputSink::direct`]'s
/// view by the worker that computes it, when the sink offers one; otherwise the block is handed
/// to [`OutputSink::accept`] on the scheduling thread.
pub trait OutputSink: Sync {
    /// A view to write block `block` of output `output` into (its shape), or `None`. The
    /// executor asks for each block at most once.
    fn direct(&self, output: usize, block: usize) -> Option<ArrayViewMutD<'_, MaybeUninit<f32>>>;

    /// What memory [`OutputSink::direct`]'s views lie in.
    fn memory(&self) -> ResultMemory {
        ResultMemory::Reused
    }

    /// Takes a finished output block that was not written directly.
    fn accept(&self, output: usize, block: usize, value: Block);
}

/// Runs `graph` with `backend`, handing every finished output block to `sink` as soon as it
/// is ready.
///
/// Costs a few microseconds of scheduling per task beyond the task itself.
///
/// **Errors**: [`ExecError::Setting`] before anything runs when a strata environment variable
/// does not parse; [`ExecError::BudgetTooSmall`] before anything runs when one task cannot fit;
/// the first failing or panicking task otherwise (tasks already running are let finish; those
/// handed to the pool but not begun skip their work, and fetches started ahead for them are
/// cancelled with their [`Prefetch`](crate::expr::Prefetch) tickets; none are started after).
pub fn execute(
    graph: &TaskGraph,
    backend: &dyn Backend,
    options: &ComputeOptions,
    sink: &dyn OutputSink,
) -> Result<ExecReport, ExecError> {
    crate::settings::check()?;
    let threads = options
        .threads
        .filter(|&t| t > 0)
        .unwrap_or_else(rayon::current_num_threads);
    let budget = options
        .memory_budget
        .unwrap_or_else(|| super::options::default_budget(graph, threads, options));
    for t in 0..graph.tasks.len() {
        let needed = graph.task_need(t);
        if needed > budget {
            return Err(ExecError::BudgetTooSmall {
                task: describe(graph, t),
                needed,
                budget,
            });
        }
    }
    // The placement pass: where every task is planned to run on this backend.
    let planned = graph.place(&backend.name(), &|kind, inputs| backend.place(kind, inputs));
    let planned = planned.tasks();
    fix_thresholds();
    // The run loop blocks on a channel, so it runs on the calling thread and only the tasks go
    // to the pool (a loop inside a one-thread pool would starve its own tasks).
    let report = match options.threads {
        Some(threads) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| ExecError::ThreadPool {
                    threads,
                    message: e.to_string(),
                })?;
            let threads = pool.current_num_threads();
            pool.in_place_scope(|scope| run(graph, planned, backend, options, budget, sink, scope, threads))
        }
        None => rayon::in_place_scope(|scope| {
            run(
                graph,
                planned,
                backend,
                options,
                budget,
                sink,
                scope,
                rayon::current_num_threads(),
            )
        }),
    };
    // what the last blocks were freed into, too (the next allocations on the calling thread
    // would otherwise grow the process further)
    release_free_pages();
    report
}

/// How long the run loop waits before looking again while it holds device tasks back
/// (submitted work drains by itself, without telling the loop).
const DEVICE_PATIENCE: Duration = Duration::from_micros(200);

/// How often the run loop takes the stores' and the device's records for the timeline.
const MONITOR_POLL: Duration = Duration::from_millis(25);

#[allow(clippy::too_many_arguments)]
fn run<'s>(
    graph: &'s TaskGraph,
    planned: &[Placement],
    backend: &'s dyn Backend,
    options: &ComputeOptions,
    budget: u64,
    sink: &'s dyn OutputSink,
    scope: &rayon::Scope<'s>,
    threads: usize,
) -> Result<ExecReport, ExecError> {
    let n = graph.tasks.len();
    let mut waiting: Vec<usize> = graph.tasks.iter().map(|t| t.deps.len()).collect();
    let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut refs = vec![0usize; n];
    for (i, t) in graph.tasks.iter().enumerate() {
        for &d in &t.deps {
            consumers[d].push(i);
            refs[d] += 1;
        }
    }
    // Output slots: (output, block number) for every task that is an output block.
    let mut slots: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (o, out) in graph.outputs.iter().enumerate() {
        for (b, &t) in out.tasks.iter().enumerate() {
            slots[t].push((o, b));
            refs[t] += 1;
        }
    }
    // Output blocks that are fills nothing reads (a resample's empty months) cost only the
    // memory they fill: they go last, and start only once every other task has ended, when
    // the run has given its working memory back.
    let deferred: Vec<bool> = (0..n)
        .map(|t| {
            let task = &graph.tasks[t];
            task.deps.is_empty() && consumers[t].is_empty() && matches!(task.kind, TaskKind::Fill { .. })
        })
        .collect();
    let rank: Vec<usize> = priorities(graph)
        .into_iter()
        .zip(&deferred)
        .map(|(r, &d)| if d { r.saturating_add(n) } else { r })
        .collect();
    // tasks other than the deferred fills still to finish
    let mut others_left = deferred.iter().filter(|&&d| !d).count();
    // whether the fills still wait for the working memory to go back
    let mut fills_wait = deferred.iter().any(|&d| d);
    let mut ready: BinaryHeap<Reverse<(usize, usize)>> = (0..n)
        .filter(|&t| waiting[t] == 0)
        .map(|t| Reverse((rank[t], t)))
        .collect();
    let mut values: Vec<Option<Arc<Value>>> = vec![None; n];
    let mut report = ExecReport {
        backend: backend.name(),
        adapter: backend.adapter(),
        threads,
        memory_budget: budget,
        ..Default::default()
    };
    let bar = (options.progress == Progress::Auto && std::io::stderr().is_terminal() && n > 1).then(|| {
        let bar = indicatif::ProgressBar::new(n as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:40} {pos}/{len} tasks ({per_sec}, eta {eta})",
            )
            .expect("valid template"),
        );
        bar
    });
    let profile_before = backend.device_profile();
    let began = Instant::now();
    let header = RunHeader {
        // The adapter says the rest of what a GPU backend's name says.
        backend: if backend.adapter().is_some() {
            "gpu".into()
        } else {
            backend.name()
        },
        adapter: backend
            .adapter()
            .map(|a| format!("{}, {}, {}", a.name, a.backend, a.driver)),
        threads,
        memory_budget: budget,
        ..Default::default()
    };
    let monitor = Arc::new(Monitor::new(graph, header, began));
    let record = options.timeline || options.dashboard.is_some();
    let server = match &options.dashboard {
        Some(d) => Some(DashboardServer::start(d, monitor.clone())?),
        None => None,
    };
    let mut last_poll = began;
    let max_in_flight = threads * (1 + options.lookahead.max(1));
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut held: u64 = 0;
    let mut in_flight = 0usize;
    let mut finished = 0usize;
    let mut failure: Option<ExecError> = None;
    // Host copies of device values: asked for (and not yet delivered), and the tasks parked
    // until theirs arrive (with how many each still misses).
    let mut host_asked = vec![false; n];
    let mut transfers = 0usize;
    let mut parked_on: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut missing = vec![0usize; n];
    // Set once the run failed (from `failure`, at the top of each turn): tasks already handed
    // to the pool skip their work, and their prefetch tickets cancel the fetches never read.
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Fetches started ahead, held until their task ends (dropped with the run otherwise).
    let mut prefetched: Vec<Option<crate::expr::Prefetch>> = (0..n).map(|_| None).collect();
    // Bytes reserved for reads whose fetch has started, until their task ends.
    let mut read_ahead = 0u64;
    // Output blocks whose value is on a device: delivered once brought over.
    let mut deliver = vec![false; n];

    // Asks for the host copy of task `d`'s device value; `HostReady(d)` follows.
    let ask_host = |d: usize, value: &Value, host_asked: &mut [bool], transfers: &mut usize| {
        if let Value::Device(block) = value {
            if !host_asked[d] {
                host_asked[d] = true;
                *transfers += 1;
                let tx = tx.clone();
                block.request_host(Box::new(move || {
                    let _ = tx.send(Msg::HostReady(d));
                }));
            }
        }
    };

    if let Some(control) = &options.control {
        control.planned(n as u64);
    }
    let mut slack = FreedMemory::default();
    loop {
        if fills_wait && others_left == 0 {
            // What the last tasks freed goes back before the fills touch their pages, so the
            // fills' pages replace it instead of adding to it.
            release_free_pages();
            fills_wait = false;
        }
        slack.observe(held);
        if failure.is_none() && options.control.as_ref().is_some_and(|c| c.is_interrupted()) {
            failure = Some(ExecError::Interrupted { finished, total: n });
        }
        // Any failure so far stops the tasks already handed to the pool.
        if failure.is_some() {
            stopped.store(true, std::sync::atomic::Ordering::Release);
        }
        // Start what fits, in priority order.
        let mut hold_device = false;
        while failure.is_none() {
            let Some(&Reverse((_, t))) = ready.peek() else {
                break;
            };
            if deferred[t] && others_left > 0 {
                break; // the fills wait for the rest (they are last in priority order)
            }
            let task = &graph.tasks[t];
            // Remote reads may run further ahead, while half the budget is free: they
            // mostly wait on the network, and their fetches start when they are admitted
            // (see `prefetch` below). Everything else keeps the tight streaming order.
            let cost = task.out_bytes + task.scratch_bytes;
            let ahead = matches!(&task.kind, TaskKind::Source { source, .. } if source.waits_on_io())
                && held + cost <= budget / 2;
            if in_flight >= max_in_flight + if ahead { options.io_lookahead } else { 0 } {
                break;
            }
            if held + cost > budget {
                if in_flight > 0 || transfers > 0 {
                    break;
                }
                report.over_budget_starts += 1;
            }
            let inputs: Vec<Arc<Value>> = task
                .deps
                .iter()
                .map(|&d| values[d].clone().expect("dep finished"))
                .collect();
            // The plan's placement, checked against the values that arrived (a source may have
            // handed over decoded values where the plan expected stored codes on the device).
            let placement = {
                let refs: Vec<&Value> = inputs.iter().map(|v| v.as_ref()).collect();
                backend.placement(&task.kind, &refs)
            };

            if placement.device && backend.saturated() && in_flight > 0 {
                // The device has as much queued as its budget allows: wait for it to drain.
                hold_device = true;
                break;
            }
            ready.pop();
            if !placement.device {
                // A host task reads device inputs only once they are on the host: ask, park.
                let mut lacking = 0;
                for (&d, v) in task.deps.iter().zip(&inputs) {
                    if let Value::Device(block) = v.as_ref() {
                        if !block.host_ready() {
                            ask_host(d, v, &mut host_asked, &mut transfers);
                            if !parked_on[d].contains(&t) {
                                parked_on[d].push(t);
                                lacking += 1;
                            }
                        }
                    }
                }
                if lacking > 0 {
                    missing[t] = lacking;
                    continue;
                }
            }
            if let TaskKind::Source { source, region } = &task.kind {
                // Queued behind running tasks: let its fetch start now. The ticket lives until
                // the task ends; a fetch never read (a failed run) is cancelled with it.
                prefetched[t] = Some(source.prefetch(region));
                read_ahead += task.out_bytes;
                report.peak_read_ahead_bytes = report.peak_read_ahead_bytes.max(read_ahead);
            }
            held += cost;
            report.peak_bytes = report.peak_bytes.max(held);
            in_flight += 1;
            if record {
                monitor.started(t);
            }
            let tx = tx.clone();
            // An output block nothing else reads is written straight into the sink: by its
            // worker on the host; by a later fetch when it comes from a device.
            let direct = match (slots[t].as_slice(), consumers[t].is_empty()) {
                (&[(o, b)], true) if !placement.device => Some((o, b)),
                _ => None,
            };
            let stopped = stopped.clone();
            scope.spawn(move |_| {
                let start_us = began.elapsed().as_micros() as u64;
                let refs: Vec<&Value> = inputs.iter().map(|v| v.as_ref()).collect();
                let work = || match direct.and_then(|(o, b)| sink.direct(o, b)) {
                    Some(dst) => backend.run_into(&task.kind, &refs, dst, sink.memory()).map(|()| None),
                    None => backend.run(&task.kind, &refs).map(Some),
                };
                let result = if stopped.load(std::sync::atomic::Ordering::Acquire) {
                    Err(ExecError::Cancelled {
                        task: describe(graph, t),
                    })
                } else {
                    match catch_unwind(AssertUnwindSafe(work)) {
                        Ok(Ok(v)) => Ok(v),
                        Ok(Err(e)) => Err(ExecError::Task {
                            task: describe(graph, t),
                            source: e,
                        }),
                        Err(p) => Err(ExecError::Panicked {
                            task: describe(graph, t),
                            message: panic_message(p),
                        }),
                    }
                };
                drop(inputs);
                let end_us = began.elapsed().as_micros() as u64;
                let thread = rayon::current_thread_index().unwrap_or(0);
                let _ = tx.send(Msg::Done(Done {
                    task: t,
                    result,
                    start_us,
                    end_us,
                    thread,
                    placement,
                }));
            });
        }
        if in_flight == 0 && transfers == 0 && !hold_device {
            // Nothing running and nothing startable: done, or stopped by a failure.
            break;
        }
        if record {
            monitor.memory(held, backend.device_resident().unwrap_or(0));
            if last_poll.elapsed() >= MONITOR_POLL {
                last_poll = Instant::now();
                monitor.poll(Some(backend));
            }
        }
        // With a control, wake up now and then to see an interrupt while tasks run.
        let patience = match (hold_device, &options.control) {
            (true, _) => Some(DEVICE_PATIENCE),
            (false, Some(_)) => Some(super::RunControl::POLL),
            (false, None) => None,
        };
        let Some(msg) = next_message(&rx, patience) else {
            continue;
        };
        match msg {
            Msg::Done(done) => {
                in_flight -= 1;
                finished += 1;
                let t = done.task;
                let task = &graph.tasks[t];
                if !deferred[t] {
                    others_left -= 1;
                }
                if prefetched[t].take().is_some() {
                    read_ahead -= task.out_bytes;
                }
                held -= task.scratch_bytes;
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                if let Some(control) = &options.control {
                    control.finished_one();
                }
                if record {
                    let ok = done.result.is_ok();
                    let device = done.placement.device;
                    monitor.finished(graph, t, ok, done.start_us, done.end_us, done.thread, device);
                }
                let value = match done.result {
                    Ok(v) => v,
                    Err(e) => {
                        failure.get_or_insert(e);
                        held -= task.out_bytes;
                        continue;
                    }
                };
                report.tasks.push(TaskRecord {
                    id: t,
                    kind: task.kind.name(),
                    label: task.label.clone(),
                    block: task.block.clone(),
                    start_us: done.start_us,
                    end_us: done.end_us,
                    thread: done.thread,
                    bytes_in: task.deps.iter().map(|&d| graph.tasks[d].out_bytes).sum(),
                    bytes_out: task.out_bytes,
                    device: done.placement.device,
                    planned_device: planned[t].device,
                    placement: done.placement.reason,
                });
                // once per task, where it ran (not per look at the ready queue)
                if done.placement.device != planned[t].device {
                    report.placement_changes += 1;
                }
                // Inputs whose last consumer this was are freed.
                for &d in &task.deps {
                    refs[d] -= 1;
                    if refs[d] == 0 {
                        values[d] = None;
                        held -= graph.tasks[d].out_bytes;
                    }
                }
                let value = value.map(Arc::new);
                match &value {
                    Some(v) if matches!(v.as_ref(), Value::Device(_)) => {
                        let Value::Device(block) = v.as_ref() else {
                            unreachable!()
                        };
                        // Outputs, and results beyond the device budget, come to the host.
                        if !slots[t].is_empty() || !block.within_budget() {
                            deliver[t] = !slots[t].is_empty();
                            ask_host(t, v, &mut host_asked, &mut transfers);
                        }
                    }
                    Some(v) => {
                        for &(o, b) in &slots[t] {
                            match v.to_block(task.kind.name()) {
                                Ok(block) => sink.accept(o, b, block.clone()),
                                Err(e) => {
                                    failure.get_or_insert(ExecError::Task {
                                        task: describe(graph, t),
                                        source: e,
                                    });
                                }
                            }
                            refs[t] -= 1;
                        }
                    }
                    None => refs[t] -= slots[t].len(),
                }
                match value {
                    Some(value) if refs[t] > 0 => values[t] = Some(value),
                    _ => held -= task.out_bytes,
                }
                for &c in &consumers[t] {
                    waiting[c] -= 1;
                    if waiting[c] == 0 {
                        ready.push(Reverse((rank[c], c)));
                    }
                }
            }
            Msg::HostReady(t) => {
                // Copy it out on a worker: into the output's destination when that is its
                // only use, else into the value's host copy.
                let Some(value) = values[t].clone() else {
                    transfers -= 1;
                    continue;
                };
                let direct = match (slots[t].as_slice(), consumers[t].is_empty(), deliver[t]) {
                    (&[(o, b)], true, true) => Some((o, b)),
                    _ => None,
                };
                let tx = tx.clone();
                let name = graph.tasks[t].kind.name();
                scope.spawn(move |_| {
                    let Value::Device(block) = value.as_ref() else {
                        let _ = tx.send(Msg::Fetched {
                            task: t,
                            direct: false,
                            result: Ok(()),
                        });
                        return;
                    };
                    let copy = || match direct.and_then(|(o, b)| sink.direct(o, b)) {
                        Some(dst) => block.read_into(dst).map(|()| true),
                        None => block.host().map(|_| false),
                    };
                    // A panic here must still answer: the run loop waits for every Fetched.
                    let (direct, result) = match catch_unwind(AssertUnwindSafe(copy)) {
                        Ok(Ok(direct)) => (direct, Ok(())),
                        Ok(Err(e)) => (
                            false,
                            Err(ExecError::Task {
                                task: describe(graph, t),
                                source: BackendError::Gpu {
                                    task: name,
                                    during: "bringing a result to the host",
                                    source: e,
                                },
                            }),
                        ),
                        Err(p) => (
                            false,
                            Err(ExecError::Panicked {
                                task: describe(graph, t),
                                message: panic_message(p),
                            }),
                        ),
                    };
                    let _ = tx.send(Msg::Fetched {
                        task: t,
                        direct,
                        result,
                    });
                });
            }
            Msg::Fetched {
                task: t,
                direct,
                result,
            } => {
                transfers -= 1;
                if let Err(e) = result {
                    failure.get_or_insert(e);
                    continue;
                }
                let name = graph.tasks[t].kind.name();
                if let Some(value) = values[t].clone() {
                    // A result beyond the device budget lives on as its host copy, freeing
                    // its device memory.
                    if let Value::Device(block) = value.as_ref() {
                        if !block.within_budget() && !direct {
                            if let Ok(host) = block.host() {
                                values[t] = Some(Arc::new(Value::Block(host.clone())));
                            }
                        }
                    }
                    if deliver[t] {
                        deliver[t] = false;
                        for &(o, b) in &slots[t] {
                            if !direct {
                                match value.to_block(name) {
                                    Ok(block) => sink.accept(o, b, block.clone()),
                                    Err(e) => {
                                        failure.get_or_insert(ExecError::Task {
                                            task: describe(graph, t),
                                            source: e,
                                        });
                                    }
                                }
                            }
                            refs[t] -= 1;
                        }
                        if refs[t] == 0 {
                            values[t] = None;
                            held -= graph.tasks[t].out_bytes;
                        }
                    }
                }
                // Tasks parked on this value may now start.
                for c in std::mem::take(&mut parked_on[t]) {
                    missing[c] -= 1;
                    if missing[c] == 0 {
                        ready.push(Reverse((rank[c], c)));
                    }
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if failure.is_none() && finished < n {
        failure = Some(ExecError::Stalled { finished, total: n });
    }
    report.wall_us = began.elapsed().as_micros() as u64;
    report.device_profile = profile_before.zip(backend.device_profile()).map(|(b, a)| a.since(&b));
    report.io = monitor.io_since_start();
    report.task_us = report.tasks.iter().map(|t| t.end_us.saturating_sub(t.start_us)).sum();
    report.peak_rss_bytes = super::report::peak_resident_bytes();
    if record {
        monitor.poll(Some(backend));
        monitor.memory(held, backend.device_resident().unwrap_or(0));
        monitor.finish();
        report.timeline = monitor.snapshot(0);
    }
    // Pages get the finished state before the server goes.
    drop(server);
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The message of a caught panic.
fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}
