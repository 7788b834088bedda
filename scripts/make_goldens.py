#!/usr/bin/env python3
"""Writes the golden inputs and outputs under tests/data/golden that strata's tests compare
against: numpy for elementwise ops, selection and reductions, scipy.ndimage for the gaussian.

Run: scripts/make_goldens.sh   (makes its own venv with numpy and scipy; CI never runs this)

Reductions that accumulate (sum, mean, var) are computed in float64 and rounded to float32,
the exact answer strata's f64 accumulators must approach; selections (min, max, median) and
elementwise arithmetic are computed in float32 exactly as numpy does, so they compare bitwise.
"""
import os
import warnings

import numpy as np
from scipy import ndimage

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden")
os.makedirs(OUT, exist_ok=True)
warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are part of the cases
rng = np.random.default_rng(20261125)


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(a))


# A (time, y, x) cube: small integers (so medians tie and average), about 20 % NaN, one
# all-NaN pixel column, and values of both signs.
x = rng.integers(-50, 100, size=(7, 19, 23)).astype(np.float32) / np.float32(4)
x[rng.random(x.shape) < 0.2] = np.nan
x[:, 3, 5] = np.nan
x[:6, 4, 6] = np.nan  # one valid value
x[:5, 4, 7] = np.nan  # two valid values: even count
save("cube", x)
x_full = np.where(np.isnan(x), np.float32(1.5), x)  # no NaN, for propagating reductions
save("cube_full", x_full)


def arg_extreme(a, axes, f, skip_nan):
    """numpy's arg reduction over `axes` flattened in C order (the kept axes first, then the
    reduced ones, as numpy's axis=None flattens), as float32; skipping NaN, an all-NaN pixel
    gives NaN (numpy raises there, xarray's idxmax fills it)."""
    kept = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, kept + list(axes)).reshape([a.shape[i] for i in kept] + [-1])
    if not skip_nan:
        return f(moved, axis=-1).astype(np.float32)
    allnan = np.isnan(moved).all(axis=-1)
    r = f(np.where(allnan[..., None], np.float32(0), moved), axis=-1)
    return np.where(allnan, np.float32(np.nan), r.astype(np.float32))


