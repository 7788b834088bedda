//! Kernels that run tasks: `cpu` (ndarray + rayon), the reference semantics, and `gpu` (wgpu),
//! which runs what its device takes and hands the rest to `cpu`. What both share sits here:
//! reduction states ([`Partial`], [`finalize`]), the halo reads of tile filters (`halo`) and
//! how a block's memory is laid out (`layout`).
//!
//! A backend turns one [`TaskKind`] and its input values into an output value. It knows
//! nothing of graphs or scheduling; the executor calls it.

pub mod cpu;
pub mod gpu;
pub(crate) mod halo;
pub(crate) use crate::expr::layout;
mod partial;

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArrayViewMutD, Zip};

use crate::expr::{Block, ChunkSource, SourceError};
use crate::plan::TaskKind;
pub use crate::plan::{Placement, ValueDesc};

pub use cpu::CpuBackend;
pub use partial::{finalize, Partial};

/// What a task produces: a block (in host or device memory), or a partial reduction state on
/// its way to a block.
#[derive(Debug, Clone)]
pub enum Value {
    /// a block of the array
    Block(Block),
    /// a partial reduction state
    Partial(Partial),
    /// a block left in device memory by a GPU task, for the next GPU task to read in place;
    /// read back on its first use by the host
    Device(Arc<gpu::DeviceBlock>),
}

impl Value {
    /// Bytes of the block (wherever it lives) or state.
    pub fn nbytes(&self) -> u64 {
        match self {
            Value::Block(b) => b.nbytes(),
            Value::Partial(p) => p.nbytes(),
            Value::Device(d) => d.nbytes(),
        }
    }

    /// The block in host memory: a device block is read back on first use (one copy, and a
    /// wait for the device unless the executor brought it over beforehand) and kept.
    ///
    /// **Errors**: [`BackendError::BadInput`] for a partial state, [`BackendError::Gpu`] when
    /// reading a device block back failed.
    pub fn to_block(&self, task: &'static str) -> Result<&Block, BackendError> {
        match self {
            Value::Block(b) => Ok(b),
            Value::Partial(_) => Err(BackendError::BadInput {
                task,
                what: "a partial state where a block was expected".into(),
            }),
            Value::Device(d) => d.host().map_err(|source| BackendError::Gpu {
                task,
                during: "reading a block back",
                source,
            }),
        }
    }

    /// The block's element type (`None` for a partial state).
    pub fn dtype(&self) -> Option<crate::expr::DType> {
        match self {
            Value::Block(b) => Some(b.dtype()),
            Value::Partial(_) => None,
            Value::Device(d) => Some(d.dtype()),
        }
    }

    /// What placement needs to know of the value: shape, type, where it lives. Costs a
    /// shape copy.
    pub fn desc(&self) -> ValueDesc {
        match self {
            Value::Block(b) => ValueDesc {
                shape: b.shape().to_vec(),
                dtype: b.dtype(),
                on_device: false,
                partial: false,
            },
            Value::Partial(_) => ValueDesc {
                shape: Vec::new(),
                dtype: crate::expr::DType::F32,
                on_device: false,
                partial: true,
            },
            Value::Device(d) => ValueDesc {
                shape: d.shape().to_vec(),
                dtype: d.dtype(),
                on_device: true,
                partial: false,
            },
        }
    }

    /// The block's shape (`None` for a partial state).
    pub fn shape(&self) -> Option<&[usize]> {
        match self {
            Value::Block(b) => Some(b.shape()),
            Value::Partial(_) => None,
            Value::Device(d) => Some(d.shape()),
        }
    }
}

/// Errors raised while running one task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// A chunk source failed to read a block.
    #[error("source {label} failed reading region {region:?}: {source}")]
    Source {
        /// the source's label
        label: String,
        /// the region it was reading
        region: Vec<Range<usize>>,
        /// its error
        source: SourceError,
    },
    /// A chunk source returned the wrong shape.
    #[error("source {label} returned shape {found:?} for region {region:?} (expected {expected:?})")]
    SourceShape {
        /// the source's label
        label: String,
        /// the region asked for
        region: Vec<Range<usize>>,
        /// the shape it should have had
        expected: Vec<usize>,
        /// the shape it had
        found: Vec<usize>,
    },
    /// A user block function returned the wrong shape.
    #[error("map_blocks function {name} returned shape {found:?} for a block of shape {expected:?}")]
    MapShape {
        /// the function's name
        name: String,
        /// the block shape it was given
        expected: Vec<usize>,
        /// the shape it returned
        found: Vec<usize>,
    },
    /// A user block function panicked.
    #[error("map_blocks function {name} panicked: {message}")]
    MapPanicked {
        /// the function's name
        name: String,
        /// the panic message
        message: String,
    },
    /// The GPU failed running a task.
    #[error("task {task} failed on the GPU {during}: {source}")]
    Gpu {
        /// the task kind
        task: &'static str,
        /// what the task was doing ("running", "reading a block back", ...)
        during: &'static str,
        /// the device's error, with its kind
        source: gpu::GpuError,
    },
    /// A task got an input of the wrong kind (a planner bug, reported rather than panicking).
    #[error("task {task} got an input it cannot use: {what}")]
    BadInput {
        /// the task kind
        task: &'static str,
        /// what was wrong
        what: String,
    },
}

/// One host-side copy of a device transfer (into mapped staging memory on the way up, out of
/// a mapped read-back on the way down), for a dashboard's device lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferSpan {
    /// when the copy began
    pub start: std::time::Instant,
    /// when it ended
    pub end: std::time::Instant,
    /// bytes copied
    pub bytes: u64,
    /// towards the device (else back to the host)
    pub upload: bool,
}

