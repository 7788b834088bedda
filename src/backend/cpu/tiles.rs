//! The gaussian over the last two axes, reading halos from neighbour blocks in place.
//!
//! Output rows are processed in strips, in parallel. Each extended row (block plus halo,
//! boundary mode applied through the plan's index maps) is copied from the neighbour blocks'
//! rows into a per-thread ring of 2ry + 2 rows just before it is needed; output rows are
//! filtered vertically in pairs (sharing the ring's loads) into two row buffers, then each
//! horizontally straight into the output. Nothing block-sized is allocated besides the
//! output. Each element sums its taps in one fixed order (symmetric pairs, see `correlate`),
//! so results are bitwise identical whatever the chunking. On x86-64 with AVX2 and FMA the
//! passes run on intrinsics.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use ndarray::ArrayViewMutD;
use rayon::prelude::*;

use super::layout::rows_mut;
use crate::backend::halo::{assemble_row, neighbours, with_contiguous_rows, Neighbour};
use crate::expr::Block;
use crate::plan::{ColumnRun, TileSpec};

/// One output row, not yet written.
type OutRow<'a> = &'a mut [MaybeUninit<f32>];

/// Output rows per strip (a unit of parallel work; each strip re-reads 2ry halo rows).
const STRIP: usize = 128;

/// Output rows filtered vertically side by side (see `correlate_rows`).
const ROWS: usize = 2;

thread_local! {
    /// The ring of extended rows and the ROWS vertically filtered rows.
    static BUFFERS: RefCell<(Vec<Vec<Line>>, Vec<Line>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// 64 bytes of f32 on a cache-line boundary: rows built from these start on a line, so the
/// filter's 32-byte loads at multiples of 8 columns never straddle two lines.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

// SAFETY: 16 f32 fill the 64 bytes exactly (no padding), and all-zero or any other bits are
// valid f32 values.
unsafe impl bytemuck::Zeroable for Line {}
// SAFETY: as above; `Line` is `Copy` and `repr(C)`.
unsafe impl bytemuck::Pod for Line {}

/// Lines holding `n` f32.
fn lines(n: usize) -> usize {
    n.div_ceil(16)
}

/// The first `n` f32 of a row of lines.
fn floats(row: &[Line], n: usize) -> &[f32] {
    &bytemuck::cast_slice::<Line, f32>(row)[..n]
}

/// The first `n` f32 of a row of lines, to write.
fn floats_mut(row: &mut [Line], n: usize) -> &mut [f32] {
    &mut bytemuck::cast_slice_mut::<Line, f32>(row)[..n]
}

/// Output elements one step of `correlate` holds in registers: four AVX vectors, enough
/// independent sums in flight to hide the latency of a fused multiply-add.
const LANES: usize = 32;

/// `out[j] = w[0] src(0)[j] + w[1] src(1)[j] + ...` (symmetric weights paired, see
/// `correlate_generic`). On x86-64 with AVX2 and FMA it runs the intrinsics path; elsewhere the
/// portable one. Each machine takes one path for every element, so results stay bitwise
/// independent of chunking; the two paths differ by FMA rounding.
fn correlate<'s>(w: &[f32], src: impl Fn(usize) -> &'s [f32], out: &mut [MaybeUninit<f32>]) {
    correlate_rows(w, src, [out], [std::ptr::null()])
}

/// `R` rows of [`correlate`] at once: row i from taps `src(i..i + w.len())`, each rounded
/// exactly as `correlate` rounds it. The vertical pass of adjacent output rows shares all taps
/// but a few; computing them side by side loads each shared row from L2 once for all of them.
/// `ahead` points at the source rows the next group will copy, in extended-column coordinates
/// (null for none): the intrinsics path prefetches them column by column as it goes, so their
/// memory reads overlap this arithmetic instead of stalling the copy.
fn correlate_rows<'s, const R: usize>(
    w: &[f32],
    src: impl Fn(usize) -> &'s [f32],
    outs: [&mut [MaybeUninit<f32>]; R],
    ahead: [*const f32; R],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above); prefetching never faults.
        return unsafe { fma::correlate_rows(w, src, outs, ahead) };
    }
    let _ = ahead;
    for (i, out) in outs.into_iter().enumerate() {
        correlate_generic(w, |k| src(k + i), out);
    }
}

