//! [`GpuContext`]: one wgpu device and queue, its adapter's description, and the compiled
//! pipelines, made once and passed by reference (never acquired deep inside a kernel).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::kernels::KernelSource;
use super::profile::DeviceProfile;
use super::GpuError;

/// What the adapter is, for reports and for choosing a backend.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AdapterReport {
    /// e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100"
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, Cpu (a software adapter), ...
    pub device_type: String,
    /// the driver and its version
    pub driver: String,
    /// largest storage buffer binding in bytes that strata uses (blocks beyond it are split;
    /// `STRATA_GPU_MAX_BINDING` can lower it)
    pub max_storage_binding: u64,
    /// largest buffer in bytes
    pub max_buffer: u64,
    /// the most loop iterations one shader invocation may run, where the driver stops a
    /// shader's loops beyond that (Mesa's llvmpipe, under lavapipe, after 65535 shared by all
    /// of them: the results are silently wrong, so strata runs such work on the host);
    /// `None`: no such limit
    pub loop_limit: Option<u64>,
}

impl AdapterReport {
    /// Whether this is a software rasteriser (lavapipe, llvmpipe, WARP).
    pub fn is_software(&self) -> bool {
        self.device_type == "Cpu"
    }

    /// Whether a shader invocation may run `trips` loop iterations here (every loop's
    /// iterations counted, and one for each time a loop is entered). O(1).
    pub fn runs_loops(&self, trips: u64) -> bool {
        self.loop_limit.is_none_or(|limit| trips <= limit)
    }
}

/// The loop limit of Mesa's llvmpipe (`LP_MAX_TGSI_LOOP_ITERATIONS` in gallivm: "maximum
/// iterations before loop termination, shared between every loop in a shader").
const LLVMPIPE_LOOP_LIMIT: u64 = 65535;

/// The loop limit of an adapter called `name` with driver `driver` (see
/// [`AdapterReport::loop_limit`]).
fn loop_limit(name: &str, driver: &str) -> Option<u64> {
    (name.contains("llvmpipe") || driver.contains("llvmpipe")).then_some(LLVMPIPE_LOOP_LIMIT)
}

/// The device budget unless `STRATA_DEVICE_BUDGET` (a size, such as `8GiB`) says otherwise:
/// the largest buffer's size clamped to 256 MiB..4 GiB on hardware (wgpu does not report the
/// memory size), 256 MiB on a software adapter, whose "device memory" is the host's.
fn default_device_budget(adapter: &AdapterReport) -> Result<u64, GpuError> {
    if let Some(bytes) = crate::settings::bytes("STRATA_DEVICE_BUDGET")? {
        return Ok(bytes);
    }
    Ok(if adapter.is_software() {
        256 << 20
    } else {
        adapter.max_buffer.clamp(256 << 20, 4 << 30)
    })
}

/// Counters of host-side transfer work, and the last few thousand copies for dashboards.
#[derive(Debug, Default)]
pub(super) struct TransferCounters {
    pub(super) upload_ns: AtomicU64,
    pub(super) upload_bytes: AtomicU64,
    pub(super) host_copy_bytes: AtomicU64,
    pub(super) download_ns: AtomicU64,
    pub(super) download_bytes: AtomicU64,
    spans: std::sync::Mutex<std::collections::VecDeque<crate::backend::TransferSpan>>,
}

/// Copies kept for [`TransferCounters::take_spans`].
const SPANS_KEPT: usize = 4096;

impl TransferCounters {
    /// Counts one host-side copy that began at `began`: its time, its bytes, and its span.
    pub(super) fn record(&self, upload: bool, began: std::time::Instant, bytes: u64) {
        let end = std::time::Instant::now();
        let ns = end.duration_since(began).as_nanos() as u64;
        let (time, moved) = if upload {
            (&self.upload_ns, &self.upload_bytes)
        } else {
            (&self.download_ns, &self.download_bytes)
        };
        time.fetch_add(ns, Ordering::Relaxed);
        moved.fetch_add(bytes, Ordering::Relaxed);
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        if spans.len() == SPANS_KEPT {
            spans.pop_front();
        }
        spans.push_back(crate::backend::TransferSpan {
            start: began,
            end,
            bytes,
            upload,
        });
    }

