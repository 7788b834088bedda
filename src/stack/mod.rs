//! STAC items → one lazy `(time, band, y, x)` f32 array on one grid: stackstac's `stack`.
//!
//! Nothing is read when the stack is made (STAC metadata gives the grid); a block, when
//! computed, fetches only the tiles of the assets that intersect it, many requests in flight,
//! and decodes them on rayon. Items already on the output grid are read as tile windows;
//! others are resampled by nearest neighbour through exact per-pixel projections.

mod grid;
mod source;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::geo::XyCoords;
pub use grid::RasterSpec;

use crate::array::Array;
use crate::geo::{Bounds, Crs, GeoError};
use crate::io::{CogReader, IoError};
use crate::labelled::{Coord, CoordValues, DataArray, GeoAttrs};
use crate::stac::{Item, ItemCollection};
use source::{AssetRef, StackContext, StackSource};

/// What went wrong making or reading a stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// Nothing to stack (or no item reaches the bounds).
    #[error("no items to stack (none given, or none reaching the bounds)")]
    NoItems,
    /// No asset names given.
    #[error("no assets named")]
    NoAssets,
    /// An asset named that no item has (a typo, or the wrong collection).
    #[error("no item has an asset {asset:?} ({items} items; their assets: {known:?})")]
    UnknownAsset {
        /// the asset asked for
        asset: String,
        /// items searched
        items: usize,
        /// the asset names the items do have, sorted
        known: Vec<String>,
    },
    /// `bounds_latlon` outside longitude [-180, 180] or latitude [-90, 90].
    #[error("bounds_latlon {bounds:?} is outside longitude [-180, 180] / latitude [-90, 90]{hint}")]
    LatLonRange {
        /// the bounds given (west, south, east, north)
        bounds: Bounds,
        /// a hint when swapping each pair would fit
        hint: &'static str,
    },
    /// No item has a datetime.
    #[error("item {item}: no datetime")]
    NoDatetime {
        /// the item
        item: String,
    },
    /// No EPSG code: neither given, nor in the items' projection extension or the file.
    #[error("item {item}: no EPSG code (pass one, or use items with proj:epsg / proj:code)")]
    NoEpsg {
        /// the item
        item: String,
    },
    /// No resolution: neither given, nor derivable from `proj:transform` (also returned when no
    /// bounds are given and no asset's footprint is known from STAC).
    #[error("no resolution given and none in the items' proj:transform")]
    NoResolution,
    /// The output grid is empty.
    #[error("the bounds {bounds:?} at resolution {resolution:?} give an empty grid")]
    EmptyGrid {
        /// the snapped bounds
        bounds: Bounds,
        /// the resolution
        resolution: (f64, f64),
    },
    /// A projection failed.
    #[error(transparent)]
    Geo(#[from] GeoError),
    /// Reading an asset failed.
    #[error("item {item}, asset {asset}: {source}")]
    Read {
        /// the item
        item: String,
        /// the asset
        asset: String,
        /// the read error (URL, byte range, tile)
        source: Box<IoError>,
    },
    /// Decoding an asset failed.
    #[error("{source}")]
    Decode {
        /// the file, redacted
        url: String,
        /// the decode error (tile, byte range)
        source: Box<IoError>,
    },
    /// The file has no georeferencing.
    #[error("item {item}, asset {asset}: {url} has no GeoTIFF georeferencing")]
    NoGeoreference {
        /// the item
        item: String,
        /// the asset
        asset: String,
        /// the file, redacted
        url: String,
    },
    /// A bug or a failed background task.
    #[error("internal: {0}")]
    Internal(String),
}

/// How to stack (stackstac's arguments).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct StackOptions {
    /// asset names, in band order
    pub assets: Vec<String>,
    /// output CRS; default: the first item's
    pub epsg: Option<u32>,
    /// output bounds in the output CRS
    pub bounds: Option<Bounds>,
    /// output bounds in WGS84 degrees, projected (four corners) to the output CRS
    pub bounds_latlon: Option<Bounds>,
    /// pixel size (x, y) in CRS units; default: the first asset's `proj:transform`
    pub resolution: Option<(f64, f64)>,
    /// block shape of the (y, x) axes (time and band blocks are 1, as stackstac's)
    pub chunks_yx: (usize, usize),
    /// the value of pixels no item covers, and of nodata pixels
    #[serde(with = "crate::expr::nonfinite")]
    pub fill_value: f32,
    /// apply raster:bands `scale` and `offset`
    pub rescale: bool,
    /// the pixel point the x/y coordinates name
    pub xy_coords: XyCoords,
    /// an asset that does not exist (HTTP 404 or 410, no such file) reads as `fill_value`
    /// instead of failing the run, as stackstac's default `errors_as_nodata` treats HTTP 404;
    /// once found missing it is not asked for again (blocks already reading it may each have
    /// asked), every block read so answered counts in the execution report
    /// (`io.missing_as_nodata`), and [`Stack::missing`] lists the assets. Other errors still
    /// fail.
    #[serde(default)]
    pub missing_as_nodata: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            assets: Vec::new(),
            epsg: None,
            bounds: None,
            bounds_latlon: None,
            resolution: None,
            chunks_yx: (1024, 1024),
            fill_value: f32::NAN,
            rescale: true,
            xy_coords: XyCoords::Center,
            missing_as_nodata: false,
        }
    }
}

