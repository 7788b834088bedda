//! The execution report: what ran, where, when, and how much memory it held.

use serde::Serialize;

use super::Timeline;
use crate::expr::IoCounters;

/// One task's run.
#[derive(Debug, Clone, Serialize)]
pub struct TaskRecord {
    /// task number in the graph
    pub id: usize,
    /// task kind (`fused`, `gather`, `median`, ...)
    pub kind: &'static str,
    /// the expression operation it belongs to
    pub label: String,
    /// block index
    pub block: Vec<usize>,
    /// start, microseconds since the run began
    pub start_us: u64,
    /// end, microseconds since the run began
    pub end_us: u64,
    /// rayon worker index
    pub thread: usize,
    /// bytes of its inputs
    pub bytes_in: u64,
    /// bytes of its result
    pub bytes_out: u64,
    /// whether it ran on the backend's device (else on the host)
    pub device: bool,
    /// whether the plan's placement pass put it on the device
    pub planned_device: bool,
    /// why it ran where it did
    pub placement: &'static str,
}

/// What one run of a task graph did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ExecReport {
    /// backend name
    pub backend: String,
    /// the GPU adapter tasks ran on (name, backend, type, driver, binding limits), if any
    pub adapter: Option<crate::backend::gpu::AdapterReport>,
    /// the device's own time by kernel during the run, when device profiling was on
    /// (`STRATA_GPU_PROFILE=1`; work another run put on the same device meanwhile counts too)
    pub device_profile: Option<crate::backend::gpu::DeviceProfile>,
    /// worker threads
    pub threads: usize,
    /// memory budget in bytes
    pub memory_budget: u64,
    /// most bytes held at once by intermediate results and reservations
    pub peak_bytes: u64,
    /// most bytes reserved at once for source reads whose fetch had started (fetches begin
    /// when a read is admitted, ahead of the thread that decodes it); part of `peak_bytes`,
    /// so reads in flight count against the budget
    pub peak_read_ahead_bytes: u64,
    /// tasks that ran elsewhere than the placement pass planned, because the values that
    /// arrived differed from the plan's (a source handing over decoded values instead of
    /// stored codes): 0 when the plan held
    pub placement_changes: usize,
    /// tasks started although the budget was full, because nothing else could make progress
    pub over_budget_starts: usize,
    /// wall time of the run in microseconds
    pub wall_us: u64,
    /// the tasks' times summed, in microseconds: `io.wait_us` of it was spent waiting on reads,
    /// the rest computing (reads admitted ahead run beside the workers, so this can pass
    /// `wall_us` × threads)
    pub task_us: u64,
    /// the process's peak resident memory when the run ended (Linux's VmHWM: the largest it
    /// has been since the process started, this run and whatever came before), where the OS
    /// tells it; `peak_bytes` is what the scheduler held
    pub peak_rss_bytes: Option<u64>,
    /// remote reads during the run: requests, bytes, retries by cause, timeouts, hedges
    /// (summed over the stores the graph's sources read through; a store another run uses at
    /// the same time counts that run's requests too)
    pub io: IoCounters,
    /// every task, in completion order
    pub tasks: Vec<TaskRecord>,
    /// what the dashboard draws: spans by lane, memory and I/O over time, progress by
    /// operation (empty when `ComputeOptions::timeline` was off)
    pub timeline: Timeline,
}

impl ExecReport {
    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises")
    }

    /// The run's dashboard as one self-contained HTML page (progress, task stream, memory,
    /// I/O, graph), drawn from [`timeline`](Self::timeline); opens offline.
    pub fn to_html(&self) -> String {
        super::report_html(self)
    }
}

/// The process's peak resident set in bytes (`VmHWM` in `/proc/self/status`), where the OS
/// tells it. Costs one small file read.
pub(crate) fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
