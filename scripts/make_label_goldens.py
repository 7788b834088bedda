#!/usr/bin/env python3
"""Writes tests/data/labelled: a (time, y, x) cube with irregular Landsat-like acquisition times
and NaN, and what xarray gives for the calendar operations strata offers on labelled arrays:
resample (MS, QS, YS, W, D and multiples) with mean and median (and, monthly, sum, min, max,
count, std and var), groupby time.month and time.season with every one of those,
rolling(time=k) mean, sum, min and max, rolling windows centred, with min_periods and over y and x
(every reduction xarray's rolling offers but argmax/argmin), std and var over time (ddof 0 and 1), the ufuncs
sqrt, exp, log and abs, stackstac's mosaic (last or first on top), coarsen windows (mean, sum, min, max, count, median, std, var;
exact and trimmed), diff and shift along time, cumsum and cumprod (NaN-skipping or not), xr.cov and xr.corr with a second cube, polyfit of degree 0 and 1, linear interp onto new times and x positions, and NaN-skipping quantiles (numpy's linear method) over time, per month
and per season, and the first and last values of bins and groups.

Run: scripts/make_label_goldens.sh   (makes its own venv with numpy, pandas, xarray, stackstac; CI never runs this)
"""
import json
import os
import warnings

import numpy as np
import pandas as pd
import stackstac
import xarray as xr

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "labelled")
os.makedirs(OUT, exist_ok=True)
warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN groups are part of the cases
rng = np.random.default_rng(20261205)

# 23 acquisitions over 15 months: a 16-day revisit with gaps, at Landsat's overpass time, one
# on a Sunday, two on one day (different times), one on the first of a month at midnight.
base = pd.Timestamp("2020-01-05T18:51:02Z").tz_convert(None)
days = [0, 16, 32, 48, 64, 96, 112, 128, 160, 176, 208, 224, 240, 256, 288, 320, 336, 352, 384, 400, 416, 432, 448]
times = [base + pd.Timedelta(days=d) for d in days]
times[3] = pd.Timestamp("2020-03-01T00:00:00")
times.insert(8, times[7] + pd.Timedelta(hours=3))
t = len(times)
x = rng.integers(-40, 120, size=(t, 3, 4)).astype(np.float32) / np.float32(8)
x[rng.random(x.shape) < 0.15] = np.nan
x[:, 0, 0] = np.nan  # an all-NaN pixel
da = xr.DataArray(x, dims=("time", "y", "x"), coords={"time": pd.DatetimeIndex(times)})

np.save(os.path.join(OUT, "cube.npy"), x)
meta = {"time": [pd.Timestamp(v).strftime("%Y-%m-%dT%H:%M:%SZ") for v in da.time.values], "cases": {}}


def case(name, result, dim):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(result.values.astype(np.float32)))
    if dim not in result.coords:
        meta["cases"][name] = {"dim": dim, "labels": None}
        return
    labels = result[dim].values
    if np.issubdtype(labels.dtype, np.datetime64):
        labels = [pd.Timestamp(v).strftime("%Y-%m-%dT%H:%M:%SZ") for v in labels]
    else:
        labels = [v.item() if hasattr(v, "item") else v for v in labels]
    meta["cases"][name] = {"dim": dim, "labels": labels}


for freq in ["MS", "QS", "YS", "W", "D", "2MS", "3D", "2QS"]:
    r = da.resample(time=freq)
    case(f"resample_{freq}_mean", r.mean(), "time")
    case(f"resample_{freq}_median", r.median(), "time")
for key, dim in [("time.month", "month"), ("time.season", "season")]:
    g = da.groupby(key)
    case(f"groupby_{dim}_mean", g.mean(), dim)
    case(f"groupby_{dim}_median", g.median(), dim)
for k in [1, 3, 5]:
    case(f"rolling_{k}_mean", da.rolling(time=k).mean(), "time")

# The rest of xarray's reductions on groups, bins and windows; variances over time; ufuncs.
for key, dim in [("time.month", "month"), ("time.season", "season")]:
    g = da.groupby(key)
    for op in ["sum", "min", "max", "count", "std", "var"]:
        case(f"groupby_{dim}_{op}", getattr(g, op)(), dim)
