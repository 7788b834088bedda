//! Chunk-grid arithmetic: how an array of a given shape is cut into blocks.

use std::ops::Range;

use super::ExprError;

/// How a user asks for chunks; resolved against a shape by [`ChunkGrid::new`].
#[derive(Debug, Clone, PartialEq)]
pub enum Chunks {
    /// One block shape for every block (the last block along an axis may be ragged).
    /// A `0` entry means "the whole axis".
    Block(Vec<usize>),
    /// Explicit block sizes along each axis (they must add up to the axis length).
    PerAxis(Vec<Vec<usize>>),
    /// Blocks of at most this many bytes at 4 bytes per element (dask's `chunks="auto"`), split
    /// from the first axis on so each block is a contiguous run of a C-order array (dask makes
    /// them square; contiguous blocks are read at full memory bandwidth).
    Auto {
        /// bytes per block to aim for
        target_bytes: usize,
    },
}

impl Chunks {
    /// `Chunks::Auto` with a target of 16 MiB per block. dask aims at 128 MiB to amortise
    /// Python's per-task cost; strata's tasks cost microseconds, and smaller blocks keep both
    /// cores busy on mid-size arrays and keep a block's working set nearer the caches.
    pub fn auto() -> Self {
        Chunks::Auto { target_bytes: 16 << 20 }
    }
}

impl From<&[usize]> for Chunks {
    fn from(block: &[usize]) -> Self {
        Chunks::Block(block.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Chunks {
    fn from(block: [usize; N]) -> Self {
        Chunks::Block(block.to_vec())
    }
}

impl From<Vec<usize>> for Chunks {
    fn from(block: Vec<usize>) -> Self {
        Chunks::Block(block)
    }
}

/// The shape of an array and the sizes of its blocks along every axis (dask's `chunks` tuple).
///
/// Every axis of length `n > 0` has at least one block and block sizes are positive; an axis of
/// length 0 has no blocks. Cheap to clone for the sizes involved (one `Vec` per axis).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkGrid {
    shape: Vec<usize>,
    sizes: Vec<Vec<usize>>,
}

impl ChunkGrid {
    /// Resolves `chunks` against `shape`.
    ///
    /// **Errors**: [`ExprError::InvalidChunks`] when the block shape has the wrong rank or
    /// explicit sizes do not add up to the axis length.
    pub fn new(shape: &[usize], chunks: &Chunks) -> Result<Self, ExprError> {
        let bad = |reason: String| ExprError::InvalidChunks {
            shape: shape.to_vec(),
            reason,
        };
        let sizes = match chunks {
            Chunks::Block(block) => {
                if block.len() != shape.len() {
                    return Err(bad(format!("block shape {block:?} has rank {}", block.len())));
                }
                shape
                    .iter()
                    .zip(block)
                    .map(|(&n, &b)| split_regular(n, if b == 0 { n } else { b }))
                    .collect()
            }
            Chunks::PerAxis(per_axis) => {
                if per_axis.len() != shape.len() {
                    return Err(bad(format!("{} axes of sizes given", per_axis.len())));
                }
                for (axis, (sizes, &n)) in per_axis.iter().zip(shape).enumerate() {
                    if sizes.iter().sum::<usize>() != n || sizes.contains(&0) {
                        return Err(bad(format!("axis {axis}: sizes {sizes:?} do not tile length {n}")));
                    }
                }
                per_axis.clone()
            }
            Chunks::Auto { target_bytes } => {
                let block = auto_block(shape, *target_bytes / 4);
                shape.iter().zip(&block).map(|(&n, &b)| split_regular(n, b)).collect()
            }
        };
        Ok(ChunkGrid {
            shape: shape.to_vec(),
            sizes,
        })
    }

    /// A grid with a single block covering the whole array.
    pub fn single(shape: &[usize]) -> Self {
        ChunkGrid {
            shape: shape.to_vec(),
            sizes: shape.iter().map(|&n| split_regular(n, n)).collect(),
        }
    }

    /// Builds a grid from explicit per-axis sizes that are already known to tile `shape`.
    pub(crate) fn from_sizes(sizes: Vec<Vec<usize>>) -> Self {
        let shape = sizes.iter().map(|s| s.iter().sum()).collect();
        ChunkGrid { shape, sizes }
    }

    /// The array shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Block sizes along `axis`.
    pub fn sizes(&self, axis: usize) -> &[usize] {
        &self.sizes[axis]
    }

    /// Block sizes along every axis (dask's `.chunks`).
    pub fn all_sizes(&self) -> &[Vec<usize>] {
        &self.sizes
    }

    /// Number of blocks along each axis.
    pub fn blocks_per_axis(&self) -> Vec<usize> {
        self.sizes.iter().map(Vec::len).collect()
    }

    /// Total number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.sizes.iter().map(Vec::len).product()
    }

    /// The largest block shape (the first block along each axis).
    pub fn max_block_shape(&self) -> Vec<usize> {
        self.sizes
            .iter()
            .map(|s| s.iter().copied().max().unwrap_or(0))
            .collect()
    }

    /// Block sizes of a selection that reads input indices `indices` along `axis`: a cut
    /// wherever the input block changes, so each selected block reads one input block there
    /// (as dask slices). O(indices × log blocks).
    pub fn cut_along(&self, axis: usize, indices: impl Iterator<Item = usize>) -> Vec<usize> {
        let offsets = self.offsets(axis);
        let mut sizes: Vec<usize> = Vec::new();
        let mut prev = usize::MAX;
        for src in indices {
            let b = offsets.partition_point(|&o| o <= src).saturating_sub(1);
            if b != prev || sizes.is_empty() {
                sizes.push(0);
                prev = b;
            }
            *sizes.last_mut().expect("pushed") += 1;
        }
        sizes
    }

    /// Start offsets of the blocks along `axis` (one more entry than blocks: the last is the length).
    pub fn offsets(&self, axis: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.sizes[axis].len() + 1);
        let mut acc = 0;
        out.push(0);
        for &s in &self.sizes[axis] {
            acc += s;
            out.push(acc);
        }
        out
    }