/// Something that runs tasks.
pub trait Backend: Send + Sync {
    /// A name for reports (`"cpu"`, or the adapter name).
    fn name(&self) -> String;

    /// The GPU adapter this backend runs on, for reports (`None` for the CPU).
    fn adapter(&self) -> Option<gpu::AdapterReport> {
        None
    }

    /// The device's time by kernel so far, when device profiling is on
    /// ([`gpu::GpuContext::set_profiling`]); `None` otherwise and for the CPU. Waits (briefly)
    /// for the timestamps of work already submitted.
    fn device_profile(&self) -> Option<gpu::DeviceProfile> {
        None
    }

    /// Where this backend runs a task given inputs of these shapes, types and places, and
    /// why: its kernels' limits, asked by the planner's placement pass
    /// ([`TaskGraph::place`](crate::plan::TaskGraph::place)) before a run and by the executor
    /// on the values that arrive. A host task whose inputs are on a device gets them brought
    /// over by the executor first ([`gpu::DeviceBlock::request_host`]), so it never waits for
    /// the device. Costs a match.
    fn place(&self, kind: &TaskKind, inputs: &[ValueDesc]) -> Placement {
        let _ = (kind, inputs);
        Placement::host("the CPU backend")
    }

    /// [`Backend::place`] on these values. Costs a match and a shape copy per input.
    fn placement(&self, kind: &TaskKind, inputs: &[&Value]) -> Placement {
        let descs: Vec<ValueDesc> = inputs.iter().map(|v| v.desc()).collect();
        self.place(kind, &descs)
    }

    /// Whether the device holds as much submitted work and kept results as its budget allows:
    /// the executor then starts a device task only when no task is running.
    fn saturated(&self) -> bool {
        false
    }

    /// The transfers since the last call, oldest first (the backend keeps the last few
    /// thousand). Default: none.
    fn take_transfer_spans(&self) -> Vec<TransferSpan> {
        Vec::new()
    }

    /// Bytes of results held on the device now; `None` without a device.
    fn device_resident(&self) -> Option<u64> {
        None
    }

    /// Runs one task on its inputs (the values of its deps, in order). A device task returns
    /// once its work is submitted: its result is a [`Value::Device`] that later device tasks
    /// read in place.
    ///
    /// **Errors**: a failing source or user function, inputs of the wrong kind, or a device
    /// failure ([`BackendError::Gpu`]).
    fn run(&self, kind: &TaskKind, inputs: &[&Value]) -> Result<Value, BackendError>;

    /// Runs a task whose result is a final output block, writing it (as f32) into `dst`, which
    /// has the block's shape and lies in memory of kind `memory`. The default runs the task and
    /// copies; a backend overrides it to write straight into the destination with no block in
    /// between.
    ///
    /// **Errors**: as [`Backend::run`].
    fn run_into(
        &self,
        kind: &TaskKind,
        inputs: &[&Value],
        dst: ArrayViewMutD<'_, MaybeUninit<f32>>,
        memory: ResultMemory,
    ) -> Result<(), BackendError> {
        let _ = memory;
        write_value(kind, &self.run(kind, inputs)?, dst)
    }
}

/// What memory an output is written into, which decides how a kernel best stores to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultMemory {
    /// Just allocated, never touched: the OS zeroes each page on its first write, leaving the
    /// zeroed lines in cache, where plain stores overwrite them for free (a streaming store
    /// would first evict each one, writing its zeros to memory only to overwrite them there).
    Fresh,
    /// The caller's array, already in use: its lines are in memory, not in cache, so a large
    /// result is best written with streaming stores, which skip reading each line first.
    Reused,
}

/// A source's read error, with the source and the block it was reading.
pub(crate) fn source_error(source: &dyn ChunkSource, region: &[Range<usize>], e: SourceError) -> BackendError {
    BackendError::Source {
        label: source.label(),
        region: region.to_vec(),
        source: e,
    }
}

/// Checks that a source gave the shape of the region it was asked for.
///
/// **Errors**: [`BackendError::SourceShape`].
pub(crate) fn check_source_shape(
    source: &dyn ChunkSource,
    region: &[Range<usize>],
    found: &[usize],
) -> Result<(), BackendError> {
    let expected: Vec<usize> = region.iter().map(|r| r.len()).collect();
    if found != expected.as_slice() {
        return Err(BackendError::SourceShape {
            label: source.label(),
            region: region.to_vec(),
            expected,
            found: found.to_vec(),
        });
    }
    Ok(())
}

/// Writes a task's block result into `dst` (the default `run_into` after `run`).
///
/// **Errors**: [`BackendError::BadInput`] when the value is not a block, [`BackendError::Gpu`]
/// when reading a device block back failed.
pub fn write_value(
    kind: &TaskKind,
    value: &Value,
    dst: ArrayViewMutD<'_, MaybeUninit<f32>>,
) -> Result<(), BackendError> {
    write_block(dst, value.to_block(kind.name())?);
    Ok(())
}

/// Copies a block into an (uninitialised) destination of the same shape, masks as 0.0/1.0.
/// Parallel over rows; costs one read and one write of the block.
pub fn write_block(dst: ArrayViewMutD<'_, MaybeUninit<f32>>, block: &Block) {
    match block {
        Block::F32(a) => Zip::from(dst).and(a).par_for_each(|d, &s| *d = MaybeUninit::new(s)),
        Block::U8(a) => Zip::from(dst)
            .and(a)
            .par_for_each(|d, &s| *d = MaybeUninit::new(f32::from(s))),
    }
}
