#!/usr/bin/env python3
"""Times the fastest Python peers on the workloads strata's Rust benchmark runs, so that the
two can be compared as ratios.

What it measures (full sizes; --quick shrinks every size so a smoke run takes seconds):

  nanmedian_t64   median over axis 0 of a NaN-holed float32 cube(64, 2048, 2048) (1 GiB):
                  bottleneck.nanmedian and numpy.nanmedian.              -> seconds, Melem/s
  nanargmax_t64   the step of each pixel's first maximum, NaN skipped, in the same cube:
                  bottleneck.nanargmax and numpy.nanargmax.              -> seconds, Melem/s
  ffill_t64       NaN filled forward along time in the same cube: bottleneck.push
                  (xarray's ffill).                                      -> seconds, Melem/s
  corr_t64        xr.corr over time of a (64, 1024, 1024) cube and its reverse in time:
                  xarray, numpy + bottleneck by hand (its algorithm).    -> seconds, Melem/s
  cumsum_t64      the NaN-skipping running sum along time of the same cube: numpy by hand
                  (NaN as 0, steps added in place), xarray's cumsum.     -> seconds, Melem/s
  rolling_mean_t64, rolling_median_t64  the mean and the median of windows of 5 steps
                  along time ending at each step, any value enough, in a (64, 1024, 1024)
                  cube: bottleneck.move_mean/move_median(min_count=1) (and xarray's
                  rolling(time=5, min_periods=1).mean()).                -> seconds, Melem/s
  focal_mean_15   the NaN-skipping mean of the centred 15 x 15 window around every pixel of a
                  cube(4, 2048, 2048), any value enough, off the edge missing: by hand with
                  scipy ("scipy": uniform_filter of the values with NaN as 0 over
                  uniform_filter of the valid mask, both mode="constant"), and xarray's
                  rolling(y=15, x=15, center=True, min_periods=1).mean().   -> seconds, Melem/s
  coarsen_mean_16, coarsen_median_16, coarsen_median_4  the mean and the median of every
                  16 x 16 (4 x 4) pixel window of a cube(8, 2048, 2048): xarray's
                  coarsen(y=16, x=16).mean(), and the fastest hand-written numpy
                  ("bottleneck": the reshape to (8, 128, 128, 256), one copy, then
                  bottleneck.nanmean/nanmedian over the last axis).   -> seconds, Melem/s
  interpolate_na_t64  NaN filled by linear interpolation along time at uneven dates
                  (t*16 + (t*7) % 5 days) in a cube(64, 256, 256): xarray's
                  interpolate_na (numpy.interp per pixel).              -> seconds, Melem/s
  bandmath        (a-b)/(a+b)*c+0.5 on three float32 planes of 4096x4096: numexpr (2 threads)
                  allocating its result, numexpr writing into a reused out= array
                  ("numexpr_out"), and plain numpy.              -> seconds, Mpix/s, GB/s (16 B/pixel: 3 in, 1 out)
                  plus the machine's copy bandwidth, np.copyto of 256 MiB of float32,
                  counted as read + write (2 * nbytes / seconds).
  gaussian_s2     gaussian blur, sigma 2, truncate 4 (17 taps), reflect border, of a float32
                  4096x4096 plane: scipy.ndimage.gaussian_filter and cv2.GaussianBlur
                  (2 threads), allocating its result and into a reused dst= ("opencv_out").
                                                                            -> seconds, Mpix/s
  scheduler_100k  dask's per-task overhead: a dict graph of 100,000 trivial tasks
                  (operator.add, 1, 1) plus one final task that sums them, run with the local
                  threaded scheduler (dask.threaded.get) and the synchronous one (dask.get).
                                                                   -> microseconds per task

Every measurement is taken --repeats times (default 5, 3 with --quick) with time.perf_counter and the MEDIAN
is reported. A first, untimed warm-up run precedes the timed ones when it is cheap (< 1 s);
a measurement whose single run takes over 60 s is timed once only (numpy.nanmedian can be
that slow); each entry records the number of timed runs as "repeats".

Threads: cv2.setNumThreads(2) and numexpr.set_num_threads(2); numpy, scipy and bottleneck
run single-threaded as they are; dask's threaded scheduler uses its default pool (one thread
per CPU).

The numexpr entry evaluates "(a-b)/(a+b)*c+h" with h = np.float32(0.5): with the literal 0.5
numexpr promotes the whole expression to float64 (8-byte output, slower), so the literal form
is also reported, for information, as "numexpr_f64_literal". The float32 form is bitwise equal
to numpy's result.

Data are deterministic integer formulas (strata's Rust benchmark generates the same values),
computed in int64, then divided in float64 and rounded once to float32:
  cube(T,H,W):  v = ((t*7919 + y*104729 + x*1299709) % 1000) / 10.0,
                NaN where (t*31 + y*17 + x*13) % 10 == 0
  plane(k,H,W): v = ((k*7 + y*131 + x*197) % 1009) / 1009.0 + 0.01        (k = 0, 1, 2)

Run:  scripts/bench_baselines.sh [--quick] [--repeats N] [--skip-numpy-median] [--only a,b]
      (makes its own venv under scripts/.venv; or run this file with any python that has
       numpy, scipy, bottleneck, numexpr, opencv-python-headless and dask[array] -- but NOT
       numbagg, which makes dask route nanmedian away from bottleneck.)
Prints one JSON object to stdout and a readable table to stderr.

Ratios against strata only mean something when this runs on the same machine, in the same
session (same load, same CPU frequency state), as the Rust benchmark.
"""
import argparse
import json
import operator
import os
import platform
import statistics
import sys
import time
import warnings