/// Whether this machine's tile gaussian takes the fused multiply-add path (x86-64 with AVX2
/// and FMA): a device then sums with `fma` in the same order and matches it bitwise.
pub(crate) fn uses_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        return true;
    }
    false
}

/// Whether `w` reads the same both ways: then the taps pair up, `w[k] (x[k] + x[2r-k])`, for
/// r + 1 multiplies instead of 2r + 1.
fn is_symmetric(w: &[f32]) -> bool {
    let r = w.len() / 2;
    (0..r).all(|k| w[k] == w[2 * r - k])
}

#[cfg(target_arch = "x86_64")]
mod fma {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{is_symmetric, LANES};

    /// Sums of `U` vectors of 8 starting at `j` of the rows at `rows`: a product for the first
    /// tap, then one fused multiply-add per tap (pair), in tap order. Every lane rounds exactly
    /// as `scalar` does.
    ///
    /// # Safety
    /// AVX2 and FMA available; every row holds at least `j + 8 U` elements.
    #[inline(always)]
    unsafe fn vectors<const U: usize>(w: &[f32], sym: bool, rows: &[*const f32], j: usize) -> [__m256; U] {
        let r = w.len() / 2;
        let mut acc = [_mm256_setzero_ps(); U];
        if sym {
            let (wm, m) = (_mm256_set1_ps(w[r]), rows[r].add(j));
            for (u, a) in acc.iter_mut().enumerate() {
                *a = _mm256_mul_ps(wm, _mm256_loadu_ps(m.add(8 * u)));
            }
            for k in 0..r {
                let wk = _mm256_set1_ps(*w.get_unchecked(k));
                let (p, q) = (rows.get_unchecked(k).add(j), rows.get_unchecked(2 * r - k).add(j));
                for (u, a) in acc.iter_mut().enumerate() {
                    let pair = _mm256_add_ps(_mm256_loadu_ps(p.add(8 * u)), _mm256_loadu_ps(q.add(8 * u)));
                    *a = _mm256_fmadd_ps(wk, pair, *a);
                }
            }
        } else {
            for (k, &wk) in w.iter().enumerate() {
                let (wk, p) = (_mm256_set1_ps(wk), rows.get_unchecked(k).add(j));
                for (u, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(wk, _mm256_loadu_ps(p.add(8 * u)), *a);
                }
            }
        }
        acc
    }

    /// One element, rounded as a lane of `vectors` (`mul_add` is one FMA instruction here).
    #[inline(always)]
    fn scalar<'s>(w: &[f32], sym: bool, src: &impl Fn(usize) -> &'s [f32], j: usize) -> f32 {
        let r = w.len() / 2;
        if sym {
            let mut acc = w[r] * src(r)[j];
            for (k, &wk) in w.iter().enumerate().take(r) {
                acc = wk.mul_add(src(k)[j] + src(2 * r - k)[j], acc);
            }
            acc
        } else {
            w.iter()
                .enumerate()
                .fold(0.0, |acc, (k, &wk)| wk.mul_add(src(k)[j], acc))
        }
    }

    /// See [`super::correlate_rows`]: the rows' vectors computed in one loop. A row's sums do
    /// not depend on R, so rows filtered in a group round as rows filtered alone (R = 1).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn correlate_rows<'s, const R: usize>(
        w: &[f32],
        src: impl Fn(usize) -> &'s [f32],
        outs: [&mut [MaybeUninit<f32>]; R],
        ahead: [*const f32; R],
    ) {
        let (n, sym, taps) = (outs[0].len(), is_symmetric(w), w.len());
        assert!(outs.iter().all(|o| o.len() == n), "rows of one width");
        // each tap's row checked once, so the loops below index without bounds checks
        let rows: Vec<*const f32> = (0..taps + R - 1)
            .map(|k| {
                let row = src(k);
                assert!(row.len() >= n, "a tap row shorter than the output");
                row.as_ptr()
            })
            .collect();
        let dst = outs.map(|o| o.as_mut_ptr().cast::<f32>());
        let mut j = 0;
        while j + LANES <= n {
            // the two cache lines of the rows the next group will copy, at this column
            for p in ahead.into_iter().filter(|p| !p.is_null()) {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(j).cast());
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(j + 16).cast());
            }
            for (i, d) in dst.iter().enumerate() {
                let v = vectors::<{ LANES / 8 }>(w, sym, &rows[i..i + taps], j);
                for (u, v) in v.into_iter().enumerate() {
                    _mm256_storeu_ps(d.add(j + 8 * u), v);
                }
            }
            j += LANES;
        }
        while j + 8 <= n {
            for (i, d) in dst.iter().enumerate() {
                _mm256_storeu_ps(d.add(j), vectors::<1>(w, sym, &rows[i..i + taps], j)[0]);
            }
            j += 8;
        }
        for (i, d) in dst.iter().enumerate() {
            for jj in j..n {
                *d.add(jj) = scalar(w, sym, &|k| src(k + i), jj);
            }
        }
    }
}

