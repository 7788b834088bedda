//! An embedded synthetic Landsat Collection 2 Level-2-like catalog: scenes over a year with
//! gaps, five bands of uint16 DN (scale 2.75e-05, offset -0.2, nodata 0) as tiled DEFLATE
//! GeoTIFFs on Landsat's UTM grid, clouds as nodata holes, and a few dead pixels that are
//! nodata in every scene. Every DN has a closed form ([`SyntheticLandsat::dn`]), so a test can
//! check a stack of it value by value; [`SyntheticLandsat::serve`] puts the files and a STAC
//! API on a loopback [`Server`], so the whole cloud path runs.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;
use serde_json::{json, Value};

use super::{Server, StacCatalog};
use crate::geo::{Affine, Crs};
use crate::output::{geotiff_bytes, write_bytes, GeoTiffOptions, OutputError};

/// The five assets, in the tutorial's order.
pub const BANDS: [&str; 5] = ["red", "green", "blue", "nir08", "swir16"];
/// Collection 2 Level-2 surface reflectance: physical = DN × SCALE + OFFSET.
pub const SCALE: f64 = 2.75e-05;
/// See [`SCALE`].
pub const OFFSET: f64 = -0.2;

/// The shape of the synthetic catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticLandsat {
    /// number of scenes (acquisitions), spread over `year` with two empty months
    pub scenes: usize,
    /// pixels per side of every scene
    pub size: usize,
    /// the year of the acquisitions
    pub year: i32,
    /// the scenes' centre, lon/lat
    pub centre: (f64, f64),
    /// tile edge of the GeoTIFFs
    pub tile: u32,
}

impl Default for SyntheticLandsat {
    /// 16 scenes of 512² pixels centred on the tutorial's point in San Francisco, 2020.
    fn default() -> Self {
        SyntheticLandsat {
            scenes: 16,
            size: 512,
            year: 2020,
            centre: (-122.4312, 37.7739),
            tile: 256,
        }
    }
}

/// The catalog's files and items, ready to serve.
#[derive(Debug, Clone)]
pub struct SyntheticCatalog {
    /// (server path, GeoTIFF bytes), shared with the server that serves them
    pub files: Vec<(String, Arc<Vec<u8>>)>,
    /// STAC Item JSON, hrefs relative to the server root
    pub items: Vec<Value>,
    /// every scene's grid: UTM zone 10N (EPSG:32610), 30 m pixels
    pub transform: Affine,
}

/// UTM zone 10N, where the scenes lie.
pub const EPSG: u32 = 32610;

impl SyntheticLandsat {
    /// When scene `i` was acquired: every 16 days from 10 January, skipping March and August
    /// (the catalog's gaps), at 18:50 UTC.
    pub fn date(&self, i: usize) -> DateTime<Utc> {
        let start = Utc
            .with_ymd_and_hms(self.year, 1, 10, 18, 50, 0)
            .single()
            .expect("a valid date");
        let mut d = start;
        let mut n = 0;
        loop {
            if !matches!(chrono::Datelike::month(&d), 3 | 8) {
                if n == i {
                    return d;
                }
                n += 1;
            }
            d += Duration::days(16);
        }
    }

    /// Whether pixel (row, col) of scene `scene` is under a cloud: discs that move from scene to
    /// scene, a few scenes much cloudier than the rest.
    pub fn cloud(&self, scene: usize, row: usize, col: usize) -> bool {
        let n = self.size as f64;
        let (cy, cx) = ((scene * 37 % 11) as f64 / 11.0 * n, (scene * 53 % 13) as f64 / 13.0 * n);
        let r = if scene % 5 == 3 { 0.45 } else { 0.12 } * n;
        let (dy, dx) = (row as f64 - cy, col as f64 - cx);
        dy * dy + dx * dx < r * r
    }

    /// Whether (row, col) is a dead pixel: nodata in every scene, so its time series is all NaN.
    pub fn dead(&self, row: usize, col: usize) -> bool {
        (row * 31 + col * 17).is_multiple_of(997)
    }

