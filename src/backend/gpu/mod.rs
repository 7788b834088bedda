//! The GPU backend (wgpu). What runs where is one decision, [`Backend::placement`], with its
//! reason recorded in the execution report. On the device: source blocks go up as stored
//! 16-bit codes and decode there (`decode`); fused elementwise programs run as generated WGSL
//! kernels (`kernels`, `elementwise`); gathers of device blocks assemble in place (`gather`);
//! medians along one axis, whole or by groups (the monthly median), as a per-value selection
//! kernel (`median`); the other reductions as state kernels finalized on the device
//! (`reduce`); window reductions (`coarsen`) as those kernels over the block's windows laid
//! side by side (`window`); fills, running sums and simple moving windows along an axis as one
//! invocation per pixel (`along`); the gaussian as passes over a halo-extended tile, the halo
//! assembled where the neighbours are (`gaussian`). Everything else runs on the CPU backend.
//!
//! Data movement and ownership:
//! - a task records its uploads and dispatches in one command buffer (`recording`); producers
//!   write inputs straight into mapped staging memory, the only host copy on the way up;
//! - one completion thread owns the queue's completions (`engine`): workers submit and move
//!   on, never waiting for the device; pooled buffers (`pool`) go home when the work that
//!   used them is done;
//! - results stay on the device as [`DeviceBlock`]s (`resident`), within a device budget, for
//!   the next device task; the executor brings one to the host asynchronously when a host
//!   task or an output needs it;
//! - blocks beyond one binding run in pieces (`split`), on a blocking path.
//!
//! Choosing it: [`BackendChoice`] in `ComputeOptions`, or `STRATA_BACKEND=auto|gpu|cpu`.
//! `auto` takes a hardware GPU and otherwise the CPU (saying why on stderr once), and on the
//! GPU leaves to the CPU the elementwise work over host-memory inputs; `gpu` also accepts a
//! software adapter (Mesa lavapipe), runs everything the device can take there, and fails
//! when there is no adapter.

mod along;
mod buffers;
mod context;
pub(crate) mod decode;
mod elementwise;
mod engine;
mod gather;
mod gaussian;
mod kernels;
mod layout;
mod median;
mod pool;
mod profile;
mod recording;
mod reduce;
mod resident;
mod split;
mod window;

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use ndarray::ArrayViewMutD;

pub use context::{AdapterReport, GpuContext, TransferStats};
pub use kernels::{
    AlongKernel, FusedKernel, KernelSource, MedianKernel, MAX_MEDIAN_LEN, MAX_ROLLING_MEDIAN, WORKGROUP_SIZE,
};
pub use profile::{DeviceProfile, KernelTime};
pub use resident::DeviceBlock;

use super::{Backend, BackendError, CpuBackend, Placement, ResultMemory, Value, ValueDesc};
use crate::expr::{Block, ChunkSource, SourceData};
use crate::plan::TaskKind;
use recording::Produced;

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
    /// Mapping a buffer for the host failed.
    #[error("{during}: {message}")]
    Mapping {
        /// what was being mapped
        during: &'static str,
        /// what wgpu said
        message: String,
    },
    /// The device failed outside any error scope (out of memory creating a buffer, most
    /// likely: the device budget, `STRATA_DEVICE_BUDGET`, is larger than the memory it has);
    /// every later submission and read-back on it fails with this.
    #[error("the device failed ({message}); noticed while {during}")]
    Device {
        /// what the host was doing when it noticed
        during: &'static str,
        /// what wgpu said
        message: String,
    },
    /// The device went away while the host waited on it.
    #[error("the device was lost during {during}")]
    DeviceLost {
        /// what the host was waiting for
        during: &'static str,
    },
    /// A strata environment variable does not parse (see [`crate::settings`]); raised before
    /// the device is opened, and not remembered: the next call reads the variables again.
    #[error(transparent)]
    Setting(#[from] crate::settings::SettingError),
    /// A block, shape or input the kernel cannot take, or one past a binding's size: a
    /// strata bug (the planner should not have placed it here), reported rather than panicking.
    #[error("internal error: {0}")]
    Internal(String),
}

