//! PNG quicklooks, as the tutorial's plots show results: RGB composites with a robust
//! (2nd–98th percentile) stretch, a grid of one panel per time step, single bands through a
//! colour map (matplotlib's viridis, RdBu_r, Greys_r), and masks. NaN pixels are transparent,
//! as matplotlib leaves them. Written atomically.

use std::path::Path;

use ndarray::{ArrayView2, ArrayView3, ArrayView4, Axis};

use super::{write_atomic, OutputError};

/// How values map to the 0..1 display range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stretch {
    /// between the `lo`-th and `hi`-th percentiles of the non-NaN values (numpy's linear
    /// interpolation; xarray's `robust=True` is 2 and 98)
    Percentiles {
        /// lower percentile
        lo: f64,
        /// upper percentile
        hi: f64,
    },
    /// between two values (matplotlib's vmin, vmax)
    Range {
        /// value shown as 0
        vmin: f64,
        /// value shown as 1
        vmax: f64,
    },
}

impl Stretch {
    /// xarray's `robust=True`: the 2nd and 98th percentiles.
    pub const ROBUST: Stretch = Stretch::Percentiles { lo: 2.0, hi: 98.0 };

    /// The (vmin, vmax) of these values: one pass, plus a selection for percentiles.
    pub fn limits<'a>(&self, values: impl Iterator<Item = &'a f32>) -> (f64, f64) {
        match *self {
            Stretch::Range { vmin, vmax } => (vmin, vmax),
            Stretch::Percentiles { lo, hi } => {
                let mut v: Vec<f32> = values.copied().filter(|x| !x.is_nan()).collect();
                (percentile(&mut v, lo), percentile(&mut v, hi))
            }
        }
    }
}

/// numpy's `percentile(v, q)` with linear interpolation (NaN when `v` is empty). Reorders `v`.
pub fn percentile(v: &mut [f32], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 100.0) / 100.0 * (v.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    let (_, &mut lo, rest) = v.select_nth_unstable_by(i, f32::total_cmp);
    let lo = f64::from(lo);
    if frac == 0.0 || rest.is_empty() {
        return lo;
    }
    let hi = f64::from(rest.iter().copied().fold(f32::INFINITY, f32::min));
    lo + (hi - lo) * frac
}

/// A colour map for single bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorMap {
    /// matplotlib's default, dark blue → yellow
    Viridis,
    /// blue (low) → white → red (high), for signed indices such as NDVI
    RdBuR,
    /// black (low) → white (high)
    GreysR,
}

impl ColorMap {
    fn rgb(self, t: f64) -> [u8; 3] {
        let c = match self {
            ColorMap::Viridis => colorous::VIRIDIS.eval_continuous(t),
            ColorMap::RdBuR => colorous::RED_BLUE.eval_continuous(1.0 - t),
            ColorMap::GreysR => colorous::GREYS.eval_continuous(1.0 - t),
        };
        [c.r, c.g, c.b]
    }
}

