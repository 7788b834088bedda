//! The scheduler: runs a [`TaskGraph`](crate::plan::TaskGraph) on a rayon pool under a memory
//! budget.
//!
//! Tasks start in a streaming order (a depth-first post-order from the outputs, as dask
//! orders its graphs), at most a few more than there are threads at once, and only while the
//! bytes held — results waiting for consumers, plus the output and scratch reserved by running
//! tasks — stay within the budget. A result is freed when its last consumer has run; finished
//! output blocks go straight to a sink. Every task is recorded in an [`ExecReport`], with where
//! it ran and why ([`crate::backend::Placement`]).
//!
//! With a device backend, a device task returns once its work is submitted and its result
//! stays on the device; when an output or a host task needs that result, the loop asks for
//! it asynchronously (`DeviceBlock::request_host`), parks the task, and has a worker copy the
//! mapped bytes out once they arrive, so no worker waits for the device. Device tasks are held
//! back while the backend reports itself saturated.

mod dashboard;
pub(crate) mod options;
mod release;
mod report;
mod scheduler;
mod sink;
mod timeline;

pub use crate::settings::parse_bytes;
pub use dashboard::{report_html, Dashboard, DashboardError};
pub use options::{default_budget, ComputeOptions, Progress, RunControl};
pub use report::{ExecReport, TaskRecord};
pub use scheduler::{execute, OutputSink};
pub use sink::{BlockCollector, DenseOutputs};
pub use timeline::{
    IoSample, LaneTotal, MemorySample, Monitor, OutputProgress, RunHeader, Span, TaskGroup, Timeline, SERIES_KEPT,
    SPANS_KEPT,
};

use crate::backend::BackendError;

/// Errors raised while running a task graph.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// One task needs more memory than the whole budget; raised before anything runs.
    #[error(
        "memory budget of {budget} bytes is too small: task {task} needs {needed} bytes (inputs, scratch and result)"
    )]
    BudgetTooSmall {
        /// the task (operation, kind and block)
        task: String,
        /// bytes it needs at once
        needed: u64,
        /// the budget
        budget: u64,
    },
    /// A task failed.
    #[error("task {task} failed: {source}")]
    Task {
        /// the task (operation, kind and block)
        task: String,
        /// what went wrong
        source: BackendError,
    },
    /// A task panicked (a bug in strata or in a user function).
    #[error("task {task} panicked: {message}")]
    Panicked {
        /// the task
        task: String,
        /// the panic message
        message: String,
    },
    /// The run stopped with tasks left that could never start (a planner bug, reported rather
    /// than returning a half-computed result).
    #[error("execution stalled after {finished} of {total} tasks")]
    Stalled {
        /// tasks finished
        finished: usize,
        /// tasks in the graph
        total: usize,
    },
    /// The run was stopped through its [`RunControl`] (Ctrl-C in a notebook, say).
    #[error("the run was interrupted ({finished} of {total} tasks done)")]
    Interrupted {
        /// tasks finished before it stopped
        finished: usize,
        /// tasks planned
        total: usize,
    },
    /// A task not run because the run was stopping (after another failure, or an interrupt:
    /// what a run returns; this one is only ever seen alongside it).
    #[error("task {task} cancelled: the run was stopping")]
    Cancelled {
        /// the task, described
        task: String,
    },
    /// The run ended without writing these output blocks (an executor bug, reported rather
    /// than returning uninitialised memory).
    #[error("the run left {blocks} output blocks unwritten")]
    Unwritten {
        /// blocks never handed to a writer
        blocks: usize,
    },
    /// The dashboard could not start; raised before anything runs.
    #[error(transparent)]
    Dashboard(#[from] DashboardError),
    /// A strata environment variable is set to a value it cannot use; raised before anything
    /// runs.
    #[error(transparent)]
    Setting(#[from] crate::settings::SettingError),
    /// The thread pool could not be built.
    #[error("cannot build a pool of {threads} threads: {message}")]
    ThreadPool {
        /// threads asked for
        threads: usize,
        /// the reason
        message: String,
    },
}

impl ExecError {
    /// The error of the chunk source whose read failed, as its own type (see
    /// [`crate::Error::source_error`]). Free.
    pub fn source_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            ExecError::Task {
                source: BackendError::Source { source, .. },
                ..
            } => source.downcast_ref::<E>(),
            _ => None,
        }
    }
}
