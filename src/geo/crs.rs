//! Coordinate reference systems by EPSG code, and point projection between them.

use proj4rs::Proj;

/// A projection failed or a CRS is unknown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoError {
    /// No definition for this EPSG code.
    #[error("EPSG:{0} is not a known CRS")]
    UnknownEpsg(u32),
    /// The projection library refused the points.
    #[error("cannot project from EPSG:{from} to EPSG:{to}: {message}")]
    Projection {
        /// source CRS
        from: u32,
        /// target CRS
        to: u32,
        /// what proj4rs said
        message: String,
    },
}

/// A CRS named by its EPSG code, with its proj4 definition (from the `crs-definitions` tables).
#[derive(Debug, Clone)]
pub struct Crs {
    epsg: u32,
    proj: std::sync::Arc<Proj>,
}

impl PartialEq for Crs {
    fn eq(&self, other: &Self) -> bool {
        self.epsg == other.epsg
    }
}

impl Crs {
    /// The CRS of this EPSG code. Costs parsing its proj4 definition.
    ///
    /// **Errors**: [`GeoError::UnknownEpsg`].
    pub fn from_epsg(epsg: u32) -> Result<Crs, GeoError> {
        let code = u16::try_from(epsg).map_err(|_| GeoError::UnknownEpsg(epsg))?;
        let proj = Proj::from_epsg_code(code).map_err(|_| GeoError::UnknownEpsg(epsg))?;
        Ok(Crs {
            epsg,
            proj: std::sync::Arc::new(proj),
        })
    }

    /// The EPSG code.
    pub fn epsg(&self) -> u32 {
        self.epsg
    }

    /// Whether coordinates are longitude/latitude in degrees.
    pub fn is_geographic(&self) -> bool {
        self.proj.is_latlong()
    }

    /// Projects a WGS84 longitude/latitude (degrees) into this CRS: pyproj's
    /// `Proj(crs)(lon, lat)`, as the tutorial finds its area of interest. Costs one projection.
    ///
    /// **Errors**: [`GeoError::Projection`] when the point cannot be projected.
    pub fn project_lonlat(&self, lon: f64, lat: f64) -> Result<(f64, f64), GeoError> {
        let mut p = [(lon, lat)];
        Crs::from_epsg(4326)?.project(self, &mut p)?;
        Ok(p[0])
    }

    /// Projects points in place from this CRS into `to` (degrees for geographic CRSs, the
    /// CRS's units otherwise). Costs about a microsecond per point.
    ///
    /// **Errors**: [`GeoError::Projection`] when a point cannot be projected.
    pub fn project(&self, to: &Crs, points: &mut [(f64, f64)]) -> Result<(), GeoError> {
        if self.epsg == to.epsg {
            return Ok(());
        }
        let err = |e: proj4rs::errors::Error| GeoError::Projection {
            from: self.epsg,
            to: to.epsg,
            message: e.to_string(),
        };
        for p in points.iter_mut() {
            let mut xyz = if self.is_geographic() {
                (p.0.to_radians(), p.1.to_radians(), 0.0)
            } else {
                (p.0, p.1, 0.0)
            };
            proj4rs::transform::transform(&self.proj, &to.proj, &mut xyz).map_err(err)?;
            *p = if to.is_geographic() {
                (xyz.0.to_degrees(), xyz.1.to_degrees())
            } else {
                (xyz.0, xyz.1)
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tutorial_point_matches_pyproj() {
        // pyproj: Proj("EPSG:32610")(-122.4312, 37.7739) == (550092.262834, 4180881.547121)
        let wgs84 = Crs::from_epsg(4326).unwrap();
        let utm10 = Crs::from_epsg(32610).unwrap();
        let mut p = [(-122.4312, 37.7739)];
        wgs84.project(&utm10, &mut p).unwrap();
        assert!((p[0].0 - 550092.262834).abs() < 1e-4, "{p:?}");
        assert!((p[0].1 - 4180881.547121).abs() < 1e-4, "{p:?}");
        utm10.project(&wgs84, &mut p).unwrap();
        assert!((p[0].0 + 122.4312).abs() < 1e-9 && (p[0].1 - 37.7739).abs() < 1e-9);
        let (x, y) = utm10.project_lonlat(-122.4312, 37.7739).unwrap();
        assert!((x - 550092.262834).abs() < 1e-4 && (y - 4180881.547121).abs() < 1e-4);
        assert!(matches!(Crs::from_epsg(99999), Err(GeoError::UnknownEpsg(99999))));
    }
}
