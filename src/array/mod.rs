//! The user-facing lazy [`Array`]: shape, chunk grid, dtype, optional dim names, and builder
//! methods that record operations. Nothing is read or computed until `compute`, `persist` or a
//! sink asks.
//!
//! Building never panics on bad input: a shape mismatch or a bad axis is kept inside the array
//! (as polars keeps errors in a lazy frame) and returned by [`Array::check`], `compute` and
//! `persist`.

mod along;
mod compute;
mod elementwise;
mod fill;
mod filter;
mod reduce;
mod scan;
mod select;
mod window;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use ndarray::{ArcArray, ArrayD, IxDyn};

use crate::expr::{ChunkGrid, ChunkSource, Chunks, DType, ExprError, HostArray, Node, Op, SourceElement, SourceError};

pub use crate::expr::MovingWindow;
pub use compute::{compute_many, execute_graph, plan_many};
pub use reduce::Axes;
pub use select::Slice;

/// A lazy, chunked n-dimensional array: a recipe for values, cut into blocks.
///
/// Cloning is O(1) (the expression is shared). Every operation returns a new `Array` and costs
/// only the bookkeeping of one expression node.
///
/// ```
/// use strata::{Array, Slice};
/// let ones = Array::ones(&[1000, 4000], [1000, 1000]);
/// let flipped = ones.slice(&[Slice::reverse(), Slice::reverse()]);
/// let mean = (&ones * &flipped).mean(strata::array::Axes::All);
/// assert_eq!(mean.compute_scalar().unwrap(), 1.0);
/// ```
#[derive(Clone)]
pub struct Array {
    node: Result<Arc<Node>, ExprError>,
    dims: Option<Arc<Vec<String>>>,
}

impl Array {
    pub(crate) fn from_node(node: Arc<Node>) -> Self {
        Array {
            node: Ok(node),
            dims: None,
        }
    }

    pub(crate) fn from_result(node: Result<Arc<Node>, ExprError>) -> Self {
        Array { node, dims: None }
    }

    pub(crate) fn node(&self) -> Result<&Arc<Node>, ExprError> {
        self.node.as_ref().map_err(Clone::clone)
    }

    /// Keeps `self`'s dim names on a result of the same rank.
    pub(crate) fn same_dims(&self, out: Array) -> Array {
        match (&self.dims, &out.node) {
            (Some(d), Ok(n)) if d.len() == n.grid.ndim() => Array {
                dims: Some(d.clone()),
                ..out
            },
            _ => out,
        }
    }

    fn source(op: Op, shape: &[usize], chunks: Chunks, dtype: DType) -> Array {
        Array::from_result(ChunkGrid::new(shape, &chunks).map(|grid| Node::new(op, vec![], grid, dtype)))
    }

    /// An array of `value` everywhere (numpy's `full`). O(1); blocks are filled when needed.
    pub fn full(shape: &[usize], value: f32, chunks: impl Into<Chunks>) -> Array {
        Array::source(Op::Fill(value), shape, chunks.into(), DType::F32)
    }

    /// An array of zeros.
    pub fn zeros(shape: &[usize], chunks: impl Into<Chunks>) -> Array {
        Array::full(shape, 0.0, chunks)
    }

    /// An array of ones.
    pub fn ones(shape: &[usize], chunks: impl Into<Chunks>) -> Array {
        Array::full(shape, 1.0, chunks)
    }

    /// Wraps an in-memory array of f32, f64, u8, u16, i16, u32 or i32; blocks are views for f32
    /// (no copy) and converted to f32 when read for the other types. O(1).
    pub fn from_ndarray<T: SourceElement>(array: ArrayD<T>, chunks: impl Into<Chunks>) -> Array {
        let shape = array.shape().to_vec();
        Array::source(
            Op::Host(T::wrap(array.into_shared())),
            &shape,
            chunks.into(),
            DType::F32,
        )
    }

    /// Wraps a shared in-memory f32 array without copying it: blocks are views of it, and the
    /// caller may keep its own handle (a computed labelled array holds its values this way).
    pub fn from_shared(array: ArcArray<f32, IxDyn>, chunks: impl Into<Chunks>) -> Array {
        let shape = array.shape().to_vec();
        Array::source(Op::Host(HostArray::F32(array)), &shape, chunks.into(), DType::F32)
    }

    /// Wraps an in-memory mask (non-zero is true).
    pub fn from_mask(mask: ArrayD<bool>, chunks: impl Into<Chunks>) -> Array {
        let shape = mask.shape().to_vec();
        let bytes = mask.mapv(u8::from).into_shared();
        Array::source(Op::Host(HostArray::Mask(bytes)), &shape, chunks.into(), DType::U8)
    }

