//! The chunk source behind a stack: for each (time, band) plane of a block, the asset's tiles
//! that intersect it are fetched (concurrently, on the I/O runtime) and decoded on rayon.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use ndarray::{s, Array3, Array4, ArrayD, ArrayViewMut2, Axis};
use rayon::prelude::*;
use tokio::task::JoinHandle;

use super::{MissingAsset, RasterSpec, StackError};
use crate::expr::{
    ChunkSource, DecodeSpec, DecodeTable, IoMeter, Prefetch, RawBlock, SourceData, SourceError, StoredType,
};
use crate::geo::{Affine, Bounds, Crs};
use crate::io::tiff::{SampleType, Segments};
use crate::io::{CogFile, CogReader, IoError, TileWindow};

/// A pixel-centre coordinate this close to a source pixel edge counts as on it: the tie goes
/// to the pixel east/south, as GDAL's nearest neighbour does (floating point rounding would
/// otherwise split exact ties both ways).
const TIE_EPSILON: f64 = 1e-6;

/// One asset of one item: where it is and how its values become physical values.
#[derive(Debug, Clone)]
pub(super) struct AssetRef {
    pub item: String,
    pub asset: String,
    pub href: String,
    /// from the STAC projection extension; the file's GeoKeys win when present
    pub epsg: Option<u32>,
    pub scale: f64,
    pub offset: f64,
    /// from raster:bands; the file's GDAL_NODATA wins when present
    pub nodata: Option<f64>,
    /// footprint in the stack's CRS, when STAC says it without opening the file
    pub bounds: Option<Bounds>,
}

/// How output pixels find their source pixels.
#[derive(Debug, Clone, Copy)]
enum Mapping {
    /// same CRS and pixel size: source pixel = output pixel + (rows, cols)
    Aligned { row0: i64, col0: i64 },
    /// anything else: nearest neighbour through the projection, pixel by pixel
    Warp,
}

/// A plane's fetched tiles, ready to decode.
struct Fetched {
    file: Arc<CogFile>,
    window: TileWindow,
    tiles: Arc<Segments>,
    mapping: Mapping,
    src_crs: Crs,
    /// the file's GDAL_NODATA, else the asset's raster:bands nodata
    nodata: Option<f64>,
    /// the asset (its scale and offset)
    asset: Arc<AssetRef>,
}

/// What every plane fetch shares.
#[derive(Debug)]
pub(super) struct StackContext {
    pub reader: Arc<CogReader>,
    pub spec: RasterSpec,
    pub target: Crs,
    pub fill: f32,
    pub rescale: bool,
    /// read a missing asset as `fill` (see `StackOptions::missing_as_nodata`)
    missing_as_nodata: bool,
    /// the assets found missing so far, by href
    missing: Mutex<HashMap<String, MissingAsset>>,
    crs: Mutex<HashMap<u32, Crs>>,
    tables: Mutex<HashMap<TableKey, Arc<DecodeTable>>>,
}

/// A decode table's identity: stored type and the spec's bits (`None`: the all-fill table).
type TableKey = Option<(StoredType, u64, u64, Option<u64>, bool)>;

impl StackContext {
    pub fn new(
        reader: Arc<CogReader>,
        spec: RasterSpec,
        target: Crs,
        fill: f32,
        rescale: bool,
        missing_as_nodata: bool,
    ) -> Self {
        StackContext {
            reader,
            spec,
            target,
            fill,
            rescale,
            missing_as_nodata,
            missing: Mutex::default(),
            crs: Mutex::default(),
            tables: Mutex::default(),
        }
    }

    /// The missing assets read as nodata so far, sorted.
    pub fn missing(&self) -> Vec<MissingAsset> {
        let mut out: Vec<MissingAsset> = self
            .missing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// Whether `asset` is known missing, so a block reads it as nodata without a request
    /// (counted: the report says how many reads were answered so in each run).
    fn known_missing(&self, asset: &AssetRef) -> bool {
        let known = self.missing_as_nodata
            && self
                .missing
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&asset.href);
        if known {
            self.reader.store().count_missing_as_nodata();
        }
        known
    }

