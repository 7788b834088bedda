//! The expression DAG as plain data: what to compute, never how.
//!
//! An [`Node`] records one operation, its inputs, and the shape, chunk grid and dtype of its
//! result, all settled when the node is built so that bad shapes fail early. Nodes are shared
//! through `Arc`, so a DAG (`ones * ones[::-1]` reads `ones` twice) is a DAG and not a tree;
//! [`NodeId`]s identify shared nodes. Nothing here reads or computes a pixel.

mod along;
mod grid;
pub(crate) mod layout;
pub mod nonfinite;
mod ops;
mod raw;
mod source;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

pub(crate) use along::WindowOp;
pub use along::{AlongOp, MovingWindow, ScanOp};
pub use grid::without_axes;
pub(crate) use grid::{split_regular, unravel};
pub use grid::{ChunkGrid, Chunks};
pub use ops::{BinaryOp, BoundaryMode, ReduceOp, UnaryOp};
// Stored codes and their decode tables are strata's own sources' business: public types in a
// private module, so `ChunkSource::read_raw` can name them without users depending on them.
pub(crate) use raw::{DecodeSpec, DecodeTable, RawBlock, StoredType, TABLE_LEN};
pub(crate) use source::SourceData;
pub use source::{
    Block, BlockFn, BlockFunction, ChunkSource, HostArray, IoCounters, IoMeter, Prefetch, RequestSpan, RetryCounts,
    SourceElement, SourceError,
};

/// Element type of an array: f32 values, or u8 masks (0 or 1) from comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum DType {
    /// 32-bit float: every computation runs in f32.
    F32,
    /// 8-bit mask (0 false, 1 true), from comparisons and `isnan`.
    U8,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::U8 => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "float32",
            DType::U8 => "uint8",
        })
    }
}

/// Errors found while building an expression (shapes, axes, arguments).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// Operand shapes cannot be broadcast together.
    #[error("{op}: shapes {left:?} and {right:?} cannot be broadcast together")]
    ShapeMismatch {
        /// the operation
        op: String,
        /// shape of the left operand
        left: Vec<usize>,
        /// shape of the right operand
        right: Vec<usize>,
    },
    /// An axis number outside the array's rank.
    #[error("{op}: axis {axis} is out of range for an array of rank {ndim}")]
    AxisOutOfRange {
        /// the operation
        op: String,
        /// the axis asked for
        axis: isize,
        /// rank of the array
        ndim: usize,
    },
    /// Chunks that do not fit the shape.
    #[error("chunks do not fit shape {shape:?}: {reason}")]
    InvalidChunks {
        /// the array shape
        shape: Vec<usize>,
        /// what is wrong
        reason: String,
    },
    /// An index beyond an axis.
    #[error("{op}: index {index} is out of bounds for axis {axis} of length {len}")]
    IndexOutOfBounds {
        /// the operation
        op: String,
        /// the axis
        axis: usize,
        /// the index asked for
        index: isize,
        /// the axis length
        len: usize,
    },
    /// Any other invalid argument, with the operation and the reason.
    #[error("{op}: {reason}")]
    InvalidArgument {
        /// the operation
        op: String,
        /// what is wrong
        reason: String,
    },
}

/// Identity of a node, unique within the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeId(pub(crate) u64);

impl NodeId {
    fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NodeId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// How one output axis of a [`Op::Select`] reads its input.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AxisMap {
    /// Output index `i` reads input axis `axis` at `start + i * step` (step may be negative or 0;
    /// 0 broadcasts one input index along the whole output axis).
    Strided {
        /// input axis
        axis: usize,
        /// first input index
        start: usize,
        /// input step per output index
        step: isize,
        /// output length
        len: usize,
    },
    /// Output index `i` reads input axis `axis` at `indices[i]`.
    List {
        /// input axis
        axis: usize,
        /// input index for every output index
        indices: Arc<Vec<usize>>,
    },
    /// A new axis of this length that the input does not have (broadcast or `expand_dims`).
    New {
        /// output length
        len: usize,
    },
}

