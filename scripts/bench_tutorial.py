"""The whole tutorial, strata against stackstac + dask, on one catalog (32 scenes of
2048 x 2048 pixels x 5 bands of uint16 COGs, written by `examples/tutorial.rs --write-catalog`)
served by the same loopback server (`examples/serve.rs`), with 0 and 40 ms of latency per
request. Each run is its own process; its wall time and peak resident memory (wait4's
ru_maxrss) are recorded.

Peers:
- strata: `examples/tutorial.rs --items URL/items.json --backend cpu` (search skipped on both
  sides: every item is stacked), end to end including its PNG/GeoTIFF/npy outputs, in the
  notebook's order (`--order notebook`: resample the stack, then cut the area; the default)
  and cut first (`--order cut-first`), alternating.
- dask-seed: the seed notebook's calls on stackstac (float32, threaded scheduler; the raster
  scale/offset applied in xarray, since stackstac will not rescale into float32), one
  `compute` per result as the notebook does: the monthly RGB median + dropna, the NDVI mean,
  the luminance median + scipy gaussian + threshold.
- dask-aoi-first: dask at its best: the area cut before the resample (as strata's example
  writes it; the values are the same) and all three results in one `dask.compute`, so the
  reads are shared.

Writes target/bench-tutorial/summary.{md,json}. Environment: REPEAT (strata runs per order,
default 3), DASK_REPEAT (default 1), SCENES (32), SIZE (2048), BUFFER (15360 m: a 1024² area
at 30 m, issue 17's scale).
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

from bench_summary import write_summary

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "target" / "bench-tutorial"
CATALOG = DATA / "catalog"
BIN = ROOT / "target" / "release" / "examples"
SCENES = int(os.environ.get("SCENES", "32"))
SIZE = int(os.environ.get("SIZE", "2048"))
REPEAT = int(os.environ.get("REPEAT", "3"))
DASK_REPEAT = int(os.environ.get("DASK_REPEAT", "1"))
BBOX = [-124.031297, 36.473972, -120.831297, 39.073972]
BUFFER = float(os.environ.get("BUFFER", "15360"))
LON, LAT, SIGMA, THRESHOLD = -122.4312, 37.7739, (0, 0.1), 0.175


def make_catalog():
    marker = CATALOG / "items.json"
    if marker.exists() and json.loads((DATA / "shape.json").read_text()) == [SCENES, SIZE]:
        return
    subprocess.run([BIN / "tutorial", "--write-catalog", CATALOG, "--scenes", str(SCENES), "--size", str(SIZE)],
                   check=True)
    (DATA / "shape.json").write_text(json.dumps([SCENES, SIZE]))


class Serve:
    """The loopback server in a child process, until the block ends."""

    def __init__(self, latency_ms):
        self.p = subprocess.Popen([BIN / "serve", "--root", CATALOG, "--latency-ms", str(latency_ms)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = self.p.stdout.readline().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.p.communicate()


def measured(cmd):
    """Runs cmd; returns (wall seconds, peak RSS bytes, stdout)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"{cmd} failed with status {status}")
    return wall, usage.ru_maxrss * 1024, out