/// For unit tests that need a device: `None` (said on stderr) when `STRATA_SKIP_GPU_TESTS=1`
/// asks to skip them, else a context from `open`; without an adapter, a panic that says how to
/// get one (the GPU tests never skip silently).
#[cfg(test)]
pub(crate) fn context_for_test<T>(what: &str, open: impl FnOnce() -> Result<T, GpuError>) -> Option<T> {
    if std::env::var("STRATA_SKIP_GPU_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("*** STRATA_SKIP_GPU_TESTS=1: {what} SKIPPED ***");
        return None;
    }
    Some(open().unwrap_or_else(|e| panic!("{e}. (STRATA_SKIP_GPU_TESTS=1 skips the GPU tests; CI never sets it.)")))
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
    /// From `STRATA_BACKEND` (`auto`, `gpu`, `cpu`, any case); `auto` when unset. A run
    /// fails before it starts when the variable holds anything else
    /// ([`ExecError::Setting`](crate::exec::ExecError::Setting)), so a typo never quietly
    /// becomes `auto`.
    pub fn from_env() -> BackendChoice {
        match crate::settings::word("STRATA_BACKEND", crate::settings::BACKENDS) {
            Ok(Some("gpu")) => BackendChoice::Gpu,
            Ok(Some("cpu")) => BackendChoice::Cpu,
            _ => BackendChoice::Auto,
        }
    }

    /// Whether [`select`] gives the CPU backend for this choice. Costs the adapter probe of
    /// [`shared_context`] for `Auto` on a machine with GPU device nodes (once per process).
    pub fn resolves_to_cpu(self) -> bool {
        match self {
            BackendChoice::Cpu => true,
            BackendChoice::Gpu => false,
            BackendChoice::Auto => auto_device().is_none(),
        }
    }
}

/// The process's shared device (opening one costs tens of milliseconds), software allowed.
///
/// **Errors**: [`GpuError::Setting`] for a strata environment variable that does not parse
/// (checked on every call); [`GpuError::NoAdapter`] and other failures to open the device,
/// remembered for the life of the process.
pub fn shared_context() -> Result<Arc<GpuContext>, GpuError> {
    static CONTEXT: OnceLock<Result<Arc<GpuContext>, GpuError>> = OnceLock::new();
    // a setting that does not parse is an error now, not the device's remembered failure:
    // fixing the variable fixes the next call
    crate::settings::check()?;
    CONTEXT.get_or_init(|| GpuContext::new(true).map(Arc::new)).clone()
}

/// Picks the backend for a choice.
///
/// **Errors**: [`GpuError::NoAdapter`] when `Gpu` is asked for and there is none.
pub fn select(choice: BackendChoice) -> Result<Arc<dyn Backend>, GpuError> {
    match choice {
        BackendChoice::Cpu => Ok(Arc::new(CpuBackend)),
        BackendChoice::Gpu => Ok(Arc::new(GpuBackend::new(shared_context()?))),
        BackendChoice::Auto => match auto_device() {
            Some(ctx) => Ok(Arc::new(GpuBackend::auto(ctx))),
            None => Ok(Arc::new(CpuBackend)),
        },
    }
}

/// The device `Auto` picks: a hardware adapter, never a software one (the CPU backend beats
/// it). A machine with no GPU device nodes has no hardware adapter: no Vulkan instance is
/// started (a third of a second, and Mesa's layers print warnings) to find that out.
fn auto_device() -> Option<Arc<GpuContext>> {
    if !gpu_device_nodes() {
        return None;
    }
    shared_context().ok().filter(|ctx| !ctx.adapter.is_software())
}

/// Whether the machine may have a hardware GPU: on Linux, a DRM render node or an NVIDIA
/// device node; elsewhere, assumed so (the adapter probe decides). Checked once per process.
pub fn gpu_device_nodes() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        if !cfg!(target_os = "linux") {
            return true;
        }
        let named = |dir: &str, prefix: &str| {
            std::fs::read_dir(dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
            })
        };
        named("/dev/dri", "renderD") || named("/dev", "nvidia")
    })
}

/// Runs the tasks the device takes (see the module docs) on a GPU, the rest on the CPU
/// backend; device results stay on the device for the next device task.
#[derive(Debug, Clone)]
pub struct GpuBackend {
    ctx: Arc<GpuContext>,
    /// chosen by `auto`: leave to the CPU what the device is not expected to win
    auto: bool,
}

