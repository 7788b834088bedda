//! The GPU backend (wgpu): source blocks go up as stored 16-bit codes and decode on the device
//! (`decode`), fused elementwise programs run as generated WGSL kernels (`kernel`,
//! `elementwise`), medians along one axis (whole, or by groups: the monthly median) as a
//! per-value selection kernel (`median`), the other reductions as per-output state kernels
//! merged in f64 on the host (`reduce`), the gaussian as passes over a halo-extended tile
//! (`gaussian`). Results stay on the device for the next device task (`resident`), within a
//! budget; uploads reuse staging belts and pooled buffers (`pool`); blocks beyond one binding
//! run in pieces (`split`). Every other task runs on the CPU backend.
//!
//! Choosing it: [`BackendChoice`] in `ComputeOptions`, or `STRATA_BACKEND=auto|gpu|cpu`.
//! `auto` takes a hardware GPU and otherwise the CPU (saying why on stderr once); `gpu` also
//! accepts a software adapter (Mesa lavapipe) and fails when there is none.

mod buffers;
mod context;
pub mod decode;
mod elementwise;
mod gaussian;
mod kernel;
mod median;
mod pool;
mod reduce;
mod resident;
mod split;
mod submit;

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use ndarray::ArrayViewMutD;

pub use context::TransferStats;
pub use context::{AdapterReport, GpuContext, KernelSource};
pub use kernel::{FusedKernel, WORKGROUP_SIZE};
pub use resident::DeviceBlock;

use super::{Backend, BackendError, CpuBackend, ResultMemory, Value};
use crate::expr::{Block, ChunkSource, SourceData};
use crate::plan::TaskKind;
use submit::{Pending, Produced};

/// What went wrong on the GPU.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No usable adapter.
    #[error(
        "no GPU adapter: {0}. Install a Vulkan driver (on Debian: apt-get install \
         mesa-vulkan-drivers libvulkan1 for the lavapipe software adapter) or run on a machine with a GPU"
    )]
    NoAdapter(String),
    /// A generated kernel failed validation (a bug in strata).
    #[error("kernel failed validation: {0}")]
    Shader(String),
    /// The device failed during a dispatch or a readback.
    #[error("device error: {0}")]
    Device(String),
}

/// Which backend a computation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// a hardware GPU when there is one, else the CPU
    #[default]
    Auto,
    /// a GPU, software adapters included; an error when there is none
    Gpu,
    /// the CPU
    Cpu,
}

impl BackendChoice {
    /// From `STRATA_BACKEND` (`auto`, `gpu`, `cpu`); `auto` when unset or unrecognised.
    pub fn from_env() -> BackendChoice {
        match std::env::var("STRATA_BACKEND")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Ok("gpu") => BackendChoice::Gpu,
            Ok("cpu") => BackendChoice::Cpu,
            _ => BackendChoice::Auto,
        }
    }
}

/// The process's shared device (opening one costs tens of milliseconds), software allowed.
///
/// **Errors**: [`GpuError::NoAdapter`], remembered for the life of the process.
pub fn shared_context() -> Result<Arc<GpuContext>, GpuError> {
    static CONTEXT: OnceLock<Result<Arc<GpuContext>, GpuError>> = OnceLock::new();
    CONTEXT.get_or_init(|| GpuContext::new(true).map(Arc::new)).clone()
}

/// Picks the backend for a choice.
///
/// **Errors**: [`GpuError::NoAdapter`] when `Gpu` is asked for and there is none.
pub fn select(choice: BackendChoice) -> Result<Arc<dyn Backend>, GpuError> {
    match choice {
        BackendChoice::Cpu => Ok(Arc::new(CpuBackend)),
        BackendChoice::Gpu => Ok(Arc::new(GpuBackend::new(shared_context()?))),
        BackendChoice::Auto => match shared_context() {
            Ok(ctx) if !ctx.adapter.is_software() => Ok(Arc::new(GpuBackend::new(ctx))),
            other => {
                static SAID: OnceLock<()> = OnceLock::new();
                SAID.get_or_init(|| {
                    let why = match other {
                        Ok(ctx) => format!("only a software adapter ({})", ctx.adapter.name),
                        Err(e) => e.to_string(),
                    };
                    eprintln!("strata: running on the CPU backend: {why} (STRATA_BACKEND=gpu uses a software adapter)");
                });
                Ok(Arc::new(CpuBackend))
            }
        },
    }
}

/// Runs the tasks the device takes (see the module docs) on a GPU, the rest on the CPU
/// backend; device results stay on the device for the next device task.
#[derive(Debug, Clone)]
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
}

impl GpuBackend {
    /// A backend on this device.
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        GpuBackend { ctx }
    }

    /// The device.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }
}

impl Backend for GpuBackend {
    fn name(&self) -> String {
        let a = &self.ctx.adapter;
        format!("gpu: {} ({}, {}, {})", a.name, a.backend, a.device_type, a.driver)
    }

    fn adapter(&self) -> Option<AdapterReport> {
        Some(self.ctx.adapter.clone())
    }

    fn run(&self, kind: &TaskKind, inputs: &[&Value]) -> Result<Value, BackendError> {
        if let TaskKind::Source { source, region } = kind {
            return self.read_source(source.as_ref(), region);
        }
        if !self.on_device(kind, inputs) {
            // Device-resident inputs are read back (once each) by the CPU backend's `to_block`.
            return CpuBackend.run(kind, inputs);
        }
        let err = gpu_error(kind);
        match self.launch(kind, inputs)? {
            Launched::Pending(p) => p.finish(&self.ctx, true).map_err(err),
            Launched::Done(value) => Ok(value),
        }
    }