/// The portable path: `LANES` sums held in an array the compiler keeps in vector registers,
/// taps added in order, no fused multiply-add.
fn correlate_generic<'s>(w: &[f32], src: impl Fn(usize) -> &'s [f32], out: &mut [MaybeUninit<f32>]) {
    let n = out.len();
    let r = w.len() / 2;
    let symmetric = is_symmetric(w);
    let mut j = 0;
    while j + LANES <= n {
        let mut acc = [0f32; LANES];
        let row = |k: usize| -> &[f32; LANES] { src(k)[j..j + LANES].try_into().expect("lane width") };
        if symmetric {
            let mid = row(r);
            for l in 0..LANES {
                acc[l] = w[r] * mid[l];
            }
            for (k, &wk) in w.iter().enumerate().take(r) {
                let (a, b) = (row(k), row(2 * r - k));
                for l in 0..LANES {
                    acc[l] += wk * (a[l] + b[l]);
                }
            }
        } else {
            for (k, &wk) in w.iter().enumerate() {
                let s = row(k);
                for l in 0..LANES {
                    acc[l] += wk * s[l];
                }
            }
        }
        for (o, a) in out[j..j + LANES].iter_mut().zip(acc) {
            *o = MaybeUninit::new(a);
        }
        j += LANES;
    }
    for (jj, o) in out.iter_mut().enumerate().skip(j) {
        let v = if symmetric {
            let mut acc = w[r] * src(r)[jj];
            for (k, &wk) in w.iter().enumerate().take(r) {
                acc += wk * (src(k)[jj] + src(2 * r - k)[jj]);
            }
            acc
        } else {
            let mut acc = 0f32;
            for (k, &wk) in w.iter().enumerate() {
                acc += wk * src(k)[jj];
            }
            acc
        };
        *o = MaybeUninit::new(v);
    }
}