def peer_dask(url, mode):
    """The seed's steps on stackstac + dask; prints one JSON line of step times."""
    import dask
    import numpy as np
    import pyproj
    import pystac
    import scipy.ndimage
    import stackstac

    raw = json.loads((CATALOG / "items.json").read_text())
    for f in raw["features"]:
        for a in f["assets"].values():
            a["href"] = f"{url}/{a['href']}"
    items = pystac.ItemCollection.from_dict(raw)
    steps = {}
    t0 = time.perf_counter()
    stack = stackstac.stack(items, epsg=32610, assets=["red", "green", "blue", "nir08", "swir16"],
                            bounds_latlon=BBOX, resolution=30, dtype="float32", fill_value=np.float32(np.nan),
                            xy_coords="center", rescale=False)
    # stackstac refuses to rescale into float32 (2.75e-05 does not cast safely), so the
    # scale and offset are applied here, in float32; nodata is already NaN.
    stack = stack * np.float32(2.75e-05) + np.float32(-0.2)
    x, y = pyproj.Proj("EPSG:32610")(LON, LAT)
    b = BUFFER
    aoi = stack.loc[..., y + b:y - b, x - b:x + b]
    if mode == "seed":  # the notebook: resample the whole stack, then cut the area
        monthly = stack.sel(band=["red", "green", "blue"]).resample(time="MS").median("time", keep_attrs=True)
        aoi_monthly = monthly.loc[..., y + b:y - b, x - b:x + b]
    else:  # cut first, as strata's example does
        aoi_monthly = aoi.sel(band=["red", "green", "blue"]).resample(time="MS").median("time", keep_attrs=True)
    ndvi = ((aoi.sel(band="swir16") - aoi.sel(band="nir08")) / (aoi.sel(band="swir16") + aoi.sel(band="nir08")))
    lum = aoi.sel(band="red") * 0.2125 + aoi.sel(band="green") * 0.7154 + aoi.sel(band="blue") * 0.0721
    av_lum = lum.median(dim="time")
    if mode == "seed":
        t = time.perf_counter()
        data = aoi_monthly.compute().dropna(dim="time", how="all")
        steps["monthly_rgb"] = time.perf_counter() - t
        t = time.perf_counter()
        av_ndvi = ndvi.mean(dim="time").persist()
        steps["ndvi_mean"] = time.perf_counter() - t
        t = time.perf_counter()
        lum_v = av_lum.compute()
        steps["lum_median"] = time.perf_counter() - t
    else:
        data, av_ndvi, lum_v = dask.compute(aoi_monthly, ndvi.mean(dim="time"), av_lum)
        data = data.dropna(dim="time", how="all")
    t = time.perf_counter()
    smoothed = scipy.ndimage.gaussian_filter(lum_v.values, sigma=SIGMA, mode="reflect")
    mask = smoothed > THRESHOLD
    steps["gaussian_mask"] = time.perf_counter() - t
    steps["total"] = time.perf_counter() - t0
    steps["shapes"] = [list(data.shape), list(av_ndvi.shape), int(mask.sum())]
    print(json.dumps(steps))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--dask":
        return peer_dask(sys.argv[2], sys.argv[3])
    make_catalog()
    rows = []
    for latency in (0, 40):
        with Serve(latency) as s:
            runs = {"notebook": [], "cut-first": []}
            for _ in range(REPEAT):
                for order in runs:
                    out = DATA / "strata-out"
                    wall, rss, text = measured([BIN / "tutorial", "--items", f"{s.url}/items.json", "--backend", "cpu",
                                                "--quiet", "--buffer", str(BUFFER), "--order", order, "--out", out])
                    runs[order].append((wall, rss))
            print(text, file=sys.stderr)
            for order, mine in runs.items():
                peer = "strata" if order == "notebook" else "strata-cut-first"
                rows.append({"peer": peer, "latency_ms": latency, "walls_s": [r[0] for r in mine],
                             "median_s": statistics.median(r[0] for r in mine),
                             "peak_rss_mb": max(r[1] for r in mine) / 1e6})
            for mode in ("seed", "aoi-first"):
                runs = []
                for _ in range(DASK_REPEAT):
                    wall, rss, text = measured([sys.executable, __file__, "--dask", s.url, mode])
                    runs.append((wall, rss, json.loads(text.strip().splitlines()[-1])))
                rows.append({"peer": f"dask-{mode}", "latency_ms": latency, "walls_s": [r[0] for r in runs],
                             "median_s": statistics.median(r[0] for r in runs),
                             "peak_rss_mb": max(r[1] for r in runs) / 1e6, "steps_s": runs[-1][2]})
        for r in rows[-4:]:
            print(f"{r['peer']:18s} {latency:3d} ms  median {r['median_s']:7.2f} s  peak RSS {r['peak_rss_mb']:7.0f} MB"
                  f"  {r.get('steps_s', '')}", file=sys.stderr, flush=True)
    by = {(r["peer"], r["latency_ms"]): r for r in rows}
    ratios = {}
    for latency in (0, 40):
        s = by[("strata", latency)]
        ratios[f"notebook_over_cut_first_time_{latency}ms"] = s["median_s"] / by[("strata-cut-first", latency)]["median_s"]
        for mode in ("seed", "aoi-first"):
            d = by[(f"dask-{mode}", latency)]
            ratios[f"speed_vs_dask_{mode}_{latency}ms"] = d["median_s"] / s["median_s"]
            ratios[f"rss_fraction_of_dask_{mode}_{latency}ms"] = s["peak_rss_mb"] / d["peak_rss_mb"]
    summary = {"scenes": SCENES, "size": SIZE, "buffer_m": BUFFER, "bands": 5, "repeat": REPEAT,
               "dask_repeat": DASK_REPEAT,
               "rows": rows, "ratios": ratios}
    write_summary(DATA, summary, ["peer", "latency ms", "median wall s", "peak RSS MB"],
                  lambda r: [r["peer"], str(r["latency_ms"]), f"{r['median_s']:.2f}", f"{r['peak_rss_mb']:.0f}"],
                  lambda v: f"{v:.3f}")

if __name__ == "__main__":
    main()