impl GpuBackend {
    /// A backend on this device that runs every task the device can take (what
    /// `BackendChoice::Gpu` gives).
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        GpuBackend { ctx, auto: false }
    }

    /// A backend on this device that leaves to the CPU the tasks the device is not expected
    /// to win: elementwise programs over blocks that are all in host memory, which would cost
    /// more to upload than to compute (what `BackendChoice::Auto` gives on a hardware GPU).
    pub fn auto(ctx: Arc<GpuContext>) -> Self {
        GpuBackend { ctx, auto: true }
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

    fn device_profile(&self) -> Option<DeviceProfile> {
        if !self.ctx.profiling() {
            return None;
        }
        self.ctx.wait_for_stamps();
        Some(self.ctx.profile())
    }

    fn take_transfer_spans(&self) -> Vec<crate::backend::TransferSpan> {
        self.ctx.stats.take_spans()
    }

    fn device_resident(&self) -> Option<u64> {
        Some(self.ctx.resident_bytes())
    }

    fn place(&self, kind: &TaskKind, inputs: &[ValueDesc]) -> Placement {
        placement(&self.ctx, self.auto, kind, inputs)
    }

    fn saturated(&self) -> bool {
        self.ctx.saturated()
    }

    fn run(&self, kind: &TaskKind, inputs: &[&Value]) -> Result<Value, BackendError> {
        if !self.placement(kind, inputs).device {
            // Device-resident inputs were brought over by the executor beforehand (else they
            // are read back here, waiting: a counted wait).
            return CpuBackend.run(kind, inputs);
        }
        self.launch(kind, inputs)
    }

    fn run_into(
        &self,
        kind: &TaskKind,
        inputs: &[&Value],
        dst: ArrayViewMutD<'_, MaybeUninit<f32>>,
        memory: ResultMemory,
    ) -> Result<(), BackendError> {
        if !self.placement(kind, inputs).device {
            return CpuBackend.run_into(kind, inputs, dst, memory);
        }
        // The executor reads device results asynchronously; a direct caller waits here.
        match self.launch(kind, inputs)? {
            Value::Device(d) => d.read_into(dst).map_err(gpu_error(kind)),
            value => super::write_value(kind, &value, dst),
        }
    }
}

/// Wraps a device error as the task's backend error.
fn gpu_error(kind: &TaskKind) -> impl Fn(GpuError) -> BackendError + Copy + '_ {
    move |source| BackendError::Gpu {
        task: kind.name(),
        during: "running",
        source,
    }
}