r = da.resample(time="MS")
for op in ["sum", "min", "max", "count", "std", "var"]:
    case(f"resample_MS_{op}", getattr(r, op)(), "time")
for k in [1, 3, 5]:
    case(f"rolling_{k}_min", da.rolling(time=k).min(), "time")
    case(f"rolling_{k}_max", da.rolling(time=k).max(), "time")
    case(f"rolling_{k}_sum", da.rolling(time=k).sum(), "time")
# Moving windows: centred (odd and even), min_periods, and over two dims (a focal window).
for spec, windows, center, min_periods in [("3", {"time": 3}, False, None), ("3c", {"time": 3}, True, None),
                                           ("4c", {"time": 4}, True, None), ("3m1", {"time": 3}, False, 1),
                                           ("4cm2", {"time": 4}, True, 2), ("7m3", {"time": 7}, False, 3),
                                           ("30cm1", {"time": 30}, True, 1), ("y3x2cm1", {"y": 3, "x": 2}, True, 1),
                                           ("y2x3m4", {"y": 2, "x": 3}, False, 4)]:
    r = da.rolling(windows, center=center, min_periods=min_periods)
    for op in ["mean", "sum", "min", "max", "count", "median", "std", "var", "prod"]:
        case(f"rolling_{spec}_{op}", getattr(r, op)(), "time")
    case(f"rolling_{spec}_std1", r.std(ddof=1), "time")
    case(f"rolling_{spec}_var1", r.var(ddof=1), "time")
for ddof in [0, 1]:
    case(f"std_ddof{ddof}", da.std("time", ddof=ddof), "y")
    case(f"var_ddof{ddof}", da.var("time", ddof=ddof), "y")
for spec, windows, boundary in [("x2", {"x": 2}, "exact"), ("y3x2", {"y": 3, "x": 2}, "exact"),
                                 ("time4", {"time": 4}, "exact"), ("time5trim", {"time": 5}, "trim")]:
    c = da.coarsen(windows, boundary=boundary)
    for op in ["mean", "sum", "min", "max", "count", "median", "std", "var"]:
        case(f"coarsen_{spec}_{op}", getattr(c, op)(), "time")
for n in [1, 2]:
    case(f"diff_{n}", da.diff("time", n=n), "time")
for by, name in [(1, "1"), (-3, "m3"), (30, "30")]:
    case(f"shift_{name}", da.shift(time=by), "time")
# Running sums and products, by xarray in f64 (strata's totals are f64, each step rounded once;
# an f32 cumprod would round at every step).
da64 = da.astype(np.float64)
for op in ["cumsum", "cumprod"]:
    for dim in ["time", "y", "x"]:
        case(f"{op}_{dim}", getattr(da64, op)(dim), "time")
    case(f"{op}_time_keepnan", getattr(da64, op)("time", skipna=False), "time")
# Covariance and correlation with a second cube (its own generator, so the cases above keep
# their draws), by xarray in f64: the reference the f32 products are held to.
rng_b = np.random.default_rng(20261206)
xb = (x * np.float32(0.5) + rng_b.integers(-20, 20, size=x.shape).astype(np.float32) / np.float32(4)).astype(np.float32)
xb[rng_b.random(xb.shape) < 0.1] = np.nan
xb[:, 2, 3] = x[:, 2, 3] * np.float32(2) - np.float32(1)  # a pixel exactly correlated (NaN where x is)
xb[:, 1, 1] = np.float32(3)  # a constant series: corr 0 / 0
np.save(os.path.join(OUT, "cube_b.npy"), xb)
db64 = xr.DataArray(xb, dims=da.dims, coords=da.coords).astype(np.float64)
for ddof in [0, 1]:
    case(f"cov_time_ddof{ddof}", xr.cov(da64, db64, dim="time", ddof=ddof), "y")
