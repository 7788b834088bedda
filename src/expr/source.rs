//! Where pixels come from: in-memory arrays, on-demand chunk sources, computed blocks.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArcArray, ArrayD, ArrayViewD, IxDyn, SliceInfoElem};

use super::DType;

/// The error a [`ChunkSource`] returns; the executor wraps it with the source and region
/// (`BackendError::Source`). Boxed so any source can return its own type, which is kept:
/// `strata::Error::source_error::<E>()` gives it back typed (a stack's `StackError`, naming
/// the item and asset).
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// A producer of any block of an array on demand: procedural data, or a stack of COG windows.
///
/// `read` must return exactly the region asked for, as f32, and must give the same values for
/// the same pixels whatever the region (results must not depend on chunking).
pub trait ChunkSource: Send + Sync + fmt::Debug {
    /// Produces the values of `region` (one range per axis) in C order.
    ///
    /// **Errors**: whatever the source cannot read; reported with the block it was reading.
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<f32>, SourceError>;

    /// A short name for task graphs and reports.
    fn label(&self) -> String {
        "source".into()
    }

    /// This source as data (`{"kind": "...", ...}`) from which another process can make it
    /// again, through a registry of kinds (a job's worker: `job::SourceKinds`). `None`, the
    /// default, for sources that cannot travel (user closures, data in this process's
    /// memory): a job holding one is refused with the source named. Costs a serialisation.
    fn spec(&self) -> Option<serde_json::Value> {
        None
    }

    /// Whether reads mostly wait on I/O (a remote source). The executor then admits them up
    /// to `io_lookahead` blocks further ahead, while at most half the budget is held, so their
    /// fetches overlap the work before them. Default: false.
    fn waits_on_io(&self) -> bool {
        false
    }

    /// A hint that `region` will be read soon: a remote source starts fetching it now, so
    /// the fetch overlaps the work before it. Must return at once; the default does nothing.
    /// The executor calls it when it reserves budget for the read, so what a source fetches
    /// ahead stays inside the memory budget, and holds the returned ticket until the task
    /// that reads the region has ended: dropping a ticket whose region was never read (a run
    /// that failed, say) cancels the fetch and frees its bytes.
    fn prefetch(&self, region: &[Range<usize>]) -> Prefetch {
        let _ = region;
        Prefetch::none()
    }

    /// The block for a backend that decodes on its device: as stored codes and decode tables
    /// (fewer bytes to move) when the source has that form for this block, else as values. A
    /// raw block must decode to exactly what [`ChunkSource::read`] gives. Only strata's own
    /// sources return raw blocks (the types are crate-internal, so other sources keep this
    /// default, which reads values).
    ///
    /// **Errors**: as [`ChunkSource::read`].
    fn read_raw(&self, region: &[Range<usize>]) -> Result<SourceData, SourceError> {
        self.read(region).map(SourceData::Values)
    }

    /// The counters of the store this source reads through, for the execution report's I/O
    /// figures (requests, retries by cause, hedges). Sources sharing a store return the same
    /// meter, and the report counts it once. Default: `None` (no remote reads).
    fn io_meter(&self) -> Option<Arc<dyn IoMeter>> {
        None
    }
}

/// Something that counts remote reads: an object store. Reading the counters is a few atomic
/// loads.
pub trait IoMeter: Send + Sync {
    /// The counters so far.
    fn counters(&self) -> IoCounters;

    /// Requests being sent or received now.
    fn in_flight(&self) -> u64 {
        0
    }

    /// The requests finished (or abandoned) since the last call, oldest first, for a
    /// dashboard's network lane. A store keeps the last few thousand; older ones are dropped
    /// when nobody takes them. Default: none.
    fn take_requests(&self) -> Vec<RequestSpan> {
        Vec::new()
    }
}

/// A fetch started ahead of its read ([`ChunkSource::prefetch`]), owned by whoever will have
/// the region read. Dropping it cancels the fetch unless the read already took it; the read
/// itself never needs the ticket. Costs one boxed closure.
#[must_use = "dropping a prefetch ticket cancels the fetch"]
pub struct Prefetch(Option<Box<dyn FnOnce() + Send>>);

impl Prefetch {
    /// A ticket for nothing (a source that does not fetch ahead).
    pub fn none() -> Prefetch {
        Prefetch(None)
    }

    /// A ticket that runs `cancel` when dropped: it forgets the region's fetch if the read
    /// has not taken it, stopping the transfer and freeing its bytes.
    pub fn cancelling(cancel: impl FnOnce() + Send + 'static) -> Prefetch {
        Prefetch(Some(Box::new(cancel)))
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            cancel();
        }
    }
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Prefetch(pending)"
        } else {
            "Prefetch(none)"
        })
    }
}

