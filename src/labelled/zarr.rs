//! Labelled arrays into Zarr, laid out as xarray reads them back: each array under its name
//! with its dims as `dimension_names`; each coordinate an array of its own in the same group
//! (x/y as float64, times as int64 nanoseconds with CF units, names as strings), listed in the
//! data's `coordinates` attribute unless it is a dim's index; and the CRS and transform on a
//! scalar `spatial_ref` (CF's grid mapping, the attributes rioxarray reads). So
//! `xarray.open_zarr` gives back dims, coordinates and times, and `.rio.crs` the CRS.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{CoordValues, DataArray, LabelError};
use crate::exec::ComputeOptions;
use crate::output::zarr::{write_arrays, SmallValues, ZarrArraySpec, ZarrOptions, ZarrStore, ZarrWrite};

/// The name of the grid-mapping variable (rioxarray's default).
const SPATIAL_REF: &str = "spatial_ref";

impl DataArray {
    /// Computes the array into the Zarr group at `root` (a folder, created if missing) under
    /// its name (`data` when it has none), with its coordinates and CRS, streaming shard by
    /// shard. See [`to_zarr_all`].
    ///
    /// **Errors**: as [`to_zarr_all`].
    pub fn to_zarr(&self, root: impl AsRef<Path>, options: &ZarrOptions) -> crate::Result<ZarrWrite> {
        let named = self.clone().with_name(self.name().unwrap_or("data"));
        to_zarr_all(&[&named], root, options, &ComputeOptions::default())
    }
}

/// Computes several labelled arrays in one run (shared work computed once) into one Zarr
/// group at `root`, each under its name, their coordinates beside them. Arrays already there
/// under those names are replaced once the new ones are whole; the coordinates are written
/// after the data.
///
/// **Errors**: [`LabelError::Unnamed`] for an unnamed array, [`LabelError::Duplicate`] for two
/// of one name, [`LabelError::CoordConflict`] for two index coordinates of one name that differ,
/// or the labelling error kept from building; a plan or execution error; an output error.
pub fn to_zarr_all(
    arrays: &[&DataArray],
    root: impl AsRef<Path>,
    options: &ZarrOptions,
    compute: &ComputeOptions,
) -> crate::Result<ZarrWrite> {
    for a in arrays {
        a.check_labels()?;
    }
    let coords = shared_coords(arrays)?;
    let store = ZarrStore::create(root.as_ref())?;
    let mut specs = Vec::with_capacity(arrays.len());
    let data: Vec<&crate::array::Array> = arrays.iter().map(|a| a.data()).collect();
    let blocks = crate::output::zarr::planned_blocks(&data, compute)?;
    for (a, block) in arrays.iter().zip(&blocks) {
        let name = a.name().ok_or(LabelError::Unnamed)?;
        let mut spec = ZarrArraySpec::new(name, a.shape(), a.data().dtype(), block, options)?;
        spec.dimension_names = Some(a.dims().to_vec());
        spec.attributes = data_attributes(a, &coords);
        specs.push((spec, a.data()));
    }
    let written = write_arrays(&store, &specs, compute)?;
    write_labels(&store, arrays, &coords)?;
    Ok(written)
}

/// Makes a group ready for workers that write shards only: every array's metadata (from
/// `specs`, with the arrays' dims and labelling attributes added), the coordinates and the
/// CRS. Returns the specs as written.
///
/// **Errors**: as [`to_zarr_all`] before computing.
pub(crate) fn prepare_zarr_group(
    store: &ZarrStore,
    arrays: &[&DataArray],
    specs: &[ZarrArraySpec],
) -> crate::Result<Vec<ZarrArraySpec>> {
    let coords = shared_coords(arrays)?;
    let mut written = Vec::with_capacity(specs.len());
    for (a, spec) in arrays.iter().zip(specs) {
        let mut spec = spec.clone();
        spec.dimension_names = Some(a.dims().to_vec());
        spec.attributes = data_attributes(a, &coords);
        store.create_array(&spec)?;
        written.push(spec);
    }
    write_labels(store, arrays, &coords)?;
    Ok(written)
}

