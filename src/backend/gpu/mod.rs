//! The GPU backend (wgpu): fused elementwise programs run as generated WGSL kernels, medians
//! along one axis (whole, or by groups: the monthly median) as a per-value selection kernel,
//! the other reductions (per-block partials of a tree reduction, and group-reduces) as
//! per-output state kernels merged in f64 on the host; every other task runs on the CPU
//! backend.
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
mod reduce;
mod submit;

use std::mem::MaybeUninit;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use ndarray::ArrayViewMutD;

pub use context::{AdapterReport, GpuContext};
pub use kernel::{FusedKernel, WORKGROUP_SIZE};

use super::{Backend, BackendError, CpuBackend, Value};
use crate::plan::TaskKind;

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

/// Runs fused elementwise tasks on a device, the rest on the CPU backend.
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

    fn run(&self, kind: &TaskKind, inputs: &[&Value]) -> Result<Value, BackendError> {
        if !self.on_device(kind, inputs) {
            return CpuBackend.run(kind, inputs);
        }
        let blocks = inputs
            .iter()
            .map(|v| {
                v.block().ok_or_else(|| BackendError::BadInput {
                    task: kind.name(),
                    what: "a partial reduction where a block was expected".into(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.ctx.device_tasks.fetch_add(1, Ordering::Relaxed);
        let result = match kind {
            TaskKind::Fused { program, shape } => {
                elementwise::run(&self.ctx, program, shape, &blocks).map(Value::Block)
            }
            TaskKind::Holistic { op, axes } => median::run(&self.ctx, *op, blocks[0], axes[0]).map(Value::Block),
            TaskKind::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } if op.is_holistic() => {
                median::run_groups(&self.ctx, *op, blocks[0], *axis, labels, *groups).map(Value::Block)
            }
            TaskKind::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => reduce::run_groups(&self.ctx, *op, blocks[0], *axis, labels, *groups).map(Value::Block),
            TaskKind::ReducePartial { op, axes, finalize } => reduce::run(&self.ctx, *op, &blocks, axes).map(|p| {
                if *finalize {
                    Value::Block(super::cpu::finalize(&p))
                } else {
                    Value::Partial(p)
                }
            }),
            TaskKind::GaussianTiles(spec) => gaussian::run_tiles(&self.ctx, spec, &blocks).map(Value::Block),
            TaskKind::Gaussian { passes, constant } => {
                gaussian::run_passes(&self.ctx, passes, constant.as_ref(), blocks[0]).map(Value::Block)
            }
            _ => unreachable!("on_device admits only the kinds above"),
        };
        result.map_err(|e| BackendError::Gpu {
            task: kind.name(),
            message: e.to_string(),
        })
    }

    fn run_into(
        &self,
        kind: &TaskKind,
        inputs: &[&Value],
        dst: ArrayViewMutD<'_, MaybeUninit<f32>>,
    ) -> Result<(), BackendError> {
        if self.on_device(kind, inputs) {
            super::write_value(kind, &self.run(kind, inputs)?, dst)
        } else {
            CpuBackend.run_into(kind, inputs, dst)
        }
    }
}

impl GpuBackend {
    /// Whether a task runs on the device (else on the CPU backend): one decision for `run`
    /// and `run_into`, so an output block written in place takes the same path.
    fn on_device(&self, kind: &TaskKind, inputs: &[&Value]) -> bool {
        let first = inputs.first().and_then(|v| v.block());
        let shape = || first.map(|b| b.shape().to_vec());
        match kind {
            TaskKind::Fused { program, .. } => elementwise::fits(&self.ctx, program),
            TaskKind::Holistic { op, axes } => shape().is_some_and(|s| median::fits(&self.ctx, *op, axes, &s)),
            TaskKind::GroupReduce { op, labels, groups, .. } if op.is_holistic() => {
                shape().is_some_and(|s| median::fits_groups(&self.ctx, *op, labels, *groups, &s))
            }
            TaskKind::GroupReduce {
                op,
                axis,
                labels,
                groups,
            } => first.is_some_and(|b| reduce::fits_groups(&self.ctx, *op, *axis, labels, *groups, b)),
            TaskKind::ReducePartial { op, axes, .. } => {
                let blocks: Option<Vec<&crate::expr::Block>> = inputs.iter().map(|v| v.block()).collect();
                blocks.is_some_and(|b| !b.is_empty() && reduce::fits(&self.ctx, *op, axes, &b))
            }
            TaskKind::GaussianTiles(spec) => {
                spec.shape.iter().all(|&n| n > 0) && gaussian::fits(&self.ctx, gaussian::tile_elements(spec))
            }
            TaskKind::Gaussian { passes, .. } => first.is_some_and(|b| {
                let s = b.shape();
                passes.iter().all(|(a, w)| s[*a] >= w.len()) && gaussian::fits(&self.ctx, s.iter().product())
            }),
            _ => false,
        }
    }
}