case("cov_yx_ddof1", xr.cov(da64, db64, dim=["y", "x"], ddof=1), "time")
case("corr_time", xr.corr(da64, db64, dim="time"), "y")
case("corr_yx", xr.corr(da64, db64, dim=["y", "x"]), "time")
# Least-squares lines through each series (degree 1: slope per nanosecond and intercept at
# 1970; degree 0: the mean), and along x by index (x has no coordinate), by xarray in f64. A
# series with fewer than deg + 1 values gets xarray's rank-deficient minimum-norm fit; strata
# answers NaN there, and so does the golden.
for dim, deg in [("time", 1), ("time", 0), ("x", 1)]:
    fit = da64.polyfit(dim, deg, skipna=True).polyfit_coefficients
    case(f"polyfit_{dim}_deg{deg}", fit.where(da.count(dim) > deg), "degree")
# Linear interpolation onto new positions (scipy's interp1d through xarray, in f64): the 1st
# and 15th of each month over the series' span, half a day outside it at each end, and two
# acquisition times themselves; along x by index (x has no coordinate).
t0, t1 = pd.Timestamp(times[0]), pd.Timestamp(times[-1])
at = [t0 - pd.Timedelta(hours=12), t0, times[5], t1, t1 + pd.Timedelta(hours=12)]
at += [d for d in pd.date_range("2020-01-01", "2021-04-30", freq="SMS") if t0 < d < t1]
at = pd.DatetimeIndex(sorted(set(at)))
meta["interp_time"] = [v.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for v in at]
case("interp_time", da64.interp(time=at), "time")
case("interp_x", da64.interp(x=[0.0, 0.25, 1.5, 2.999, 3.0, 3.5, -0.5]), "time")
case("mosaic", stackstac.mosaic(da, dim="time"), "y")
case("mosaic_reverse", stackstac.mosaic(da, dim="time", reverse=True), "y")
with np.errstate(invalid="ignore", divide="ignore"):
    for name, fn in [("sqrt", np.sqrt), ("exp", np.exp), ("log", np.log), ("abs", np.abs)]:
        case(f"ufunc_{name}", fn(da), "time")

for q in [0.0, 0.1, 0.25, 0.5, 0.9, 1.0]:
    case(f"quantile_q{q}", da.quantile(q, dim="time"), "y")
case("resample_MS_q0.9", da.resample(time="MS").quantile(0.9), "time")
case("groupby_season_q0.1", da.groupby("time.season").quantile(0.1), "season")

# The first and last non-NaN value of every bin and group (same-day scenes merged).
for freq in ["MS", "D"]:
    r = da.resample(time=freq)
    case(f"resample_{freq}_first", r.first(), "time")
    case(f"resample_{freq}_last", r.last(), "time")
for key, dim in [("time.month", "month"), ("time.season", "season")]:
    g = da.groupby(key)
    case(f"groupby_{dim}_first", g.first(), dim)
    case(f"groupby_{dim}_last", g.last(), dim)

# Alignment: two arrays whose x and y labels overlap in part (y descending, as rasters are).
a = xr.DataArray(
    rng.integers(0, 50, size=(3, 4)).astype(np.float32),
    dims=("y", "x"),
    coords={"y": [100.0, 90.0, 80.0], "x": [10.0, 20.0, 30.0, 40.0]},
)
b = xr.DataArray(
    rng.integers(0, 50, size=(3, 4)).astype(np.float32),
    dims=("y", "x"),
    coords={"y": [90.0, 80.0, 70.0], "x": [20.0, 30.0, 40.0, 50.0]},
)
b[1, 2] = np.nan
np.save(os.path.join(OUT, "align_a.npy"), a.values)
np.save(os.path.join(OUT, "align_b.npy"), b.values)
align = {"a": {"y": a.y.values.tolist(), "x": a.x.values.tolist()}, "b": {"y": b.y.values.tolist(), "x": b.x.values.tolist()}}


def aligned(name, arr):
    np.save(os.path.join(OUT, f"align_{name}.npy"), arr.values.astype(np.float32))
    align[name] = {"y": arr.y.values.tolist(), "x": arr.x.values.tolist()}


aligned("sub_default", a - b)
for join in ["inner", "outer", "left"]:
    l, r = xr.align(a, b, join=join)
    aligned(f"{join}_a", l)
    aligned(f"{join}_b", r)
with open(os.path.join(OUT, "align.json"), "w") as f:
    json.dump(align, f, indent=1)

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(meta, f, indent=1)
print(f"{len(meta['cases'])} cases, xarray {xr.__version__}, pandas {pd.__version__}")