/// Where extended row `e` reads `run` (the spec's longest run of columns in order), as a
/// pointer to its extended column 0 (possibly outside the row: only ever offset into the run
/// and prefetched); null when the row is outside the block's extent or there is no such run.
fn source_row(
    spec: &TileSpec,
    neighbours: &[Neighbour<'_>],
    run: Option<&ColumnRun>,
    batch: usize,
    e: usize,
) -> *const f32 {
    let (Some(&Some((iy, ly))), Some(run)) = (spec.rows.get(e), run) else {
        return std::ptr::null();
    };
    let row = neighbours[iy * spec.nx + run.block].row(batch, ly);
    row.as_ptr().wrapping_add(run.src).wrapping_sub(run.dst)
}

/// Filters into `dst` (the output block's shape). Returns `false`, writing nothing, when the
/// destination's rows are not contiguous.
pub fn gaussian_tiles_into(spec: &TileSpec, inputs: &[&Block], dst: &mut ArrayViewMutD<'_, MaybeUninit<f32>>) -> bool {
    let owned = with_contiguous_rows(inputs);
    let neighbours = neighbours(&owned);
    let Some(mut out_rows) = rows_mut(dst) else {
        return false;
    };
    let nd = spec.shape.len();
    let (h, w) = (spec.shape[nd - 2], spec.shape[nd - 1]);
    if h == 0 || w == 0 {
        return true;
    }
    let (ry2, rx2) = (spec.wy.len() - 1, spec.wx.len() - 1);
    let wext = w + rx2;
    // (batch, first output row, the strip's output rows)
    let mut strips: Vec<(usize, usize, &mut [OutRow<'_>])> = Vec::new();
    let mut rest = out_rows.as_mut_slice();
    let mut b = 0;
    while !rest.is_empty() {
        let (batch_rows, tail) = rest.split_at_mut(h);
        for (s, strip) in batch_rows.chunks_mut(STRIP).enumerate() {
            strips.push((b, s * STRIP, strip));
        }
        rest = tail;
        b += 1;
    }
    // modes other than a constant locate every extended row and column: no fill needed
    debug_assert!(
        spec.fill.is_some()
            || (spec.rows.iter().all(Option::is_some) && spec.cols.iter().map(|c| c.len).sum::<usize>() == wext)
    );
    let taps = ry2 + 1;
    let in_order = spec.cols.iter().filter(|c| c.step == 1).max_by_key(|c| c.len);
    strips.into_par_iter().for_each(|(batch, i0, strip)| {
        BUFFERS.with_borrow_mut(|(ring, tmp)| {
            // Each extended row is copied once per strip into a ring of 2ry + ROWS rows, just
            // before the vertical pass needs it; rotating the ring keeps `ring[k]` the k-th tap
            // row. Reading block rows in place instead was slower in a one-off A/B run (rows at
            // power-of-two strides alias in L1 across the taps), and so were narrower column
            // panels meant to keep the ring in L1 (per-row overheads).
            // (resize also shortens what an earlier, wider block left)
            ring.resize_with(taps + ROWS - 1, Vec::new);
            ring.iter_mut().for_each(|row| row.resize(lines(wext), Line([0.0; 16])));
            tmp.resize(ROWS * lines(wext), Line([0.0; 16]));
            let row_lines = lines(wext);
            let load = |row: &mut [f32], e: usize| {
                if let Some(c) = spec.fill {
                    row.fill(c);
                }
                assemble_row(spec, &neighbours, batch, i0 + e, row);
            };
            // the horizontal pass of one vertically filtered row
            let horizontal = |tmp: &mut [f32], out: &mut [MaybeUninit<f32>]| {
                if let Some(c) = spec.fill {
                    // scipy pads the horizontal pass with the constant, not the filtered constant
                    tmp[..spec.inside_cols.start.min(wext)].fill(c);
                    tmp[spec.inside_cols.end.min(wext)..].fill(c);
                }
                correlate(&spec.wx, |k| &tmp[k..], out);
            };
            // Output rows go in groups of ROWS (single rows at a strip's end): before a group
            // starting at output row r, slots 0..2ry hold extended rows r..r + 2ry - 1; the
            // group loads its newest rows into the slots after them, and rotating the ring by
            // the group's size restores the invariant.
            for (e, row) in ring.iter_mut().take(ry2).enumerate() {
                load(floats_mut(row, wext), e);
            }
            // SAFETY: viewing initialised f32 as MaybeUninit<f32> (same layout); `correlate`
            // only stores initialised values through it.
            let as_uninit = |t: &mut [f32]| unsafe { &mut *(t as *mut [f32] as *mut [MaybeUninit<f32>]) };
            let mut r = 0;
            for group in strip.chunks_mut(ROWS) {
                let g = group.len();
                for (i, row) in ring[ry2..ry2 + g].iter_mut().enumerate() {
                    load(floats_mut(row, wext), r + ry2 + i);
                }
                if g == ROWS {
                    let mut t = tmp.chunks_mut(row_lines);
                    let outs: [&mut [MaybeUninit<f32>]; ROWS] =
                        std::array::from_fn(|_| as_uninit(floats_mut(t.next().expect("ROWS row buffers"), wext)));
                    let ahead = std::array::from_fn(|i| {
                        source_row(spec, &neighbours, in_order, batch, i0 + r + ry2 + ROWS + i)
                    });
                    correlate_rows(&spec.wy, |k| floats(&ring[k], wext), outs, ahead);
                } else {
                    for (i, t) in tmp.chunks_mut(row_lines).take(g).enumerate() {
                        correlate(&spec.wy, |k| floats(&ring[k + i], wext), as_uninit(floats_mut(t, wext)));
                    }
                }
                for (t, out) in tmp.chunks_mut(row_lines).zip(group.iter_mut()) {
                    horizontal(floats_mut(t, wext), out);
                }
                ring.rotate_left(g);
                r += g;
            }
        })
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths, over vector lanes and the scalar tail, on values whose weighted sums are
    /// exact in f32: `x[j] = j`, so a symmetric kernel summing to 1 returns `j + r` exactly and
    /// an asymmetric one its hand-computed mean offset.
    #[test]
    fn correlation_by_hand_on_every_path() {
        let x: Vec<f32> = (0..80).map(|j| j as f32).collect();
        let n = 77; // two 32-lane steps, one 8-lane step, five scalar elements
        for (w, offset) in [(vec![0.25f32, 0.5, 0.25], 1.0f32), (vec![0.5f32, 0.25, 0.25], 0.75)] {
            let mut portable = vec![MaybeUninit::new(f32::NAN); n];
            correlate_generic(&w, |k| &x[k..], &mut portable);
            let mut dispatched = vec![MaybeUninit::new(f32::NAN); n];
            correlate(&w, |k| &x[k..], &mut dispatched);
            for j in 0..n {
                // SAFETY: every element was written (the NaN fill would fail the comparison).
                let (p, d) = unsafe { (portable[j].assume_init(), dispatched[j].assume_init()) };
                assert_eq!(p, j as f32 + offset, "portable path at {j}, weights {w:?}");
                assert_eq!(d, j as f32 + offset, "dispatched path at {j}, weights {w:?}");
            }
        }
    }

    /// Rows filtered side by side equal rows filtered one by one, bit for bit (the chunk
    /// invariance of the gaussian rests on it: a strip's last row may go alone), on values
    /// whose sums round, with and without prefetch pointers.
    #[test]
    fn rows_side_by_side_round_as_single_rows() {
        let rows: Vec<Vec<f32>> = (0..6)
            .map(|k| (0..77).map(|j| ((j * 37 + k * 101) % 97) as f32 / 7.0 - 3.3).collect())
            .collect();
        let ahead = [rows[5].as_ptr(), std::ptr::null()];
        for w in [vec![0.2f32, 0.3, 0.2], vec![0.1f32, 0.7, 0.3]] {
            let (mut a, mut b) = (
                vec![MaybeUninit::new(f32::NAN); 77],
                vec![MaybeUninit::new(f32::NAN); 77],
            );
            correlate_rows::<2>(&w, |k| &rows[k], [&mut a, &mut b], ahead);
            for (i, got) in [a, b].iter().enumerate() {
                let mut single = vec![MaybeUninit::new(f32::NAN); 77];
                correlate(&w, |k| &rows[k + i], &mut single);
                let mut portable = vec![MaybeUninit::new(f32::NAN); 77];
                correlate_generic(&w, |k| &rows[k + i], &mut portable);
                for j in 0..77 {
                    // SAFETY: every element was written (the NaN fill would fail the comparison).
                    let (g, s, p) =
                        unsafe { (got[j].assume_init(), single[j].assume_init(), portable[j].assume_init()) };
                    assert_eq!(g.to_bits(), s.to_bits(), "row {i} at {j}, weights {w:?}");
                    assert!((g - p).abs() <= 1e-5, "row {i} at {j}: {g} vs portable {p}");
                }
            }
        }
    }
}
