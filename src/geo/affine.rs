//! Affine transforms (rasterio's convention) and bounding boxes.

/// Pixel → world: `x = a·col + b·row + c`, `y = d·col + e·row + f`, with (col, row) the
/// continuous pixel coordinate of a pixel's top-left corner (rasterio's `Affine(a, b, c, d, e, f)`;
/// GDAL's geotransform is `(c, a, b, f, d, e)`). A north-up grid has b = d = 0 and e < 0.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Affine {
    /// x change per column
    pub a: f64,
    /// x change per row
    pub b: f64,
    /// x of the top-left corner
    pub c: f64,
    /// y change per column
    pub d: f64,
    /// y change per row (negative for north-up)
    pub e: f64,
    /// y of the top-left corner
    pub f: f64,
}

impl Affine {
    /// A north-up grid with its top-left corner at (x0, y0) and pixels `res_x` wide and `res_y`
    /// tall (both positive).
    pub fn north_up(x0: f64, y0: f64, res_x: f64, res_y: f64) -> Affine {
        Affine {
            a: res_x,
            b: 0.0,
            c: x0,
            d: 0.0,
            e: -res_y,
            f: y0,
        }
    }

    /// From GDAL's geotransform `(c, a, b, f, d, e)`.
    pub fn from_gdal(gt: [f64; 6]) -> Affine {
        Affine {
            a: gt[1],
            b: gt[2],
            c: gt[0],
            d: gt[4],
            e: gt[5],
            f: gt[3],
        }
    }

    /// GDAL's geotransform.
    pub fn to_gdal(&self) -> [f64; 6] {
        [self.c, self.a, self.b, self.f, self.d, self.e]
    }

    /// World coordinates of the continuous pixel position (col, row).
    pub fn apply(&self, col: f64, row: f64) -> (f64, f64) {
        (
            self.a * col + self.b * row + self.c,
            self.d * col + self.e * row + self.f,
        )
    }

    /// The inverse transform (world → pixel), or `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<Affine> {
        let det = self.a * self.e - self.b * self.d;
        if det == 0.0 || !det.is_finite() {
            return None;
        }
        let (ia, ib, id, ie) = (self.e / det, -self.b / det, -self.d / det, self.a / det);
        Some(Affine {
            a: ia,
            b: ib,
            c: -(ia * self.c + ib * self.f),
            d: id,
            e: ie,
            f: -(id * self.c + ie * self.f),
        })
    }

    /// Whether the grid is north-up (no rotation or shear).
    pub fn is_north_up(&self) -> bool {
        self.b == 0.0 && self.d == 0.0
    }
}

/// An axis-aligned box in some CRS: (min x, min y, max x, max y).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bounds {
    /// west
    pub min_x: f64,
    /// south
    pub min_y: f64,
    /// east
    pub max_x: f64,
    /// north
    pub max_y: f64,
}

impl Bounds {
    /// A box from its edges.
    pub fn new(min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> Bounds {
        Bounds {
            min_x,
            min_y,
            max_x,
            max_y,
        }
    }

    /// Whether the two boxes share any area.
    pub fn intersects(&self, o: &Bounds) -> bool {
        self.min_x < o.max_x && o.min_x < self.max_x && self.min_y < o.max_y && o.min_y < self.max_y
    }
}

/// Which point of a pixel its x/y coordinate names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum XyCoords {
    /// the pixel's centre (rioxarray, odc-stac; strata's default)
    #[default]
    Center,
    /// the pixel's top-left corner (stackstac's default, `xy_coords="topleft"`)
    TopLeft,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_round_trips() {
        let t = Affine {
            a: 30.0,
            b: 5.0,
            c: 500000.0,
            d: 4.0,
            e: -30.0,
            f: 4200000.0,
        };
        let inv = t.inverse().unwrap();
        let (x, y) = t.apply(12.5, 7.25);
        let (c, r) = inv.apply(x, y);
        assert!((c - 12.5).abs() < 1e-9 && (r - 7.25).abs() < 1e-9);
        assert_eq!(Affine::from_gdal(t.to_gdal()), t);
    }
}
