//! The output grid of a stack: stackstac's `RasterSpec`.

use std::ops::Range;

use serde::Serialize;

use crate::geo::{Affine, Bounds, XyCoords};

/// A north-up output grid: CRS, snapped bounds, resolution and shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RasterSpec {
    /// the CRS
    pub epsg: u32,
    /// outer edges of the grid (snapped to the resolution)
    pub bounds: Bounds,
    /// pixel width and height in CRS units
    pub resolution: (f64, f64),
    /// rows, columns
    pub shape: (usize, usize),
}

impl RasterSpec {
    /// The grid covering `bounds`, snapped outward to multiples of the resolution from the
    /// CRS origin, as stackstac does (`floor(min / res) · res`, `ceil(max / res) · res`).
    pub fn snapped(epsg: u32, bounds: Bounds, resolution: (f64, f64)) -> RasterSpec {
        let (rx, ry) = resolution;
        let b = Bounds::new(
            (bounds.min_x / rx).floor() * rx,
            (bounds.min_y / ry).floor() * ry,
            (bounds.max_x / rx).ceil() * rx,
            (bounds.max_y / ry).ceil() * ry,
        );
        let cols = ((b.max_x - b.min_x + rx / 2.0) / rx).floor().max(0.0) as usize;
        let rows = ((b.max_y - b.min_y + ry / 2.0) / ry).floor().max(0.0) as usize;
        RasterSpec {
            epsg,
            bounds: b,
            resolution,
            shape: (rows, cols),
        }
    }

    /// Pixel → CRS transform (top-left corner at (min x, max y), y descending).
    pub fn transform(&self) -> Affine {
        Affine::north_up(
            self.bounds.min_x,
            self.bounds.max_y,
            self.resolution.0,
            self.resolution.1,
        )
    }

    /// x of each column.
    pub fn x_coords(&self, at: XyCoords) -> Vec<f64> {
        let shift = if at == XyCoords::Center { 0.5 } else { 0.0 };
        (0..self.shape.1)
            .map(|j| self.bounds.min_x + (j as f64 + shift) * self.resolution.0)
            .collect()
    }

    /// y of each row (descending).
    pub fn y_coords(&self, at: XyCoords) -> Vec<f64> {
        let shift = if at == XyCoords::Center { 0.5 } else { 0.0 };
        (0..self.shape.0)
            .map(|i| self.bounds.max_y - (i as f64 + shift) * self.resolution.1)
            .collect()
    }

    /// The CRS box covered by rows × cols of the grid.
    pub fn region_bounds(&self, rows: &Range<usize>, cols: &Range<usize>) -> Bounds {
        let (rx, ry) = self.resolution;
        Bounds::new(
            self.bounds.min_x + cols.start as f64 * rx,
            self.bounds.max_y - rows.end as f64 * ry,
            self.bounds.min_x + cols.end as f64 * rx,
            self.bounds.max_y - rows.start as f64 * ry,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Crs;

    #[test]
    fn tutorial_grid_matches_stackstac() {
        // The tutorial's bounds_latlon to EPSG:32610 at 30 m; stackstac printed
        // bounds=(407580, 4037010, 694320, 4327230) and shape (9674, 9558).
        let (w, s, e, n) = (-124.031297, 36.473972, -120.831297, 39.073972);
        let mut corners = [(w, s), (e, s), (w, n), (e, n)];
        Crs::from_epsg(4326)
            .unwrap()
            .project(&Crs::from_epsg(32610).unwrap(), &mut corners)
            .unwrap();
        let xs = corners.map(|p| p.0);
        let ys = corners.map(|p| p.1);
        let b = Bounds::new(
            xs.iter().cloned().fold(f64::INFINITY, f64::min),
            ys.iter().cloned().fold(f64::INFINITY, f64::min),
            xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            ys.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        );
        let spec = RasterSpec::snapped(32610, b, (30.0, 30.0));
        assert_eq!(spec.bounds, Bounds::new(407580.0, 4037010.0, 694320.0, 4327230.0));
        assert_eq!(spec.shape, (9674, 9558));
        assert_eq!(spec.x_coords(XyCoords::TopLeft)[0], 407580.0);
        assert_eq!(spec.x_coords(XyCoords::Center)[1], 407625.0);
        assert_eq!(spec.y_coords(XyCoords::Center)[0], 4327215.0);
    }
}
