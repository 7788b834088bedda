//! Zarr v3 output through `zarrs`: arrays in a group, each cut into shards (the unit a writer
//! produces and a worker computes) of inner chunks (the unit a reader decompresses), zstd
//! inside the sharding codec. Results stream out block by block: a shard is written as soon as
//! every block covering it has been computed, so the whole result is never held
//! ([`ShardAssembler`]). Every shard and metadata document is written atomically
//! ([`AtomicFileStore`]).
//!
//! Floats are `float32` with NaN as the fill value; masks are `uint8` with 0.

mod shards;
mod store;
mod write;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zarrs::array::{data_type, ArrayBuilder};
use zarrs::group::GroupBuilder;

pub use shards::ShardAssembler;
pub use store::{scratch_dir, AtomicFileStore, SCRATCH};
pub(crate) use write::planned_blocks;
pub use write::{write_arrays, ZarrWrite};

use super::OutputError;
use crate::expr::DType;

/// How an array is laid out in a Zarr store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZarrOptions {
    /// Inner chunk shape (what a reader decompresses at once). Default: the array's block
    /// shape, cut along its leading axes (time, band) to at most [`DEFAULT_CHUNK_BYTES`].
    pub chunk_shape: Option<Vec<usize>>,
    /// Shard shape, a whole number of inner chunks per axis (what one file holds). Default:
    /// the chunks of one block, up to [`DEFAULT_SHARD_BYTES`]: a shard never spans blocks, so
    /// it is complete (and written, and freed) as soon as its block is computed.
    pub shard_shape: Option<Vec<usize>>,
    /// zstd level (1 fast .. 22 small; default 3)
    pub zstd_level: i32,
}

impl Default for ZarrOptions {
    fn default() -> Self {
        ZarrOptions {
            chunk_shape: None,
            shard_shape: None,
            zstd_level: 3,
        }
    }
}

/// Bytes a default shard holds at most (uncompressed).
pub const DEFAULT_SHARD_BYTES: u64 = 64 << 20;
/// Bytes a default inner chunk holds at most (uncompressed).
pub const DEFAULT_CHUNK_BYTES: u64 = 16 << 20;

/// One array of a store: where it goes and how it is laid out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZarrArraySpec {
    /// path in the store, e.g. `/ndvi_mean`
    pub path: String,
    /// the array's shape
    pub shape: Vec<usize>,
    /// element type: f32 (`float32`, NaN fill) or a mask (`uint8`, 0 fill)
    pub dtype: DType,
    /// inner chunk shape
    pub chunk_shape: Vec<usize>,
    /// shard shape (whole inner chunks per axis)
    pub shard_shape: Vec<usize>,
    /// names of the dims (xarray's `dimension_names`), if labelled
    pub dimension_names: Option<Vec<String>>,
    /// attributes (CRS, transform, units)
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// zstd level
    pub zstd_level: i32,
}

impl ZarrArraySpec {
    /// A spec for an array of `shape` whose blocks are `block` (the default inner chunk),
    /// laid out by `options`.
    ///
    /// **Errors**: [`OutputError::Unsupported`] for shapes that do not fit (a shard that is no
    /// whole number of chunks, a zero-length chunk, ranks that differ).
    pub fn new(
        path: &str,
        shape: &[usize],
        dtype: DType,
        block: &[usize],
        options: &ZarrOptions,
    ) -> Result<Self, OutputError> {
        let bad = |reason: String| OutputError::Unsupported {
            path: PathBuf::from(path),
            reason,
        };
        let nd = shape.len();
        let chunk: Vec<usize> = match &options.chunk_shape {
            Some(c) => c.clone(),
            None => default_chunk(block, dtype.size() as u64),
        };
        if chunk.len() != nd || chunk.contains(&0) {
            return Err(bad(format!("chunk shape {chunk:?} for an array of shape {shape:?}")));
        }
        let shard = match &options.shard_shape {
            Some(s) => s.clone(),
            None => default_shard(block, &chunk, dtype.size() as u64),
        };
        if shard.len() != nd || shard.iter().zip(&chunk).any(|(&s, &c)| s == 0 || s % c != 0) {
            return Err(bad(format!(
                "shard shape {shard:?} is not a whole number of chunks {chunk:?}"
            )));
        }
        Ok(ZarrArraySpec {
            path: normalise(path),
            shape: shape.to_vec(),
            dtype,
            chunk_shape: chunk,
            shard_shape: shard,
            dimension_names: None,
            attributes: serde_json::Map::new(),
            zstd_level: options.zstd_level,
        })
    }