    /// Whether a failed read of `asset` reads as nodata: it says the object is missing and
    /// the stack was asked to. The asset is recorded (once) and the read counted.
    fn as_nodata(&self, asset: &AssetRef, error: &IoError) -> bool {
        if !self.missing_as_nodata || !error.is_not_found() {
            return false;
        }
        self.missing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(asset.href.clone())
            .or_insert_with(|| MissingAsset {
                item: asset.item.clone(),
                asset: asset.asset.clone(),
                url: error.url().unwrap_or_default().to_string(),
            });
        self.reader.store().count_missing_as_nodata();
        true
    }

    /// The decode table of a stored type and spec (`None`: every code decodes to the fill),
    /// built once (65536 evaluations) and shared by every block.
    fn table(&self, of: Option<(StoredType, DecodeSpec)>) -> Arc<DecodeTable> {
        let key = of.map(|(t, s)| {
            (
                t,
                s.scale.to_bits(),
                s.offset.to_bits(),
                s.nodata.map(f64::to_bits),
                s.rescale,
            )
        });
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables
            .entry(key)
            .or_insert_with(|| {
                Arc::new(match of {
                    Some((stored, spec)) => DecodeTable::new(stored, &spec),
                    None => DecodeTable::all(self.fill),
                })
            })
            .clone()
    }

    fn crs(&self, epsg: u32) -> Result<Crs, StackError> {
        if epsg == self.target.epsg() {
            return Ok(self.target.clone());
        }
        let mut cache = self.crs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(&epsg) {
            return Ok(c.clone());
        }
        let c = Crs::from_epsg(epsg)?;
        cache.insert(epsg, c.clone());
        Ok(c)
    }
}

type PlaneHandle = JoinHandle<Result<Option<Fetched>, StackError>>;
/// Fetches started by `prefetch`, by block region: (plane number in the block, its fetch).
type PendingFetches = HashMap<Vec<Range<usize>>, Vec<(usize, PlaneHandle)>>;

/// The `(time, band, y, x)` source of a stack.
pub(super) struct StackSource {
    ctx: Arc<StackContext>,
    /// [time][band]
    planes: Vec<Vec<Option<Arc<AssetRef>>>>,
    /// shared with the tickets `prefetch` hands out, which remove what was never read
    pending: Arc<Mutex<PendingFetches>>,
    /// what the stack was made from (`{"kind": "stack", "items": .., "options": ..}`), so a
    /// job's worker can make it again
    spec: serde_json::Value,
}

impl std::fmt::Debug for StackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackSource")
            .field("spec", &self.ctx.spec)
            .field("times", &self.planes.len())
            .finish()
    }
}

impl StackSource {
    pub fn new(ctx: Arc<StackContext>, planes: Vec<Vec<Option<Arc<AssetRef>>>>, spec: serde_json::Value) -> Self {
        StackSource {
            ctx,
            planes,
            pending: Arc::default(),
            spec,
        }
    }

    /// Spawns one fetch per plane of the block that has an asset overlapping it.
    fn start(&self, region: &[Range<usize>]) -> Vec<(usize, PlaneHandle)> {
        let (ts, bs, rows, cols) = (&region[0], &region[1], &region[2], &region[3]);
        let area = self.ctx.spec.region_bounds(rows, cols);
        let mut out = Vec::new();
        for (ti, t) in ts.clone().enumerate() {
            for (bi, b) in bs.clone().enumerate() {
                let Some(asset) = &self.planes[t][b] else {
                    continue;
                };
                if asset.bounds.is_some_and(|ab| !ab.intersects(&area)) {
                    continue; // costs no request
                }
                let (ctx, asset, rows, cols) = (self.ctx.clone(), asset.clone(), rows.clone(), cols.clone());
                let handle = self
                    .ctx
                    .reader
                    .store()
                    .spawn(async move { fetch_plane(&ctx, asset, rows, cols).await });
                out.push((ti * bs.len() + bi, handle));
            }
        }
        out
    }
}

