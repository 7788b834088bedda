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

    /// The (vmin, vmax) of the values `values()` iterates. A range costs nothing; percentiles
    /// cost two passes over the values and 1 to 2.5 MiB, whatever their number
    /// ([`percentiles_streamed`]).
    pub fn limits<'a, I: Iterator<Item = &'a f32>>(&self, values: impl Fn() -> I) -> (f64, f64) {
        match *self {
            Stretch::Range { vmin, vmax } => (vmin, vmax),
            Stretch::Percentiles { lo, hi } => {
                let p = percentiles_streamed(values, &[lo, hi]);
                (p[0], p[1])
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

/// f32 in `total_cmp` order as an unsigned key: negative values flipped, positive ones above.
fn order_key(x: f32) -> u32 {
    let bits = x.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

fn from_order_key(k: u32) -> f32 {
    f32::from_bits(if k >> 31 == 1 { k & !(1 << 31) } else { !k })
}

/// numpy's `percentile(values, q)` (linear interpolation as in [`percentile`], NaN skipped) for
/// every `q`, without copying the values: the first pass counts them by the high 16 bits of
/// their order, the second by the low 16 bits inside the bins that hold the ranks asked for,
/// which pins each ranked value exactly. Costs two passes, 512 KiB, and 512 KiB more per
/// distinct bin.
pub fn percentiles_streamed<'a, I: Iterator<Item = &'a f32>>(values: impl Fn() -> I, qs: &[f64]) -> Vec<f64> {
    let mut high = vec![0u64; 1 << 16];
    let mut n = 0u64;
    for &x in values() {
        if !x.is_nan() {
            high[(order_key(x) >> 16) as usize] += 1;
            n += 1;
        }
    }
    if n == 0 {
        return vec![f64::NAN; qs.len()];
    }
    // The ranks each q needs: floor(pos), and the next one when pos has a fraction.
    let positions: Vec<f64> = qs
        .iter()
        .map(|q| q.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64)
        .collect();
    let mut ranks: Vec<u64> = positions
        .iter()
        .flat_map(|p| [p.floor() as u64, (p.floor() as u64 + 1).min(n - 1)])
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    // Each rank's high bin and its rank inside the bin.
    let mut located: Vec<(u64, u16, u64)> = Vec::with_capacity(ranks.len());
    let (mut below, mut bin) = (0u64, 0usize);
    for &r in &ranks {
        while below + high[bin] <= r {
            below += high[bin];
            bin += 1;
        }
        located.push((r, bin as u16, r - below));
    }
    let mut bins: Vec<u16> = located.iter().map(|l| l.1).collect();
    bins.dedup();
    let mut low = vec![vec![0u64; 1 << 16]; bins.len()];
    for &x in values() {
        if !x.is_nan() {
            let k = order_key(x);
            if let Ok(b) = bins.binary_search(&((k >> 16) as u16)) {
                low[b][(k & 0xffff) as usize] += 1;
            }
        }
    }
    let value_at = |r: u64| -> f64 {
        let &(_, bin, mut within) = located.iter().find(|l| l.0 == r).expect("every rank was located");
        let counts = &low[bins.binary_search(&bin).expect("every bin was counted")];
        let mut lo16 = 0usize;
        while counts[lo16] <= within {
            within -= counts[lo16];
            lo16 += 1;
        }
        f64::from(from_order_key(u32::from(bin) << 16 | lo16 as u32))
    };
    positions
        .iter()
        .map(|&pos| {
            let (i, frac) = (pos.floor() as u64, pos - pos.floor());
            let lo = value_at(i);
            if frac == 0.0 || i + 1 >= n {
                return lo;
            }
            lo + (value_at(i + 1) - lo) * frac
        })
        .collect()
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
    pub(crate) fn rgb(self, t: f64) -> [u8; 3] {
        let c = match self {
            ColorMap::Viridis => colorous::VIRIDIS.eval_continuous(t),
            ColorMap::RdBuR => colorous::RED_BLUE.eval_continuous(1.0 - t),
            ColorMap::GreysR => colorous::GREYS.eval_continuous(1.0 - t),
        };
        [c.r, c.g, c.b]
    }
}

pub(crate) fn unit(v: f32, (vmin, vmax): (f64, f64)) -> f64 {
    let span = vmax - vmin;
    if span > 0.0 {
        ((f64::from(v) - vmin) / span).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Writes RGBA pixels (`width` × `height`) as a PNG, atomically.
fn write_rgba(path: &Path, width: usize, height: usize, rgba: &[u8]) -> Result<(), OutputError> {
    write_rgba_rows(path, width, height, |y, row| {
        row.copy_from_slice(&rgba[y * width * 4..(y + 1) * width * 4])
    })
}

/// Encodes an RGBA image row by row, `row(y, out)` filling each: one row held at a time.
fn write_rgba_rows(
    path: &Path,
    width: usize,
    height: usize,
    mut row: impl FnMut(usize, &mut [u8]),
) -> Result<(), OutputError> {
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
        let mut stream = writer.stream_writer().map_err(encode)?;
        let mut line = vec![0u8; width * 4];
        for y in 0..height {
            row(y, &mut line);
            std::io::Write::write_all(&mut stream, &line).map_err(|e| encode(e.into()))?;
        }
        stream.finish().map_err(encode)
    })
}

/// One row of an RGB panel as RGBA; a pixel with any NaN band is transparent.
fn rgb_row(rgb: &ArrayView3<'_, f32>, y: usize, limits: (f64, f64), out: &mut [u8]) {
    for (x, px) in out.chunks_exact_mut(4).enumerate() {
        let v = [rgb[[0, y, x]], rgb[[1, y, x]], rgb[[2, y, x]]];
        if v.iter().any(|v| v.is_nan()) {
            px.copy_from_slice(&[0, 0, 0, 0]);
        } else {
            for (o, &c) in px.iter_mut().zip(&v) {
                *o = (unit(c, limits) * 255.0).round() as u8;
            }
            px[3] = 255;
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
    let limits = stretch.limits(|| rgb.iter());
    // Rows are drawn as they are encoded: the image is never held whole.
    write_rgba_rows(path, w, t * h + (t - 1) * GAP, |y, row| {
        let (panel, y) = (y / (h + GAP), y % (h + GAP));
        if y < h {
            rgb_row(&rgb.index_axis(Axis(0), panel), y, limits, row);
        } else {
            row.fill(0);
        }
    })
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
    let limits = stretch.limits(|| band.iter());
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

    proptest::proptest! {
        /// The two-pass percentiles equal the selection over a copy, on values with NaN,
        /// repeats, both zeros, infinities and subnormals.
        #[test]
        fn streamed_percentiles_equal_selection(
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => -1e3f32..1e3,
                    1 => proptest::sample::select(vec![
                        f32::NAN, 0.0, -0.0, 1.5, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -1e-40,
                    ]),
                ],
                0..400,
            ),
            qs in proptest::collection::vec(0.0f64..=100.0, 1..6),
        ) {
            let got = percentiles_streamed(|| values.iter(), &qs);
            let mut copy: Vec<f32> = values.iter().copied().filter(|x| !x.is_nan()).collect();
            for (q, g) in qs.iter().zip(&got) {
                let want = percentile(&mut copy, *q);
                proptest::prop_assert!(
                    g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                    "q {}: {} against {}", q, g, want
                );
            }
        }
    }

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