    /// The copies recorded since the last call.
    pub(super) fn take_spans(&self) -> Vec<crate::backend::TransferSpan> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect()
    }
}

/// Where device time went, summed over threads (so it can exceed wall time), and how much host
/// work and waiting moving data took.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct TransferStats {
    /// nanoseconds of host time writing inputs into mapped staging memory
    pub upload_ns: u64,
    /// bytes copied from staging into device buffers (what crossed the bus upwards)
    pub upload_bytes: u64,
    /// bytes the host copied on the way up (into staging, and any host copy before that):
    /// at most `upload_bytes` when producers write straight into staging
    pub host_copy_bytes: u64,
    /// nanoseconds the completion thread waited for the device (about the device's busy time)
    pub device_wait_ns: u64,
    /// nanoseconds of host time copying results out of mapped read-back memory
    pub download_ns: u64,
    /// bytes read back
    pub download_bytes: u64,
    /// command buffers submitted
    pub submissions: u64,
    /// blocking waits for the device by threads other than the completion thread
    pub blocking_waits: u64,
    /// of those, waits by the executor's worker threads (zero on the executor's paths)
    pub worker_waits: u64,
}

impl TransferStats {
    /// The counts accumulated since `earlier` (0 for a count `earlier` exceeds, as when the
    /// two are passed the wrong way round).
    pub fn since(&self, earlier: &TransferStats) -> TransferStats {
        TransferStats {
            upload_ns: self.upload_ns.saturating_sub(earlier.upload_ns),
            upload_bytes: self.upload_bytes.saturating_sub(earlier.upload_bytes),
            host_copy_bytes: self.host_copy_bytes.saturating_sub(earlier.host_copy_bytes),
            device_wait_ns: self.device_wait_ns.saturating_sub(earlier.device_wait_ns),
            download_ns: self.download_ns.saturating_sub(earlier.download_ns),
            download_bytes: self.download_bytes.saturating_sub(earlier.download_bytes),
            submissions: self.submissions.saturating_sub(earlier.submissions),
            blocking_waits: self.blocking_waits.saturating_sub(earlier.blocking_waits),
            worker_waits: self.worker_waits.saturating_sub(earlier.worker_waits),
        }
    }
}

/// A device, its queue and compiled pipelines keyed by what they were made from, the engine
/// that owns the queue's completions, and the pooled transfer buffers.
pub struct GpuContext {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    /// what it is
    pub adapter: AdapterReport,
    pub(super) pipelines: Mutex<HashMap<KernelSource, Arc<wgpu::ComputePipeline>>>,
    pub(super) device_tasks: AtomicU64,
    /// bytes of device memory held by results kept on the device ([`super::DeviceBlock`])
    pub(super) resident: AtomicU64,
    /// the most bytes of results kept at once since the last reset
    resident_peak: AtomicU64,
    /// bytes of buffers bound by submitted work not yet done
    pub(super) in_flight: Arc<AtomicU64>,
    device_budget: AtomicU64,
    /// decode tables on the device, by the identity of the host tables they hold
    pub(super) tables: Mutex<
        Vec<(
            Vec<std::sync::Weak<crate::expr::DecodeTable>>,
            super::recording::ConstantBuffer,
        )>,
    >,
    /// host-side transfer counters (see [`TransferStats`])
    pub(super) stats: TransferCounters,
    pub(super) engine_counters: Arc<super::engine::EngineCounters>,
    /// the pooled staging, input and read-back buffers
    pub(super) pools: super::pool::Pools,
    /// the first device error no error scope caught (out of memory creating a buffer, a
    /// validation error on the completion thread): wgpu's default handler panics, so this
    /// keeps it, and every later submission and read-back fails with it
    pub(super) failure: Arc<std::sync::OnceLock<String>>,
    /// device time by kernel, when profiling is on
    pub(super) profiler: Arc<super::profile::Profiler>,
    /// submissions and completions (declared last: dropped after the pools it serves)
    pub(super) engine: super::engine::Engine,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.adapter).finish()
    }
}