    /// The stored DN of `band` (an index into [`BANDS`]) of scene `scene` at (row, col): 0 under
    /// clouds and at dead pixels, else a smooth reflectance field that changes with the
    /// season, with a bright city near the centre, scaled back to DN.
    pub fn dn(&self, scene: usize, band: usize, row: usize, col: usize) -> u16 {
        if self.cloud(scene, row, col) || self.dead(row, col) {
            return 0;
        }
        let n = self.size as f64;
        let base = [0.06, 0.08, 0.05, 0.30, 0.20][band];
        let season = (scene as f64 / self.scenes.max(1) as f64 * std::f64::consts::TAU).sin() * 0.03;
        let field = ((col as f64 * 0.021 + band as f64).sin() * (row as f64 * 0.017).cos()) * 0.05;
        // A bright "city" around the centre (the tutorial's San Francisco), brighter in the
        // visible bands, so luminance crosses the tutorial's 0.175 threshold there.
        let (dy, dx) = (row as f64 / n - 0.5, col as f64 / n - 0.45);
        let city = (-(dy * dy + dx * dx) / 0.02).exp() * if band < 3 { 0.2 } else { 0.05 };
        let reflectance = base + season + field + city + ((row * 7 + col * 3 + scene) % 17) as f64 * 0.001;
        ((reflectance - OFFSET) / SCALE).round().clamp(1.0, 65535.0) as u16
    }

    /// The scenes' grid: Landsat's 30 m UTM lattice (15 m off multiples of 30), `size` pixels
    /// centred on `centre`.
    ///
    /// **Errors**: [`OutputError::Unsupported`] when the centre cannot be projected.
    pub fn transform(&self) -> Result<Affine, OutputError> {
        let (x, y) = Crs::from_epsg(EPSG)
            .and_then(|utm| utm.project_lonlat(self.centre.0, self.centre.1))
            .map_err(projection_error)?;
        let half = self.size as f64 * 15.0;
        let snap = |v: f64| (v / 30.0).round() * 30.0 + 15.0;
        Ok(Affine::north_up(snap(x - half), snap(y + half), 30.0, 30.0))
    }

