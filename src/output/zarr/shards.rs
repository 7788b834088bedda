//! [`ShardAssembler`]: an executor sink that gathers finished output blocks into the Zarr
//! shards they cover and writes each shard as soon as it is whole. Blocks need not line up
//! with shards (a block may cover parts of several, a shard parts of many blocks): each block
//! is copied into every shard it overlaps, and a shard counts the elements it has received.
//! Only shards with some but not all of their blocks are held, so with the executor's
//! streaming order the memory held is about one row of shards.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Mutex;

use ndarray::{ArrayViewMutD, IxDyn, SliceInfoElem};

use super::{ShardData, ZarrArray};
use crate::exec::OutputSink;
use crate::expr::{unravel, Block, ChunkGrid, DType};
use crate::output::OutputError;

/// One output: where it goes and how the executor cuts it.
struct Target {
    array: ZarrArray,
    grid: ChunkGrid,
}

/// A shard being filled.
enum Buffer {
    F32(Vec<f32>),
    U8(Vec<u8>),
}

struct Open {
    data: Buffer,
    filled: usize,
    expected: usize,
}

/// Writes the blocks of several outputs into their Zarr arrays, shard by shard.
pub struct ShardAssembler {
    targets: Vec<Target>,
    open: Mutex<HashMap<(usize, usize), Open>>,
    state: Mutex<(usize, Option<OutputError>)>,
}

impl ShardAssembler {
    /// An assembler for `arrays`, output `o` arriving in blocks of `grids[o]`.
    pub fn new(arrays: Vec<ZarrArray>, grids: Vec<ChunkGrid>) -> Self {
        ShardAssembler {
            targets: arrays
                .into_iter()
                .zip(grids)
                .map(|(array, grid)| Target { array, grid })
                .collect(),
            open: Mutex::default(),
            state: Mutex::default(),
        }
    }

    /// Shards written so far, or the first error.
    ///
    /// **Errors**: the first write that failed; [`OutputError::Encode`] when shards are still
    /// incomplete (a block never arrived: the computation failed).
    pub fn finish(self) -> Result<usize, OutputError> {
        let (written, error) = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = error {
            return Err(e);
        }
        let open = self.open.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(((o, shard), _)) = open.iter().next() {
            return Err(OutputError::Encode {
                path: self.targets[*o].array.spec().path.clone().into(),
                message: format!("shard {shard} and {} more were left incomplete", open.len() - 1),
            });
        }
        Ok(written)
    }

    fn place(&self, output: usize, block: usize, value: &Block) -> Result<(), OutputError> {
        let target = &self.targets[output];
        let spec = target.array.spec();
        let region = target.grid.region(&unravel(block, &target.grid.blocks_per_axis()));
        let per = spec.shards_per_axis();
        // The shards the block overlaps: a box of shard indices.
        let first: Vec<usize> = region
            .iter()
            .zip(&spec.shard_shape)
            .map(|(r, &s)| r.start / s)
            .collect();
        let last: Vec<usize> = region
            .iter()
            .zip(&spec.shard_shape)
            .map(|(r, &s)| (r.end.max(1) - 1) / s)
            .collect();
        if region.iter().any(|r| r.is_empty()) {
            return Ok(());
        }
        let mut at = first.clone();
        loop {
            let linear = at.iter().zip(&per).fold(0, |acc, (&i, &n)| acc * n + i);
            let shard_start: Vec<usize> = at.iter().zip(&spec.shard_shape).map(|(&i, &s)| i * s).collect();
            let overlap: Vec<Range<usize>> = region
                .iter()
                .zip(&shard_start)
                .zip(&spec.shard_shape)
                .map(|((r, &s0), &s)| r.start.max(s0)..r.end.min(s0 + s))
                .collect();
            let in_block: Vec<SliceInfoElem> = overlap
                .iter()
                .zip(&region)
                .map(|(o, r)| SliceInfoElem::from(o.start - r.start..o.end - r.start))
                .collect();
            let in_shard: Vec<SliceInfoElem> = overlap
                .iter()
                .zip(&shard_start)
                .map(|(o, &s0)| SliceInfoElem::from(o.start - s0..o.end - s0))
                .collect();
            let n: usize = overlap.iter().map(|r| r.len()).product();
            let finished = {
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                let entry = open.entry((output, linear)).or_insert_with(|| {
                    let size: usize = spec.shard_shape.iter().product();
                    let expected = spec.shard_region(linear).iter().map(|r| r.len()).product();
                    let data = match spec.dtype {
                        DType::F32 => Buffer::F32(vec![f32::NAN; size]),
                        DType::U8 => Buffer::U8(vec![0; size]),
                    };
                    Open {
                        data,
                        filled: 0,
                        expected,
                    }
                });
                let shape = IxDyn(&spec.shard_shape);
                let bad = |e: ndarray::ShapeError| OutputError::Encode {
                    path: spec.path.clone().into(),
                    message: e.to_string(),
                };
                match (&mut entry.data, value) {
                    (Buffer::F32(buf), Block::F32(b)) => {
                        let mut dst = ArrayViewMutD::from_shape(shape, buf).map_err(bad)?;
                        dst.slice_mut(in_shard.as_slice()).assign(&b.slice(in_block.as_slice()));
                    }
                    (Buffer::U8(buf), Block::U8(b)) => {
                        let mut dst = ArrayViewMutD::from_shape(shape, buf).map_err(bad)?;
                        dst.slice_mut(in_shard.as_slice()).assign(&b.slice(in_block.as_slice()));
                    }
                    (Buffer::U8(buf), Block::F32(b)) => {
                        // a mask handed over as 0.0/1.0
                        let mut dst = ArrayViewMutD::from_shape(shape, buf).map_err(bad)?;
                        dst.slice_mut(in_shard.as_slice())
                            .zip_mut_with(&b.slice(in_block.as_slice()), |d, &s| *d = s as u8);
                    }
                    (Buffer::F32(_), Block::U8(_)) => {
                        return Err(OutputError::Unsupported {
                            path: spec.path.clone().into(),
                            reason: "a mask block for a float32 array".into(),
                        })
                    }
                }
                entry.filled += n;
                if entry.filled >= entry.expected {
                    open.remove(&(output, linear))
                } else {
                    None
                }
            };
            if let Some(done) = finished {
                match &done.data {
                    Buffer::F32(v) => target.array.write_shard(linear, ShardData::F32(v))?,
                    Buffer::U8(v) => target.array.write_shard(linear, ShardData::U8(v))?,
                }
                self.state.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
            }
            // next shard of the box, C order
            let mut a = at.len();
            loop {
                if a == 0 {
                    return Ok(());
                }
                a -= 1;
                at[a] += 1;
                if at[a] <= last[a] {
                    break;
                }
                at[a] = first[a];
            }
        }
    }
}

impl OutputSink for ShardAssembler {
    fn direct(&self, _: usize, _: usize) -> Option<ArrayViewMutD<'_, MaybeUninit<f32>>> {
        None
    }

    fn accept(&self, output: usize, block: usize, value: Block) {
        if let Err(e) = self.place(output, block, &value) {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.1.get_or_insert(e);
        }
    }
}