impl AxisMap {
    /// Length of the output axis.
    pub fn len(&self) -> usize {
        match self {
            AxisMap::Strided { len, .. } | AxisMap::New { len } => *len,
            AxisMap::List { indices, .. } => indices.len(),
        }
    }

    /// Whether the output axis is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The input axis this output axis reads (`None` for a new axis).
    pub fn input_axis(&self) -> Option<usize> {
        match self {
            AxisMap::Strided { axis, .. } | AxisMap::List { axis, .. } => Some(*axis),
            AxisMap::New { .. } => None,
        }
    }

    /// The input axis and index that output index `i` reads (`None` for a new axis).
    pub fn source(&self, i: usize) -> Option<(usize, usize)> {
        match self {
            AxisMap::Strided { axis, start, step, .. } => {
                Some((*axis, (*start as isize + *step * i as isize) as usize))
            }
            AxisMap::List { axis, indices } => Some((*axis, indices[i])),
            AxisMap::New { .. } => None,
        }
    }
}

/// One selection equal to `outer` applied to the output of `inner` (maps and fixed indices of
/// each; see [`Op::Select`]), so a chain of slices, label cuts and band picks reads its
/// source once, through one index map per axis. O(output axes + list lengths).
pub fn compose_selects(
    outer: &[AxisMap],
    outer_fixed: &[(usize, usize)],
    inner: &[AxisMap],
    inner_fixed: &[(usize, usize)],
) -> (Vec<AxisMap>, Vec<(usize, usize)>) {
    // Input axis and index of the inner selection's output index `i` along its axis `j`.
    let through = |j: usize, i: usize| inner[j].source(i);
    let maps = outer
        .iter()
        .map(|m| match m {
            AxisMap::New { len } => AxisMap::New { len: *len },
            AxisMap::Strided {
                axis: j,
                start,
                step,
                len,
            } => match &inner[*j] {
                AxisMap::Strided {
                    axis,
                    start: s2,
                    step: t2,
                    ..
                } => AxisMap::Strided {
                    axis: *axis,
                    start: (*s2 as isize + *start as isize * t2) as usize,
                    step: step * t2,
                    len: *len,
                },
                AxisMap::List { axis, .. } => AxisMap::List {
                    axis: *axis,
                    indices: std::sync::Arc::new(
                        (0..*len)
                            .filter_map(|i| through(*j, (*start as isize + step * i as isize) as usize))
                            .map(|(_, k)| k)
                            .collect(),
                    ),
                },
                AxisMap::New { .. } => AxisMap::New { len: *len },
            },
            AxisMap::List { axis: j, indices } => match inner[*j].input_axis() {
                Some(axis) => AxisMap::List {
                    axis,
                    indices: std::sync::Arc::new(
                        indices.iter().filter_map(|&i| through(*j, i)).map(|(_, k)| k).collect(),
                    ),
                },
                None => AxisMap::New { len: indices.len() },
            },
        })
        .collect();
    let mut fixed = inner_fixed.to_vec();
    fixed.extend(outer_fixed.iter().filter_map(|&(j, i)| through(j, i)));
    (maps, fixed)
}