    /// Shards per axis.
    pub fn shards_per_axis(&self) -> Vec<usize> {
        self.shape
            .iter()
            .zip(&self.shard_shape)
            .map(|(&n, &s)| n.div_ceil(s).max(1))
            .collect()
    }

    /// Number of shards.
    pub fn num_shards(&self) -> usize {
        self.shards_per_axis().iter().product()
    }

    /// The array region shard `index` (C order) covers, clipped to the array.
    pub fn shard_region(&self, index: usize) -> Vec<Range<usize>> {
        let per = self.shards_per_axis();
        let mut rest = index;
        let mut at = vec![0; per.len()];
        for a in (0..per.len()).rev() {
            at[a] = rest % per[a];
            rest /= per[a];
        }
        at.iter()
            .zip(&self.shard_shape)
            .zip(&self.shape)
            .map(|((&i, &s), &n)| (i * s).min(n)..((i + 1) * s).min(n))
            .collect()
    }
}

/// A path in the store as zarrs writes it: absolute, no trailing slash.
fn normalise(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("/{trimmed}")
}

fn bytes_of(shape: &[usize], elem: u64) -> u64 {
    shape.iter().map(|&n| n as u64).product::<u64>() * elem
}

/// A block's shape cut to at most [`DEFAULT_CHUNK_BYTES`]: leading axes (time, band) halved
/// first, the last two (y, x) only when one plane is still too large.
fn default_chunk(block: &[usize], elem: u64) -> Vec<usize> {
    let mut chunk: Vec<usize> = block.iter().map(|&b| b.max(1)).collect();
    let nd = chunk.len();
    let spatial = nd.saturating_sub(2);
    for a in (0..spatial).chain((spatial..nd).cycle().take(64)) {
        while bytes_of(&chunk, elem) > DEFAULT_CHUNK_BYTES && chunk[a] > 1 {
            chunk[a] = chunk[a].div_ceil(2);
            if a >= spatial {
                break; // alternate y and x
            }
        }
    }
    chunk
}

/// The chunks of one block, leading axes first, while the shard stays within
/// [`DEFAULT_SHARD_BYTES`].
fn default_shard(block: &[usize], chunk: &[usize], elem: u64) -> Vec<usize> {
    let mut shard = chunk.to_vec();
    for a in 0..shard.len() {
        let fit = block.get(a).map_or(1, |&b| (b / chunk[a]).max(1));
        let mut k = fit;
        while k > 1 && {
            let mut trial = shard.clone();
            trial[a] = chunk[a] * k;
            bytes_of(&trial, elem) > DEFAULT_SHARD_BYTES
        } {
            k -= 1;
        }
        shard[a] = chunk[a] * k;
    }
    shard
}

/// A Zarr v3 store on the local file system (a shared file system for workers on a cluster),
/// its root a group.
#[derive(Debug, Clone)]
pub struct ZarrStore {
    store: Arc<AtomicFileStore>,
}

/// An array being written.
pub struct ZarrArray {
    spec: ZarrArraySpec,
    array: zarrs::array::Array<AtomicFileStore>,
}

impl std::fmt::Debug for ZarrArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrArray").field("spec", &self.spec).finish()
    }
}

