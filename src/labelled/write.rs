//! Writing a labelled array to files in one call: the CRS, transform and NaN nodata come from
//! the array, and every file is written atomically (a temporary beside it, renamed).

use std::path::Path;

use chrono::{DateTime, Utc};
use ndarray::{ArcArray, Axis, Ix2, Ix3, IxDyn};

use super::{CoordValues, DataArray, LabelError};
use crate::expr::DType;
use crate::output::{
    write_figure, write_geotiff, write_npy, write_npy_mask, write_png_band, write_png_mask, write_png_rgb, ColorMap,
    FigureStyle, GeoTiffOptions, Panel, PanelData, Stretch,
};

impl DataArray {
    /// The values, shared rather than copied: a computed array's held values cost one
    /// reference count; a lazy array is computed first (as [`values`](Self::values)).
    ///
    /// **Errors**: as [`DataArray::compute`].
    pub fn shared_values(&self) -> crate::Result<ArcArray<f32, IxDyn>> {
        self.check_labels()?;
        match &self.held {
            Some(v) => Ok(v.clone()),
            None => Ok(self.data.compute()?.into_shared()),
        }
    }

    /// The instants of the `time` coordinate, if it has one. Free.
    pub fn times(&self) -> Option<&[DateTime<Utc>]> {
        match &self.index_of("time").ok()?.values {
            CoordValues::Time(t) => Some(t),
            _ => None,
        }
    }

    /// The x coordinate (CRS units, pixel centres unless the attributes say otherwise), if the
    /// array has one. Free.
    pub fn xs(&self) -> Option<&[f64]> {
        self.f64_coord("x").ok()
    }

    /// The y coordinate (CRS units, usually descending), if the array has one. Free.
    pub fn ys(&self) -> Option<&[f64]> {
        self.f64_coord("y").ok()
    }

    /// Writes a GeoTIFF (tiled, DEFLATE) whose CRS, transform and nodata come from the array:
    /// float results get NaN as nodata, masks are written as bytes. The array's last two dims
    /// must be `y` and `x`; a leading dim (band, say) becomes the file's bands. Computes a lazy
    /// array first; costs one encode of the values.
    ///
    /// **Errors**: [`LabelError::NotGeoreferenced`] without an EPSG code or a transform,
    /// [`LabelError::Layout`] for other dims; compute and output errors.
    pub fn to_geotiff(&self, path: impl AsRef<Path>) -> crate::Result<()> {
        let path = path.as_ref();
        self.check_yx("a GeoTIFF", 2..=3)?;
        let epsg = self.attrs.epsg.ok_or(LabelError::NotGeoreferenced {
            missing: "an EPSG code",
        })?;
        let transform = self.transform().ok_or(LabelError::NotGeoreferenced {
            missing: "a transform (x/y coordinates and a resolution)",
        })?;
        let mut options = GeoTiffOptions::new(transform, epsg);
        if self.data.dtype() == DType::U8 {
            write_geotiff(path, &self.mask_values()?, &options)?;
        } else {
            options.nodata = Some(f64::NAN);
            write_geotiff(path, &self.shared_values()?, &options)?;
        }
        Ok(())
    }

    /// Writes the values as a numpy `.npy` file: `<f4` for floats, `|u1` for masks. Computes a
    /// lazy array first.
    ///
    /// **Errors**: compute and output errors.
    pub fn to_npy(&self, path: impl AsRef<Path>) -> crate::Result<()> {
        let path = path.as_ref();
        if self.data.dtype() == DType::U8 {
            write_npy_mask(path, &self.mask_values()?)?;
        } else {
            write_npy(path, &self.shared_values()?)?;
        }
        Ok(())
    }