    fn run_into(
        &self,
        kind: &TaskKind,
        inputs: &[&Value],
        dst: ArrayViewMutD<'_, MaybeUninit<f32>>,
        memory: ResultMemory,
    ) -> Result<(), BackendError> {
        if !self.on_device(kind, inputs) {
            return CpuBackend.run_into(kind, inputs, dst, memory);
        }
        match self.launch(kind, inputs)? {
            Launched::Pending(p) => p.read_into(dst).map_err(gpu_error(kind)),
            Launched::Done(value) => super::write_value(kind, &value, dst),
        }
    }
}

/// A device task started: recorded work to submit, or a value already on the host.
enum Launched<'c> {
    Pending(Pending<'c>),
    Done(Value),
}

/// Wraps a device error as the task's backend error.
fn gpu_error(kind: &TaskKind) -> impl Fn(GpuError) -> BackendError + Copy + '_ {
    move |e| BackendError::Gpu {
        task: kind.name(),
        message: e.to_string(),
    }
}

impl GpuBackend {
    /// Reads a source block for device consumers: stored codes (when the source has them) go
    /// up and are decoded on the device, the values kept there; otherwise the values are read
    /// on the host.
    fn read_source(&self, source: &dyn ChunkSource, region: &[Range<usize>]) -> Result<Value, BackendError> {
        let data = source
            .read_raw(region)
            .map_err(|e| super::source_error(source, region, e))?;
        let raw = match data {
            SourceData::Values(v) => {
                super::check_source_shape(source, region, v.shape())?;
                return Ok(Value::Block(Block::F32(v.into_shared())));
            }
            SourceData::Raw(raw) => raw,
        };
        super::check_source_shape(source, region, &raw.shape)?;
        raw.check().map_err(|what| BackendError::BadInput {
            task: "source",
            what: format!("{}: a raw block: {what}", source.label()),
        })?;
        if !decode::fits(&self.ctx, &raw) {
            return Ok(Value::Block(Block::F32(raw.decode_cpu().into_shared())));
        }
        self.ctx.device_tasks.fetch_add(1, Ordering::Relaxed);
        let err = |e: GpuError| BackendError::Gpu {
            task: "source",
            message: e.to_string(),
        };
        self.ctx.throttle().map_err(err)?;
        decode::run(&self.ctx, &raw)
            .and_then(|p| p.finish(&self.ctx, true))
            .map_err(err)
    }

    /// Starts a task the device takes: block results come back as recorded work for the
    /// caller to submit (kept on the device, or read into an output); partial states and
    /// group-reduce results come back to the host, where they are merged and finalized.
    fn launch(&self, kind: &TaskKind, inputs: &[&Value]) -> Result<Launched<'_>, BackendError> {
        self.ctx.device_tasks.fetch_add(1, Ordering::Relaxed);
        let ctx = &self.ctx;
        let err = gpu_error(kind);
        ctx.throttle().map_err(err)?;
        let produced = match kind {
            TaskKind::Fused { program, shape } => elementwise::run(ctx, program, shape, inputs),
            TaskKind::Holistic { op, axes } => median::run(ctx, *op, inputs[0], axes[0]),
            TaskKind::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } if op.is_holistic() => median::run_groups(ctx, *op, inputs[0], *axis, labels, *groups),
            TaskKind::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => reduce::run_groups(ctx, *op, inputs[0], *axis, labels, *groups).map(Produced::Host),
            TaskKind::ReducePartial { op, axes, finalize } => {
                let p = reduce::run(ctx, *op, inputs, axes).map_err(err)?;
                return Ok(Launched::Done(if *finalize {
                    Value::Block(super::cpu::finalize(&p))
                } else {
                    Value::Partial(p)
                }));
            }
            TaskKind::GaussianTiles(spec) => gaussian::run_tiles(ctx, spec, inputs),
            TaskKind::Gaussian { passes, constant } => {
                gaussian::run_passes(ctx, passes, constant.as_ref(), inputs[0]).map(Produced::Pending)
            }
            _ => unreachable!("on_device admits only the kinds above"),
        };
        Ok(match produced.map_err(err)? {
            Produced::Pending(p) => Launched::Pending(p),
            Produced::Host(b) => Launched::Done(Value::Block(b)),
        })
    }

    /// Whether a task runs on the device (else on the CPU backend): one decision for `run`
    /// and `run_into`, so an output block written in place takes the same path.
    fn on_device(&self, kind: &TaskKind, inputs: &[&Value]) -> bool {
        let first = inputs.first().copied();
        let shape = || first.and_then(|v| v.shape()).map(<[usize]>::to_vec);
        match kind {
            TaskKind::Fused { program, .. } => elementwise::fits(&self.ctx, program),
            TaskKind::Holistic { op, axes } => shape().is_some_and(|s| median::fits(*op, axes, &s)),
            TaskKind::GroupReduce { op, labels, groups, .. } if op.is_holistic() => {
                first.is_some_and(|v| v.shape().is_some()) && median::fits_groups(*op, labels, *groups)
            }
            TaskKind::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => first.is_some_and(|v| reduce::fits_groups(&self.ctx, *op, *axis, labels, *groups, v)),
            TaskKind::ReducePartial { op, axes, .. } => reduce::fits(&self.ctx, *op, axes, inputs),
            TaskKind::GaussianTiles(spec) => gaussian::fits_tiles(&self.ctx, spec),
            TaskKind::Gaussian { passes, .. } => shape().is_some_and(|s| {
                passes.iter().all(|(a, w)| s[*a] >= w.len()) && gaussian::fits(&self.ctx, s.iter().product())
            }),
            _ => false,
        }
    }
}
