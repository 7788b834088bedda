//! Labelled arrays, what xarray gives the tutorial: a lazy [`Array`] with named dims,
//! coordinates along them and georeferencing attributes. Select by band name or by coordinate
//! values (`sel`, `loc`, descending y included), resample time by calendar month, drop
//! all-NaN steps, reduce over named dims; the coordinates follow the data through every
//! operation, and every operation stays lazy except `dropna`, which must look at the values.
//!
//! ```
//! use strata::labelled::{Coord, CoordValues, DataArray};
//! use strata::Array;
//! let data = Array::from_ndarray(ndarray::Array::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f32).into_dyn(), [2, 3]);
//! let da = DataArray::new(data, &["band", "x"], vec![
//!     Coord::index("band", CoordValues::Str(vec!["red".into(), "nir".into()])),
//!     Coord::index("x", CoordValues::F64(vec![15.0, 45.0, 75.0])),
//! ]).unwrap();
//! let nir = da.sel("band", "nir").unwrap().loc("x", 40.0, 80.0).unwrap();
//! assert_eq!(nir.values().unwrap().into_raw_vec_and_offset().0, vec![4.0, 5.0]);
//! ```

mod align;
mod coarsen;
mod compute;
mod coords;
mod fill;
mod groupby;
mod interp;
mod ops;
mod resample;
mod rolling;
mod select;
mod stats;
mod write;
mod zarr;

use ndarray::{ArcArray, IxDyn};
use std::fmt;

use crate::array::{human_bytes, Array};
use crate::geo::{Affine, XyCoords};

pub use align::Join;
pub use coarsen::{Boundary, Coarsen};
pub use compute::compute_all;
pub use coords::{Coord, CoordValues, Label};
pub use fill::InterpolateNa;
pub use groupby::TimeGroups;
pub use resample::{CalendarBins, DropHow};
pub use rolling::Rolling;
pub(crate) use zarr::prepare_zarr_group;
pub use zarr::to_zarr_all;