    /// An array whose blocks a [`ChunkSource`] produces on demand, for data larger than memory
    /// or read from storage. O(1); the source is asked for exactly the blocks a computation needs.
    pub fn from_source(shape: &[usize], chunks: impl Into<Chunks>, source: Arc<dyn ChunkSource>) -> Array {
        Array::source(Op::Source(source), shape, chunks.into(), DType::F32)
    }

    /// An array whose values come from `f(region)`, called once per block with the block's
    /// index ranges; it must return exactly that region's values, the same for the same pixel
    /// whatever the region.
    pub fn from_fn<F>(shape: &[usize], chunks: impl Into<Chunks>, name: &str, f: F) -> Array
    where
        F: Fn(&[Range<usize>]) -> ArrayD<f32> + Send + Sync + 'static,
    {
        Array::from_source(
            shape,
            chunks,
            Arc::new(FnSource {
                name: name.to_string(),
                f,
            }),
        )
    }

    /// Names the axes (`["time", "y", "x"]`); reductions and filters can then take names.
    pub fn with_dims<S: AsRef<str>>(mut self, dims: &[S]) -> Array {
        let names: Vec<String> = dims.iter().map(|s| s.as_ref().to_string()).collect();
        match &self.node {
            Ok(n) if n.grid.ndim() != names.len() => {
                self.node = Err(ExprError::InvalidArgument {
                    op: "with_dims".into(),
                    reason: format!("{} names for {} axes", names.len(), n.grid.ndim()),
                });
            }
            _ => self.dims = Some(Arc::new(names)),
        }
        self
    }

    /// The dim names, if set.
    pub fn dims(&self) -> Option<&[String]> {
        self.dims.as_deref().map(Vec::as_slice)
    }

    /// The axis number of a named dim.
    ///
    /// **Errors**: [`ExprError::InvalidArgument`] when no dim has that name.
    pub fn axis_of(&self, name: &str) -> Result<usize, ExprError> {
        self.dims()
            .and_then(|d| d.iter().position(|n| n == name))
            .ok_or_else(|| ExprError::InvalidArgument {
                op: "axis_of".into(),
                reason: format!("no dim named {name:?} (dims {:?})", self.dims()),
            })
    }

    /// The shape (empty for an array whose construction failed; see [`Array::check`]).
    pub fn shape(&self) -> &[usize] {
        self.node.as_ref().map(|n| n.shape()).unwrap_or(&[])
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The element type (f32 for an invalid array).
    pub fn dtype(&self) -> DType {
        self.node.as_ref().map(|n| n.dtype).unwrap_or(DType::F32)
    }

    /// The chunk grid (`None` for an invalid array).
    pub fn grid(&self) -> Option<&ChunkGrid> {
        self.node.as_ref().ok().map(|n| &n.grid)
    }

    /// Block sizes along every axis (dask's `.chunks`).
    pub fn chunks(&self) -> Vec<Vec<usize>> {
        self.grid().map(|g| g.all_sizes().to_vec()).unwrap_or_default()
    }

    /// Bytes the whole array would take in memory (xarray's `nbytes`).
    pub fn nbytes(&self) -> u64 {
        self.node.as_ref().map(|n| n.nbytes()).unwrap_or(0)
    }

    /// Returns the error recorded while building, if any.
    ///
    /// **Errors**: the first [`ExprError`] met while building this array.
    pub fn check(&self) -> Result<(), ExprError> {
        self.node().map(|_| ())
    }
}

struct FnSource<F> {
    name: String,
    f: F,
}

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FnSource({})", self.name)
    }
}

impl<F> ChunkSource for FnSource<F>
where
    F: Fn(&[Range<usize>]) -> ArrayD<f32> + Send + Sync,
{
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<f32>, SourceError> {
        Ok((self.f)(region))
    }

    fn label(&self) -> String {
        self.name.clone()
    }
}

fn fmt_shape(s: &[usize]) -> String {
    format!("({})", s.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", "))
}

impl fmt::Display for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Err(e) => write!(f, "strata.Array<invalid: {e}>"),
            Ok(n) => {
                let dims = self.dims().map(|d| format!("({}: ", d.join(", "))).unwrap_or_default();
                write!(
                    f,
                    "strata.Array<{}, {}shape={}, dtype={}, chunksize={}, blocks={}, nbytes={}>",
                    n.op.name(),
                    if dims.is_empty() {
                        String::new()
                    } else {
                        format!("dims={}) ", dims.trim_end_matches(": "))
                    },
                    fmt_shape(n.shape()),
                    n.dtype,
                    fmt_shape(&n.grid.max_block_shape()),
                    n.grid.num_blocks(),
                    human_bytes(n.nbytes()),
                )
            }
        }
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Bytes with a binary unit, as dask prints sizes.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.2} {}", units[u])
    }
}
