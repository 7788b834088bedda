//! Device time by kernel, read from the GPU's own clock (timestamp queries): what a host
//! timer cannot tell apart, the kernels' own time against the copies and the gaps between
//! them. Off unless asked for (`STRATA_GPU_PROFILE=1` or [`GpuContext::set_profiling`](super::GpuContext::set_profiling)),
//! and only on devices with timestamp queries (Vulkan, DX12, Metal on AMD and Intel).
//!
//! A recording made while profiling is on carries a [`Stamps`]: a query set whose first two
//! entries bracket the whole command buffer and whose next pairs bracket each dispatch. At
//! submission they are resolved into a buffer that is mapped once the device is done, and the
//! [`Profiler`] adds them to its totals.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Timestamps one recording can take: the command buffer's start and end, and a pair per
/// dispatch for this many dispatches (a task's dispatches past them go untimed, counted).
const DISPATCHES: u32 = 63;
const QUERIES: u32 = 2 + 2 * DISPATCHES;

/// What the device's clock measured of one kernel's dispatches.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KernelTime {
    /// the kernel, as its dispatches are labelled (`fused`, `median`, `reduce`, ...)
    pub kernel: String,
    /// dispatches timed
    pub dispatches: u64,
    /// device nanoseconds from each dispatch's start to its end, summed
    pub device_ns: u64,
}

/// Device time by kernel while profiling was on (see the module docs). Building one costs a
/// lock and a copy of the per-kernel totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceProfile {
    /// per kernel, by name
    pub kernels: Vec<KernelTime>,
    /// command buffers timed
    pub submissions: u64,
    /// device nanoseconds from the start to the end of each timed command buffer, summed: its
    /// kernels, its copies (uploads, read-backs) and the gaps between them
    pub submission_ns: u64,
    /// dispatches not timed (past a recording's query capacity)
    pub untimed: u64,
}

impl DeviceProfile {
    /// Device nanoseconds of all kernels' dispatches. O(kernels).
    pub fn kernel_ns(&self) -> u64 {
        self.kernels.iter().map(|k| k.device_ns).sum()
    }

    /// What was measured since `earlier` (a profile of the same context taken before). O(kernels).
    pub fn since(&self, earlier: &DeviceProfile) -> DeviceProfile {
        let before = |name: &str| earlier.kernels.iter().find(|k| k.kernel == name);
        let kernels = self
            .kernels
            .iter()
            .map(|k| {
                let (d, ns) = before(&k.kernel).map_or((0, 0), |b| (b.dispatches, b.device_ns));
                KernelTime {
                    kernel: k.kernel.clone(),
                    dispatches: k.dispatches.saturating_sub(d),
                    device_ns: k.device_ns.saturating_sub(ns),
                }
            })
            .filter(|k| k.dispatches > 0)
            .collect();
        DeviceProfile {
            kernels,
            submissions: self.submissions.saturating_sub(earlier.submissions),
            submission_ns: self.submission_ns.saturating_sub(earlier.submission_ns),
            untimed: self.untimed.saturating_sub(earlier.untimed),
        }
    }
}

#[derive(Default)]
struct Totals {
    kernels: BTreeMap<String, (u64, u64)>,
    submissions: u64,
    submission_ns: u64,
    untimed: u64,
}

/// A context's profiling switch and totals.
pub(super) struct Profiler {
    /// whether the device has timestamp queries (in passes and encoders)
    able: bool,
    on: AtomicBool,
    /// nanoseconds per timestamp tick
    period_ns: f64,
    totals: Mutex<Totals>,
    /// timed submissions whose timestamps have not been read yet
    outstanding: Arc<AtomicU64>,
}

/// What profiling needs: stamps around passes, and around whole command buffers.
const NEEDS: wgpu::Features = wgpu::Features::TIMESTAMP_QUERY.union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS);

/// The features to ask a device for so it can profile: all of [`NEEDS`] where `available`
/// has them, else none.
pub(super) fn features(available: wgpu::Features) -> wgpu::Features {
    if available.contains(NEEDS) {
        NEEDS
    } else {
        wgpu::Features::empty()
    }
}