/// What a node computes from its inputs.
#[derive(Debug, Clone)]
pub enum Op {
    /// Every element is this value.
    Fill(f32),
    /// Blocks cut from an in-memory array.
    Host(HostArray),
    /// Blocks produced on demand by a [`ChunkSource`].
    Source(Arc<dyn ChunkSource>),
    /// Blocks already computed by `persist`, in the node's grid, C order.
    Persisted(Arc<Vec<Block>>),
    /// Elementwise function of one input.
    Unary(UnaryOp),
    /// Elementwise function of two inputs of the node's shape.
    Binary(BinaryOp),
    /// Elementwise function of one input and a scalar (`scalar_left`: the scalar is `a`).
    BinaryScalar {
        /// the operation
        op: BinaryOp,
        /// the scalar operand
        scalar: f32,
        /// whether the scalar is the left operand
        scalar_left: bool,
    },
    /// `where(cond, a, b)` over three inputs of the node's shape.
    Where,
    /// Conversion to the node's dtype.
    Cast,
    /// Reads input elements through per-axis index maps (slicing, `take`, broadcasting,
    /// `expand_dims`); input axes in `fixed` are pinned to one index and dropped.
    Select {
        /// how every output axis reads the input
        maps: Vec<AxisMap>,
        /// (input axis, index) pairs of dropped axes
        fixed: Vec<(usize, usize)>,
    },
    /// Inputs joined along an axis.
    Concat {
        /// the joining axis
        axis: usize,
    },
    /// The input with another chunk grid (the node's).
    Rechunk,
    /// A reduction over `axes` (sorted, unique); those axes are removed from the shape.
    Reduce {
        /// the reduction
        op: ReduceOp,
        /// the reduced input axes
        axes: Vec<usize>,
    },
    /// A reduction of the input's `axis` by integer group labels into `groups` slots; a group
    /// with no members gives [`ReduceOp::empty_value`] (NaN for min and max).
    GroupReduce {
        /// the reduction
        op: ReduceOp,
        /// the grouped axis
        axis: usize,
        /// group of every index along the axis
        labels: Arc<Vec<usize>>,
        /// number of groups (length of the output axis)
        groups: usize,
    },
    /// A reduction of every window of `windows[axis]` consecutive elements along each axis
    /// (1: the axis untouched; each axis a multiple of its window), one output element per
    /// window (xarray's `coarsen(y=k, x=k).reduce`, dask's `coarsen`).
    Coarsen {
        /// the reduction of each window's values
        op: ReduceOp,
        /// the window along every axis
        windows: Vec<usize>,
    },
    /// `scipy.ndimage.gaussian_filter` with per-axis sigma.
    Gaussian {
        /// sigma per axis (0 leaves the axis untouched)
        sigma: Vec<f64>,
        /// boundary handling
        mode: BoundaryMode,
        /// radius = int(truncate * sigma + 0.5)
        truncate: f64,
    },
    /// Work along `axis` that needs it whole in every block (the node's grid holds it so):
    /// running scans, gap fills, moving windows.
    Along {
        /// the axis
        axis: usize,
        /// the work
        op: Arc<AlongOp>,
    },
    /// A user function applied to every block.
    MapBlocks(BlockFn),
    /// A user function applied to every block extended by `depth` neighbours per axis, then
    /// trimmed back.
    MapOverlap {
        /// the function
        f: BlockFn,
        /// halo width per axis
        depth: Vec<usize>,
        /// values beyond the array edge
        mode: BoundaryMode,
    },
}

impl Op {
    /// A short name for graphs and reports.
    pub fn name(&self) -> String {
        match self {
            Op::Fill(v) => format!("full({v})"),
            Op::Host(_) => "array".into(),
            Op::Source(s) => s.label(),
            Op::Persisted(_) => "persisted".into(),
            Op::Unary(u) => format!("{u:?}").to_lowercase(),
            Op::Binary(b) | Op::BinaryScalar { op: b, .. } => b.symbol().into(),
            Op::Where => "where".into(),
            Op::Cast => "astype".into(),
            Op::Select { .. } => "getitem".into(),
            Op::Concat { .. } => "concatenate".into(),
            Op::Rechunk => "rechunk".into(),
            Op::Reduce { op, .. } => op.name().into(),
            Op::GroupReduce { op, .. } => format!("group-{}", op.name()),
            Op::Coarsen { op, .. } => format!("coarsen-{}", op.name()),
            Op::Gaussian { .. } => "gaussian".into(),
            Op::Along { op, .. } => op.name().into(),
            Op::MapBlocks(f) | Op::MapOverlap { f, .. } => f.name.clone(),
        }
    }

    /// Whether the op maps each output element from the same-position elements of inputs of
    /// the same shape (so it fuses with its neighbours and follows any chunking).
    pub fn is_elementwise(&self) -> bool {
        matches!(
            self,
            Op::Unary(_) | Op::Binary(_) | Op::BinaryScalar { .. } | Op::Where | Op::Cast
        )
    }
}

