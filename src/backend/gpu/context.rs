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
    /// largest storage buffer binding in bytes (blocks beyond it are split)
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

/// A device, its queue and compiled pipelines keyed by kernel source.
pub struct GpuContext {
    /// the device
    pub device: wgpu::Device,
    /// its queue
    pub queue: wgpu::Queue,
    /// what it is
    pub adapter: AdapterReport,
    pub(super) pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    pub(super) device_tasks: AtomicU64,
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
        let report = AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            max_storage_binding: limits.max_storage_buffer_binding_size,
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
        Ok(GpuContext {
            device,
            queue,
            adapter: report,
            pipelines: Mutex::default(),
            device_tasks: AtomicU64::new(0),
        })
    }

    /// Tasks run on this device so far (tests use it to show a task did not fall back to
    /// the CPU).
    pub fn device_tasks(&self) -> u64 {
        self.device_tasks.load(Ordering::Relaxed)
    }

    /// The compute pipeline of `source` (entry point `main`), compiled once and cached.
    ///
    /// **Errors**: [`GpuError::Shader`] with the validation message.
    pub fn pipeline(&self, source: &str) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        if let Some(p) = self.pipelines.lock().unwrap_or_else(|e| e.into_inner()).get(source) {
            return Ok(p.clone());
        }
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
            .insert(source.to_string(), pipeline.clone());
        Ok(pipeline)
    }
}