/// Where a task runs on a GPU backend, and why. One decision for `run`, `run_into` and the
/// executor (which brings device inputs to the host before a host task, and host inputs go up
/// inside a device task).
fn placement(ctx: &GpuContext, auto: bool, kind: &TaskKind, inputs: &[ValueDesc]) -> Placement {
    if let Some(trips) = loop_trips(kind, inputs) {
        if !ctx.adapter.runs_loops(trips) {
            return Placement::host(
                "more loop iterations per invocation than this adapter runs (Mesa's llvmpipe stops a shader's loops after 65535, all of them together)",
            );
        }
    }
    let first = inputs.first();
    let shape = || first.filter(|v| !v.partial).map(|v| v.shape.clone());
    let on_device = |v: &ValueDesc| v.on_device;
    let yes = |reason| Placement::device(reason);
    let no = |reason| Placement::host(reason);
    match kind {
        TaskKind::Source { .. } => {
            yes("stored codes go up and decode on the device (values from other sources stay on the host)")
        }
        TaskKind::Fused { program, .. } if !elementwise::fits(ctx, program) => {
            no("more inputs or constants than one device kernel binds")
        }
        TaskKind::Fused { .. } if auto && !inputs.iter().any(on_device) => {
            no("every input is in host memory: uploading them would cost more than computing")
        }
        TaskKind::Fused { .. } => yes("a fused elementwise kernel"),
        TaskKind::Gather { shape, dtype, .. } => {
            if !inputs.iter().any(on_device) {
                no("its inputs are in host memory, where a gather is a view or one copy")
            } else if gather::fits(ctx, shape, *dtype, inputs) {
                yes("its inputs are on the device")
            } else {
                no("a mask, or more axes than the device gather walks")
            }
        }
        TaskKind::Holistic { .. } if inputs.len() > 1 => {
            no("steps computed apart, read in place by the host kernel (the device median binds one buffer)")
        }
        TaskKind::Holistic { axes, .. } if axes.len() > 1 => no("several axes at once (the device kernels walk one)"),
        TaskKind::Holistic { op, axes } => match shape() {
            Some(s) if median::fits(*op, axes, &s) => yes("a per-pixel selection kernel"),
            _ => no("a median axis longer than the device kernel holds (1024)"),
        },
        TaskKind::GroupReduce { op, labels, groups, .. } if op.is_holistic() => {
            if first.is_some_and(|v| !v.partial) && median::fits_groups(*op, labels, *groups) {
                yes("a per-pixel selection kernel by groups")
            } else {
                no("a group longer than the device median kernel holds (1024)")
            }
        }
        TaskKind::GroupReduce {
            op,
            axis,
            labels,
            groups,
        } => {
            if first.is_some_and(|v| reduce::fits_groups(ctx, *op, *axis, labels, *groups, v)) {
                yes("states and their final values on the device")
            } else {
                no("a reduced column beyond one device binding")
            }
        }
        TaskKind::ReducePartial { finalize: false, .. } => no("partial states of a tree reduction merge on the host"),
        TaskKind::ReducePartial { op, axes, .. } => {
            if reduce::fits_final(ctx, *op, axes, inputs) {
                yes("states and their final values on the device")
            } else {
                no("too few outputs for the device to spread the reduction over")
            }
        }
        TaskKind::ReduceCombine { .. } => no("partial states merge on the host"),
        TaskKind::GaussianTiles(spec) => {
            if gaussian::fits_tiles(ctx, spec, inputs) {
                yes("filter passes over the tile and its halo, assembled where the neighbours are")
            } else {
                no("a mask, or a tile whose rows exceed one device binding")
            }
        }
        TaskKind::Gaussian { passes, .. } => match shape() {
            Some(s)
                if passes.iter().all(|(a, w)| s[*a] >= w.len())
                    && gaussian::fits(ctx, s.iter().product())
                    && first.map(|v| v.dtype) == Some(crate::expr::DType::F32) =>
            {
                yes("filter passes over the extended block")
            }
            _ => no("a mask, or a block beyond one device binding"),
        },
        TaskKind::Fill { .. } | TaskKind::Host { .. } | TaskKind::Persisted { .. } => {
            no("host memory already holds it (consumers on the device upload it)")
        }
        TaskKind::Map { .. } => no("a user function runs on the host"),
        TaskKind::Along { .. } if auto && !inputs.iter().any(on_device) => {
            no("its input is in host memory: the host kernel reads it once, an upload would cost more")
        }
        TaskKind::Along { op, axis } => {
            if first.is_some_and(|v| along::fits(ctx, op, *axis, v)) {
                yes("one invocation per pixel walks the axis on the device")
            } else {
                no("a moving median over 64 steps, or a block beyond one device binding")
            }
        }
        TaskKind::Coarsen { .. } if auto && !inputs.iter().any(on_device) => {
            no("its input is in host memory: the host kernel reads it once, an upload would cost more")
        }
        TaskKind::Coarsen { op, windows } => {
            if first.is_some_and(|v| window::fits(ctx, *op, windows, v)) {
                yes("the windows laid side by side on the device, reduced by the time reductions' kernels")
            } else {
                no("a mask, a median of over 1024 values a window, or a block beyond one device binding")
            }
        }
    }
}