impl StackSource {
    /// Waits for the block's plane fetches (started by `prefetch`, or now): one per plane,
    /// `None` for planes with nothing to read.
    fn fetched(&self, region: &[Range<usize>]) -> Result<Vec<Option<Fetched>>, SourceError> {
        if region.len() != 4 {
            return Err(format!("a stack block has 4 axes, got {}", region.len()).into());
        }
        let handles = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(region)
            .unwrap_or_else(|| self.start(region));
        let mut fetched: Vec<Option<Fetched>> = (0..region[0].len() * region[1].len()).map(|_| None).collect();
        let store = self.ctx.reader.store();
        let mut first_error = None;
        for (plane, handle) in handles {
            match store.block_on(handle) {
                Ok(Ok(f)) => fetched[plane] = f,
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(StackError::Internal(format!("fetch task failed: {e}")));
                }
            }
        }
        match first_error {
            Some(e) => Err(Box::new(e)),
            None => Ok(fetched),
        }
    }

    /// Decodes fetched planes into a `(t, b, y, x)` block of `T`, planes in parallel: `code`
    /// maps a plane's stored values; `fill` is what no item covers, unless `plane_fill` gives
    /// a fetched plane its own.
    fn decode_block<T: Copy + Send + Sync, M: Fn(f64) -> T + Copy>(
        &self,
        region: &[Range<usize>],
        fetched: Vec<Option<Fetched>>,
        fill: T,
        plane_fill: impl Fn(&Fetched) -> Option<T> + Sync,
        code: impl Fn(&Fetched) -> M + Sync,
    ) -> Result<Array4<T>, SourceError> {
        let (nt, nb, ny, nx) = (region[0].len(), region[1].len(), region[2].len(), region[3].len());
        let mut out = Array4::from_elem((nt, nb, ny, nx), fill);
        let mut flat = out
            .view_mut()
            .into_shape_with_order((nt * nb, ny, nx))
            .expect("a fresh array is contiguous");
        let planes: Vec<ArrayViewMut2<T>> = flat.outer_iter_mut().collect();
        let (rows, cols) = (region[2].clone(), region[3].clone());
        planes
            .into_par_iter()
            .zip(fetched.into_par_iter())
            .try_for_each(|(mut plane, f)| match f {
                Some(f) => {
                    let fill = plane_fill(&f).inspect(|&v| plane.fill(v)).unwrap_or(fill);
                    decode_plane(&self.ctx, &f, &rows, &cols, &mut plane, code(&f), fill)
                }
                None => Ok(()),
            })
            .map_err(|e| Box::new(e) as SourceError)?;
        Ok(out)
    }

    /// The physical values of fetched planes.
    fn values(&self, region: &[Range<usize>], fetched: Vec<Option<Fetched>>) -> Result<ArrayD<f32>, SourceError> {
        let fill = self.ctx.fill;
        let out = self.decode_block(
            region,
            fetched,
            fill,
            |_| None,
            |f| {
                let spec = self.spec(f);
                move |v| spec.value(v)
            },
        )?;
        Ok(out.into_dyn())
    }

    /// How a fetched plane's stored values become physical values.
    fn spec(&self, f: &Fetched) -> DecodeSpec {
        DecodeSpec {
            scale: f.asset.scale,
            offset: f.asset.offset,
            nodata: f.nodata,
            rescale: self.ctx.rescale,
            fill: self.ctx.fill,
        }
    }

    /// The stored type and the code of "no item here" of a plane whose samples fit a code.
    fn coding(&self, f: &Fetched) -> Option<(StoredType, u16)> {
        let stored = match f.file.header().levels[0].sample {
            SampleType::U8 => StoredType::U8,
            SampleType::U16 => StoredType::U16,
            SampleType::I16 => StoredType::I16,
            _ => return None,
        };
        Some((stored, stored.fill_code(f.nodata)?))
    }
}

impl ChunkSource for StackSource {
    fn read(&self, region: &[Range<usize>]) -> Result<ArrayD<f32>, SourceError> {
        let fetched = self.fetched(region)?;
        self.values(region, fetched)
    }

    fn read_raw(&self, region: &[Range<usize>]) -> Result<SourceData, SourceError> {
        let fetched = self.fetched(region)?;
        if !fetched.iter().flatten().all(|f| self.coding(f).is_some()) {
            return self.values(region, fetched).map(SourceData::Values);
        }
        // One table per distinct (stored type, spec); planes nothing covers decode every code
        // to the fill.
        let mut tables = vec![self.ctx.table(None)];
        let plane_table: Vec<u32> = fetched
            .iter()
            .map(|f| {
                let Some(f) = f else { return 0 };
                let (stored, _) = self.coding(f).expect("checked above");
                let table = self.ctx.table(Some((stored, self.spec(f))));
                let i = tables.iter().position(|t| Arc::ptr_eq(t, &table)).unwrap_or_else(|| {
                    tables.push(table);
                    tables.len() - 1
                });
                i as u32
            })
            .collect();
        let plane_fill = |f: &Fetched| self.coding(f).map(|(_, fill)| fill);
        let codes = self.decode_block(region, fetched, 0u16, plane_fill, |f| {
            let (stored, _) = self.coding(f).expect("checked above");
            move |v| stored.code(v)
        })?;
        Ok(SourceData::Raw(RawBlock {
            shape: codes.shape().to_vec(),
            codes: codes.into_raw_vec_and_offset().0,
            plane_table,
            tables,
        }))
    }