os.environ.setdefault("NUMEXPR_MAX_THREADS", "2")  # silences numexpr's start-up notice

import bottleneck
import cv2
import dask
import dask.threaded
import numexpr
import numpy as np
import scipy
from scipy import ndimage

WARMUP_BELOW_S = 1.0  # runs cheaper than this get an untimed warm-up first
SLOW_S = 60.0  # runs dearer than this are timed once only


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data


def cube(T, H, W):
    """float32 (T, H, W) cube with NaN holes, generated one t slice at a time."""
    y = np.arange(H, dtype=np.int64)[:, None]
    x = np.arange(W, dtype=np.int64)[None, :]
    base_v = y * 104729 + x * 1299709  # (H, W) int64
    base_m = y * 17 + x * 13
    out = np.empty((T, H, W), dtype=np.float32)
    for t in range(T):
        out[t] = ((base_v + t * 7919) % 1000) / 10.0
        out[t][(base_m + t * 31) % 10 == 0] = np.nan
    return out


def plane(k, H, W):
    """float32 (H, W) band image k, no NaN."""
    y = np.arange(H, dtype=np.int64)[:, None]
    x = np.arange(W, dtype=np.int64)[None, :]
    return (((k * 7 + y * 131 + x * 197) % 1009) / 1009.0 + 0.01).astype(np.float32)


# ---------------------------------------------------------------- timing


def measure(fn, repeats):
    """Median seconds of fn() over `repeats` timed runs (see module doc for warm-up and the
    slow-run rule). Results are dropped at once so no copies pile up."""
    t0 = time.perf_counter()
    r = fn()
    first = time.perf_counter() - t0
    del r
    if first > SLOW_S:
        return first, 1
    times = [] if first < WARMUP_BELOW_S else [first]
    while len(times) < repeats:
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
        del r
    return statistics.median(times), len(times)


def time_peers(what, peers, n, res, repeats):
    """Times each (name, fn) of `peers` into res[name] as Melem/s over `n` elements."""
    for name, fn in peers:
        log(f"{what}: timing {name} ...")
        s, k = measure(fn, repeats)
        res[name] = entry(s, n, "melem_per_s", k)


