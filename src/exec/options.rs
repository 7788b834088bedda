//! What a caller can set for one `compute`.

/// Whether to draw a progress bar on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// draw it when stderr is a terminal
    #[default]
    Auto,
    /// never draw it
    Off,
}

/// Settings for running a computation.
#[derive(Debug, Clone)]
pub struct ComputeOptions {
    /// Bytes the executor may hold at once for intermediate blocks (not counting the result
    /// being assembled). `None` (the default, unless `STRATA_MEMORY_BUDGET` is set) chooses it
    /// per run from what the run's parallelism can use: [`default_budget`].
    pub memory_budget: Option<u64>,
    /// Worker threads; `None` uses rayon's global pool (all cores).
    pub threads: Option<usize>,
    /// Progress bar on stderr.
    pub progress: Progress,
    /// Partials merged per combine step of a tree reduction (dask's `split_every`).
    pub split_every: usize,
    /// Most bytes one block of a median may hold (the planner cuts the other axes to fit).
    pub max_holistic_block: u64,
    /// Tasks allowed in flight per thread beyond the one it runs (keeps the order streaming).
    pub lookahead: usize,
    /// Remote source reads (see `ChunkSource::waits_on_io`) allowed in flight beyond that
    /// while at most half the budget is held, so fetches (which start when a read is admitted)
    /// hide network latency; each still holds its block's bytes of the budget.
    pub io_lookahead: usize,
    /// Where tasks run. Default: `STRATA_BACKEND` (`auto`, `gpu`, `cpu`), else `Auto`.
    pub backend: crate::backend::gpu::BackendChoice,
    /// Serve a live dashboard of the run on this address while it runs. Default:
    /// `STRATA_DASHBOARD` (e.g. `127.0.0.1:8787`), else none.
    pub dashboard: Option<super::Dashboard>,
    /// Record the run's timeline (task spans, memory and I/O over time) into
    /// [`ExecReport::timeline`](super::ExecReport::timeline), what the dashboard and
    /// `report.html` draw. Costs a lock and a push per task. Default: true unless
    /// `STRATA_TIMELINE=0`; a dashboard records it whatever this says.
    pub timeline: bool,
    /// A handle another thread holds to watch the run's progress and to interrupt it (what a
    /// notebook's progress bar and Ctrl-C use). Default: none.
    pub control: Option<RunControl>,
    /// Run the optimizer's rewrite passes (selection pushdown) before lowering. Default: true;
    /// false plans the expression as written, for comparing plans (`STRATA_OPTIMIZE=0`).
    pub optimize: bool,
}

/// A handle on a running computation, shared with the thread that runs it: the tasks done and
/// planned so far, and a request to stop. Cloning shares it; all reads and writes are atomic
/// loads and stores, free.
///
/// An interrupted run starts no more tasks, lets the ones running end (their prefetches are
/// cancelled), and returns [`ExecError::Interrupted`](super::ExecError::Interrupted); outputs
/// written through a file method are then never left half-written (they are written after, or
/// atomically).
#[derive(Debug, Clone, Default)]
pub struct RunControl(std::sync::Arc<ControlState>);

#[derive(Debug, Default)]
struct ControlState {
    interrupted: std::sync::atomic::AtomicBool,
    done: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl RunControl {
    /// A fresh handle: nothing done, not interrupted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop; it does within one task's time (the scheduler looks at least
    /// every [`RunControl::POLL`]).
    pub fn interrupt(&self) {
        self.0.interrupted.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether [`RunControl::interrupt`] was called.
    pub fn is_interrupted(&self) -> bool {
        self.0.interrupted.load(std::sync::atomic::Ordering::Acquire)
    }

    /// `(tasks finished, tasks planned)` of the run so far (planned is 0 until it starts; a
    /// handle reused by several runs counts them all).
    pub fn progress(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Acquire;
        (self.0.done.load(Acquire), self.0.total.load(Acquire))
    }

    /// How often a run with a control looks at it while its tasks run.
    pub const POLL: std::time::Duration = std::time::Duration::from_millis(50);

    pub(crate) fn planned(&self, tasks: u64) {
        self.0.total.fetch_add(tasks, std::sync::atomic::Ordering::AcqRel);
    }

    pub(crate) fn finished_one(&self) {
        self.0.done.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Default for ComputeOptions {
    fn default() -> Self {
        // a value that does not parse is left to `settings::check`, which fails the run naming it
        let budget = crate::settings::bytes("STRATA_MEMORY_BUDGET").ok().flatten();
        ComputeOptions {
            memory_budget: budget,
            threads: None,
            progress: Progress::Auto,
            split_every: 8,
            max_holistic_block: 16 << 20,
            lookahead: 2,
            io_lookahead: 16,
            backend: crate::backend::gpu::BackendChoice::from_env(),
            dashboard: super::Dashboard::from_env(),
            timeline: crate::settings::flag("STRATA_TIMELINE").ok().flatten().unwrap_or(true),
            control: None,
            optimize: crate::settings::flag("STRATA_OPTIMIZE").ok().flatten().unwrap_or(true),
        }
    }
}

impl ComputeOptions {
    /// The defaults with another memory budget in bytes.
    pub fn with_budget(bytes: u64) -> Self {
        ComputeOptions {
            memory_budget: Some(bytes),
            ..Default::default()
        }
    }
}

/// The least default budget: small runs are never held back by the rule.
const MIN_DEFAULT_BUDGET: u64 = 64 << 20;

/// The memory budget a run of `graph` on `threads` workers gets when none is set: what its
/// parallelism can use, not what the machine has. Each of the `threads × (1 + lookahead)`
/// tasks allowed in flight may hold as much as the graph's largest task needs (its inputs,
/// output and scratch), and the remote reads allowed ahead (`io_lookahead`, admitted while
/// at most half the budget is held) their largest block each, twice over for that half;
/// then at least 64 MiB and at most half the machine's RAM. Costs one pass over the tasks.
pub fn default_budget(graph: &crate::plan::TaskGraph, threads: usize, options: &ComputeOptions) -> u64 {
    let tasks = graph.tasks();
    let need = (0..tasks.len()).map(|t| graph.task_need(t)).max().unwrap_or(0);
    let read = tasks
        .iter()
        .filter(|t| matches!(&t.kind, crate::plan::TaskKind::Source { source, .. } if source.waits_on_io()))
        .map(|t| t.out_bytes)
        .max()
        .unwrap_or(0);
    let slots = (threads.max(1) * (1 + options.lookahead.max(1))) as u64;
    let rule = need.saturating_mul(slots) + 2 * read * options.io_lookahead as u64;
    rule.max(MIN_DEFAULT_BUDGET).min(total_memory() / 2).max(need)
}

/// Total RAM from /proc/meminfo, or 8 GiB where that cannot be read.
pub(crate) fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kib| kib * 1024)
        .unwrap_or(8 << 30)
}