with np.errstate(all="ignore"):
    for axes, tag in [((0,), "t"), ((1, 2), "yx"), ((0, 1, 2), "all"), ((0, 2), "tx")]:
        x64 = x.astype(np.float64)
        save(f"nansum_{tag}", np.nansum(x64, axis=axes).astype(np.float32))
        save(f"nanmean_{tag}", np.nanmean(x64, axis=axes).astype(np.float32))
        save(f"nanmin_{tag}", np.nanmin(x, axis=axes))
        save(f"nanmax_{tag}", np.nanmax(x, axis=axes))
        save(f"nanmedian_{tag}", np.nanmedian(x, axis=axes))
        save(f"count_{tag}", np.sum(~np.isnan(x), axis=axes).astype(np.float32))
        save(f"nanvar0_{tag}", np.nanvar(x64, axis=axes, ddof=0).astype(np.float32))
        save(f"nanstd1_{tag}", np.nanstd(x64, axis=axes, ddof=1).astype(np.float32))
        save(f"sum_{tag}", np.sum(x64, axis=axes).astype(np.float32))
        save(f"mean_{tag}", np.mean(x64, axis=axes).astype(np.float32))
        save(f"min_{tag}", np.min(x, axis=axes))
        save(f"max_{tag}", np.max(x, axis=axes))
        save(f"median_{tag}", np.median(x, axis=axes))
        for name, f, skip in [
            ("nanargmax", np.nanargmax, True),
            ("nanargmin", np.nanargmin, True),
            ("argmax", np.argmax, False),
            ("argmin", np.argmin, False),
        ]:
            save(f"{name}_{tag}", arg_extreme(x, axes, f, skip))
        f64 = x_full.astype(np.float64)
        save(f"full_sum_{tag}", np.sum(f64, axis=axes).astype(np.float32))
        save(f"full_mean_{tag}", np.mean(f64, axis=axes).astype(np.float32))
        save(f"full_median_{tag}", np.median(x_full, axis=axes))

    # Elementwise, float32 throughout as numpy computes it.
    a = (rng.random((31, 17)) * 4 - 1).astype(np.float32)
    b = (rng.random((31, 17)) * 4 - 1).astype(np.float32)
    c = (rng.random((17,)) * 2).astype(np.float32)  # broadcasts along rows
    a[rng.random(a.shape) < 0.1] = np.nan
    save("ew_a", a)
    save("ew_b", b)
    save("ew_c", c)
    save("ew_bandmath", (a - b) / (a + b) * c + 0.5)
    save("ew_sqrt", np.sqrt(a))
    save("ew_exp", np.exp(a))
    save("ew_log", np.log(a))
    save("ew_pow", np.power(a, np.float32(1.7)))
    save("ew_minimum", np.minimum(a, b))
    save("ew_maximum", np.maximum(a, b))
    save("ew_abs_neg", np.abs(-a))
    save("ew_gt", (a > b).astype(np.uint8))
    save("ew_le", (a <= 0.25).astype(np.uint8))
    save("ew_isnan", np.isnan(a).astype(np.uint8))
    save("ew_where", np.where(a > b, a, b * 2))
    save("ew_fillna", np.where(np.isnan(a), np.float32(-9), a))
    save("ew_ndvi", (b - a) / (b + a))

    # Selection.
    save("sel_slice", x[::-1, 3:17:2, ::-3])
    save("sel_take", np.take(x, [5, 0, 0, 18, 7], axis=1))
    save("sel_index", x[:, -2, :])
    save("sel_concat", np.concatenate([x, x[:, :, ::-1]], axis=2))
    save("sel_stack", np.stack([x[0], x[3], x[6]], axis=0))

    # Gaussian filter, every mode, on a 2-D field and a 3-D cube (sigma 0 on time).
    g = (rng.random((37, 29)) * 10).astype(np.float32)
    save("gauss_in", g)
    modes = {"reflect": "reflect", "mirror": "mirror", "nearest": "nearest", "wrap": "wrap", "constant": "constant"}
    for name, mode in modes.items():
        kw = {"cval": 2.5} if mode == "constant" else {}
        save(f"gauss_2d_{name}", ndimage.gaussian_filter(g.astype(np.float64), sigma=(2.0, 1.5), mode=mode, **kw).astype(np.float32))
        # a radius (int(4*3+0.5) = 12) larger than the short axis of 9: repeated reflection
        small = g[:9, :14]
        save(f"gauss_wide_{name}", ndimage.gaussian_filter(small.astype(np.float64), sigma=(3.0, 0.7), mode=mode, **kw).astype(np.float32))
    save("gauss_tutorial", ndimage.gaussian_filter(g.astype(np.float64), sigma=(0, 0.1), mode="reflect").astype(np.float32))
    cube = x_full
    save("gauss_3d_reflect", ndimage.gaussian_filter(cube.astype(np.float64), sigma=(0, 1.0, 2.0), mode="reflect").astype(np.float32))

    # Group reduce along time: 7 scenes into 4 groups, group 2 empty.
    labels = np.array([0, 0, 1, 3, 1, 3, 3])
    save("group_labels", labels.astype(np.int64))
    for op, fn in [("nanmedian", np.nanmedian), ("nanmean", np.nanmean), ("nanmax", np.nanmax)]:
        out = np.full((4,) + x.shape[1:], np.nan, dtype=np.float32)
        for gidx in range(4):
            members = labels == gidx
            if members.any():
                src = x[members] if op != "nanmean" else x[members].astype(np.float64)
                out[gidx] = fn(src, axis=0).astype(np.float32)
        save(f"group_{op}", out)

print("goldens written to", os.path.normpath(OUT), "-", len(os.listdir(OUT)), "files")