    /// Builds every GeoTIFF and item. Costs one DEFLATE pass over scenes × 5 × size² u16,
    /// on every core.
    ///
    /// **Errors**: [`OutputError`] from the GeoTIFF encoder or a failed projection.
    pub fn build(&self) -> Result<SyntheticCatalog, OutputError> {
        let transform = self.transform()?;
        let n = self.size;
        let (x0, y1) = (transform.c, transform.f);
        let (x1, y0) = (x0 + transform.a * n as f64, y1 + transform.e * n as f64);
        let mut corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
        Crs::from_epsg(EPSG)
            .and_then(|utm| utm.project(&Crs::from_epsg(4326)?, &mut corners))
            .map_err(projection_error)?;
        let lon = corners.iter().map(|c| c.0);
        let lat = corners.iter().map(|c| c.1);
        let bbox = [
            lon.clone().fold(f64::INFINITY, f64::min),
            lat.clone().fold(f64::INFINITY, f64::min),
            lon.fold(f64::NEG_INFINITY, f64::max),
            lat.fold(f64::NEG_INFINITY, f64::max),
        ];
        let options = GeoTiffOptions {
            nodata: Some(0.0),
            tile: self.tile,
            // Without overviews, as the catalog was when its benchmark figures were taken
            // (strata reads full resolution only).
            overviews: false,
            ..GeoTiffOptions::new(transform, EPSG)
        };
        let mut items = Vec::new();
        for scene in 0..self.scenes {
            let id = format!("LC08_L2SP_044034_{}_SYN", self.date(scene).format("%Y%m%d"));
            let mut assets = serde_json::Map::new();
            for name in BANDS {
                let path = format!("{id}_{name}.tif");
                assets.insert(
                    name.to_string(),
                    json!({
                        "href": path,
                        "type": "image/tiff; application=geotiff",
                        "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": SCALE, "offset": OFFSET}],
                        "proj:transform": [transform.a, 0.0, x0, 0.0, transform.e, y1],
                        "proj:shape": [n, n],
                    }),
                );
            }
            let clouds = (0..n * n).filter(|i| self.cloud(scene, i / n, i % n)).count();
            items.push(json!({
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": id,
                "collection": "landsat-c2-l2",
                "bbox": bbox,
                "geometry": {"type": "Polygon", "coordinates": [[
                    [bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]], [bbox[0], bbox[3]], [bbox[0], bbox[1]]
                ]]},
                "properties": {
                    "datetime": self.date(scene).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "eo:cloud_cover": (clouds as f64 / (n * n) as f64 * 10000.0).round() / 100.0,
                    "proj:epsg": EPSG,
                    "platform": "landsat-8",
                },
                "assets": assets,
                "links": [],
            }));
        }
        // The files, scene × band in parallel (the DN field and DEFLATE dominate).
        let jobs: Vec<(usize, usize)> = (0..self.scenes)
            .flat_map(|s| (0..BANDS.len()).map(move |b| (s, b)))
            .collect();
        let files = jobs
            .par_iter()
            .map(|&(scene, b)| {
                let data = ArrayD::from_shape_fn(IxDyn(&[n, n]), |ix| self.dn(scene, b, ix[0], ix[1]));
                let id = items[scene]["id"].as_str().unwrap_or_default();
                let path = format!("{id}_{}.tif", BANDS[b]);
                let bytes = geotiff_bytes(path.as_ref(), &data, &options)?;
                Ok((path, Arc::new(bytes)))
            })
            .collect::<Result<_, OutputError>>()?;
        Ok(SyntheticCatalog {
            files,
            items,
            transform,
        })
    }

    /// Writes the catalog into `dir`: every GeoTIFF, and `items.json`, an ItemCollection whose
    /// hrefs are relative to it (serve the folder, or read it in place). Each file is written
    /// atomically.
    ///
    /// **Errors**: [`OutputError::Io`] naming the file.
    pub fn write(&self, dir: &std::path::Path) -> Result<SyntheticCatalog, OutputError> {
        let catalog = self.build()?;
        std::fs::create_dir_all(dir).map_err(|source| OutputError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        for (path, bytes) in &catalog.files {
            write_bytes(&dir.join(path), bytes)?;
        }
        let collection = json!({"type": "FeatureCollection", "features": catalog.items});
        let text = serde_json::to_vec_pretty(&collection).unwrap_or_default();
        write_bytes(&dir.join("items.json"), &text)?;
        Ok(catalog)
    }

    /// Builds the catalog and serves it on `server`: the files at their paths, the items through
    /// its STAC API (`{server}/search`, 100 items a page). Returns what it served.
    ///
    /// **Errors**: as [`SyntheticLandsat::build`].
    pub fn serve(&self, server: &Server) -> Result<SyntheticCatalog, OutputError> {
        let catalog = self.build()?;
        for (path, bytes) in &catalog.files {
            server.add_file(&format!("/{path}"), Arc::clone(bytes));
        }
        let base = server.url();
        let items = catalog
            .items
            .iter()
            .cloned()
            .map(|mut item| {
                if let Some(assets) = item["assets"].as_object_mut() {
                    for asset in assets.values_mut() {
                        let href = asset["href"].as_str().unwrap_or_default().to_string();
                        asset["href"] = json!(format!("{base}/{href}"));
                    }
                }
                item
            })
            .collect();
        server.set_catalog(StacCatalog::new(items, 100));
        Ok(catalog)
    }
}

fn projection_error(e: crate::geo::GeoError) -> OutputError {
    OutputError::Unsupported {
        path: "synthetic catalog".into(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_skip_march_and_august_and_keep_the_year() {
        let s = SyntheticLandsat::default();
        let months: Vec<u32> = (0..s.scenes).map(|i| chrono::Datelike::month(&s.date(i))).collect();
        assert!(!months.contains(&3) && !months.contains(&8), "{months:?}");
        assert!(months.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(chrono::Datelike::year(&s.date(s.scenes - 1)), 2020);
    }

    #[test]
    fn dn_decodes_to_reflectance_and_nodata() {
        let s = SyntheticLandsat::default();
        assert_eq!(s.dn(0, 0, 0, 0), 0, "(0, 0) is a dead pixel");
        let v = f64::from(s.dn(1, 3, 100, 3)) * SCALE + OFFSET;
        assert!((0.15..0.45).contains(&v), "nir reflectance {v}");
        assert!((0..s.size).any(|r| s.cloud(3, r, r)), "scene 3 is cloudy");
    }
}
