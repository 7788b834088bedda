#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod array;
pub mod backend;
pub mod exec;
pub mod expr;
pub mod geo;
pub mod io;
pub mod job;
pub mod labelled;
#[cfg(feature = "testkit")]
pub mod loopback;
pub mod output;
pub mod plan;
pub mod stac;
pub mod stack;

pub use array::{compute_many, Array, Axes, Slice};
pub use exec::{ComputeOptions, ExecError, ExecReport};
pub use expr::{BoundaryMode, Chunks, DType, ExprError, ReduceOp};

/// Any error strata returns: one variant per layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// building or planning the expression failed
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    /// running the plan failed
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    /// a label selection or alignment failed
    #[error(transparent)]
    Label(#[from] labelled::LabelError),
    /// no GPU for a computation that asked for one
    #[error(transparent)]
    Gpu(#[from] backend::gpu::GpuError),
    /// writing an output failed
    #[error(transparent)]
    Output(#[from] output::OutputError),
    /// a job could not be made, read or run
    #[error(transparent)]
    Job(Box<job::JobError>),
    /// writing a file failed
    #[error("cannot write {path}: {source}")]
    Io {
        /// the file
        path: std::path::PathBuf,
        /// the OS error
        source: std::io::Error,
    },
}

impl From<expr::ExprError> for Error {
    fn from(e: expr::ExprError) -> Self {
        Error::Plan(plan::PlanError::Expr(e))
    }
}

/// `Result` with strata's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