/// What went wrong selecting by label or lining up coordinates.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// No dim of that name.
    #[error("no dim {dim:?} (dims {dims:?})")]
    NoDim {
        /// the dim asked for
        dim: String,
        /// the array's dims
        dims: Vec<String>,
    },
    /// The dim has no index coordinate to select by.
    #[error("dim {dim:?} has no coordinate to select labels by")]
    NoCoord {
        /// the dim
        dim: String,
    },
    /// A label that is not in the coordinate.
    #[error("{label} is not a label of {dim:?}")]
    NoLabel {
        /// the dim
        dim: String,
        /// the label
        label: String,
    },
    /// A label of the wrong kind for the coordinate (a name for numbers, say).
    #[error("{label} cannot label {dim:?}, whose values are {coord_type}")]
    LabelType {
        /// the dim
        dim: String,
        /// the label
        label: String,
        /// the coordinate's value type
        coord_type: &'static str,
    },
    /// No label within the tolerance of a nearest-label selection.
    #[error("no label of {dim:?} within {tolerance} of {label} (the nearest is {nearest}, {distance} away)")]
    NotNear {
        /// the dim
        dim: String,
        /// the label asked for
        label: String,
        /// the nearest label there is
        nearest: String,
        /// its distance (seconds on a time coordinate)
        distance: f64,
        /// the tolerance given
        tolerance: f64,
    },
    /// A coarsening window that does not fit its dim.
    #[error("coarsen: {dim:?} has {size} steps, window {window}: {why}")]
    Coarsen {
        /// the dim
        dim: String,
        /// its length
        size: usize,
        /// the window asked for
        window: usize,
        /// what is wrong
        why: String,
    },
    /// A moving window that does not fit: a window of 0, a dim named twice, a `min_periods`
    /// outside the window.
    #[error("rolling along {dim:?}, window {window}: {why}")]
    Rolling {
        /// the dim (or dims, comma-separated)
        dim: String,
        /// the window asked for (its steps over every dim, for `min_periods`)
        window: usize,
        /// what is wrong
        why: String,
    },
    /// A nearest-label selection on a coordinate whose labels have no distance (names).
    #[error("sel(method=\"nearest\") along {dim:?}: its labels are {coord_type}, which have no distance")]
    NoDistance {
        /// the dim
        dim: String,
        /// the coordinate's value type
        coord_type: &'static str,
    },
    /// An interpolation along a dim whose coordinate gives no positions to interpolate at.
    #[error("interpolate_na along {dim:?}: {why}")]
    Interpolate {
        /// the dim
        dim: String,
        /// what is wrong with its coordinate
        why: String,
    },
    /// An interpolation onto new positions along a dim that gives none, or positions of
    /// another kind than its coordinate.
    #[error("interp along {dim:?}: {why}")]
    Interp {
        /// the dim
        dim: String,
        /// what is wrong
        why: String,
    },
    /// A polynomial fit strata does not offer, or along a dim without positions.
    #[error("polyfit along {dim:?}: {why}")]
    Polyfit {
        /// the dim
        dim: String,
        /// what is wrong
        why: String,
    },
    /// A label slice on a coordinate that is neither ascending nor descending.
    #[error("dim {dim:?}: label slices need a sorted coordinate")]
    NotMonotonic {
        /// the dim
        dim: String,
    },
    /// Two operands label a shared dim differently.
    #[error(
        "{op}: the operands' {dim:?} coordinates differ ({left} against {right}), and the join asks for equal labels"
    )]
    Misaligned {
        /// the operation
        op: String,
        /// the dim
        dim: String,
        /// the left operand's labels, summarised (count, first, last)
        left: String,
        /// the right operand's labels, summarised
        right: String,
    },
    /// A position outside a dim.
    #[error("{op}: index {index} out of range for dim {dim:?} of length {len}")]
    OutOfRange {
        /// the selection
        op: &'static str,
        /// the dim
        dim: String,
        /// the index asked for
        index: isize,
        /// the dim's length
        len: usize,
    },
    /// A slice that selects nothing sensible (a zero step).
    #[error("{op} along {dim:?}: {reason}")]
    BadSlice {
        /// the operation
        op: &'static str,
        /// the dim
        dim: String,
        /// why
        reason: String,
    },
    /// A quantile outside [0, 1].
    #[error("quantile: q = {q} is outside [0, 1]")]
    Quantile {
        /// the q asked for
        q: f64,
    },
    /// A grouping key strata does not know (it knows `time.month` and `time.season`).
    #[error("groupby: key {key:?} (strata knows \"time.month\" and \"time.season\")")]
    GroupKey {
        /// the key asked for
        key: String,
    },
    /// A resampling frequency strata does not know.
    #[error("resample: frequency {freq:?} (strata knows MS, QS, YS, W and D, and multiples such as 2MS)")]
    Frequency {
        /// the frequency asked for
        freq: String,
    },
    /// A dim with nothing in it, where an operation needs values.
    #[error("{op}: dim {dim:?} is empty")]
    EmptyDim {
        /// the operation
        op: &'static str,
        /// the dim
        dim: String,
    },
    /// Data, dims or coordinates whose sizes do not fit together.
    #[error("{what}: {found} where {expected} fit")]
    Shape {
        /// what did not fit (dims, a coordinate, new data)
        what: String,
        /// the size or shape that fits, as text
        expected: String,
        /// the size or shape given, as text
        found: String,
    },
    /// A name used twice where names must differ (a dim, an array in one Zarr group).
    #[error("{what} {name:?} named twice")]
    Duplicate {
        /// what is named
        what: &'static str,
        /// the name
        name: String,
    },
    /// An array that needs a name to be written (to a Zarr group) has none.
    #[error("an array written to Zarr needs a name")]
    Unnamed,
    /// Arrays of one Zarr group whose index coordinates of one name differ.
    #[error("index coordinate {coord:?} differs between the arrays of one Zarr group")]
    CoordConflict {
        /// the coordinate
        coord: String,
    },
    /// Dims that do not fit what is being written.
    #[error("{what} needs dims {wanted}; the array has {dims:?}")]
    Layout {
        /// what was being written
        what: &'static str,
        /// the dims it takes
        wanted: &'static str,
        /// the array's dims
        dims: Vec<String>,
    },
    /// Georeferencing a file needs and the array lacks.
    #[error("the array has no {missing}: select from a stack, or add the coordinates and attributes")]
    NotGeoreferenced {
        /// what is missing
        missing: &'static str,
    },
    /// The array under the labels is invalid (its expression failed to build).
    #[error("the data is invalid: {0}")]
    Data(crate::expr::ExprError),
}

