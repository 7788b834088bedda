//! Quicklook figures as xarray's `plot.imshow` draws them: a grid of panels titled by their
//! label (a month, say), axes in CRS coordinates, and for single bands a colorbar with value
//! labels. Drawn with plotters into memory (text from an embedded font, so nothing depends on
//! the machine's fonts) and written as a PNG, atomically.

use std::path::Path;
use std::sync::OnceLock;

use ndarray::{ArrayView2, ArrayView3};
use plotters::prelude::*;

use super::png::{unit, ColorMap, Stretch};
use super::{write_bytes, OutputError};

/// One panel's pixels: a single band (through the colour map) or three bands as RGB.
#[derive(Debug, Clone, Copy)]
pub enum PanelData<'a> {
    /// `(y, x)` values
    Band(ArrayView2<'a, f32>),
    /// `(3, y, x)` red, green, blue
    Rgb(ArrayView3<'a, f32>),
}

/// A titled panel of a figure.
#[derive(Debug, Clone)]
pub struct Panel<'a> {
    /// drawn above the panel
    pub title: String,
    /// its pixels
    pub data: PanelData<'a>,
}

/// How a figure is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FigureStyle {
    /// value limits, one for every panel (xarray's `robust=True` is [`Stretch::ROBUST`])
    pub stretch: Stretch,
    /// colour map of single bands (a colorbar shows it)
    pub cmap: ColorMap,
    /// matplotlib's `extent`, `(left, right, bottom, top)`: the outer edges of the first and
    /// last columns and of the last and first rows, in CRS units, for the axes; the first row is
    /// drawn at the top. `None` labels the axes with pixel indices, 0 at the top left
    /// ([`DataArray::plot`](crate::labelled::DataArray::plot) fills it from the array's
    /// transform).
    pub extent: Option<(f64, f64, f64, f64)>,
    /// panels per row
    pub columns: usize,
    /// the width of a panel's image in pixels (its height follows the data's aspect)
    pub panel_width: u32,
}

impl Default for FigureStyle {
    fn default() -> Self {
        FigureStyle {
            stretch: Stretch::ROBUST,
            cmap: ColorMap::Viridis,
            extent: None,
            columns: 4,
            panel_width: 256,
        }
    }
}

const FONT: &str = "sans-serif";

/// Registers the embedded font once (plotters' `ab_glyph` text needs one).
fn font() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // The embedded font is valid TTF; a failure would only lose the text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

/// Draws `panels` in a grid (`style.columns` per row), one stretch for all, each titled and
/// with CRS axes, a colorbar beside single bands; writes the PNG atomically. Costs drawing the
/// figure (each panel resampled by nearest to `style.panel_width` pixels across) and one
/// pass over the values for the stretch.
///
/// **Errors**: [`OutputError::Unsupported`] for no panels, panels of different shapes or an
/// RGB panel without 3 bands; [`OutputError::Encode`] from drawing or encoding; I/O errors.
pub fn write_figure(path: &Path, panels: &[Panel<'_>], style: &FigureStyle) -> Result<(), OutputError> {
    let unsupported = |reason: String| OutputError::Unsupported {
        path: path.to_path_buf(),
        reason,
    };
    let shape = |p: &Panel<'_>| match p.data {
        PanelData::Band(b) => (1, b.dim().0, b.dim().1),
        PanelData::Rgb(c) => c.dim(),
    };
    let first = panels
        .first()
        .ok_or_else(|| unsupported("a figure of no panels".into()))?;
    let (bands, h, w) = shape(first);
    if panels.iter().any(|p| shape(p) != (bands, h, w)) || !(bands == 1 || bands == 3) || h == 0 || w == 0 {
        return Err(unsupported(format!(
            "panels of one shape, (y, x) or (3, y, x), are needed; the first is {:?}",
            (bands, h, w)
        )));
    }
    let limits = style.stretch.limits(|| {
        panels.iter().flat_map(|p| match p.data {
            PanelData::Band(b) => Box::new(b.into_iter()) as Box<dyn Iterator<Item = &f32>>,
            PanelData::Rgb(c) => Box::new(c.into_iter()),
        })
    });
    font();
    let columns = style.columns.clamp(1, panels.len());
    let rows = panels.len().div_ceil(columns);
    let (pw, ph) = (
        style.panel_width.max(16),
        ((style.panel_width.max(16) as usize * h) / w).max(1) as u32,
    );
    // room around each image for its title and tick labels; a colorbar column for bands
    let (cell_w, cell_h) = (pw + 90, ph + 60);
    let bar = if bands == 1 { 80 } else { 0 };
    let (width, height) = (cell_w * columns as u32 + bar, cell_h * rows as u32);
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    let draw = |e: String| OutputError::Encode {
        path: path.to_path_buf(),
        message: format!("drawing the figure: {e}"),
    };
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        let (cells, side) = root.split_horizontally(width - bar);
        let grid = cells.split_evenly((rows, columns));
        let (x0, x1, bottom, top) = style.extent.unwrap_or((0.0, w as f64, h as f64, 0.0));
        // The chart's y grows upwards; when the top's value is the smaller (pixel rows), the
        // labels are mirrored so they read as the rows do.
        let y_label = |v: &f64| {
            let v = if top < bottom { top + bottom - v } else { *v };
            format!("{v:.0}")
        };
        for (panel, area) in panels.iter().zip(grid.iter()) {
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, (FONT, 14))
                .margin(6)
                .x_label_area_size(22)
                .y_label_area_size(60)
                .build_cartesian_2d(x0.min(x1)..x0.max(x1), top.min(bottom)..top.max(bottom))
                .map_err(|e| draw(e.to_string()))?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(3)
                .y_labels(3)
                .label_style((FONT, 10))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&y_label)
                .draw()
                .map_err(|e| draw(e.to_string()))?;
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            let (aw, ah) = ((xr.end - xr.start).max(1) as u32, (yr.end - yr.start).max(1) as u32);
            let pixels = raster(&panel.data, (aw, ah), limits, style.cmap);
            let image = plotters::element::BitMapElement::<_>::with_owned_buffer(
                (x0.min(x1), top.max(bottom)),
                (aw, ah),
                pixels,
            )
            .ok_or_else(|| draw("a raster of the wrong size".into()))?;
            chart
                .draw_series(std::iter::once(image))
                .map_err(|e| draw(e.to_string()))?;
        }
        if bands == 1 {
            colorbar(&side, limits, style.cmap).map_err(draw)?;
        }
        root.present().map_err(|e| draw(e.to_string()))?;
    }
    let mut png = Vec::new();
    {
        let mut encoder = ::png::Encoder::new(&mut png, width, height);
        encoder.set_color(::png::ColorType::Rgb);
        encoder.set_depth(::png::BitDepth::Eight);
        let encode = |e: ::png::EncodingError| OutputError::Encode {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(&rgb).map_err(encode)?;
    }
    write_bytes(path, &png)
}

