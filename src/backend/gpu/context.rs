//! [`GpuContext`]: one wgpu device and queue, its adapter's description, and the compiled
//! pipelines, made once and passed by reference (never acquired deep inside a kernel).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

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
}

impl AdapterReport {
    /// Whether this is a software rasteriser (lavapipe, llvmpipe, WARP).
    pub fn is_software(&self) -> bool {
        self.device_type == "Cpu"
    }
}

/// The device budget unless `STRATA_DEVICE_BUDGET` (bytes) says otherwise: the largest buffer's
/// size clamped to 256 MiB..4 GiB on hardware (wgpu does not report the memory size), 256 MiB on
/// a software adapter, whose "device memory" is the host's.
fn default_device_budget(adapter: &AdapterReport) -> u64 {
    if let Some(bytes) = std::env::var("STRATA_DEVICE_BUDGET").ok().and_then(|v| v.parse().ok()) {
        return bytes;
    }
    if adapter.is_software() {
        256 << 20
    } else {
        adapter.max_buffer.clamp(256 << 20, 4 << 30)
    }
}

/// Counters of where device time goes, in nanoseconds of the threads that waited for it.
#[derive(Debug, Default)]
pub(super) struct TransferCounters {
    pub(super) upload_ns: AtomicU64,
    pub(super) upload_bytes: AtomicU64,
    pub(super) compute_ns: AtomicU64,
    pub(super) download_ns: AtomicU64,
    pub(super) download_bytes: AtomicU64,
}

impl TransferCounters {
    fn snapshot(&self) -> TransferStats {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TransferStats {
            upload_ns: get(&self.upload_ns),
            upload_bytes: get(&self.upload_bytes),
            compute_ns: get(&self.compute_ns),
            download_ns: get(&self.download_ns),
            download_bytes: get(&self.download_bytes),
        }
    }
}

/// Where device time went, summed over worker threads (so it can exceed wall time): host time
/// handing inputs to the device, time spent submitting work and waiting for it (compute, with
/// the copies queued with it; a software adapter runs work inside the submit), and time
/// mapping and copying results out.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct TransferStats {
    /// nanoseconds spent writing inputs into device buffers
    pub upload_ns: u64,
    /// bytes written
    pub upload_bytes: u64,
    /// nanoseconds submitting work and waiting for it to complete
    pub compute_ns: u64,
    /// nanoseconds spent mapping and copying results back
    pub download_ns: u64,
    /// bytes read back
    pub download_bytes: u64,
}

impl TransferStats {
    /// The counts accumulated since `earlier`.
    pub fn since(&self, earlier: &TransferStats) -> TransferStats {
        TransferStats {
            upload_ns: self.upload_ns - earlier.upload_ns,
            upload_bytes: self.upload_bytes - earlier.upload_bytes,
            compute_ns: self.compute_ns - earlier.compute_ns,
            download_ns: self.download_ns - earlier.download_ns,
            download_bytes: self.download_bytes - earlier.download_bytes,
        }
    }
}

/// What a compiled pipeline was made from: a generated kernel (its `Display` is the WGSL), or
/// a fixed shader named by its file. The cache is keyed by this value, so a hit never prints
/// or hashes shader text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelSource {
    /// a fused elementwise kernel
    Fused(super::FusedKernel),
    /// a median kernel of this private-array length
    Median(u32),
    /// a hand-written shader: (file name, its text)
    Fixed(&'static str, &'static str),
}

impl std::fmt::Display for KernelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KernelSource::Fused(k) => k.fmt(f),
            KernelSource::Median(max_len) => super::median::MedianKernel { max_len: *max_len }.fmt(f),
            KernelSource::Fixed(_, text) => f.write_str(text),
        }
    }
}

/// A device, its queue and compiled pipelines keyed by what they were made from.
pub struct GpuContext {
    /// the device
    pub device: wgpu::Device,
    /// its queue
    pub queue: wgpu::Queue,
    /// what it is
    pub adapter: AdapterReport,
    pub(super) pipelines: Mutex<HashMap<KernelSource, Arc<wgpu::ComputePipeline>>>,
    pub(super) device_tasks: AtomicU64,
    /// bytes of device memory held by results kept on the device ([`super::DeviceBlock`])
    pub(super) resident: AtomicU64,
    /// bytes of buffers bound by work submitted without waiting and not yet done
    pub(super) in_flight: Arc<AtomicU64>,
    device_budget: AtomicU64,
    /// decode tables on the device, by the identity of the host tables they hold
    pub(super) tables: Mutex<Vec<(Vec<std::sync::Weak<crate::expr::DecodeTable>>, wgpu::Buffer)>>,
    /// where device time goes (see [`TransferStats`])
    pub(super) stats: TransferCounters,
    /// reused staging belts and input buffers
    pub(super) uploads: super::pool::UploadPool,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.adapter).finish()
    }
}

impl GpuContext {
    /// Opens the best adapter: a hardware GPU first; a software one (Mesa lavapipe) only when
    /// `allow_software`. Costs adapter enumeration and device creation (tens of milliseconds).
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
        let binding_cap = std::env::var("STRATA_GPU_MAX_BINDING")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(u64::MAX, |v| v.max(1024));
        let report = AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            max_storage_binding: limits.max_storage_buffer_binding_size.min(binding_cap),
            max_buffer: limits.max_buffer_size,
        };
        if report.is_software() && !allow_software {
            return Err(GpuError::NoAdapter(format!(
                "only a software adapter ({}) is present and software adapters were not allowed",
                report.name
            )));
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("strata"),
            required_features: wgpu::Features::empty(),
            required_limits: limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::NoAdapter(format!("{}: cannot open a device: {e}", report.name)))?;
        let budget = default_device_budget(&report);
        Ok(GpuContext {
            device,
            queue,
            pipelines: Mutex::default(),
            device_tasks: AtomicU64::new(0),
            resident: AtomicU64::new(0),
            in_flight: Arc::default(),
            tables: Mutex::default(),
            device_budget: AtomicU64::new(budget),
            stats: TransferCounters::default(),
            uploads: super::pool::UploadPool::new(budget / 4),
            adapter: report,
        })
    }

    /// The most bytes of results this device keeps between tasks. Results beyond it are read
    /// back to the host at once; in-flight kernel buffers are not counted.
    pub fn device_budget(&self) -> u64 {
        self.device_budget.load(Ordering::Relaxed)
    }

    /// Sets [`GpuContext::device_budget`] (0 reads every result back).
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

    /// Waits for the device while submitted work holds more than the device budget, so
    /// submitting without waiting (results kept on the device) cannot queue unbounded memory.
    ///
    /// **Errors**: [`GpuError::Device`] when the device is lost.
    pub(super) fn throttle(&self) -> Result<(), GpuError> {
        while self.in_flight_bytes() > self.device_budget() {
            let began = std::time::Instant::now();
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| GpuError::Device(e.to_string()))?;
            // Waiting for submitted work is compute time too.
            self.stats
                .compute_ns
                .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Takes `bytes` of the device budget, if they are free.
    pub(super) fn try_reserve(&self, bytes: u64) -> bool {
        let budget = self.device_budget();
        self.resident
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= budget).then_some(held + bytes)
            })
            .is_ok()
    }

    /// Bytes of idle input buffers kept for reuse (at most a quarter of the default budget).
    pub fn pooled_bytes(&self) -> u64 {
        self.uploads.idle_bytes()
    }

    /// Transfer and compute time and bytes so far (a benchmark takes the difference of two).
    pub fn transfer_stats(&self) -> TransferStats {
        self.stats.snapshot()
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