/// Attributes of a labelled array: what its x/y coordinates mean on the ground.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GeoAttrs {
    /// EPSG code of the x/y coordinates
    pub epsg: Option<u32>,
    /// pixel size (x, y), positive
    pub resolution: Option<(f64, f64)>,
    /// which point of a pixel the x/y coordinates name
    pub xy_coords: XyCoords,
}

/// A lazy array with named dims, coordinates and georeferencing: xarray's `DataArray` over
/// a strata [`Array`]. Cloning is cheap (the expression is shared; coordinates are copied).
#[derive(Clone)]
pub struct DataArray {
    data: Array,
    dims: Vec<String>,
    coords: Vec<Coord>,
    attrs: GeoAttrs,
    name: Option<String>,
    /// the values, when computed (`data` then reads them too)
    held: Option<ArcArray<f32, IxDyn>>,
    /// a labelling error found while building (operands whose labels differ), kept as the
    /// array layer keeps its build errors and returned, typed, by every compute
    failed: Option<LabelError>,
}

impl DataArray {
    /// Labels `data` with `dims` (one per axis) and `coords` (each along one of the dims with
    /// that dim's length, or scalar). O(number of coordinate values).
    ///
    /// **Errors**: [`LabelError::Data`] for invalid data, [`LabelError::Shape`] when the dims or a
    /// coordinate do not fit the shape, [`LabelError::Duplicate`] for a dim named twice,
    /// [`LabelError::NoDim`] for a coordinate along a dim the array lacks.
    pub fn new<S: AsRef<str>>(data: Array, dims: &[S], coords: Vec<Coord>) -> Result<DataArray, LabelError> {
        let dims: Vec<String> = dims.iter().map(|d| d.as_ref().to_string()).collect();
        if let Err(e) = data.check() {
            return Err(LabelError::Data(e));
        }
        if dims.len() != data.ndim() {
            return Err(LabelError::Shape {
                what: format!("dims {dims:?}"),
                expected: format!("{} dims", data.ndim()),
                found: format!("{} dims", dims.len()),
            });
        }
        for (i, d) in dims.iter().enumerate() {
            if dims[..i].contains(d) {
                return Err(LabelError::Duplicate {
                    what: "dim",
                    name: d.clone(),
                });
            }
        }
        let da = DataArray {
            data: data.with_dims(&dims),
            dims,
            coords: Vec::new(),
            attrs: GeoAttrs::default(),
            name: None,
            held: None,
            failed: None,
        };
        coords.into_iter().try_fold(da, |da, c| da.with_coord(c))
    }

    /// Adds (or replaces) a coordinate.
    ///
    /// **Errors**: [`LabelError::NoDim`] when it runs along a dim the array lacks,
    /// [`LabelError::Shape`] when it has the wrong length.
    pub fn with_coord(mut self, coord: Coord) -> Result<DataArray, LabelError> {
        let want = match &coord.dim {
            Some(d) => self.size_of(d)?,
            None => 1,
        };
        if coord.values.len() != want {
            return Err(LabelError::Shape {
                what: format!("coordinate {:?}", coord.name),
                expected: format!("{want} values"),
                found: format!("{} values", coord.values.len()),
            });
        }
        self.coords.retain(|c| c.name != coord.name);
        self.coords.push(coord);
        Ok(self)
    }

