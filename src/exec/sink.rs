//! Output sinks: dense arrays written in place, and a block collector for `persist`.

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::Mutex;

use ndarray::{ArrayViewMutD, IxDyn, ShapeBuilder};

use super::OutputSink;
use crate::backend::{write_block, ResultMemory};
use crate::expr::{unravel, Block, ChunkGrid};

struct Target {
    ptr: *mut MaybeUninit<f32>,
    strides: Vec<usize>,
    grid: ChunkGrid,
}

/// Dense, standard-layout output arrays that workers write their blocks into in place.
pub struct DenseOutputs<'a> {
    targets: Vec<Target>,
    memory: ResultMemory,
    _borrow: PhantomData<&'a mut [MaybeUninit<f32>]>,
}

// SAFETY: the executor hands each (output, block) to exactly one writer, and the blocks of a
// grid are disjoint regions of their array, so no two threads ever write the same element.
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
                Target {
                    ptr: v.as_mut_ptr(),
                    strides,
                    grid,
                }
            })
            .collect();
        DenseOutputs {
            targets,
            memory,
            _borrow: PhantomData,
        }
    }

    fn view(&self, output: usize, block: usize) -> ArrayViewMutD<'_, MaybeUninit<f32>> {
        let t = &self.targets[output];
        let region = t.grid.region(&unravel(block, &t.grid.blocks_per_axis()));
        let offset: usize = region.iter().zip(&t.strides).map(|(r, s)| r.start * s).sum();
        let shape: Vec<usize> = region.iter().map(|r| r.len()).collect();
        // SAFETY: the region lies inside the array the pointer came from (it is a block of
        // that array's grid), the strides are the array's own, and see `Sync` above for
        // exclusivity.
        unsafe { ArrayViewMutD::from_shape_ptr(IxDyn(&shape).strides(IxDyn(&t.strides)), t.ptr.add(offset)) }
    }
}

impl OutputSink for DenseOutputs<'_> {
    fn direct(&self, output: usize, block: usize) -> Option<ArrayViewMutD<'_, MaybeUninit<f32>>> {
        Some(self.view(output, block))
    }

    fn memory(&self) -> ResultMemory {
        self.memory
    }

    fn accept(&self, output: usize, block: usize, value: Block) {
        write_block(self.view(output, block), &value);
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