/// One HTTP request as a dashboard draws it. Holds no query string (signed URLs stay secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpan {
    /// when it was sent
    pub start: std::time::Instant,
    /// when its answer was complete, or it was abandoned
    pub end: std::time::Instant,
    /// the object, query string removed
    pub url: String,
    /// the bytes asked for (`0..u64::MAX`: the whole object)
    pub range: Range<u64>,
    /// body bytes received
    pub bytes: u64,
    /// `read`, `hedged read` (a duplicate that won), `cancelled read` (lost to its twin),
    /// `failed read`, or a try retried for its cause: `retried: timeout`, `retried: status`, `retried: network`,
    /// `retried: re-signed`
    pub outcome: &'static str,
}

/// What remote reads cost: requests, bytes, retries by cause, hedged requests. A store keeps
/// them from its start; the execution report holds the difference over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IoCounters {
    /// HTTP requests sent (every attempt and every hedge counts) or file reads made
    pub requests: u64,
    /// body bytes received (a cancelled request's bytes included)
    pub bytes: u64,
    /// requests sent again after one failed, by cause
    pub retries: RetryCounts,
    /// transfers abandoned because no bytes came for the stall interval, or the whole-request
    /// limit passed (retried, or overtaken by a hedge)
    pub timeouts: u64,
    /// duplicate requests sent because the first was slower than its peers
    pub hedges: u64,
    /// of those, the ones whose answer came first
    pub hedges_won: u64,
    /// microseconds threads spent blocked waiting for reads to finish, summed over the threads
    /// (a task's time minus this is its computing)
    #[serde(default)]
    pub wait_us: u64,
    /// block reads of objects found missing (HTTP 404/410, no such file) that a reader
    /// answered with nodata instead of failing (a stack's `missing_as_nodata`)
    #[serde(default)]
    pub missing_as_nodata: u64,
}

/// Retries by what made them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetryCounts {
    /// after a stalled transfer or one past its whole-request limit
    pub timeout: u64,
    /// after HTTP 429 or 5xx
    pub status: u64,
    /// after a failed connect, a reset or a cut body
    pub network: u64,
    /// after HTTP 403 with a signer (the URL signed again)
    pub resign: u64,
}

impl RetryCounts {
    /// All retries.
    pub fn total(&self) -> u64 {
        self.timeout + self.status + self.network + self.resign
    }
}

impl IoCounters {
    /// What happened between `before` and `self` (counters only grow; a smaller value reads 0).
    pub fn since(&self, before: &IoCounters) -> IoCounters {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        IoCounters {
            requests: d(self.requests, before.requests),
            bytes: d(self.bytes, before.bytes),
            retries: RetryCounts {
                timeout: d(self.retries.timeout, before.retries.timeout),
                status: d(self.retries.status, before.retries.status),
                network: d(self.retries.network, before.retries.network),
                resign: d(self.retries.resign, before.retries.resign),
            },
            timeouts: d(self.timeouts, before.timeouts),
            hedges: d(self.hedges, before.hedges),
            hedges_won: d(self.hedges_won, before.hedges_won),
            wait_us: d(self.wait_us, before.wait_us),
            missing_as_nodata: d(self.missing_as_nodata, before.missing_as_nodata),
        }
    }

    /// The sum of two stores' counters.
    pub fn plus(&self, other: &IoCounters) -> IoCounters {
        IoCounters {
            requests: self.requests + other.requests,
            bytes: self.bytes + other.bytes,
            retries: RetryCounts {
                timeout: self.retries.timeout + other.retries.timeout,
                status: self.retries.status + other.retries.status,
                network: self.retries.network + other.retries.network,
                resign: self.retries.resign + other.retries.resign,
            },
            timeouts: self.timeouts + other.timeouts,
            hedges: self.hedges + other.hedges,
            hedges_won: self.hedges_won + other.hedges_won,
            wait_us: self.wait_us + other.wait_us,
            missing_as_nodata: self.missing_as_nodata + other.missing_as_nodata,
        }
    }
}

/// What [`ChunkSource::read_raw`] gives.
#[derive(Debug, Clone)]
pub enum SourceData {
    /// decoded values
    Values(ArrayD<f32>),
    /// stored codes and their decode tables
    Raw(super::RawBlock),
}

