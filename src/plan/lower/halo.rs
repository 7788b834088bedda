//! Lowering of neighbourhood operations: halos for filters and `map_overlap`, and the
//! gaussian, which reads its halo straight from the neighbouring blocks.

use std::ops::Range;
use std::sync::Arc;

use super::emit::{block_shape, Emitter, Table};
use super::grids::elems;
use crate::expr::{AlongOp, BoundaryMode, Node};
use crate::plan::gather::{runs_of, AxisIndex};
use crate::plan::{gaussian_weights, ColumnRun, TaskKind, TileSpec};

impl Emitter<'_> {
    /// One gather per block of `grid` reading the block extended by `halo` with `mode` beyond
    /// the array edge. Returns the gather task per block.
    fn halo_gathers(&mut self, node: &Node, input: &Table, halo: &[usize], mode: BoundaryMode) -> Vec<usize> {
        let grid = input.grid.clone();
        let shape = grid.shape().to_vec();
        grid.block_indices()
            .into_iter()
            .map(|idx| {
                let region = grid.region(&idx);
                let ext: Vec<Range<usize>> = (0..shape.len()).map(|a| 0..region[a].len() + 2 * halo[a]).collect();
                let axes: Vec<AxisIndex> = (0..shape.len())
                    .map(|a| {
                        let lo = region[a].start as i64 - halo[a] as i64;
                        let idx = ext[a]
                            .clone()
                            .map(|p| mode.map_index(lo + p as i64, shape[a]))
                            .collect();
                        AxisIndex::Map { axis: a, idx }
                    })
                    .collect();
                let fill = mode.constant().unwrap_or(0.0);
                self.gather_task(node, idx, &ext, input, fill, &axes, &[])
            })
            .collect()
    }

    /// The gaussian of each block over its extended block, gathered first (halos on any axes).
    pub(super) fn gaussian_blocks(
        &mut self,
        node: &Node,
        input: &Table,
        sigma: &[f64],
        mode: BoundaryMode,
        truncate: f64,
    ) -> Table {
        let weights: Vec<Vec<f32>> = sigma.iter().map(|&s| gaussian_weights(s, truncate)).collect();
        let halo: Vec<usize> = weights.iter().map(|w| w.len() / 2).collect();
        let passes: Vec<(usize, Arc<Vec<f32>>)> = weights
            .into_iter()
            .enumerate()
            .filter(|(_, w)| w.len() > 1)
            .map(|(a, w)| (a, Arc::new(w)))
            .collect();
        let gathers = self.halo_gathers(node, input, &halo, mode);
        let grid = input.grid.clone();
        let shape = grid.shape().to_vec();
        let tasks = grid
            .block_indices()
            .into_iter()
            .zip(gathers)
            .map(|(idx, g)| {
                let region = grid.region(&idx);
                let constant = mode.constant().map(|c| {
                    let inside = (0..shape.len())
                        .map(|a| {
                            let lo = region[a].start as i64 - halo[a] as i64;
                            let first = (-lo).max(0) as usize;
                            let last = (shape[a] as i64 - lo).min((region[a].len() + 2 * halo[a]) as i64) as usize;
                            first..last
                        })
                        .collect();
                    (c, inside)
                });
                let block = block_shape(&grid, &idx);
                let ext_bytes = self.tasks[g].out_bytes;
                let bytes = elems(&block) * 4;
                self.add(
                    node,
                    idx,
                    TaskKind::Gaussian {
                        passes: passes.clone(),
                        constant,
                    },
                    vec![g],
                    bytes,
                    ext_bytes,
                )
            })
            .collect();
        Self::table(grid, node.dtype, tasks)
    }

    /// The gaussian over the last two axes with halos read from neighbour blocks directly.
    pub(super) fn gaussian_tiles(
        &mut self,
        node: &Node,
        input: &Table,
        sigma: &[f64],
        mode: BoundaryMode,
        truncate: f64,
    ) -> Table {
        let grid = input.grid.clone();
        let nd = grid.ndim();
        let (ay, ax) = (nd - 2, nd - 1);
        let (wy, wx) = (
            gaussian_weights(sigma[ay], truncate),
            gaussian_weights(sigma[ax], truncate),
        );
        let (ry, rx) = (wy.len() / 2, wx.len() / 2);
        let shape = grid.shape().to_vec();
        let offsets_y = grid.offsets(ay);
        let offsets_x = grid.offsets(ax);
        // Extended positions along one axis → (block along the axis, local index), or None.
        let map = |start: usize, len: usize, r: usize, n: usize, offsets: &[usize]| -> Vec<Option<(usize, usize)>> {
            (0..len + 2 * r)
                .map(|p| {
                    mode.map_index(start as i64 - r as i64 + p as i64, n).map(|g| {
                        let b = offsets.partition_point(|&o| o <= g) - 1;
                        (b, g - offsets[b])
                    })
                })
                .collect()
        };
        let tasks = grid
            .block_indices()
            .into_iter()
            .map(|idx| {
                let region = grid.region(&idx);
                let ys = map(region[ay].start, region[ay].len(), ry, shape[ay], &offsets_y);
                let xs = map(region[ax].start, region[ax].len(), rx, shape[ax], &offsets_x);
                let mut by: Vec<usize> = ys.iter().flatten().map(|&(b, _)| b).collect();
                let mut bx: Vec<usize> = xs.iter().flatten().map(|&(b, _)| b).collect();
                by.sort_unstable();
                by.dedup();
                bx.sort_unstable();
                bx.dedup();
                let rows = ys
                    .iter()
                    .map(|m| m.map(|(b, l)| (by.binary_search(&b).expect("listed"), l)))
                    .collect();
                let located = xs
                    .iter()
                    .map(|m| m.map(|(b, l)| (bx.binary_search(&b).expect("listed"), l)));
                let cols = runs_of(located)
                    .into_iter()
                    .map(|r| ColumnRun {
                        dst: r.dst_start,
                        len: r.dst_len,
                        block: r.block,
                        src: r.src_start,
                        step: r.step,
                    })
                    .collect();
                let mut deps = Vec::with_capacity(by.len() * bx.len());
                for &y in &by {
                    for &x in &bx {
                        let mut n = idx.clone();
                        n[ay] = y;
                        n[ax] = x;
                        deps.push(input.tasks[grid.flat_index(&n)]);
                    }
                }
                let lo = region[ax].start as i64 - rx as i64;
                let inside_cols =
                    (-lo).max(0) as usize..(shape[ax] as i64 - lo).min((region[ax].len() + 2 * rx) as i64) as usize;
                let block = block_shape(&grid, &idx);
                let bytes = elems(&block) * 4;
                let spec = TileSpec {
                    wy: wy.clone(),
                    wx: wx.clone(),
                    rows,
                    cols,
                    nx: bx.len(),
                    fill: mode.constant(),
                    inside_cols,
                    shape: block,
                };
                // per thread (tiles.rs): a ring of 2ry + 2 extended rows and 2 filtered rows, each
                // rounded up to whole 64-byte lines
                let row_bytes = (region[ax].len() + 2 * rx).next_multiple_of(16) * 4;
                let scratch = ((2 * ry + 4) * row_bytes) as u64 * self.options.threads as u64;
                self.add(node, idx, TaskKind::GaussianTiles(Arc::new(spec)), deps, bytes, scratch)
            })
            .collect();
        Self::table(grid, node.dtype, tasks)
    }

    /// `op` along `axis` of each block of `input` (which holds the axis whole): one task per
    /// block, writing a block of the input's shape.
    pub(super) fn along_blocks(&mut self, node: &Node, input: &Table, op: &Arc<AlongOp>, axis: usize) -> Table {
        let grid = input.grid.clone();
        let tasks = grid
            .block_indices()
            .into_iter()
            .zip(input.tasks.to_vec())
            .map(|(idx, s)| {
                let bytes = elems(&block_shape(&grid, &idx)) * 4;
                let kind = TaskKind::Along { op: op.clone(), axis };
                // a block whose axis is not first (or lies last) is turned in one copy
                self.add(node, idx, kind, vec![s], bytes, bytes)
            })
            .collect();
        Self::table(grid, node.dtype, tasks)
    }

    /// The user function over each block, extended by `depth` first when it is not zero.
    pub(super) fn map_blocks(
        &mut self,
        node: &Node,
        input: &Table,
        f: &crate::expr::BlockFn,
        depth: &[usize],
        mode: BoundaryMode,
    ) -> Table {
        let sources: Vec<usize> = if depth.iter().all(|&d| d == 0) {
            input.tasks.to_vec()
        } else {
            self.halo_gathers(node, input, depth, mode)
        };
        let grid = input.grid.clone();
        let tasks = grid
            .block_indices()
            .into_iter()
            .zip(sources)
            .map(|(idx, s)| {
                let bytes = elems(&block_shape(&grid, &idx)) * 4;
                let extended = self.tasks[s].out_bytes.max(bytes);
                self.add(
                    node,
                    idx,
                    TaskKind::Map {
                        f: f.clone(),
                        trim: depth.to_vec(),
                    },
                    vec![s],
                    bytes,
                    extended,
                )
            })
            .collect();
        Self::table(grid, node.dtype, tasks)
    }
}