    /// Sets the georeferencing attributes.
    pub fn with_attrs(mut self, attrs: GeoAttrs) -> DataArray {
        self.attrs = attrs;
        self
    }

    /// Names the array (shown by `Display`).
    pub fn with_name(mut self, name: &str) -> DataArray {
        self.name = Some(name.to_string());
        self
    }

    /// The lazy data, dims named.
    pub fn data(&self) -> &Array {
        &self.data
    }

    /// The dim names, one per axis.
    pub fn dims(&self) -> &[String] {
        &self.dims
    }

    /// The shape (empty for an array whose build failed: [`DataArray::check`] says why).
    pub fn shape(&self) -> &[usize] {
        self.data.shape()
    }

    /// Every coordinate: index coordinates, those riding along a dim, and scalars.
    pub fn coords(&self) -> &[Coord] {
        &self.coords
    }

    /// The coordinate called `name`, if any.
    pub fn coord(&self, name: &str) -> Option<&Coord> {
        self.coords.iter().find(|c| c.name == name)
    }

    /// The georeferencing attributes.
    pub fn attrs(&self) -> &GeoAttrs {
        &self.attrs
    }

    /// The name, if set.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Bytes the whole array would take in memory (xarray's `nbytes`); nothing is computed.
    pub fn nbytes(&self) -> u64 {
        self.data.nbytes()
    }

    /// The axis of dim `dim`.
    ///
    /// **Errors**: [`LabelError::NoDim`].
    pub fn axis(&self, dim: &str) -> Result<usize, LabelError> {
        self.dims
            .iter()
            .position(|d| d == dim)
            .ok_or_else(|| LabelError::NoDim {
                dim: dim.to_string(),
                dims: self.dims.clone(),
            })
    }

    fn size_of(&self, dim: &str) -> Result<usize, LabelError> {
        Ok(self.shape()[self.axis(dim)?])
    }

    /// The index coordinate of `dim`.
    fn index_of(&self, dim: &str) -> Result<&Coord, LabelError> {
        self.axis(dim)?;
        self.coords
            .iter()
            .find(|c| c.is_index() && c.name == dim)
            .ok_or_else(|| LabelError::NoCoord { dim: dim.to_string() })
    }

    /// The f64 values of the index coordinate of `dim` (x, y).
    ///
    /// **Errors**: [`LabelError::NoCoord`] when it has none or it is not numeric.
    pub fn f64_coord(&self, dim: &str) -> Result<&[f64], LabelError> {
        match &self.index_of(dim)?.values {
            CoordValues::F64(v) => Ok(v),
            _ => Err(LabelError::NoCoord { dim: dim.to_string() }),
        }
    }

    /// The pixel → CRS transform of the `(y, x)` grid, from the x/y coordinates, the
    /// resolution and the pixel convention; `None` without x and y coordinates and a resolution.
    pub fn transform(&self) -> Option<Affine> {
        let (x, y) = (self.f64_coord("x").ok()?, self.f64_coord("y").ok()?);
        let (rx, ry) = self.attrs.resolution?;
        let shift = if self.attrs.xy_coords == XyCoords::Center {
            0.5
        } else {
            0.0
        };
        Some(Affine::north_up(
            x.first()? - shift * rx,
            y.first()? + shift * ry,
            rx,
            ry,
        ))
    }

    /// Same labels, other data of the same shape (what an elementwise operation on the data
    /// gives).
    ///
    /// **Errors**: [`LabelError::Shape`] when the shapes differ.
    pub fn with_data(&self, data: Array) -> Result<DataArray, LabelError> {
        if data.check().is_ok() && data.shape() != self.shape() {
            return Err(LabelError::Shape {
                what: "new data for these labels".into(),
                expected: format!("shape {:?}", self.shape()),
                found: format!("shape {:?}", data.shape()),
            });
        }
        Ok(self.relabel(data))
    }