def entry(seconds, n, unit, repeats, gb_bytes=None):
    e = {"median_s": seconds, unit: n / 1e6 / seconds, "repeats": repeats}
    if gb_bytes is not None:
        e["gb_per_s"] = gb_bytes / 1e9 / seconds
    return e


# ---------------------------------------------------------------- workloads


def bench_nanmedian(T, H, W, repeats, with_numpy=True):
    log(f"nanmedian: generating cube({T}, {H}, {W}) ...")
    c = cube(T, H, W)
    n = c.size
    res = {"shape": [T, H, W]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        peers = [("bottleneck", lambda: bottleneck.nanmedian(c, axis=0))]
        if with_numpy:
            peers.append(("numpy", lambda: np.nanmedian(c, axis=0)))
        for name, fn in peers:
            log(f"nanmedian: timing {name} ...")
            s, k = measure(fn, repeats)
            res[name] = entry(s, n, "melem_per_s", k)
        if with_numpy:
            d = np.nanmax(np.abs(bottleneck.nanmedian(c, axis=0) - np.nanmedian(c, axis=0)))
            log(f"nanmedian: max |bottleneck - numpy| = {d:.3g}")
    del c
    return res


def bench_nanargmax(T, H, W, repeats):
    log(f"nanargmax: generating cube({T}, {H}, {W}) ...")
    c = cube(T, H, W)  # no pixel is NaN at every step, so neither peer raises
    res = {"shape": [T, H, W]}
    for name, fn in [("bottleneck", lambda: bottleneck.nanargmax(c, axis=0)),
                     ("numpy", lambda: np.nanargmax(c, axis=0))]:
        log(f"nanargmax: timing {name} ...")
        s, k = measure(fn, repeats)
        res[name] = entry(s, c.size, "melem_per_s", k)
    del c
    return res


def bench_ffill(T, H, W, repeats):
    log(f"ffill: generating cube({T}, {H}, {W}) ...")
    c = cube(T, H, W)
    res = {"shape": [T, H, W]}
    log("ffill: timing bottleneck.push ...")
    s, k = measure(lambda: bottleneck.push(c, axis=0), repeats)
    res["bottleneck"] = entry(s, c.size, "melem_per_s", k)
    del c
    return res


def bench_cumsum(T, H, W, repeats):
    import xarray as xr

    log(f"cumsum: generating cube({T}, {H}, {W}) ...")
    c = cube(T, H, W)
    res = {"shape": [T, H, W]}
    da = xr.DataArray(c, dims=["time", "y", "x"])

    def by_hand():
        # the fastest numpy: NaN as 0 in one copy, then each step added onto the last in place
        # (f32 totals); numpy's own nancumsum, which xarray calls, walks axis 0 far slower
        out = np.where(np.isnan(c), np.float32(0), c)
        for t in range(1, T):
            np.add(out[t - 1], out[t], out=out[t])
        return out

    peers = [("numpy", by_hand), ("xarray", lambda: da.cumsum("time").values)]
    time_peers("cumsum", peers, c.size, res, repeats)
    del c
    return res


def bench_corr(T, H, W, repeats):
    import xarray as xr

    log(f"corr: generating cube({T}, {H}, {W}) and its reverse in time ...")
    a = cube(T, H, W)
    b = a[::-1].copy()
    res = {"shape": [T, H, W]}
    da, db = xr.DataArray(a, dims=["time", "y", "x"]), xr.DataArray(b, dims=["time", "y", "x"])

    def by_hand():
        # xarray's algorithm with bottleneck's NaN-skipping means and deviations
        valid = ~(np.isnan(a) | np.isnan(b))
        am, bm = np.where(valid, a, np.nan), np.where(valid, b, np.nan)
        cov = bottleneck.nanmean((am - bottleneck.nanmean(am, axis=0)) * (bm - bottleneck.nanmean(bm, axis=0)), axis=0)
        return cov / (bottleneck.nanstd(am, axis=0) * bottleneck.nanstd(bm, axis=0))

    # xarray (its own bottleneck/numbagg paths) beats the version by hand here: it is the peer
    peers = [("numpy", by_hand), ("xarray", lambda: xr.corr(da, db, "time").values)]
    time_peers("corr", peers, 2 * a.size, res, repeats)
    del a, b
    return res


def bench_rolling(T, H, W, repeats, op):
    import xarray as xr

    log(f"rolling {op}: generating cube({T}, {H}, {W}) ...")
    c = cube(T, H, W)
    res = {"shape": [T, H, W]}
    move = {"mean": bottleneck.move_mean, "median": bottleneck.move_median}[op]
    peers = [("bottleneck", lambda: move(c, 5, min_count=1, axis=0))]
    if op == "mean":
        # xarray's rolling mean runs bottleneck too, behind its labels; its median (no
        # bottleneck with min_periods) takes minutes at this size
        da = xr.DataArray(c, dims=["time", "y", "x"])
        peers.append(("xarray", lambda: da.rolling(time=5, min_periods=1).mean().values))
    time_peers(f"rolling {op}", peers, c.size, res, repeats)
    del c
    return res


def bench_focal(T, H, W, k, repeats):
    import xarray as xr
    from scipy.ndimage import uniform_filter

    log(f"focal mean {k}: generating cube({T}, {H}, {W}) ...")
    c = cube(T, H, W)
    res = {"shape": [T, H, W], "window": k}
    size = (1, k, k)

    def by_hand():
        valid = ~np.isnan(c)
        total = uniform_filter(np.where(valid, c, 0), size, mode="constant", cval=0)
        count = uniform_filter(valid.astype(np.float32), size, mode="constant", cval=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)

    da = xr.DataArray(c, dims=["time", "y", "x"])
    peers = [("scipy", by_hand),
             ("xarray", lambda: da.rolling(y=k, x=k, center=True, min_periods=1).mean().values)]
    time_peers(f"focal mean {k}", peers, c.size, res, repeats)
    del c
    return res


def bench_coarsen(T, H, W, k, op, repeats):
    import xarray as xr

    log(f"coarsen {op} {k}: generating cube({T}, {H}, {W}) ...")
    c = cube(T, H, W)
    res = {"shape": [T, H, W], "window": k}
    move = {"mean": bottleneck.nanmean, "median": bottleneck.nanmedian}[op]

    def by_hand():
        windows = c.reshape(T, H // k, k, W // k, k).transpose(0, 1, 3, 2, 4).reshape(T, H // k, W // k, k * k)
        return move(windows, axis=-1)

    da = xr.DataArray(c, dims=["time", "y", "x"])
    peers = [("bottleneck", by_hand), ("xarray", lambda: getattr(da.coarsen(y=k, x=k), op)().values)]
    time_peers(f"coarsen {op} {k}", peers, c.size, res, repeats)
    del c
    return res


def bench_interpolate_na(T, H, W, repeats):
    import pandas as pd
    import xarray as xr

    c = cube(T, H, W)
    days = np.array([t * 16 + (t * 7) % 5 for t in range(T)])
    times = pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D")
    da = xr.DataArray(c, dims=["time", "y", "x"], coords={"time": times})
    res = {"shape": [T, H, W]}
    log("interpolate_na: timing xarray ...")
    s, k = measure(lambda: da.interpolate_na("time").values, repeats)
    res["xarray"] = entry(s, c.size, "melem_per_s", k)
    return res


def bench_bandmath(H, W, copy_bytes, repeats):
    log(f"bandmath: generating 3 planes of {H}x{W} ...")
    a, b, c = (plane(k, H, W) for k in range(3))
    n = H * W
    half = np.float32(0.5)
    f32 = {"a": a, "b": b, "c": c, "h": half}
    lit = {"a": a, "b": b, "c": c}
    res = {"shape": [H, W]}
    out = np.zeros_like(a)  # touched once: "numexpr_out" times the kernel without page faults
    for name, fn in [
        ("numexpr", lambda: numexpr.evaluate("(a-b)/(a+b)*c+h", local_dict=f32)),
        ("numexpr_out", lambda: numexpr.evaluate("(a-b)/(a+b)*c+h", local_dict=f32, out=out)),
        ("numpy", lambda: (a - b) / (a + b) * c + 0.5),
        ("numexpr_f64_literal", lambda: numexpr.evaluate("(a-b)/(a+b)*c+0.5", local_dict=lit)),
    ]:
        log(f"bandmath: timing {name} ...")
        s, k = measure(fn, repeats)
        res[name] = entry(s, n, "mpix_per_s", k, gb_bytes=16 * n)
    same = np.array_equal(numexpr.evaluate("(a-b)/(a+b)*c+h", local_dict=f32),
                          (a - b) / (a + b) * c + 0.5)
    log(f"bandmath: numexpr(float32) == numpy bitwise: {same}")
    del a, b, c, f32, lit

    src = np.ones(copy_bytes // 4, dtype=np.float32)
    dst = np.zeros_like(src)  # touched, so the copy does not time page faults
    log(f"bandmath: timing np.copyto of {copy_bytes >> 20} MiB ...")
    s, k = measure(lambda: np.copyto(dst, src), repeats)
    res["copy_gb_per_s"] = 2 * src.nbytes / 1e9 / s
    res["copy_bytes"] = src.nbytes
    del src, dst
    return res


def bench_gaussian(H, W, repeats):
    log(f"gaussian: generating plane of {H}x{W} ...")
    a = plane(0, H, W)
    n = a.size
    res = {"shape": [H, W]}
    sc = lambda: ndimage.gaussian_filter(a, sigma=2, mode="reflect", truncate=4.0)
    cv = lambda: cv2.GaussianBlur(a, (17, 17), sigmaX=2, sigmaY=2,
                                  borderType=cv2.BORDER_REFLECT)
    out = np.zeros_like(a)  # touched once: "opencv_out" times the filter without page faults
    cv_out = lambda: cv2.GaussianBlur(a, (17, 17), dst=out, sigmaX=2, sigmaY=2,
                                      borderType=cv2.BORDER_REFLECT)
    for name, fn in [("scipy", sc), ("opencv", cv), ("opencv_out", cv_out)]:
        log(f"gaussian: timing {name} ...")
        s, k = measure(fn, repeats)
        res[name] = entry(s, n, "mpix_per_s", k)
    d = float(np.max(np.abs(sc().astype(np.float64) - cv().astype(np.float64))))
    log(f"gaussian: max |scipy - opencv| = {d:.3g}")
    res["max_abs_diff_scipy_opencv"] = d
    del a
    return res


def bench_scheduler(N, repeats):
    graph = {("x", i): (operator.add, 1, 1) for i in range(N)}
    graph[("total",)] = (sum, [("x", i) for i in range(N)])
    keys = [("total",)]
    ntasks = N + 1
    assert dask.threaded.get(graph, keys) == (2 * N,)
    res = {"tasks": ntasks}
    log(f"scheduler: timing dask.threaded.get on {ntasks} tasks ...")
    s, k = measure(lambda: dask.threaded.get(graph, keys), repeats)
    res["dask_threaded_us_per_task"] = s / ntasks * 1e6
    res["dask_threaded_repeats"] = k
    log(f"scheduler: timing dask.get on {ntasks} tasks ...")
    s, k = measure(lambda: dask.get(graph, keys), repeats)
    res["dask_sync_us_per_task"] = s / ntasks * 1e6
    res["dask_sync_repeats"] = k
    return res


# ---------------------------------------------------------------- main


def table(results):
    rows = []
    for wl, r in results.items():
        for name, e in r.items():
            if isinstance(e, dict):
                rate = next((f"{e[u]:10.1f} {u}" for u in ("melem_per_s", "mpix_per_s")
                             if u in e), "")
                gb = f"  {e['gb_per_s']:6.2f} GB/s" if "gb_per_s" in e else ""
                rows.append(f"{wl:15s} {name:20s} {e['median_s']:10.4f} s {rate}{gb}"
                            f"  (n={e['repeats']})")
        if "copy_gb_per_s" in r:
            rows.append(f"{wl:15s} {'np.copyto':20s} {r['copy_gb_per_s']:10.2f} GB/s (r+w)")
        for k in ("dask_threaded", "dask_sync"):
            if f"{k}_us_per_task" in r:
                rows.append(f"{wl:15s} {k:20s} {r[k + '_us_per_task']:10.2f} us/task"
                            f"  (n={r[k + '_repeats']}, {r['tasks']} tasks)")
    return "\n".join(rows)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--skip-numpy-median", action="store_true",
                    help="leave out numpy.nanmedian (minutes; only an 'other' column)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="timed runs per measurement (default 5; 3 with --quick)")
    ap.add_argument("--only", default=None,
                    help="comma-separated workloads to run (default: all)")
    args = ap.parse_args()
    wanted = lambda name: args.only is None or name in args.only.split(",")
    R = max(1, args.repeats or (3 if args.quick else 5))

    cv2.setNumThreads(2)
    numexpr.set_num_threads(2)

    if args.quick:
        cube_shape, band, gauss, copy_bytes, ntasks = (64, 128, 128), 1024, 1024, 16 << 20, 10_000
        interp, rolling, coarse = 64, 128, 256
    else:
        cube_shape, band, gauss, copy_bytes, ntasks = (64, 2048, 2048), 4096, 4096, 256 << 20, 100_000
        interp, rolling, coarse = 256, 1024, 2048

    results = {}
    workloads = {
        "nanmedian_t64": lambda: bench_nanmedian(*cube_shape, R, not args.skip_numpy_median),
        "nanargmax_t64": lambda: bench_nanargmax(*cube_shape, R),
        "ffill_t64": lambda: bench_ffill(*cube_shape, R),
        "cumsum_t64": lambda: bench_cumsum(*cube_shape, R),
        "interpolate_na_t64": lambda: bench_interpolate_na(cube_shape[0], interp, interp, R),
        "rolling_mean_t64": lambda: bench_rolling(cube_shape[0], rolling, rolling, R, "mean"),
        "rolling_median_t64": lambda: bench_rolling(cube_shape[0], rolling, rolling, R, "median"),
        "corr_t64": lambda: bench_corr(cube_shape[0], rolling, rolling, R),
        "focal_mean_15": lambda: bench_focal(4, coarse, coarse, 15, R),
        "coarsen_mean_16": lambda: bench_coarsen(8, coarse, coarse, 16, "mean", R),
        "coarsen_median_16": lambda: bench_coarsen(8, coarse, coarse, 16, "median", R),
        "coarsen_median_4": lambda: bench_coarsen(8, coarse, coarse, 4, "median", R),
        "bandmath": lambda: bench_bandmath(band, band, copy_bytes, R),
        "gaussian_s2": lambda: bench_gaussian(gauss, gauss, R),
        "scheduler_100k": lambda: bench_scheduler(ntasks, R),
    }
    for name, run in workloads.items():
        if wanted(name):
            results[name] = run()

    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "bottleneck": bottleneck.__version__,
            "numexpr": numexpr.__version__,
            "cv2": cv2.__version__,
            "dask": dask.__version__,
            "threads": {"cv2": cv2.getNumThreads(), "numexpr": 2,
                        "dask_threaded": os.cpu_count()},
        },
        "quick": args.quick,
        "repeats": R,
        "results": results,
    }
    log(table(results))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