/// Coordinates of a stack.
#[derive(Debug, Clone, Serialize)]
pub struct StackCoords {
    /// acquisition time of each time step (sorted)
    pub time: Vec<DateTime<Utc>>,
    /// item id of each time step
    pub id: Vec<String>,
    /// asset name of each band
    pub band: Vec<String>,
    /// x of each column (see `xy_coords`)
    pub x: Vec<f64>,
    /// y of each row, descending
    pub y: Vec<f64>,
    /// which pixel point x and y name
    pub xy_coords: XyCoords,
    /// each time step's item properties (eo:cloud_cover, ...)
    pub properties: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A lazy stack: the array and its coordinates.
#[derive(Debug, Clone)]
pub struct Stack {
    /// `(time, band, y, x)` f32, dims named
    pub array: Array,
    /// the output grid
    pub spec: RasterSpec,
    /// coordinates along each dim
    pub coords: StackCoords,
    /// what its reads share (the missing assets found so far among them)
    context: Arc<StackContext>,
}

/// An asset found missing and read as nodata (see [`StackOptions::missing_as_nodata`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MissingAsset {
    /// the item's id
    pub item: String,
    /// the asset's name
    pub asset: String,
    /// the URL asked for, signatures redacted
    pub url: String,
}

impl Stack {
    /// The assets found missing and read as nodata by the computations so far (only with
    /// [`StackOptions::missing_as_nodata`]), sorted. O(their number).
    pub fn missing(&self) -> Vec<MissingAsset> {
        self.context.missing()
    }

    /// Bytes the whole stack would take in memory (f32), as the tutorial prints.
    pub fn nbytes(&self) -> u64 {
        self.array.shape().iter().product::<usize>() as u64 * 4
    }

    /// The stack as a labelled array (what stackstac returns): dims `(time, band, y, x)`,
    /// coordinates time, band, y, x, the item `id` and (when every item has one) each item's
    /// `eo:cloud_cover` along time, and the CRS, resolution and pixel convention as attributes.
    /// O(coordinates).
    pub fn labelled(&self) -> DataArray {
        let c = &self.coords;
        let mut coords = vec![
            Coord::index("time", CoordValues::Time(c.time.clone())),
            Coord::index("band", CoordValues::Str(c.band.clone())),
            Coord::index("y", CoordValues::F64(c.y.clone())),
            Coord::index("x", CoordValues::F64(c.x.clone())),
            Coord::along("id", "time", CoordValues::Str(c.id.clone())),
        ];
        let cloud: Option<Vec<f64>> = c
            .properties
            .iter()
            .map(|p| p.get("eo:cloud_cover").and_then(|v| v.as_f64()))
            .collect();
        if let Some(cloud) = cloud {
            coords.push(Coord::along("eo:cloud_cover", "time", CoordValues::F64(cloud)));
        }
        DataArray::new(self.array.clone(), &["time", "band", "y", "x"], coords)
            .expect("a stack's coordinates fit its shape")
            .with_attrs(GeoAttrs {
                epsg: Some(self.spec.epsg),
                resolution: Some(self.spec.resolution),
                xy_coords: c.xy_coords,
            })
            .with_name("stack")
    }

    /// (time, band, y, x)
    pub fn shape(&self) -> [usize; 4] {
        let s = self.array.shape();
        [s[0], s[1], s[2], s[3]]
    }
}