impl Profiler {
    /// For a device opened with `features`; on from the start when `on` (and able).
    pub(super) fn new(features: wgpu::Features, period_ns: f32, on: bool) -> Self {
        let able = features.contains(NEEDS);
        Profiler {
            able,
            on: AtomicBool::new(on && able),
            period_ns: f64::from(period_ns),
            totals: Mutex::default(),
            outstanding: Arc::default(),
        }
    }

    /// Turns profiling on or off; whether it is on now (never, without timestamp queries).
    pub(super) fn set(&self, on: bool) -> bool {
        self.on.store(on && self.able, Ordering::Relaxed);
        self.is_on()
    }

    pub(super) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Timed submissions not yet read (`settle` waits for them too).
    pub(super) fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Waits until the timestamps of submitted work are read, for at most `limit` (a mapping
    /// of a failed device may never answer); whether they all were.
    pub(super) fn wait_read(&self, limit: std::time::Duration) -> bool {
        let began = std::time::Instant::now();
        while self.outstanding() > 0 {
            if began.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        true
    }

    /// The totals so far.
    pub(super) fn profile(&self) -> DeviceProfile {
        let t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        DeviceProfile {
            kernels: t
                .kernels
                .iter()
                .map(|(kernel, &(dispatches, device_ns))| KernelTime {
                    kernel: kernel.clone(),
                    dispatches,
                    device_ns,
                })
                .collect(),
            submissions: t.submissions,
            submission_ns: t.submission_ns,
            untimed: t.untimed,
        }
    }

    /// Adds one submission's resolved ticks (`ticks[0..2]` the command buffer, then a pair
    /// per entry of `kernels`). A pair whose end is before its start (a clock the driver
    /// reset) counts as zero.
    fn add(&self, ticks: &[u64], kernels: &[&'static str], untimed: u64) {
        let ns = |a: u64, b: u64| (b.saturating_sub(a) as f64 * self.period_ns) as u64;
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.submissions += 1;
        t.submission_ns += ns(ticks[0], ticks[1]);
        t.untimed += untimed;
        for (i, kernel) in kernels.iter().enumerate() {
            let e = t.kernels.entry((*kernel).to_string()).or_default();
            e.0 += 1;
            e.1 += ns(ticks[2 + 2 * i], ticks[3 + 2 * i]);
        }
    }
}

/// One recording's timestamps.
pub(super) struct Stamps {
    set: wgpu::QuerySet,
    kernels: Vec<&'static str>,
    untimed: u64,
}

impl Stamps {
    /// A query set for one recording, and the command buffer's start stamp written; `None`
    /// when profiling is off.
    pub(super) fn begin(
        device: &wgpu::Device,
        profiler: &Profiler,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Option<Self> {
        if !profiler.is_on() {
            return None;
        }
        // in scopes of its own: a query set the device cannot make (out of memory) leaves
        // this recording untimed instead of failing the device for everyone
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let inner = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("strata timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: QUERIES,
        });
        let invalid = pollster::block_on(inner.pop());
        let failed = pollster::block_on(scope.pop());
        if invalid.is_some() || failed.is_some() {
            return None;
        }
        encoder.write_timestamp(&set, 0);
        Some(Stamps {
            set,
            kernels: Vec::new(),
            untimed: 0,
        })
    }

    /// The timestamp writes for the next dispatch, of `kernel`; `None` past the capacity.
    pub(super) fn dispatch(&mut self, kernel: &'static str) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        if self.kernels.len() as u32 >= DISPATCHES {
            self.untimed += 1;
            return None;
        }
        let first = 2 + 2 * self.kernels.len() as u32;
        self.kernels.push(kernel);
        Some(wgpu::ComputePassTimestampWrites {
            query_set: &self.set,
            beginning_of_pass_write_index: Some(first),
            end_of_pass_write_index: Some(first + 1),
        })
    }

    /// Writes the end stamp and records the resolve into a read-back buffer: call last, before
    /// the encoder is finished. The stamps count as outstanding from now (so a `settle` that
    /// sees the submission done still waits for them) until they are read or dropped.
    pub(super) fn end(
        self,
        device: &wgpu::Device,
        profiler: &Profiler,
        encoder: &mut wgpu::CommandEncoder,
    ) -> ResolvedStamps {
        encoder.write_timestamp(&self.set, 1);
        let count = 2 + 2 * self.kernels.len() as u32;
        let bytes = u64::from(count) * 8;
        let resolve = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("strata timestamps resolved"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let read = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("strata timestamps read"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.resolve_query_set(&self.set, 0..count, &resolve, 0);
        encoder.copy_buffer_to_buffer(&resolve, 0, &read, 0, Some(bytes));
        profiler.outstanding.fetch_add(1, Ordering::AcqRel);
        ResolvedStamps {
            read,
            kernels: self.kernels,
            untimed: self.untimed,
            outstanding: Some(profiler.outstanding.clone()),
        }
    }
}

/// A recording's timestamps on their way to the host, counted as outstanding until read (or
/// dropped unread: a submission that failed validation).
pub(super) struct ResolvedStamps {
    read: wgpu::Buffer,
    kernels: Vec<&'static str>,
    untimed: u64,
    /// the profiler's outstanding count, to take one from when these are read or dropped
    outstanding: Option<Arc<AtomicU64>>,
}

impl Drop for ResolvedStamps {
    fn drop(&mut self) {
        if let Some(n) = self.outstanding.take() {
            n.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl ResolvedStamps {
    /// Maps the timestamps once the submission that resolved them is done and adds them to
    /// `profiler`'s totals (on the completion thread). Call right after submitting, then ask
    /// the engine to poll.
    pub(super) fn read_after(mut self, profiler: &Arc<Profiler>) {
        let outstanding = self.outstanding.take();
        let (kernels, untimed) = (std::mem::take(&mut self.kernels), self.untimed);
        let buffer = self.read.clone();
        let profiler = profiler.clone();
        self.read.map_async(wgpu::MapMode::Read, .., move |r| {
            if r.is_ok() {
                if let Ok(view) = buffer.get_mapped_range(..) {
                    let ticks: Vec<u64> = bytemuck::cast_slice::<u8, u64>(&view).to_vec();
                    drop(view);
                    profiler.add(&ticks, &kernels, untimed);
                }
                buffer.unmap();
            }
            if let Some(n) = outstanding {
                n.fetch_sub(1, Ordering::AcqRel);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_become_nanoseconds_per_kernel() {
        let p = Profiler::new(wgpu::Features::empty(), 2.5, true);
        assert!(!p.is_on(), "no timestamp queries, no profiling");
        // a command buffer of ticks 100..900, two dispatches of "fused" and one of "median"
        p.add(
            &[100, 900, 110, 210, 300, 340, 400, 800],
            &["fused", "fused", "median"],
            1,
        );
        p.add(&[0, 40, 10, 5], &["fused"], 0);
        let got = p.profile();
        let want = DeviceProfile {
            kernels: vec![
                KernelTime {
                    kernel: "fused".into(),
                    dispatches: 3,
                    device_ns: 350, // (100 + 40) × 2.5; the reversed pair counts 0
                },
                KernelTime {
                    kernel: "median".into(),
                    dispatches: 1,
                    device_ns: 1000,
                },
            ],
            submissions: 2,
            submission_ns: 2100,
            untimed: 1,
        };
        assert_eq!(got, want);
        assert_eq!(got.kernel_ns(), 1350);
        let later = {
            p.add(&[0, 4, 0, 4], &["reduce"], 0);
            p.profile()
        };
        let d = later.since(&got);
        assert_eq!(d.submissions, 1);
        assert_eq!(d.submission_ns, 10);
        assert_eq!(
            d.kernels,
            vec![KernelTime {
                kernel: "reduce".into(),
                dispatches: 1,
                device_ns: 10
            }]
        );
    }
}