    fn label(&self) -> String {
        "stack".into()
    }

    fn spec(&self) -> Option<serde_json::Value> {
        Some(self.spec.clone())
    }

    fn waits_on_io(&self) -> bool {
        true
    }

    fn io_meter(&self) -> Option<Arc<dyn IoMeter>> {
        Some(self.ctx.reader.store().meter())
    }

    fn prefetch(&self, region: &[Range<usize>]) -> Prefetch {
        if region.len() != 4 {
            return Prefetch::none();
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.contains_key(region) {
            return Prefetch::none(); // the first ticket for this region owns it
        }
        let handles = self.start(region);
        pending.insert(region.to_vec(), handles);
        let (pending, region) = (Arc::downgrade(&self.pending), region.to_vec());
        Prefetch::cancelling(move || {
            // Not read: stop the transfers; their bytes go with the tasks.
            let Some(pending) = pending.upgrade() else { return };
            let unread = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&region);
            for (_, handle) in unread.into_iter().flatten() {
                handle.abort();
            }
        })
    }
}

/// Opens the asset's file, works out which of its pixels the block needs, fetches their tiles.
async fn fetch_plane(
    ctx: &StackContext,
    asset: Arc<AssetRef>,
    rows: Range<usize>,
    cols: Range<usize>,
) -> Result<Option<Fetched>, StackError> {
    let read_error = |source| StackError::Read {
        item: asset.item.clone(),
        asset: asset.asset.clone(),
        source: Box::new(source),
    };
    if ctx.known_missing(&asset) {
        return Ok(None);
    }
    let file = match ctx.reader.open(&asset.href).await {
        Ok(file) => file,
        Err(e) if ctx.as_nodata(&asset, &e) => return Ok(None),
        Err(e) => return Err(read_error(e)),
    };
    let header = file.header();
    let geo = header.geo.clone().ok_or_else(|| StackError::NoGeoreference {
        item: asset.item.clone(),
        asset: asset.asset.clone(),
        url: file.url().to_string(),
    })?;
    let epsg = geo.epsg.or(asset.epsg).ok_or_else(|| StackError::NoEpsg {
        item: asset.item.clone(),
    })?;
    let src_crs = ctx.crs(epsg)?;
    let level = &header.levels[0];
    let (mapping, src_rows, src_cols) = source_window(ctx, &src_crs, &geo.transform, &rows, &cols)?;
    let clip = |r: Range<i64>, n: u32| r.start.clamp(0, n as i64) as u32..r.end.clamp(0, n as i64) as u32;
    let (wr, wc) = (clip(src_rows, level.height), clip(src_cols, level.width));
    if wr.is_empty() || wc.is_empty() {
        return Ok(None);
    }
    let window = TileWindow {
        level: 0,
        bands: vec![0],
        rows: wr,
        cols: wc,
    };
    let tiles = file
        .fetch_tiles(ctx.reader.store(), &window)
        .await
        .map_err(read_error)?;
    let nodata = header.nodata.or(asset.nodata);
    Ok(Some(Fetched {
        file,
        window,
        tiles,
        mapping,
        src_crs,
        nodata,
        asset,
    }))
}

