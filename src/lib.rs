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
pub mod settings;
pub mod stac;
pub mod stack;

pub use array::{compute_many, Array, Axes, MovingWindow, Slice};
/// Which backend a computation runs on (`strata::Backend::Cpu` forces the CPU); the same type
/// as `backend::gpu::BackendChoice`.
pub use backend::gpu::BackendChoice as Backend;
pub use exec::{ComputeOptions, ExecError, ExecReport, RunControl};
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
    /// reading bytes or a TIFF failed (URL, byte range, tile)
    #[error(transparent)]
    Io(#[from] io::IoError),
    /// a STAC document or search failed
    #[error(transparent)]
    Stac(#[from] stac::StacError),
    /// stacking items failed (item, asset)
    #[error(transparent)]
    Stack(#[from] stack::StackError),
    /// a projection or CRS failed
    #[error(transparent)]
    Geo(#[from] geo::GeoError),
}

impl Error {
    /// The error of the chunk source whose read failed, as its own type, when that is what
    /// stopped a computation: a stack's reads fail with [`stack::StackError`] (naming the item
    /// and asset, with the [`io::IoError`] inside), a user's source with its own error type.
    /// `None` for other errors, or a source error of another type. Free.
    ///
    /// ```
    /// # use strata::{stack::StackError, Error};
    /// fn which_asset(e: &Error) -> Option<(&str, &str)> {
    ///     match e.source_error::<StackError>()? {
    ///         StackError::Read { item, asset, .. } => Some((item, asset)),
    ///         _ => None,
    ///     }
    /// }
    /// ```
    pub fn source_error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Exec(e) => e.source_error(),
            Error::Job(e) => match e.as_ref() {
                job::JobError::Shard { source, .. } | job::JobError::Prepare(source) => source.source_error(),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<expr::ExprError> for Error {
    fn from(e: expr::ExprError) -> Self {
        Error::Plan(plan::PlanError::Expr(e))
    }
}

/// `Result` with strata's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