    /// The block sizes along every dim (xarray's `.chunks` of a dask-backed array). Free.
    pub fn chunks(&self) -> Vec<Vec<usize>> {
        self.data.chunks()
    }

    /// The same values in other blocks along the named dims (xarray's `.chunk({"x": 512})`):
    /// blocks of `k` steps (the last one shorter), `0` for the whole dim; the other dims keep
    /// theirs. Lazy, O(1): the planner regathers blocks only where a consumer cannot take the
    /// new ones as they come.
    ///
    /// **Errors**: [`LabelError::NoDim`].
    pub fn chunk(&self, chunks: &[(&str, usize)]) -> Result<DataArray, LabelError> {
        let mut sizes = self.data.chunks();
        for &(dim, k) in chunks {
            let axis = self.axis(dim)?;
            let n = self.shape()[axis];
            sizes[axis] = crate::expr::split_regular(n, if k == 0 { n } else { k });
        }
        if self.data.check().is_err() {
            return Ok(self.clone());
        }
        Ok(self.relabel(self.data.rechunk(crate::expr::Chunks::PerAxis(sizes))))
    }

    /// `data` (any shape, possibly invalid) under these labels; its error, if any, surfaces
    /// when computed.
    fn relabel(&self, data: Array) -> DataArray {
        DataArray {
            data: if data.check().is_ok() && data.ndim() == self.dims.len() {
                data.with_dims(&self.dims)
            } else {
                data
            },
            held: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for DataArray {
    /// xarray's repr: dims and sizes, the lazy data (dtype, chunk shape, blocks, bytes), the
    /// number of tasks its plan has (planning costs about a microsecond a block), the
    /// coordinates abbreviated, and the georeferencing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: Vec<String> = self
            .dims
            .iter()
            .zip(self.shape())
            .map(|(d, n)| format!("{d}: {n}"))
            .collect();
        let name = self.name.as_deref().map(|n| format!(" {n:?}")).unwrap_or_default();
        writeln!(f, "<strata.DataArray{name} ({})>", sizes.join(", "))?;
        writeln!(f, "{}", self.data)?;
        match self.data.plan() {
            Ok(g) => writeln!(f, "tasks: {}, {} in memory", g.tasks.len(), human_bytes(self.nbytes()))?,
            Err(e) => writeln!(f, "tasks: cannot plan: {e}")?,
        }
        if !self.coords.is_empty() {
            writeln!(f, "Coordinates:")?;
            let width = self.coords.iter().map(|c| c.name.len()).max().unwrap_or(0).max(10);
            for c in &self.coords {
                c.fmt_row(f, width)?;
            }
        }
        let a = &self.attrs;
        if a.epsg.is_some() || a.resolution.is_some() {
            writeln!(f, "Attributes:")?;
            if let Some(e) = a.epsg {
                writeln!(f, "    crs:        EPSG:{e}")?;
            }
            if let Some((rx, ry)) = a.resolution {
                writeln!(f, "    resolution: ({rx}, {ry})")?;
            }
            writeln!(f, "    xy_coords:  {:?}", a.xy_coords)?;
            if let Some(t) = self.transform() {
                writeln!(
                    f,
                    "    transform:  ({}, {}, {}, {}, {}, {})",
                    t.a, t.b, t.c, t.d, t.e, t.f
                )?;
            }
        }
        Ok(())
    }
}

/// The labels and the lazy array's summary, without planning (`Display` plans, to count tasks).
impl fmt::Debug for DataArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let coords: Vec<&str> = self.coords.iter().map(|c| c.name.as_str()).collect();
        f.debug_struct("DataArray")
            .field("name", &self.name)
            .field("dims", &self.dims)
            .field("data", &self.data)
            .field("coords", &coords)
            .field("attrs", &self.attrs)
            .field("in_memory", &self.held.is_some())
            .field("failed", &self.failed)
            .finish()
    }
}