/// The most loop iterations one invocation of the task's device kernel may run, counted as
/// llvmpipe counts them (see `along::trips`), where that grows with the data: the walk along
/// an axis, a reduction's column or group, an index of the extreme's column, a coarsen
/// window, a gaussian's taps, a median's selection. `None` for kernels whose loops are bounded
/// by constants (elementwise programs, gathers, decode). O(labels) for group reductions, else
/// O(1).
fn loop_trips(kind: &TaskKind, inputs: &[ValueDesc]) -> Option<u64> {
    let shape = &inputs.first().filter(|v| !v.partial)?.shape;
    let longest_group = |labels: &[usize], groups: usize| {
        let mut sizes = vec![0usize; groups];
        for &l in labels.iter().filter(|&&l| l < groups) {
            sizes[l] += 1;
        }
        sizes.into_iter().max().unwrap_or(0)
    };
    let column = |axes: &[usize]| {
        axes.iter()
            .map(|&a| shape.get(a).copied().unwrap_or(0))
            .product::<usize>()
    };
    Some(match kind {
        TaskKind::Along { op, axis } => along::trips(op, *shape.get(*axis)?),
        TaskKind::ReducePartial { op, axes, .. } if !op.is_holistic() => reduce::trips(*op, column(axes)),
        TaskKind::Holistic { op, axes } if op.arg_extreme().is_some() => column(axes) as u64 + 8,
        TaskKind::Holistic { op, axes } if op.order_statistic().is_some() => median::trips(column(axes)),
        TaskKind::GroupReduce { op, labels, groups, .. } if op.order_statistic().is_some() => {
            median::trips(longest_group(labels, *groups))
        }
        TaskKind::GroupReduce { op, labels, groups, .. } if op.arg_extreme().is_some() => {
            longest_group(labels, *groups) as u64 + 8
        }
        TaskKind::GroupReduce { op, labels, groups, .. } if !op.is_holistic() => {
            reduce::trips(*op, longest_group(labels, *groups))
        }
        TaskKind::Coarsen { op, windows } if op.order_statistic().is_some() => median::trips(windows.iter().product()),
        TaskKind::Coarsen { op, windows } if !op.is_holistic() => reduce::trips(*op, windows.iter().product()),
        TaskKind::Gaussian { passes, .. } => passes.iter().map(|(_, w)| w.len() as u64 + 8).max()?,
        TaskKind::GaussianTiles(spec) => spec.wy.len().max(spec.wx.len()) as u64 + 8,
        _ => return None,
    })
}

impl GpuBackend {
    /// Starts a device task: records its work and submits it without waiting; the result is
    /// a block kept on the device (or, for blocks beyond one binding, already on the host).
    fn launch(&self, kind: &TaskKind, inputs: &[&Value]) -> Result<Value, BackendError> {
        if let TaskKind::Source { source, region } = kind {
            return self.read_source(source.as_ref(), region);
        }
        self.ctx.device_tasks.fetch_add(1, Ordering::Relaxed);
        let ctx = &*self.ctx;
        let err = gpu_error(kind);
        let produced = match kind {
            TaskKind::Fused { program, shape } => elementwise::run(ctx, program, shape, inputs),
            TaskKind::Gather {
                shape,
                fill,
                out_axes,
                pieces,
                ..
            } => gather::run(ctx, shape, *fill, out_axes, pieces, inputs).map(Produced::Pending),
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
            } => reduce::run_groups(ctx, *op, inputs[0], *axis, labels, *groups),
            TaskKind::ReducePartial { op, axes, .. } => reduce::run(ctx, *op, inputs[0], axes),
            TaskKind::Coarsen { op, windows } => window::run(ctx, *op, inputs[0], windows),
            TaskKind::Along { op, axis } => along::run(ctx, op, inputs[0], *axis),
            TaskKind::GaussianTiles(spec) => gaussian::run_tiles(ctx, spec, inputs),
            TaskKind::Gaussian { passes, constant } => {
                gaussian::run_passes(ctx, passes, constant.as_ref(), inputs[0]).map(Produced::Pending)
            }
            _ => {
                return Err(BackendError::BadInput {
                    task: kind.name(),
                    what: "a task the device does not run was placed on it".into(),
                })
            }
        };
        match produced.map_err(err)? {
            Produced::Pending(p) => Ok(Value::Device(Arc::new(p.finish(&self.ctx).map_err(err)?))),
            Produced::Host(b) => Ok(Value::Block(b)),
        }
    }

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
        let err = |source: GpuError| BackendError::Gpu {
            task: "source",
            during: "decoding stored samples",
            source,
        };
        let pending = decode::run(&self.ctx, &raw).map_err(err)?;
        Ok(Value::Device(Arc::new(pending.finish(&self.ctx).map_err(err)?)))
    }
}