/// The panel's pixels resampled by nearest to `(w, h)`, as RGB; NaN is light grey.
fn raster(data: &PanelData<'_>, (w, h): (u32, u32), limits: (f64, f64), cmap: ColorMap) -> Vec<u8> {
    let (rows, cols) = match data {
        PanelData::Band(b) => b.dim(),
        PanelData::Rgb(c) => (c.dim().1, c.dim().2),
    };
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for py in 0..h as usize {
        let r = (py * rows / h as usize).min(rows - 1);
        for px in 0..w as usize {
            let c = (px * cols / w as usize).min(cols - 1);
            let rgb = match data {
                PanelData::Band(b) => {
                    let v = b[[r, c]];
                    if v.is_nan() {
                        [230, 230, 230]
                    } else {
                        cmap.rgb(unit(v, limits))
                    }
                }
                PanelData::Rgb(x) => {
                    let v = [x[[0, r, c]], x[[1, r, c]], x[[2, r, c]]];
                    if v.iter().any(|v| v.is_nan()) {
                        [230, 230, 230]
                    } else {
                        v.map(|v| (unit(v, limits) * 255.0).round() as u8)
                    }
                }
            };
            out.extend_from_slice(&rgb);
        }
    }
    out
}

/// A vertical colorbar of `cmap` over `limits` in `area`: a gradient strip with a frame and
/// five value labels to its right (drawn directly: a chart's axes leave a narrow strip no room).
fn colorbar<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    limits: (f64, f64),
    cmap: ColorMap,
) -> Result<(), String> {
    let (lo, hi) = if limits.1 > limits.0 {
        limits
    } else {
        (limits.0, limits.0 + 1.0)
    };
    let (w, h) = area.dim_in_pixel();
    let (left, right) = (8i32, 8 + 16i32.min(w as i32 / 4));
    let (top, bottom) = (36i32, h as i32 - 30);
    if bottom <= top + 4 {
        return Ok(());
    }
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    for y in top..bottom {
        // the top row shows the high end, as matplotlib's vertical colorbar
        let t = 1.0 - (y - top) as f64 / (bottom - top - 1).max(1) as f64;
        let [r, g, b] = cmap.rgb(t);
        for x in left..right {
            area.draw_pixel((x, y), &RGBColor(r, g, b)).map_err(err)?;
        }
    }
    area.draw(&Rectangle::new(
        [(left - 1, top - 1), (right, bottom)],
        BLACK.stroke_width(1),
    ))
    .map_err(err)?;
    let style = TextStyle::from((FONT, 10).into_font()).pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Left,
        plotters::style::text_anchor::VPos::Center,
    ));
    for i in 0..5 {
        let t = i as f64 / 4.0;
        let y = bottom - 1 - (t * (bottom - top - 1) as f64).round() as i32;
        let v = lo + t * (hi - lo);
        area.draw(&PathElement::new(vec![(right, y), (right + 4, y)], BLACK))
            .map_err(err)?;
        area.draw(&Text::new(tick_label(v, hi - lo), (right + 7, y), style.clone()))
            .map_err(err)?;
    }
    Ok(())
}

/// A value label with as many decimals as the span needs (3 significant digits of it).
fn tick_label(v: f64, span: f64) -> String {
    let decimals = (2.0 - span.abs().max(1e-12).log10().floor()).clamp(0.0, 8.0) as usize;
    let s = format!("{v:.decimals$}");
    // "-0.000" reads as a sign error
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_carry_the_digits_the_span_needs() {
        assert_eq!(tick_label(0.15, 0.6), "0.150");
        assert_eq!(tick_label(-0.0001, 0.6), "0.000");
        assert_eq!(tick_label(1234.5, 3000.0), "1234");
        assert_eq!(tick_label(0.00012, 0.0005), "0.000120");
    }
}
