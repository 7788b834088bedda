//! STAC items and ItemCollections, and a STAC API search client with paging.
//!
//! The data model is our own, small and typed: the maintained `stac` crate (0.17) pulls in
//! cql2, jsonschema, sqlparser and geo (hundreds of crates, minutes of CI build) for a model of
//! which strata reads a dozen fields. Unknown fields are kept (`extra`), so nothing is lost.

mod search;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use search::{search, SearchParams, SearchResult};

use crate::io::IoError;

/// What went wrong reading STAC.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StacError {
    /// The document could not be fetched.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The document is not the JSON expected.
    #[error("{url}: not a STAC {what}: {message}")]
    Json {
        /// where it came from, redacted
        url: String,
        /// what was expected (ItemCollection, search page, ...)
        what: &'static str,
        /// serde's message, with line and column
        message: String,
    },
    /// An item lacks something strata needs.
    #[error("item {id}: {message}")]
    Item {
        /// the item's id
        id: String,
        /// what is missing or wrong
        message: String,
    },
    /// Paging did not end.
    #[error("{url}: search paging did not end: {message}")]
    Paging {
        /// the API, redacted
        url: String,
        /// why we stopped
        message: String,
    },
}

/// A STAC Item: one scene, its properties and its assets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// the item's id
    pub id: String,
    /// its collection
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// footprint bounds in WGS84 degrees (west, south, east, north)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<Vec<f64>>,
    /// GeoJSON geometry, kept as JSON
    #[serde(default)]
    pub geometry: Value,
    /// properties: datetime, eo:cloud_cover, proj:epsg, ...
    pub properties: Properties,
    /// named files
    #[serde(default)]
    pub assets: BTreeMap<String, Asset>,
    /// everything else (links, stac_extensions, ...)
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// An item's properties: the acquisition time typed, the rest as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Properties {
    /// acquisition time (null for items with a start/end range)
    #[serde(default)]
    pub datetime: Option<DateTime<Utc>>,
    /// everything else
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// One file of an item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Asset {
    /// where the file is
    pub href: String,
    /// media type
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// per-band scale, offset, nodata (the raster extension)
    #[serde(default, rename = "raster:bands", skip_serializing_if = "Option::is_none")]
    pub raster_bands: Option<Vec<RasterBand>>,
    /// everything else (title, roles, proj:*, eo:bands, ...)
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// The raster extension's description of one band.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RasterBand {
    /// the stored value meaning "no data" (a number, or "nan")
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodata: Option<Value>,
    /// physical = stored × scale + offset
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// physical = stored × scale + offset
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    /// everything else
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl RasterBand {
    /// The nodata value as a number (`"nan"` is NaN).
    pub fn nodata_value(&self) -> Option<f64> {
        match self.nodata.as_ref()? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "nan" => Some(f64::NAN),
                "inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            },
            _ => None,
        }
    }
}

impl Item {
    /// The item's EPSG code from the projection extension (`proj:epsg`, or `proj:code` of the
    /// form "EPSG:n"), looked up on the asset first, then the item.
    pub fn epsg(&self, asset: Option<&str>) -> Option<u32> {
        let from = |m: &serde_json::Map<String, Value>| -> Option<u32> {
            if let Some(v) = m.get("proj:epsg").and_then(Value::as_u64) {
                return u32::try_from(v).ok();
            }
            m.get("proj:code")?.as_str()?.strip_prefix("EPSG:")?.parse().ok()
        };
        asset
            .and_then(|a| self.assets.get(a))
            .and_then(|a| from(&a.extra))
            .or_else(|| from(&self.properties.extra))
    }

    /// The projection extension's `proj:transform` (first six numbers, rasterio order) and
    /// `proj:shape` (rows, cols) for an asset, falling back to the item's.
    pub fn proj_grid(&self, asset: &str) -> Option<([f64; 6], [usize; 2])> {
        let get = |key: &str| -> Option<Value> {
            self.assets
                .get(asset)
                .and_then(|a| a.extra.get(key))
                .or_else(|| self.properties.extra.get(key))
                .cloned()
        };
        let t: Vec<f64> = serde_json::from_value(get("proj:transform")?).ok()?;
        let s: Vec<usize> = serde_json::from_value(get("proj:shape")?).ok()?;
        if t.len() < 6 || s.len() != 2 {
            return None;
        }
        Some(([t[0], t[1], t[2], t[3], t[4], t[5]], [s[0], s[1]]))
    }

    /// A property as f64 (e.g. `eo:cloud_cover`).
    pub fn property_f64(&self, key: &str) -> Option<f64> {
        self.properties.extra.get(key).and_then(Value::as_f64)
    }
}

/// A GeoJSON FeatureCollection of items (what a search returns, or a saved file).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemCollection {
    /// the items
    #[serde(rename = "features")]
    pub items: Vec<Item>,
    /// everything else (type, links, context, ...)
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