/// The source pixel rows/cols (unclipped, end exclusive) a block of the output needs.
fn source_window(
    ctx: &StackContext,
    src_crs: &Crs,
    t: &Affine,
    rows: &Range<usize>,
    cols: &Range<usize>,
) -> Result<(Mapping, Range<i64>, Range<i64>), StackError> {
    let spec = &ctx.spec;
    let (rx, ry) = spec.resolution;
    if src_crs.epsg() == spec.epsg && t.is_north_up() && t.a == rx && t.e == -ry {
        // Same CRS and pixel size: a whole-pixel shift, even when the grids are offset by a
        // fraction of a pixel (Landsat's are 15 m off the 30 m lattice). The source pixel of
        // output pixel r is floor(r + 0.5 + (f - max_y) / ry): ties go south/east.
        let row0 = ((t.f - spec.bounds.max_y) / ry + 0.5 + TIE_EPSILON).floor() as i64;
        let col0 = ((spec.bounds.min_x - t.c) / rx + 0.5 + TIE_EPSILON).floor() as i64;
        return Ok((
            Mapping::Aligned { row0, col0 },
            rows.start as i64 + row0..rows.end as i64 + row0,
            cols.start as i64 + col0..cols.end as i64 + col0,
        ));
    }
    // Project the block's border pixel centres (every one: the transform may bend edges) and
    // take their bounding box in source pixels, with a pixel of margin.
    let inv = t
        .inverse()
        .ok_or(StackError::Internal("singular source transform".into()))?;
    let mut pts = Vec::new();
    let centre = |r: usize, c: usize| spec.transform().apply(c as f64 + 0.5, r as f64 + 0.5);
    for c in cols.clone() {
        pts.push(centre(rows.start, c));
        pts.push(centre(rows.end - 1, c));
    }
    for r in rows.clone() {
        pts.push(centre(r, cols.start));
        pts.push(centre(r, cols.end - 1));
    }
    ctx.target.project(src_crs, &mut pts)?;
    let (mut r0, mut r1, mut c0, mut c1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in pts {
        let (c, r) = inv.apply(x, y);
        r0 = r0.min(r);
        r1 = r1.max(r);
        c0 = c0.min(c);
        c1 = c1.max(c);
    }
    if !(r0.is_finite() && r1.is_finite() && c0.is_finite() && c1.is_finite()) {
        return Ok((Mapping::Warp, 0..0, 0..0));
    }
    let lim = |v: f64| v.clamp(-1e12, 1e12) as i64;
    Ok((
        Mapping::Warp,
        lim(r0.floor()) - 1..lim(r1.floor()) + 2,
        lim(c0.floor()) - 1..lim(c1.floor()) + 2,
    ))
}

/// Decodes a plane's tiles into its part of the output block, stored values mapped by `map`;
/// `fill` is what no source pixel covers.
fn decode_plane<T: Copy>(
    ctx: &StackContext,
    f: &Fetched,
    rows: &Range<usize>,
    cols: &Range<usize>,
    plane: &mut ArrayViewMut2<T>,
    map: impl Fn(f64) -> T + Copy,
    fill: T,
) -> Result<(), StackError> {
    let file = &f.file;
    let err = |source| StackError::Decode {
        url: file.url().to_string(),
        source: Box::new(source),
    };
    let w = &f.window;
    match f.mapping {
        Mapping::Aligned { row0, col0 } => {
            let r = (w.rows.start as i64 - row0 - rows.start as i64) as usize;
            let c = (w.cols.start as i64 - col0 - cols.start as i64) as usize;
            let mut view = plane
                .slice_mut(s![r..r + w.rows.len(), c..c + w.cols.len()])
                .insert_axis(Axis(0));
            file.decode_into(w, f.tiles.clone(), &mut view, map).map_err(err)
        }
        Mapping::Warp => {
            let mut src = Array3::from_elem((1, w.rows.len(), w.cols.len()), fill);
            file.decode_into(w, f.tiles.clone(), &mut src.view_mut(), map)
                .map_err(err)?;
            let inv = file
                .header()
                .geo
                .as_ref()
                .and_then(|g| g.transform.inverse())
                .ok_or(StackError::Internal("singular source transform".into()))?;
            let spec_t = ctx.spec.transform();
            let mut pts: Vec<(f64, f64)> = Vec::with_capacity(cols.len());
            for (i, r) in rows.clone().enumerate() {
                pts.clear();
                pts.extend(cols.clone().map(|c| spec_t.apply(c as f64 + 0.5, r as f64 + 0.5)));
                ctx.target.project(&f.src_crs, &mut pts)?;
                for (j, &(x, y)) in pts.iter().enumerate() {
                    let (sc, sr) = inv.apply(x, y);
                    let (sr, sc) = ((sr + TIE_EPSILON).floor(), (sc + TIE_EPSILON).floor());
                    let (lr, lc) = (sr - w.rows.start as f64, sc - w.cols.start as f64);
                    if lr >= 0.0 && lc >= 0.0 && (lr as usize) < w.rows.len() && (lc as usize) < w.cols.len() {
                        plane[[i, j]] = src[[0, lr as usize, lc as usize]];
                    }
                }
            }
            Ok(())
        }
    }
}