impl ZarrStore {
    /// Opens the store at `root`, creating the folder and the root group when missing.
    ///
    /// **Errors**: [`OutputError::Encode`] naming the folder when it cannot be made or written.
    pub fn create(root: &Path) -> Result<Self, OutputError> {
        let store = AtomicFileStore::new(root).map_err(|e| zarr_error(root, e))?;
        let this = ZarrStore { store };
        if !root.join("zarr.json").exists() {
            this.group("/", serde_json::Map::new())?;
        }
        Ok(this)
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// Writes the metadata of a group at `path` (with `attributes`), and of the groups above.
    ///
    /// **Errors**: [`OutputError::Encode`] naming the group.
    pub fn group(&self, path: &str, attributes: serde_json::Map<String, serde_json::Value>) -> Result<(), OutputError> {
        let path = normalise(path);
        let err = |e: String| OutputError::Encode {
            path: self.root().join(path.trim_start_matches('/')),
            message: e,
        };
        let mut group = GroupBuilder::new()
            .build(self.store.clone(), &path)
            .map_err(|e| err(e.to_string()))?;
        *group.attributes_mut() = attributes;
        group.store_metadata().map_err(|e| err(e.to_string()))
    }

    /// Creates the array `spec` describes and writes its metadata (replacing an array there).
    ///
    /// **Errors**: [`OutputError::Encode`] naming the array.
    pub fn create_array(&self, spec: &ZarrArraySpec) -> Result<ZarrArray, OutputError> {
        let array = self.build(spec)?;
        array
            .store_metadata()
            .map_err(|e| self.encode_error(spec, e.to_string()))?;
        Ok(ZarrArray {
            spec: spec.clone(),
            array,
        })
    }

    /// The array `spec` describes, its metadata already in the store (a worker writing one of
    /// its shards).
    ///
    /// **Errors**: [`OutputError::Encode`] naming the array.
    pub fn array(&self, spec: &ZarrArraySpec) -> Result<ZarrArray, OutputError> {
        Ok(ZarrArray {
            spec: spec.clone(),
            array: self.build(spec)?,
        })
    }

    fn build(&self, spec: &ZarrArraySpec) -> Result<zarrs::array::Array<AtomicFileStore>, OutputError> {
        let u64s = |v: &[usize]| v.iter().map(|&n| n as u64).collect::<Vec<u64>>();
        let zstd = Arc::new(zarrs::array::codec::ZstdCodec::new(spec.zstd_level, false));
        let mut builder = match spec.dtype {
            DType::F32 => ArrayBuilder::new(
                u64s(&spec.shape),
                u64s(&spec.shard_shape),
                data_type::float32(),
                f32::NAN,
            ),
            DType::U8 => ArrayBuilder::new(u64s(&spec.shape), u64s(&spec.shard_shape), data_type::uint8(), 0u8),
        };
        builder
            .subchunk_shape(u64s(&spec.chunk_shape))
            .bytes_to_bytes_codecs(vec![zstd])
            .attributes(spec.attributes.clone());
        if let Some(names) = &spec.dimension_names {
            builder.dimension_names(Some(names.clone()));
        }
        builder
            .build(self.store.clone(), &spec.path)
            .map_err(|e| self.encode_error(spec, e.to_string()))
    }

    /// Writes a small 1-D (or 0-D) array whole, in one chunk: a coordinate (f64 x/y, i64
    /// times) or a scalar carrying attributes (`spatial_ref`).
    ///
    /// **Errors**: [`OutputError::Encode`] naming the array.
    pub fn write_small(
        &self,
        path: &str,
        values: SmallValues,
        dims: &[&str],
        attributes: serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), OutputError> {
        let path = normalise(path);
        let shape: Vec<u64> = if dims.is_empty() {
            vec![]
        } else {
            vec![values.len() as u64]
        };
        let chunk: Vec<u64> = shape.iter().map(|&n| n.max(1)).collect();
        let err = |e: String| OutputError::Encode {
            path: self.root().join(path.trim_start_matches('/')),
            message: e,
        };
        let mut builder = match &values {
            SmallValues::F64(_) => ArrayBuilder::new(shape.clone(), chunk.clone(), data_type::float64(), f64::NAN),
            SmallValues::I64(_) => ArrayBuilder::new(shape.clone(), chunk.clone(), data_type::int64(), 0i64),
            SmallValues::Str(_) => ArrayBuilder::new(shape.clone(), chunk.clone(), data_type::string(), ""),
        };
        builder.attributes(attributes);
        if !dims.is_empty() {
            builder.dimension_names(Some(dims.iter().map(|d| d.to_string()).collect::<Vec<_>>()));
        }
        let array = builder
            .build(self.store.clone(), &path)
            .map_err(|e| err(e.to_string()))?;
        array.store_metadata().map_err(|e| err(e.to_string()))?;
        let mut options = zarrs::array::CodecOptions::default();
        options.set_store_empty_chunks(true);
        let zeros = vec![0u64; shape.len()];
        match values {
            SmallValues::F64(v) => array.store_chunk_opt(&zeros, v, &options),
            SmallValues::I64(v) => array.store_chunk_opt(&zeros, v, &options),
            SmallValues::Str(v) => array.store_chunk_opt(&zeros, v, &options),
        }
        .map_err(|e| err(e.to_string()))
    }

    fn encode_error(&self, spec: &ZarrArraySpec, message: String) -> OutputError {
        OutputError::Encode {
            path: self.root().join(spec.path.trim_start_matches('/')),
            message,
        }
    }
}

/// Values of a small array.
#[derive(Debug, Clone, PartialEq)]
pub enum SmallValues {
    /// f64 (x/y coordinates)
    F64(Vec<f64>),
    /// i64 (times as nanoseconds since the epoch, a scalar's 0)
    I64(Vec<i64>),
    /// strings (band names, item ids)
    Str(Vec<String>),
}

impl SmallValues {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            SmallValues::F64(v) => v.len(),
            SmallValues::I64(v) => v.len(),
            SmallValues::Str(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ZarrArray {
    /// Its layout.
    pub fn spec(&self) -> &ZarrArraySpec {
        &self.spec
    }

    /// Encodes and writes shard `index` (C order over the shard grid) from `data`, the whole
    /// shard's elements in C order (beyond the array's edge: the fill value), atomically. An
    /// all-fill shard is written too, so a written shard always has its file.
    ///
    /// **Errors**: [`OutputError::Encode`] naming the array and shard.
    pub fn write_shard(&self, index: usize, data: ShardData<'_>) -> Result<(), OutputError> {
        let per = self.spec.shards_per_axis();
        let mut rest = index;
        let mut at = vec![0u64; per.len()];
        for a in (0..per.len()).rev() {
            at[a] = (rest % per[a]) as u64;
            rest /= per[a];
        }
        let mut options = zarrs::array::CodecOptions::default();
        options.set_store_empty_chunks(true);
        match data {
            ShardData::F32(v) => self.array.store_chunk_opt(&at, v, &options),
            ShardData::U8(v) => self.array.store_chunk_opt(&at, v, &options),
        }
        .map_err(|e| OutputError::Encode {
            path: PathBuf::from(&self.spec.path),
            message: format!("shard {index} {at:?}: {e}"),
        })
    }

    /// The file holding shard `index`, whether written or not.
    pub fn shard_file(&self, index: usize) -> PathBuf {
        let per = self.spec.shards_per_axis();
        let mut rest = index;
        let mut at = vec![0u64; per.len()];
        for a in (0..per.len()).rev() {
            at[a] = (rest % per[a]) as u64;
            rest /= per[a];
        }
        let key = self.array.chunk_key(&at);
        self.array.storage().path_of(&key)
    }
}

/// A whole shard's elements, C order.
#[derive(Debug, Clone, Copy)]
pub enum ShardData<'a> {
    /// float32
    F32(&'a [f32]),
    /// uint8 (a mask)
    U8(&'a [u8]),
}

fn zarr_error(root: &Path, e: zarrs::storage::StorageError) -> OutputError {
    OutputError::Encode {
        path: root.to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chunks_and_shards_follow_the_blocks() {
        // a plane block is its own chunk and shard
        assert_eq!(default_chunk(&[512, 512], 4), vec![512, 512]);
        assert_eq!(default_shard(&[512, 512], &[512, 512], 4), vec![512, 512]);
        // a (31 months, 1 band, 1024, 1024) f32 block (124 MiB): chunks of 4 months (16 MiB
        // at most), shards of 16 months (64 MiB), never past the block
        let chunk = default_chunk(&[31, 1, 1024, 1024], 4);
        assert_eq!(chunk, vec![4, 1, 1024, 1024]);
        assert_eq!(default_shard(&[31, 1, 1024, 1024], &chunk, 4), vec![16, 1, 1024, 1024]);
        // a plane too large for one chunk is cut in y and x
        let big = default_chunk(&[8192, 8192], 4);
        assert!(bytes_of(&big, 4) <= DEFAULT_CHUNK_BYTES, "{big:?}");
    }

    #[test]
    fn shard_regions_cover_the_array_in_c_order() {
        let spec = ZarrArraySpec::new(
            "a",
            &[5, 7],
            DType::F32,
            &[2, 2],
            &ZarrOptions {
                shard_shape: Some(vec![4, 4]),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(spec.shards_per_axis(), vec![2, 2]);
        assert_eq!(spec.shard_region(0), vec![0..4, 0..4]);
        assert_eq!(spec.shard_region(1), vec![0..4, 4..7]);
        assert_eq!(spec.shard_region(3), vec![4..5, 4..7]);
        assert_eq!(spec.path, "/a");
        let bad = ZarrArraySpec::new(
            "a",
            &[5, 7],
            DType::F32,
            &[2, 2],
            &ZarrOptions {
                shard_shape: Some(vec![3, 4]),
                ..Default::default()
            },
        );
        assert!(matches!(bad, Err(OutputError::Unsupported { .. })));
    }
}