/// One node of the expression DAG: an operation, its inputs and its result's type and grid.
#[derive(Debug)]
pub struct Node {
    /// identity, for sharing
    pub id: NodeId,
    /// what it computes
    pub op: Op,
    /// operands
    pub inputs: Vec<Arc<Node>>,
    /// shape and block sizes of the result
    pub grid: ChunkGrid,
    /// element type of the result
    pub dtype: DType,
}

impl Node {
    /// Builds a node with a fresh id.
    pub fn new(op: Op, inputs: Vec<Arc<Node>>, grid: ChunkGrid, dtype: DType) -> Arc<Node> {
        Arc::new(Node {
            id: NodeId::fresh(),
            op,
            inputs,
            grid,
            dtype,
        })
    }

    /// Shape of the result.
    pub fn shape(&self) -> &[usize] {
        self.grid.shape()
    }

    /// Bytes of the whole result if it were held in memory.
    pub fn nbytes(&self) -> u64 {
        self.shape().iter().map(|&n| n as u64).product::<u64>() * self.dtype.size() as u64
    }

    /// Every node reachable from this one, inputs before consumers, each once.
    pub fn topo_order(self: &Arc<Node>) -> Vec<Arc<Node>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut stack = vec![(self.clone(), false)];
        while let Some((node, expanded)) = stack.pop() {
            if expanded {
                out.push(node);
                continue;
            }
            if !seen.insert(node.id) {
                continue;
            }
            stack.push((node.clone(), true));
            for input in node.inputs.iter().rev() {
                if !seen.contains(&input.id) {
                    stack.push((input.clone(), false));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod compose_tests {
    use super::*;

    fn strided(axis: usize, start: usize, step: isize, len: usize) -> AxisMap {
        AxisMap::Strided { axis, start, step, len }
    }

    /// Where output index `ix` of a selection reads its input.
    fn reads(maps: &[AxisMap], fixed: &[(usize, usize)], ix: &[usize], ndim: usize) -> Vec<Option<usize>> {
        let mut at = vec![None; ndim];
        for (m, &i) in maps.iter().zip(ix) {
            if let Some((a, j)) = m.source(i) {
                at[a] = Some(j);
            }
        }
        for &(a, j) in fixed {
            at[a] = Some(j);
        }
        at
    }

    #[test]
    fn a_composed_selection_reads_what_the_chain_reads() {
        // inner: (t, y, x) -> pick t = 2, y reversed, x list; output (y, x)
        let inner = vec![
            strided(1, 9, -1, 10),
            AxisMap::List {
                axis: 2,
                indices: Arc::new(vec![4, 0, 7, 7]),
            },
        ];
        let inner_fixed = vec![(0, 2)];
        // outer: (y, x) -> y every second from 1, x reversed list, a new axis, then fix nothing
        let outer = vec![
            strided(0, 1, 2, 4),
            AxisMap::New { len: 3 },
            AxisMap::List {
                axis: 1,
                indices: Arc::new(vec![3, 1]),
            },
        ];
        let (maps, fixed) = compose_selects(&outer, &[], &inner, &inner_fixed);
        for y in 0..4 {
            for n in 0..3 {
                for x in 0..2 {
                    // the chain: outer output -> inner output index -> inner input
                    let mid = reads(&outer, &[], &[y, n, x], 2);
                    let want = reads(&inner, &inner_fixed, &[mid[0].unwrap(), mid[1].unwrap()], 3);
                    assert_eq!(reads(&maps, &fixed, &[y, n, x], 3), want, "at {y} {n} {x}");
                }
            }
        }
        // an outer integer index goes through the inner map to an input index
        let (maps, fixed) = compose_selects(&[strided(1, 0, 1, 4)], &[(0, 3)], &inner, &inner_fixed);
        assert_eq!(fixed, vec![(0, 2), (1, 6)]);
        assert!(matches!(&maps[0], AxisMap::List { axis: 2, indices } if **indices == vec![4, 0, 7, 7]));
    }
}