/// Writes the coordinates and, when the arrays have a CRS, the `spatial_ref` grid mapping.
fn write_labels(
    store: &ZarrStore,
    arrays: &[&DataArray],
    coords: &BTreeMap<String, super::Coord>,
) -> crate::Result<()> {
    for (name, coord) in coords {
        let dims: Vec<&str> = coord.dim.iter().map(String::as_str).collect();
        let (values, attrs) = coord_values(&coord.values);
        store.write_small(name, values, &dims, attrs)?;
    }
    if let Some((epsg, transform)) = arrays.iter().find_map(|a| Some((a.attrs().epsg?, a.transform()))) {
        let mut attrs = Map::new();
        attrs.insert("spatial_ref".into(), json!(format!("EPSG:{epsg}")));
        attrs.insert("crs_wkt".into(), json!(format!("EPSG:{epsg}")));
        if let Some(t) = transform {
            attrs.insert(
                "GeoTransform".into(),
                json!(format!("{} {} {} {} {} {}", t.c, t.a, t.b, t.f, t.d, t.e)),
            );
        }
        store.write_small(SPATIAL_REF, SmallValues::I64(vec![0]), &[], attrs)?;
    }
    Ok(())
}

/// Every coordinate of the arrays by name, each once. Where arrays disagree on a coordinate
/// that is not a dim's index (a scalar `band` left by different selections), it is dropped,
/// as xarray's `drop_conflicts` merge does; an index coordinate wins over such scalars.
///
/// **Errors**: [`LabelError::Duplicate`] for two arrays of one name,
/// [`LabelError::CoordConflict`] for two index coordinates of one name that differ (the arrays
/// are not on one grid).
fn shared_coords(arrays: &[&DataArray]) -> Result<BTreeMap<String, super::Coord>, LabelError> {
    let mut names = std::collections::HashSet::new();
    let mut coords: BTreeMap<String, super::Coord> = BTreeMap::new();
    let mut dropped = std::collections::HashSet::new();
    for a in arrays {
        if let Some(n) = a.name() {
            if !names.insert(n.to_string()) {
                return Err(LabelError::Duplicate {
                    what: "array in one Zarr group",
                    name: n.to_string(),
                });
            }
        }
        for c in a.coords() {
            if dropped.contains(&c.name) && !c.is_index() {
                continue;
            }
            match coords.get(&c.name) {
                Some(held) if held == c => {}
                Some(held) if held.is_index() && c.is_index() => {
                    return Err(LabelError::CoordConflict { coord: c.name.clone() })
                }
                Some(held) if held.is_index() => {
                    dropped.insert(c.name.clone());
                }
                Some(_) => {
                    dropped.insert(c.name.clone());
                    if c.is_index() {
                        coords.insert(c.name.clone(), c.clone());
                    } else {
                        coords.remove(&c.name);
                    }
                }
                None => {
                    coords.insert(c.name.clone(), c.clone());
                }
            }
        }
    }
    Ok(coords)
}

/// The data variable's attributes: its non-index coordinates and grid mapping (CF), which
/// xarray turns into coordinates and rioxarray into the CRS.
fn data_attributes(a: &DataArray, written: &BTreeMap<String, super::Coord>) -> Map<String, Value> {
    let mut attrs = Map::new();
    let mut linked: Vec<&str> = a
        .coords()
        .iter()
        .filter(|c| !c.is_index() && written.get(&c.name) == Some(c))
        .map(|c| c.name.as_str())
        .collect();
    if a.attrs().epsg.is_some() {
        linked.push(SPATIAL_REF);
        attrs.insert("grid_mapping".into(), json!(SPATIAL_REF));
    }
    if !linked.is_empty() {
        attrs.insert("coordinates".into(), json!(linked.join(" ")));
    }
    attrs
}

/// A coordinate's values as a Zarr array, with the attributes that decode them (CF time units).
fn coord_values(values: &CoordValues) -> (SmallValues, Map<String, Value>) {
    let mut attrs = Map::new();
    let values = match values {
        CoordValues::F64(v) => SmallValues::F64(v.clone()),
        CoordValues::Str(v) => SmallValues::Str(v.clone()),
        CoordValues::Time(v) => {
            attrs.insert("units".into(), json!("nanoseconds since 1970-01-01T00:00:00"));
            attrs.insert("calendar".into(), json!("proleptic_gregorian"));
            SmallValues::I64(v.iter().map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MIN)).collect())
        }
    };
    (values, attrs)
}