/// Stacks `items` into a lazy `(time, band, y, x)` array. Reads no pixels and opens no file:
/// the grid comes from the options and the items' STAC metadata. Costs a few projections per item.
///
/// **Errors**: [`StackError`] for missing metadata, an asset no item has, longitudes and
/// latitudes out of range, or an empty grid.
pub fn stack(items: &ItemCollection, options: &StackOptions, reader: Arc<CogReader>) -> Result<Stack, StackError> {
    if items.is_empty() {
        return Err(StackError::NoItems);
    }
    if options.assets.is_empty() {
        return Err(StackError::NoAssets);
    }
    let mut sorted: Vec<&Item> = items.items.iter().collect();
    for it in &sorted {
        if it.properties.datetime.is_none() {
            return Err(StackError::NoDatetime { item: it.id.clone() });
        }
    }
    // Stable: equal times keep catalog order, as stackstac's sortby_date does.
    sorted.sort_by_key(|it| it.properties.datetime);
    let first = sorted[0];
    let epsg = options
        .epsg
        .or_else(|| first.epsg(options.assets.first().map(String::as_str)))
        .ok_or_else(|| StackError::NoEpsg { item: first.id.clone() })?;
    let target = Crs::from_epsg(epsg)?;
    let resolution = match options.resolution {
        Some(r) => r,
        None => sorted
            .iter()
            .find_map(|it| options.assets.iter().find_map(|a| it.proj_grid(a)))
            .map(|(t, _)| (t[0].abs(), t[4].abs()))
            .ok_or(StackError::NoResolution)?,
    };

    let wgs84 = Crs::from_epsg(4326)?;
    let mut refs: Vec<Vec<Option<Arc<AssetRef>>>> = Vec::with_capacity(sorted.len());
    let mut union: Option<Bounds> = None;
    for it in &sorted {
        let mut row = Vec::with_capacity(options.assets.len());
        for name in &options.assets {
            let Some(asset) = it.assets.get(name) else {
                row.push(None); // stackstac fills a missing asset with NaN
                continue;
            };
            let band = asset.raster_bands.as_ref().and_then(|b| b.first());
            let item_epsg = it.epsg(Some(name));
            let bounds = asset_bounds(it, name, item_epsg, &target, &wgs84)?;
            if let Some(b) = bounds {
                union = Some(union.map_or(b, |u| {
                    Bounds::new(
                        u.min_x.min(b.min_x),
                        u.min_y.min(b.min_y),
                        u.max_x.max(b.max_x),
                        u.max_y.max(b.max_y),
                    )
                }));
            }
            row.push(Some(Arc::new(AssetRef {
                item: it.id.clone(),
                asset: name.clone(),
                href: asset.href.clone(),
                epsg: item_epsg,
                scale: band.and_then(|b| b.scale).unwrap_or(1.0),
                offset: band.and_then(|b| b.offset).unwrap_or(0.0),
                nodata: band.and_then(|b| b.nodata_value()),
                bounds,
            })));
        }
        refs.push(row);
    }
    for (a, name) in options.assets.iter().enumerate() {
        if refs.iter().all(|row| row[a].is_none()) {
            let mut known: Vec<String> = sorted.iter().flat_map(|it| it.assets.keys().cloned()).collect();
            known.sort();
            known.dedup();
            return Err(StackError::UnknownAsset {
                asset: name.clone(),
                items: sorted.len(),
                known,
            });
        }
    }

    let bounds = match (options.bounds, options.bounds_latlon) {
        (Some(b), _) => b,
        (None, Some(ll)) => {
            check_latlon(&ll)?;
            let mut c = [
                (ll.min_x, ll.min_y),
                (ll.max_x, ll.min_y),
                (ll.min_x, ll.max_y),
                (ll.max_x, ll.max_y),
            ];
            wgs84.project(&target, &mut c)?;
            bounds_of(&c)
        }
        (None, None) => union.ok_or(StackError::NoResolution)?,
    };
    let spec = RasterSpec::snapped(epsg, bounds, resolution);
    if spec.shape.0 == 0 || spec.shape.1 == 0 {
        return Err(StackError::EmptyGrid {
            bounds: spec.bounds,
            resolution,
        });
    }
    // Items none of whose assets reach the grid are dropped, as stackstac drops them.
    let keep: Vec<bool> = refs
        .iter()
        .map(|row| {
            row.iter()
                .flatten()
                .any(|a| a.bounds.is_none_or(|b| b.intersects(&spec.bounds)))
        })
        .collect();
    let mut k = keep.iter();
    sorted.retain(|_| *k.next().unwrap_or(&false));
    let mut k = keep.iter();
    refs.retain(|_| *k.next().unwrap_or(&false));
    if sorted.is_empty() {
        return Err(StackError::NoItems);
    }
    let coords = StackCoords {
        time: sorted.iter().filter_map(|it| it.properties.datetime).collect(),
        id: sorted.iter().map(|it| it.id.clone()).collect(),
        band: options.assets.clone(),
        x: spec.x_coords(options.xy_coords),
        y: spec.y_coords(options.xy_coords),
        xy_coords: options.xy_coords,
        properties: sorted.iter().map(|it| it.properties.extra.clone()).collect(),
    };
    let ctx = Arc::new(StackContext::new(
        reader,
        spec.clone(),
        target,
        options.fill_value,
        options.rescale,
        options.missing_as_nodata,
    ));
    let shape = [sorted.len(), options.assets.len(), spec.shape.0, spec.shape.1];
    let block = [1, 1, options.chunks_yx.0.max(1), options.chunks_yx.1.max(1)];
    let made_from = serde_json::json!({ "kind": "stack", "items": items, "options": options });
    let array = Array::from_source(
        &shape,
        &block[..],
        Arc::new(StackSource::new(ctx.clone(), refs, made_from)),
    )
    .with_dims(&["time", "band", "y", "x"]);
    Ok(Stack {
        array,
        spec,
        coords,
        context: ctx,
    })
}