    /// The index region covered by block `index` (one block index per axis).
    pub fn region(&self, index: &[usize]) -> Vec<Range<usize>> {
        index
            .iter()
            .enumerate()
            .map(|(axis, &i)| {
                let start: usize = self.sizes[axis][..i].iter().sum();
                start..start + self.sizes[axis][i]
            })
            .collect()
    }

    /// All block indices in C order (last axis fastest).
    pub fn block_indices(&self) -> Vec<Vec<usize>> {
        let counts = self.blocks_per_axis();
        let total: usize = counts.iter().product();
        (0..total).map(|flat| unravel(flat, &counts)).collect()
    }

    /// Flat (C-order) number of block `index`.
    pub fn flat_index(&self, index: &[usize]) -> usize {
        index.iter().zip(&self.sizes).fold(0, |acc, (&i, s)| acc * s.len() + i)
    }

    /// The block along `axis` that holds element `i`, and `i`'s offset inside it.
    pub fn locate(&self, axis: usize, i: usize) -> (usize, usize) {
        let mut start = 0;
        for (b, &s) in self.sizes[axis].iter().enumerate() {
            if i < start + s {
                return (b, i - start);
            }
            start += s;
        }
        panic!("index {i} past axis {axis} of length {}", self.shape[axis]);
    }

    /// The grid with `axes` removed (after a reduction over them).
    pub fn without_axes(&self, axes: &[usize]) -> ChunkGrid {
        ChunkGrid::from_sizes(without_axes(&self.sizes, axes))
    }

    /// The grid with the sizes along `axis` replaced.
    pub fn with_axis(&self, axis: usize, sizes: Vec<usize>) -> ChunkGrid {
        let mut all = self.sizes.clone();
        all[axis] = sizes;
        ChunkGrid::from_sizes(all)
    }

    /// The common refinement of two grids of the same shape: every block boundary of either is a
    /// boundary of the result (what dask's `unify_chunks` does for elementwise operands).
    pub fn refine(&self, other: &ChunkGrid) -> ChunkGrid {
        let sizes = (0..self.ndim())
            .map(|axis| {
                let mut cuts: Vec<usize> = self.offsets(axis).into_iter().chain(other.offsets(axis)).collect();
                cuts.sort_unstable();
                cuts.dedup();
                cuts.windows(2).map(|w| w[1] - w[0]).collect()
            })
            .collect();
        ChunkGrid::from_sizes(sizes)
    }
}

