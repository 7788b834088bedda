//! Output sinks: dense arrays written in place, and a block collector for `persist`.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use ndarray::{ArrayViewMutD, IxDyn, ShapeBuilder};

use super::OutputSink;
use crate::backend::{write_block, ResultMemory};
use crate::expr::{unravel, Block, ChunkGrid};

struct Target {
    ptr: *mut MaybeUninit<f32>,
    strides: Vec<usize>,
    grid: ChunkGrid,
    /// whether each block's one writer was handed out
    leased: Vec<AtomicBool>,
}

/// Dense, standard-layout output arrays that workers write their blocks into in place.
///
/// Each block is leased once: the first [`OutputSink::direct`] or [`OutputSink::accept`] for a
/// block takes it, and a second one for the same block panics (a caller bug) rather than hand
/// out a second view of the same memory. Costs one atomic swap per block.
pub struct DenseOutputs<'a> {
    targets: Vec<Target>,
    memory: ResultMemory,
    leases: AtomicUsize,
    _borrow: PhantomData<&'a mut [MaybeUninit<f32>]>,
}

// SAFETY: every view comes from `lease`, which hands each (output, block) out at most once, and
// the blocks of a grid are disjoint regions of their array, so no two views, on any threads,
// ever reach the same element.
unsafe impl Send for DenseOutputs<'_> {}
unsafe impl Sync for DenseOutputs<'_> {}

impl<'a> DenseOutputs<'a> {
    /// Wraps one standard-layout view per output, with the grid its blocks come in; the views
    /// lie in memory of kind `memory`.
    ///
    /// # Panics
    /// When a view is not in standard layout or its shape differs from its grid's (a caller bug).
    pub fn new(views: Vec<ArrayViewMutD<'a, MaybeUninit<f32>>>, grids: Vec<ChunkGrid>, memory: ResultMemory) -> Self {
        let targets = views
            .into_iter()
            .zip(grids)
            .map(|(mut v, grid)| {
                assert!(
                    v.is_standard_layout() && v.shape() == grid.shape(),
                    "dense outputs are standard layout"
                );
                let strides = v.strides().iter().map(|&s| s as usize).collect();
                let leased = (0..grid.num_blocks()).map(|_| AtomicBool::new(false)).collect();
                Target {
                    ptr: v.as_mut_ptr(),
                    strides,
                    grid,
                    leased,
                }
            })
            .collect();
        DenseOutputs {
            targets,
            memory,
            leases: AtomicUsize::new(0),
            _borrow: PhantomData,
        }
    }

    /// How many blocks, over all outputs, were never handed to a writer: a caller treats the
    /// arrays as initialised only after a successful run with none. Costs a sum over outputs.
    pub fn unwritten_blocks(&self) -> usize {
        let total: usize = self.targets.iter().map(|t| t.leased.len()).sum();
        total - self.leases.load(Ordering::Acquire)
    }

    /// The one view of block `block` of output `output`.
    ///
    /// # Panics
    /// When the block was handed out before, or does not exist (caller bugs).
    fn lease(&self, output: usize, block: usize) -> ArrayViewMutD<'_, MaybeUninit<f32>> {
        let t = &self.targets[output];
        assert!(
            !t.leased[block].swap(true, Ordering::AcqRel),
            "block {block} of output {output} was asked for twice: a dense output block has one writer"
        );
        self.leases.fetch_add(1, Ordering::AcqRel);
        let region = t.grid.region(&unravel(block, &t.grid.blocks_per_axis()));
        let offset: usize = region.iter().zip(&t.strides).map(|(r, s)| r.start * s).sum();
        let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        // SAFETY: the region lies inside the array the pointer came from (it is a block of
        // that array's grid), the strides are the array's own, and this block was not leased
        // before (checked above): the view is the only one of its elements.
        unsafe { ArrayViewMutD::from_shape_ptr(IxDyn(&shape).strides(IxDyn(&t.strides)), t.ptr.add(offset)) }
    }
}

impl OutputSink for DenseOutputs<'_> {
    fn direct(&self, output: usize, block: usize) -> Option<ArrayViewMutD<'_, MaybeUninit<f32>>> {
        Some(self.lease(output, block))
    }

    fn memory(&self) -> ResultMemory {
        self.memory
    }

    fn accept(&self, output: usize, block: usize, value: Block) {
        write_block(self.lease(output, block), &value);
    }
}

/// Keeps every output block as computed (what `persist` needs).
pub struct BlockCollector {
    blocks: Mutex<Vec<Vec<Option<Block>>>>,
}

impl BlockCollector {
    /// A collector for outputs with these numbers of blocks.
    pub fn new(blocks_per_output: &[usize]) -> Self {
        BlockCollector {
            blocks: Mutex::new(blocks_per_output.iter().map(|&n| vec![None; n]).collect()),
        }
    }

    /// The blocks of every output, in C order (`None` where a block never arrived).
    pub fn into_blocks(self) -> Vec<Vec<Option<Block>>> {
        self.blocks.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl OutputSink for BlockCollector {
    fn direct(&self, _: usize, _: usize) -> Option<ArrayViewMutD<'_, MaybeUninit<f32>>> {
        None
    }

    fn accept(&self, output: usize, block: usize, value: Block) {
        self.blocks.lock().unwrap_or_else(|e| e.into_inner())[output][block] = Some(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Chunks;
    use ndarray::ArrayD;

    fn grid() -> ChunkGrid {
        ChunkGrid::new(&[4, 6], &Chunks::Block(vec![2, 3])).unwrap()
    }

    /// Four blocks written from four threads at once through their leases, then read back
    /// as initialised values (what `compute_many` does); miri checks the views never alias.
    #[test]
    fn disjoint_leases_fill_the_array_from_many_threads() {
        let mut memory = ArrayD::from_elem(IxDyn(&[4, 6]), MaybeUninit::<f32>::uninit());
        let sink = DenseOutputs::new(vec![memory.view_mut()], vec![grid()], ResultMemory::Reused);
        std::thread::scope(|s| {
            for b in 0..4 {
                let sink = &sink;
                s.spawn(move || {
                    if b % 2 == 0 {
                        sink.direct(0, b).unwrap().fill(MaybeUninit::new(b as f32));
                    } else {
                        let value = ArrayD::from_elem(IxDyn(&[2, 3]), b as f32).into_shared();
                        sink.accept(0, b, Block::F32(value));
                    }
                });
            }
        });
        assert_eq!(sink.unwritten_blocks(), 0);
        drop(sink);
        // SAFETY: every block was leased and fully written above.
        let values = unsafe { memory.assume_init() };
        assert_eq!(values[[0, 0]], 0.0);
        assert_eq!(values[[0, 5]], 1.0);
        assert_eq!(values[[3, 0]], 2.0);
        assert_eq!(values[[3, 5]], 3.0);
    }

    #[test]
    fn a_second_lease_of_a_block_panics() {
        let mut memory = ArrayD::from_elem(IxDyn(&[4, 6]), MaybeUninit::<f32>::uninit());
        let sink = DenseOutputs::new(vec![memory.view_mut()], vec![grid()], ResultMemory::Reused);
        let _first = sink.direct(0, 3).unwrap();
        let second = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = sink.direct(0, 3);
        }));
        assert!(second.is_err());
        assert_eq!(sink.unwritten_blocks(), 3);
    }
}