/// One computed block: f32 values or a u8 mask. Shares its buffer (`ArcArray`), so cutting a
/// block out of a larger array or handing it to several consumers copies nothing.
#[derive(Debug, Clone)]
pub enum Block {
    /// f32 values
    F32(ArcArray<f32, IxDyn>),
    /// a mask of 0/1 bytes
    U8(ArcArray<u8, IxDyn>),
}

impl Block {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Block::F32(_) => DType::F32,
            Block::U8(_) => DType::U8,
        }
    }

    /// The block's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Block::F32(a) => a.shape(),
            Block::U8(a) => a.shape(),
        }
    }

    /// Bytes of element data (what the block costs in the memory budget).
    pub fn nbytes(&self) -> u64 {
        (self.shape().iter().product::<usize>() * self.dtype().size()) as u64
    }

    /// The values as f32 (masks become 0.0/1.0; a copy only for masks).
    pub fn to_f32(&self) -> ArcArray<f32, IxDyn> {
        match self {
            Block::F32(a) => a.clone(),
            Block::U8(a) => a.mapv(f32::from).into_shared(),
        }
    }
}

/// Element types accepted by [`HostArray`]: converted to f32 when a block is read.
pub trait SourceElement: Copy + Send + Sync + 'static {
    /// Wraps an array of this type.
    fn wrap(array: ArcArray<Self, IxDyn>) -> HostArray;
}

macro_rules! source_element {
    ($($t:ty => $variant:ident),*) => {$(
        impl SourceElement for $t {
            fn wrap(array: ArcArray<Self, IxDyn>) -> HostArray {
                HostArray::$variant(array)
            }
        }
    )*};
}
source_element!(f32 => F32, f64 => F64, u8 => U8, u16 => U16, i16 => I16, u32 => U32, i32 => I32);

/// An in-memory array of any supported source type, shared, read block by block.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum HostArray {
    F32(ArcArray<f32, IxDyn>),
    F64(ArcArray<f64, IxDyn>),
    U8(ArcArray<u8, IxDyn>),
    U16(ArcArray<u16, IxDyn>),
    I16(ArcArray<i16, IxDyn>),
    U32(ArcArray<u32, IxDyn>),
    I32(ArcArray<i32, IxDyn>),
    /// a mask (kept as u8)
    Mask(ArcArray<u8, IxDyn>),
}

impl HostArray {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            HostArray::F32(a) => a.shape(),
            HostArray::F64(a) => a.shape(),
            HostArray::U8(a) | HostArray::Mask(a) => a.shape(),
            HostArray::U16(a) => a.shape(),
            HostArray::I16(a) => a.shape(),
            HostArray::U32(a) => a.shape(),
            HostArray::I32(a) => a.shape(),
        }
    }

    /// The dtype blocks of this array have once read (f32, or u8 for masks).
    pub fn dtype(&self) -> DType {
        match self {
            HostArray::Mask(_) => DType::U8,
            _ => DType::F32,
        }
    }

    /// The block covering `region`: a view sharing the buffer for f32 and masks, else a
    /// converted copy. Costs O(region) for converted types, O(1) otherwise.
    pub fn block(&self, region: &[Range<usize>]) -> Block {
        let info: Vec<SliceInfoElem> = region.iter().map(|r| SliceInfoElem::from(r.clone())).collect();
        let info = info.as_slice();
        fn convert<T: Copy>(a: &ArcArray<T, IxDyn>, info: &[SliceInfoElem], f: impl Fn(T) -> f32) -> Block {
            Block::F32(a.slice(info).mapv(f).into_shared())
        }
        match self {
            HostArray::F32(a) => Block::F32(a.clone().slice_move(info)),
            HostArray::Mask(a) => Block::U8(a.clone().slice_move(info)),
            HostArray::F64(a) => convert(a, info, |v| v as f32),
            HostArray::U8(a) => convert(a, info, f32::from),
            HostArray::U16(a) => convert(a, info, f32::from),
            HostArray::I16(a) => convert(a, info, f32::from),
            HostArray::U32(a) => convert(a, info, |v| v as f32),
            HostArray::I32(a) => convert(a, info, |v| v as f32),
        }
    }
}

/// A function from one f32 block to a block of the same shape.
pub type BlockFunction = dyn Fn(ArrayViewD<'_, f32>) -> ArrayD<f32> + Send + Sync;

/// A user function over one f32 block, with a name for graphs (dask's `map_blocks` callable).
#[derive(Clone)]
pub struct BlockFn {
    /// name shown in graphs and reports
    pub name: String,
    /// the function; must return an array of the shape it was given
    pub f: Arc<BlockFunction>,
}

impl fmt::Debug for BlockFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockFn({})", self.name)
    }
}