/// The per-axis `values` with the entries of `axes` removed (a shape or index after a
/// reduction over those axes).
pub fn without_axes<T: Clone>(values: &[T], axes: &[usize]) -> Vec<T> {
    values
        .iter()
        .enumerate()
        .filter(|(a, _)| !axes.contains(a))
        .map(|(_, v)| v.clone())
        .collect()
}

/// Splits a length into blocks of `block` with a ragged last block.
pub(crate) fn split_regular(n: usize, block: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let block = block.clamp(1, n);
    let mut out = vec![block; n / block];
    if !n.is_multiple_of(block) {
        out.push(n % block);
    }
    out
}

/// Chooses a block shape of at most `target_elems` elements, keeping trailing axes whole.
pub(crate) fn auto_block(shape: &[usize], target_elems: usize) -> Vec<usize> {
    let target = target_elems.max(1);
    let mut block: Vec<usize> = shape.iter().map(|&n| n.max(1)).collect();
    // Split from the first axis on, keeping trailing axes whole while they fit: such a block is
    // one contiguous run of a C-order array, read in place as one stream (band math on square
    // blocks of a 4096² plane is slower: `cargo bench --bench cpu_kernels -- bandmath`).
    // Pieces along the split axis are balanced.
    for axis in 0..block.len() {
        if block.iter().product::<usize>() <= target {
            break;
        }
        let rest: usize = block[axis + 1..].iter().product();
        let n = block[axis];
        let pieces = n.div_ceil((target / rest).clamp(1, n));
        block[axis] = n.div_ceil(pieces);
    }
    block
}

/// C-order multi-index of a flat index.
pub(crate) fn unravel(mut flat: usize, counts: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; counts.len()];
    for axis in (0..counts.len()).rev() {
        idx[axis] = flat % counts[axis];
        flat /= counts[axis];
    }
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_blocks_have_a_ragged_tail() {
        let g = ChunkGrid::new(&[10, 4], &Chunks::Block(vec![4, 0])).unwrap();
        assert_eq!(g.sizes(0), &[4, 4, 2]);
        assert_eq!(g.sizes(1), &[4]);
        assert_eq!(g.region(&[2, 0]), vec![8..10, 0..4]);
        assert_eq!(g.locate(0, 9), (2, 1));
        assert_eq!(g.num_blocks(), 3);
    }

    #[test]
    fn per_axis_sizes_must_tile() {
        assert!(ChunkGrid::new(&[5], &Chunks::PerAxis(vec![vec![2, 2]])).is_err());
        assert!(ChunkGrid::new(&[5], &Chunks::PerAxis(vec![vec![2, 3]])).is_ok());
    }

    #[test]
    fn auto_keeps_trailing_axes_whole() {
        // 1000 x 4000 f32 = 16 MB; a 4 MB target: bands of 250 whole rows.
        let auto = |target_bytes| Chunks::Auto { target_bytes };
        let g = ChunkGrid::new(&[1000, 4000], &auto(4_000_000)).unwrap();
        assert_eq!(g.sizes(0), &[250, 250, 250, 250]);
        assert_eq!(g.sizes(1), &[4000]);
        // balanced pieces: 10 rows fit, 23 rows split 8 + 8 + 7
        let g = ChunkGrid::new(&[23, 100], &auto(4_000)).unwrap();
        assert_eq!(g.sizes(0), &[8, 8, 7]);
        // a row larger than the target splits the rows too
        let g = ChunkGrid::new(&[3, 5, 1000], &auto(1_600)).unwrap();
        assert_eq!(
            (g.sizes(0), g.sizes(1), g.sizes(2)),
            (&[1, 1, 1][..], &[1; 5][..], &[334, 334, 332][..])
        );
        // what fits stays whole
        let g = ChunkGrid::new(&[4, 6], &auto(1 << 20)).unwrap();
        assert_eq!((g.sizes(0), g.sizes(1)), (&[4][..], &[6][..]));
    }

    #[test]
    fn refine_keeps_every_boundary() {
        let a = ChunkGrid::new(&[10], &Chunks::Block(vec![4])).unwrap();
        let b = ChunkGrid::new(&[10], &Chunks::Block(vec![5])).unwrap();
        assert_eq!(a.refine(&b).sizes(0), &[4, 1, 3, 2]);
    }
}