fn bounds_of(points: &[(f64, f64)]) -> Bounds {
    let mut b = Bounds::new(f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        b = Bounds::new(b.min_x.min(x), b.min_y.min(y), b.max_x.max(x), b.max_y.max(y));
    }
    b
}

/// An asset's footprint in the target CRS from STAC alone: `proj:transform` + `proj:shape`
/// (exact in its own CRS), else the item's WGS84 bbox. Edges are densified before projecting,
/// since straight lines bend between CRSs. `None` when STAC says neither.
fn asset_bounds(
    item: &Item,
    asset: &str,
    epsg: Option<u32>,
    target: &Crs,
    wgs84: &Crs,
) -> Result<Option<Bounds>, StackError> {
    let (crs, b) = match (item.proj_grid(asset), epsg) {
        (Some((t, [rows, cols])), Some(e)) => {
            let tr = crate::geo::Affine {
                a: t[0],
                b: t[1],
                c: t[2],
                d: t[3],
                e: t[4],
                f: t[5],
            };
            let corners = [
                tr.apply(0.0, 0.0),
                tr.apply(cols as f64, 0.0),
                tr.apply(0.0, rows as f64),
                tr.apply(cols as f64, rows as f64),
            ];
            let crs = if e == target.epsg() {
                target.clone()
            } else {
                Crs::from_epsg(e)?
            };
            (crs, bounds_of(&corners))
        }
        _ => match item.bbox.as_deref() {
            Some([w, s, e, n, ..]) => (wgs84.clone(), Bounds::new(*w, *s, *e, *n)),
            _ => return Ok(None),
        },
    };
    if crs == *target {
        return Ok(Some(b));
    }
    const STEPS: usize = 20;
    let mut pts = Vec::with_capacity(4 * (STEPS + 1));
    for k in 0..=STEPS {
        let f = k as f64 / STEPS as f64;
        let x = b.min_x + f * (b.max_x - b.min_x);
        let y = b.min_y + f * (b.max_y - b.min_y);
        pts.extend([(x, b.min_y), (x, b.max_y), (b.min_x, y), (b.max_x, y)]);
    }
    crs.project(target, &mut pts)?;
    let p = bounds_of(&pts);
    // A little slack for the curvature between densified points.
    let pad = 0.01 * (p.max_x - p.min_x).max(p.max_y - p.min_y);
    Ok(Some(Bounds::new(
        p.min_x - pad,
        p.min_y - pad,
        p.max_x + pad,
        p.max_y + pad,
    )))
}

/// Longitudes in [-180, 180] and latitudes in [-90, 90]; when they are not, a hint if swapping
/// each (lon, lat) pair would fit (a `(lat, lon)` order, as some tools write).
fn check_latlon(ll: &Bounds) -> Result<(), StackError> {
    let fits = |lon: f64, lat: f64| (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat);
    if fits(ll.min_x, ll.min_y) && fits(ll.max_x, ll.max_y) {
        return Ok(());
    }
    let swapped = fits(ll.min_y, ll.min_x) && fits(ll.max_y, ll.max_x);
    Err(StackError::LatLonRange {
        bounds: *ll,
        hint: if swapped {
            "; swapped, each pair fits: give (lon, lat), west, south, east, north"
        } else {
            ""
        },
    })
}