    /// Writes a PNG quicklook: a `(y, x)` array through `cmap` (NaN transparent), a mask in
    /// black and white, or a `(band, y, x)` array of three bands as RGB, each stretched by
    /// `stretch`. Computes a lazy array first.
    ///
    /// **Errors**: [`LabelError::Layout`] for other dims; compute and output errors.
    pub fn to_png(&self, path: impl AsRef<Path>, stretch: Stretch, cmap: ColorMap) -> crate::Result<()> {
        let path = path.as_ref();
        self.check_yx("a PNG", 2..=3)?;
        if self.data.dtype() == DType::U8 {
            let mask = self.mask_values()?;
            let mask = mask
                .view()
                .into_dimensionality::<Ix2>()
                .map_err(|_| self.layout("a PNG of a mask", "(y, x)"))?;
            write_png_mask(path, mask)?;
            return Ok(());
        }
        let values = self.shared_values()?;
        match values.ndim() {
            2 => {
                let band = values.view().into_dimensionality::<Ix2>().expect("two dims");
                write_png_band(path, band, stretch, cmap)?;
            }
            _ if values.len_of(Axis(0)) == 3 => {
                let rgb = values.view().into_dimensionality::<Ix3>().expect("three dims");
                write_png_rgb(path, rgb, stretch)?;
            }
            _ => return Err(self.layout("a PNG", "(y, x) or three bands (band, y, x)").into()),
        }
        Ok(())
    }

    /// A quicklook figure as xarray's `plot.imshow` draws it: `(y, x)` one panel with a
    /// colorbar; `(time, y, x)` a grid of panels titled by date (`row="time"`), one stretch and
    /// colorbar for all; `(band, y, x)` or `(time, band, y, x)` with three bands as RGB panels.
    /// Axes in CRS coordinates when the array has a transform (`style.extent` overrides).
    /// Computes a lazy array first; writes the PNG atomically.
    ///
    /// **Errors**: [`LabelError::Layout`] for other dims; compute and output errors.
    pub fn plot(&self, path: impl AsRef<Path>, style: &FigureStyle) -> crate::Result<()> {
        let path = path.as_ref();
        self.check_yx("a figure", 2..=4)?;
        let values = self.shared_values()?;
        let (h, w) = (values.shape()[self.dims.len() - 2], values.shape()[self.dims.len() - 1]);
        let mut style = *style;
        if style.extent.is_none() {
            style.extent = self
                .transform()
                .map(|t| (t.c, t.c + w as f64 * t.a, t.f + h as f64 * t.e, t.f));
        }
        let title = |i: usize| match self.times() {
            Some(t) if self.dims[0] == "time" => format!("time = {}", t[i].format("%Y-%m-%d")),
            _ => self.name.clone().unwrap_or_default(),
        };
        let dims: Vec<&str> = self.dims.iter().map(String::as_str).collect();
        // three bands draw as RGB; a leading dim beyond one panel's makes one panel per step
        let rgb = match dims[..] {
            ["y", "x"] | ["time", "y", "x"] => false,
            [_, "y", "x"] if values.shape()[0] == 3 => true,
            [_, _, "y", "x"] if values.shape()[1] == 3 => true,
            _ => {
                return Err(self
                    .layout(
                        "a figure",
                        "(y, x), (time, y, x), or three bands: (band, y, x), (time, band, y, x)",
                    )
                    .into())
            }
        };
        fn panel(v: ndarray::ArrayViewD<'_, f32>, rgb: bool) -> PanelData<'_> {
            match rgb {
                true => PanelData::Rgb(v.into_dimensionality::<Ix3>().expect("three dims")),
                false => PanelData::Band(v.into_dimensionality::<Ix2>().expect("two dims")),
            }
        }
        let panels: Vec<Panel<'_>> = if dims.len() == 2 + usize::from(rgb) {
            vec![Panel {
                title: title(0),
                data: panel(values.view(), rgb),
            }]
        } else {
            values
                .outer_iter()
                .enumerate()
                .map(|(i, v)| Panel {
                    title: title(i),
                    data: panel(v, rgb),
                })
                .collect()
        };
        write_figure(path, &panels, &style)?;
        Ok(())
    }

    /// Checks the array ends in `(y, x)` and has a rank in `ranks`.
    fn check_yx(&self, what: &'static str, ranks: std::ops::RangeInclusive<usize>) -> Result<(), LabelError> {
        let n = self.dims.len();
        if !ranks.contains(&n) || self.dims[n - 2] != "y" || self.dims[n - 1] != "x" {
            return Err(self.layout(what, "(y, x) or (band, y, x)"));
        }
        Ok(())
    }

    fn layout(&self, what: &'static str, wanted: &'static str) -> LabelError {
        LabelError::Layout {
            what,
            wanted,
            dims: self.dims.clone(),
        }
    }
}