fn unit(v: f32, (vmin, vmax): (f64, f64)) -> f64 {
    let span = vmax - vmin;
    if span > 0.0 {
        ((f64::from(v) - vmin) / span).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Writes RGBA pixels (`width` × `height`) as a PNG, atomically.
fn write_rgba(path: &Path, width: usize, height: usize, rgba: &[u8]) -> Result<(), OutputError> {
    let encode = |e: png::EncodingError| OutputError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if width == 0 || height == 0 || width > u32::MAX as usize || height > u32::MAX as usize {
        return Err(OutputError::Unsupported {
            path: path.to_path_buf(),
            reason: format!("a {width}x{height} image"),
        });
    }
    write_atomic(path, |out| {
        let mut encoder = png::Encoder::new(out, width as u32, height as u32);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(rgba).map_err(encode)?;
        writer.finish().map_err(encode)
    })
}

fn rgb_pixels(rgb: &ArrayView3<'_, f32>, limits: (f64, f64), out: &mut Vec<u8>) {
    let (_, h, w) = rgb.dim();
    for y in 0..h {
        for x in 0..w {
            let px = [rgb[[0, y, x]], rgb[[1, y, x]], rgb[[2, y, x]]];
            if px.iter().any(|v| v.is_nan()) {
                out.extend_from_slice(&[0, 0, 0, 0]);
            } else {
                out.extend(px.iter().map(|&v| (unit(v, limits) * 255.0).round() as u8));
                out.push(255);
            }
        }
    }
}

/// An RGB composite of a `(3, y, x)` array (red, green, blue), the stretch taken over all
/// three bands together as xarray does; a pixel with any NaN band is transparent.
///
/// **Errors**: [`OutputError::Unsupported`] unless there are 3 bands; encoding and I/O errors.
pub fn write_png_rgb(path: &Path, rgb: ArrayView3<'_, f32>, stretch: Stretch) -> Result<(), OutputError> {
    write_png_rgb_grid(path, rgb.insert_axis(Axis(0)), stretch)
}

/// One RGB panel per time step of a `(time, 3, y, x)` array, stacked top to bottom (the
/// tutorial's `plot.imshow(row="time", rgb="band", robust=True)`), separated by 4 transparent
/// rows, one stretch for all panels.
///
/// **Errors**: [`OutputError::Unsupported`] unless there are 3 bands; encoding and I/O errors.
pub fn write_png_rgb_grid(path: &Path, rgb: ArrayView4<'_, f32>, stretch: Stretch) -> Result<(), OutputError> {
    let (t, bands, h, w) = rgb.dim();
    if bands != 3 || t == 0 {
        return Err(OutputError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "an RGB quicklook needs 3 bands and a time step, not shape {:?}",
                rgb.shape()
            ),
        });
    }
    const GAP: usize = 4;
    let limits = stretch.limits(rgb.iter());
    let mut px = Vec::with_capacity((t * (h + GAP)) * w * 4);
    for (i, panel) in rgb.outer_iter().enumerate() {
        if i > 0 {
            px.resize(px.len() + GAP * w * 4, 0);
        }
        rgb_pixels(&panel, limits, &mut px);
    }
    write_rgba(path, w, t * h + (t - 1) * GAP, &px)
}

/// A single band through a colour map; NaN is transparent.
///
/// **Errors**: encoding and I/O errors.
pub fn write_png_band(
    path: &Path,
    band: ArrayView2<'_, f32>,
    stretch: Stretch,
    cmap: ColorMap,
) -> Result<(), OutputError> {
    let limits = stretch.limits(band.iter());
    let (h, w) = band.dim();
    let mut px = Vec::with_capacity(h * w * 4);
    for &v in band.iter() {
        if v.is_nan() {
            px.extend_from_slice(&[0, 0, 0, 0]);
        } else {
            px.extend_from_slice(&cmap.rgb(unit(v, limits)));
            px.push(255);
        }
    }
    write_rgba(path, w, h, &px)
}

/// A mask: white where set, black elsewhere.
///
/// **Errors**: encoding and I/O errors.
pub fn write_png_mask(path: &Path, mask: ArrayView2<'_, u8>) -> Result<(), OutputError> {
    let (h, w) = mask.dim();
    let px: Vec<u8> = mask
        .iter()
        .flat_map(|&m| if m != 0 { [255, 255, 255, 255] } else { [0, 0, 0, 255] })
        .collect();
    write_rgba(path, w, h, &px)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_as_numpy() {
        // np.percentile(np.arange(1, 101), [2, 98]) == [2.98, 98.02]; of [3, 1, 2]: 50 → 2.0
        let mut v: Vec<f32> = (1..=100).map(|x| x as f32).collect();
        assert!((percentile(&mut v, 2.0) - 2.98).abs() < 1e-9);
        assert!((percentile(&mut v, 98.0) - 98.02).abs() < 1e-9);
        assert_eq!(percentile(&mut [3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(percentile(&mut [5.0], 98.0), 5.0);
        assert!(percentile(&mut [], 2.0).is_nan());
    }

    #[test]
    fn colour_maps_run_the_right_way() {
        assert_eq!(ColorMap::GreysR.rgb(0.0), [0, 0, 0]);
        assert_eq!(ColorMap::GreysR.rgb(1.0), [255, 255, 255]);
        let (low, high) = (ColorMap::RdBuR.rgb(0.0), ColorMap::RdBuR.rgb(1.0));
        assert!(
            low[2] > low[0] && high[0] > high[2],
            "blue low, red high: {low:?} {high:?}"
        );
        // viridis starts dark purple (68, 1, 84) and ends yellow (253, 231, 37)
        assert_eq!(ColorMap::Viridis.rgb(0.0), [68, 1, 84]);
        assert_eq!(ColorMap::Viridis.rgb(1.0), [253, 231, 37]);
    }
}