impl GpuContext {
    /// Opens the best adapter: a hardware GPU first; a software one (Mesa lavapipe) only when
    /// `allow_software`. Costs adapter enumeration and device creation (tens of milliseconds)
    /// and starts the completion thread.
    ///
    /// **Errors**: [`GpuError::NoAdapter`] with the reason and how to get one.
    pub fn new(allow_software: bool) -> Result<GpuContext, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::all().with_env();
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        // STRATA_GPU_MAX_BINDING (bytes) lowers the binding size strata plans for, so the
        // splitting of large blocks can be exercised on any device.
        let binding_cap = crate::settings::bytes("STRATA_GPU_MAX_BINDING")?.map_or(u64::MAX, |v| v.max(1024));
        let report = AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            max_storage_binding: limits.max_storage_buffer_binding_size.min(binding_cap),
            max_buffer: limits.max_buffer_size,
            loop_limit: loop_limit(&info.name, &info.driver),
        };
        if report.is_software() && !allow_software {
            return Err(GpuError::NoAdapter(format!(
                "only a software adapter ({}) is present and software adapters were not allowed",
                report.name
            )));
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("strata"),
            required_features: super::profile::features(adapter.features()),
            required_limits: limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::NoAdapter(format!("{}: cannot open a device: {e}", report.name)))?;
        let failure: Arc<std::sync::OnceLock<String>> = Arc::default();
        let first = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let _ = first.set(e.to_string());
        }));
        // a lost device is a failure too: later work fails at once, naming the loss
        let lost = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            let _ = lost.set(format!("the device was lost ({reason:?}): {message}"));
        });
        let budget = default_device_budget(&report)?;
        let engine_counters = Arc::new(super::engine::EngineCounters::default());
        let engine =
            super::engine::Engine::new(device.clone(), queue.clone(), engine_counters.clone(), failure.clone());
        let checks = crate::settings::flag("STRATA_GPU_CHECKS")?.unwrap_or(false);
        let profiler = Arc::new(super::profile::Profiler::new(
            device.features(),
            queue.get_timestamp_period(),
            crate::settings::flag("STRATA_GPU_PROFILE")?.unwrap_or(false),
        ));
        let pools = super::pool::Pools::new(device.clone(), queue.clone(), engine.kicker(), budget / 4, checks);
        Ok(GpuContext {
            device,
            queue,
            pipelines: Mutex::default(),
            device_tasks: AtomicU64::new(0),
            resident: AtomicU64::new(0),
            resident_peak: AtomicU64::new(0),
            in_flight: Arc::default(),
            tables: Mutex::default(),
            device_budget: AtomicU64::new(budget),
            stats: TransferCounters::default(),
            engine_counters,
            pools,
            failure,
            profiler,
            engine,
            adapter: report,
        })
    }

    /// `Ok` unless the device has failed (see [`GpuError::Device`]); O(1).
    ///
    /// **Errors**: [`GpuError::Device`] with the device's first uncaught error.
    pub fn check(&self, during: &'static str) -> Result<(), GpuError> {
        match self.failure.get() {
            Some(message) => Err(GpuError::Device {
                during,
                message: message.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The most bytes of results this device keeps between tasks. A result beyond it is
    /// moved to the host as soon as it is computed.
    pub fn device_budget(&self) -> u64 {
        self.device_budget.load(Ordering::Relaxed)
    }

    /// Sets [`GpuContext::device_budget`] (0 moves every result to the host).
    pub fn set_device_budget(&self, bytes: u64) {
        self.device_budget.store(bytes, Ordering::Relaxed);
    }

    /// Bytes of results kept on the device now.
    pub fn resident_bytes(&self) -> u64 {
        self.resident.load(Ordering::Acquire)
    }

    /// Bytes of buffers held by submitted work the device has not finished.
    pub fn in_flight_bytes(&self) -> u64 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Submissions the device has not finished (or whose completions have not yet run).
    pub fn pending_submissions(&self) -> usize {
        self.engine.pending()
    }

    /// Waits until every submission is finished and its completions ran: pooled buffers back
    /// home, nothing in flight. A computation never needs this (its results are complete when
    /// it returns); tests and benchmarks call it before reading the pools' counters.
    pub fn settle(&self) {
        while self.engine.pending() > 0 {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        self.wait_for_stamps();
    }

    /// Waits for the timestamps of finished work to be read, which happens moments after it
    /// finishes: at most 2 s (a failed device may never map them), not at all once the device
    /// has failed.
    pub(super) fn wait_for_stamps(&self) {
        if self.failure.get().is_none() {
            self.profiler.wait_read(std::time::Duration::from_secs(2));
        }
    }

    /// Turns device profiling on or off (see [`DeviceProfile`]); returns
    /// whether it is on now: never on a device without timestamp queries. On at the start
    /// when `STRATA_GPU_PROFILE=1`. While on, each task's command buffer carries a query set
    /// and a small read-back, and runs wait for their last stamps (see `wait_for_stamps`).
    pub fn set_profiling(&self, on: bool) -> bool {
        self.profiler.set(on)
    }

    /// Device time by kernel measured while profiling was on, from the device's own clock
    /// (call [`GpuContext::settle`] first to include work still running). Costs a lock and a
    /// copy of the per-kernel totals.
    pub fn profile(&self) -> DeviceProfile {
        self.profiler.profile()
    }

    /// Whether device profiling is on (see [`GpuContext::set_profiling`]).
    pub fn profiling(&self) -> bool {
        self.profiler.is_on()
    }

    /// Whether submitted work not yet done binds more than half the device budget: the
    /// executor then holds further device tasks back until it drains (kept results are held
    /// to the budget by moving those beyond it to the host).
    pub fn saturated(&self) -> bool {
        self.in_flight_bytes() > self.device_budget() / 2
    }

    /// Takes `bytes` of the device budget, if they are free.
    pub(super) fn try_reserve(&self, bytes: u64) -> bool {
        let budget = self.device_budget();
        let taken = self.resident.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            (held + bytes <= budget).then_some(held + bytes)
        });
        if let Ok(held) = taken {
            self.resident_peak.fetch_max(held + bytes, Ordering::AcqRel);
        }
        taken.is_ok()
    }

    /// The most bytes of results kept on the device at once since the last
    /// [`GpuContext::reset_peak_resident`] (never more than the budget of the time).
    pub fn peak_resident_bytes(&self) -> u64 {
        self.resident_peak.load(Ordering::Acquire)
    }

    /// Starts a new [`GpuContext::peak_resident_bytes`] from what is kept now.
    pub fn reset_peak_resident(&self) {
        self.resident_peak.store(self.resident_bytes(), Ordering::Release);
    }

    /// Checking mode: every input buffer given back to its pool, and every released result,
    /// is overwritten with a poison NaN, so a use after release shows up as NaN in the result
    /// instead of as another block's data now and then. Costs one queue write per release;
    /// the GPU tests turn it on, and `STRATA_GPU_CHECKS=1` turns it on for a process.
    pub fn set_checks(&self, on: bool) {
        self.pools.checks.store(on, Ordering::Relaxed);
    }

    /// Whether checking mode is on.
    pub fn checks(&self) -> bool {
        self.pools.checks.load(Ordering::Relaxed)
    }

    /// Bytes of idle pooled buffers (staging, input and read-back) kept for reuse.
    pub fn pooled_bytes(&self) -> u64 {
        self.pools.idle_bytes()
    }

    /// Bytes of idle pooled device input buffers.
    pub fn pooled_input_bytes(&self) -> u64 {
        self.pools.idle_input_bytes()
    }

    /// Drops every idle pooled buffer, so the next transfers allocate afresh (tests use it).
    pub fn clear_pools(&self) {
        self.pools.clear();
    }

    /// Transfer and device counters so far (a benchmark takes the difference of two).
    pub fn transfer_stats(&self) -> TransferStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (s, e) = (&self.stats, &self.engine_counters);
        TransferStats {
            upload_ns: get(&s.upload_ns),
            upload_bytes: get(&s.upload_bytes),
            host_copy_bytes: get(&s.host_copy_bytes),
            device_wait_ns: get(&e.device_wait_ns),
            download_ns: get(&s.download_ns),
            download_bytes: get(&s.download_bytes),
            submissions: get(&e.submissions),
            blocking_waits: get(&e.blocking_waits),
            worker_waits: get(&e.worker_waits),
        }
    }

    /// Tasks run on this device so far (tests use it to show a task did not fall back to
    /// the CPU).
    pub fn device_tasks(&self) -> u64 {
        self.device_tasks.load(Ordering::Relaxed)
    }

    /// The compute pipeline of `kernel` (entry point `main`), compiled once and cached; the
    /// WGSL text is made only on the first call.
    ///
    /// **Errors**: [`GpuError::Shader`] with the validation message.
    pub fn pipeline(&self, kernel: KernelSource) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).get(&kernel) {
            return Ok(p.clone());
        }
        let source = kernel.to_string();
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("strata kernel"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("strata kernel"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader(e.to_string()));
        }
        let pipeline = Arc::new(pipeline);
        self.pipelines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kernel, pipeline.clone());
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_uncaught_device_error_fails_later_work_instead_of_panicking() {
        // a context of its own: the failure it records is sticky
        let Some(ctx) = super::super::context_for_test("device failure", || GpuContext::new(true)) else {
            return;
        };
        assert!(ctx.check("before").is_ok());
        // A buffer past the device's largest, created outside any error scope, as one that
        // runs out of memory would be: wgpu's default handler panicked.
        let _too_big = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("past the largest buffer"),
            size: ctx.adapter.max_buffer.saturating_add(1 << 20),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let noticed = ctx.check("after").unwrap_err();
        assert!(matches!(noticed, GpuError::Device { during: "after", .. }), "{noticed}");
        // and the next submission says so
        let submitted = super::super::recording::Recording::new(&ctx, "after the failure").submit();
        assert!(
            matches!(
                submitted,
                Err(GpuError::Device {
                    during: "submitting work",
                    ..
                })
            ),
            "{submitted:?}"
        );
    }

    #[test]
    fn a_destroyed_device_gives_errors_not_panics_or_hangs() {
        use super::super::recording::{Bind, Recording};
        let Some(ctx) = super::super::context_for_test("device loss", || GpuContext::new(true)) else {
            return;
        };
        // A lost device, as far as this machine can make one. Its uploads and read-backs must
        // come back as errors: a failed mapping dropped its read-back lease, whose unmapping
        // of a buffer never mapped was itself a device error, and wgpu's default handler
        // panicked on the completion thread.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            ctx.device.destroy();
            let _ = ctx.device.poll(wgpu::PollType::Poll);
            let lost = ctx.check("right after the loss");
            let mut rec = Recording::new(&ctx, "an upload after the loss");
            let uploaded = rec.upload_with(4096, |mut words| words.fill(7)).map(|_| ());
            let rec = Recording::new(&ctx, "a read-back after the loss");
            let result = rec.result("a result after the loss", 4096);
            let read = rec.read_now(&Bind::Result(&result), 4096).map(|_| ());
            let _ = tx.send((lost, uploaded, read, ctx.check("after the loss")));
        });
        let (lost, uploaded, read, after) = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the work after a device loss panicked or hung");
        // wgpu reports the loss at the next poll
        let lost = lost.unwrap_err().to_string();
        assert!(lost.contains("lost (Destroyed)"), "{lost}");
        assert!(uploaded.is_err(), "an upload on a destroyed device succeeded");
        assert!(
            matches!(read, Err(GpuError::Mapping { .. } | GpuError::Device { .. })),
            "{read:?}"
        );
        assert!(matches!(after, Err(GpuError::Device { .. })), "{after:?}");
    }
}