impl ItemCollection {
    /// Rewrites every asset href that starts with `from` to start with `to` instead (a mirror,
    /// a local copy, or a server for relative hrefs: `from = ""` prefixes them all). Returns
    /// how many hrefs changed. O(assets).
    ///
    /// ```
    /// # use strata::stac::ItemCollection;
    /// let json = br#"{"type": "FeatureCollection", "features": [{"id": "a", "properties":
    ///     {"datetime": "2020-01-01T00:00:00Z"}, "assets": {"red": {"href": "https://old.example/a/red.tif"}}}]}"#;
    /// let mut items = ItemCollection::from_json(json, "items.json").unwrap();
    /// assert_eq!(items.rebase_hrefs("https://old.example/", "http://127.0.0.1:8080/"), 1);
    /// assert_eq!(items.items[0].assets["red"].href, "http://127.0.0.1:8080/a/red.tif");
    /// ```
    pub fn rebase_hrefs(&mut self, from: &str, to: &str) -> usize {
        let mut changed = 0;
        for asset in self.items.iter_mut().flat_map(|i| i.assets.values_mut()) {
            if let Some(rest) = asset.href.strip_prefix(from) {
                asset.href = format!("{to}{rest}");
                changed += 1;
            }
        }
        changed
    }

    /// Parses an ItemCollection from JSON bytes; `url` names it in errors.
    ///
    /// **Errors**: [`StacError::Json`] with serde's line and column.
    pub fn from_json(bytes: &[u8], url: &str) -> Result<ItemCollection, StacError> {
        serde_json::from_slice(bytes).map_err(|e| StacError::Json {
            url: crate::io::redact(url),
            what: "ItemCollection",
            message: e.to_string(),
        })
    }

    /// Loads an ItemCollection from a local path, `file://` or `http(s)://` URL. One request.
    /// Relative asset hrefs are resolved against the collection's own location, as pystac
    /// resolves them, so a catalog folder can be served or read from disk as it is.
    ///
    /// **Errors**: the store's errors; [`StacError::Json`].
    pub fn load(store: &crate::io::ObjectStore, href: &str) -> Result<ItemCollection, StacError> {
        let bytes = store.block_on(store.get_all(href))?;
        let mut items = ItemCollection::from_json(&bytes, href)?;
        let base = href.rfind('/').map_or("", |i| &href[..=i]);
        for asset in items.items.iter_mut().flat_map(|it| it.assets.values_mut()) {
            asset.href = resolve_href(base, &asset.href);
        }
        Ok(items)
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_landsat_like_item() {
        let json = br#"{"type":"FeatureCollection","features":[{"type":"Feature","stac_version":"1.0.0",
          "id":"LC08_X","collection":"landsat-c2-l2","bbox":[-123,37,-121,39],"geometry":null,
          "properties":{"datetime":"2020-02-06T18:51:55.123Z","eo:cloud_cover":0.19,"proj:epsg":32610},
          "assets":{"red":{"href":"https://x/red.tif?sig=1","type":"image/tiff",
            "raster:bands":[{"nodata":0,"scale":2.75e-05,"offset":-0.2,"data_type":"uint16"}],
            "proj:transform":[30,0,400000,0,-30,4300000],"proj:shape":[100,200]}},
          "links":[]}]}"#;
        let c = ItemCollection::from_json(json, "mem").unwrap();
        let item = &c.items[0];
        assert_eq!(item.epsg(Some("red")), Some(32610));
        assert_eq!(item.property_f64("eo:cloud_cover"), Some(0.19));
        assert_eq!(
            item.properties.datetime.unwrap().to_rfc3339(),
            "2020-02-06T18:51:55.123+00:00"
        );
        let band = &item.assets["red"].raster_bands.as_ref().unwrap()[0];
        assert_eq!(
            (band.scale, band.offset, band.nodata_value()),
            (Some(2.75e-05), Some(-0.2), Some(0.0))
        );
        assert_eq!(item.proj_grid("red").unwrap().1, [100, 200]);
        assert!(item.extra.contains_key("links"));
        let bad = ItemCollection::from_json(br#"{"features":[{"id":3}]}"#, "https://h/c.json?tok=s");
        let msg = bad.unwrap_err().to_string();
        assert!(msg.contains("https://h/c.json?…") && !msg.contains("tok=s"), "{msg}");
    }
}

/// `href` as seen from the folder `base` (ending in `/`, or empty): a URL joined as browsers
/// and pystac join them (the `url` crate), a local path joined to the folder.
fn resolve_href(base: &str, href: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(href)) {
        Ok(joined) => joined.to_string(),
        Err(_) => std::path::Path::new(base).join(href).to_string_lossy().into_owned(),
    }
}

#[cfg(test)]
mod href_tests {
    use super::resolve_href;

    #[test]
    fn relative_hrefs_resolve_against_the_collection() {
        assert_eq!(resolve_href("http://h:1/cat/", "a.tif"), "http://h:1/cat/a.tif");
        assert_eq!(resolve_href("http://h:1/cat/", "../b/./a.tif"), "http://h:1/b/a.tif");
        assert_eq!(resolve_href("/data/cat/", "a.tif"), "/data/cat/a.tif");
        assert_eq!(resolve_href("cat/", "a.tif"), "cat/a.tif");
        assert_eq!(resolve_href("http://h/cat/", "https://x/a.tif"), "https://x/a.tif");
        assert_eq!(resolve_href("http://h/cat/", "/abs/a.tif"), "http://h/abs/a.tif");
        assert_eq!(resolve_href("/data/cat/", "/abs/a.tif"), "/abs/a.tif");
        assert_eq!(resolve_href("", "a.tif"), "a.tif");
    }
}
