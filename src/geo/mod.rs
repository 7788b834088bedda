//! Georeferencing: affine pixel↔world transforms, bounds, CRS by EPSG code and projections
//! between them (proj4rs, pure Rust).

mod affine;
mod crs;

pub use affine::{Affine, Bounds, XyCoords};
pub use crs::{Crs, GeoError};
