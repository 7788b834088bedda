"""Reads one stack window (12 scenes x 5 bands of Landsat-like COGs) from the same loopback
HTTP server (strata's, `examples/serve.rs`) with strata, stackstac (GDAL) and async-tiff
(obstore), with 40 ms of latency per request and with none; and with strata from local files
(page cache, no network) as the decode ceiling. Prints medians and ratios; writes
target/bench-stack/summary.{md,json}.

Run through bench_stack.sh (venv, cargo build). Environment: REPEAT (default 3).
"""

import asyncio
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

from bench_summary import write_summary

import numpy as np
import rasterio
from rasterio.transform import from_origin

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "target" / "bench-stack"
BIN = ROOT / "target" / "release" / "examples"
BANDS = ["red", "green", "blue", "nir08", "swir16"]
SCENES, SIZE, TILE = 12, 1536, 512
X0, Y0 = 540015.0, 4200015.0  # Landsat grid: 15 m off the 30 m lattice
# A 1024 x 1024 window at 30 m, on the lattice, 256 pixels into the scenes.
MINX = X0 - 15 + 256 * 30
MAXY = Y0 - 15 - 256 * 30
WINDOW = (MINX, MAXY - 1024 * 30, MINX + 1024 * 30, MAXY)
REPEAT = int(os.environ.get("REPEAT", "3"))


def make_data():
    if (DATA / "items.json").exists():
        return
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    items = []
    for k in range(SCENES):
        assets = {}
        for b, band in enumerate(BANDS):
            v = 8000 + 700 * b + 600 * np.sin(xx / 37.0 + k) * np.cos(yy / 53.0 - b) + rng.integers(0, 400, (SIZE, SIZE))
            v = v.astype(np.uint16)
            v[rng.random((SIZE, SIZE)) < 0.02] = 0
            name = f"s{k:02d}_{band}.tif"
            with rasterio.open(DATA / name, "w", driver="COG", width=SIZE, height=SIZE, count=1, dtype="uint16",
                               crs="EPSG:32610", transform=from_origin(X0, Y0, 30, 30), nodata=0,
                               compress="DEFLATE", predictor="STANDARD", blocksize=TILE) as dst:
                dst.write(v, 1)
            assets[band] = {"href": name, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                            "raster:bands": [{"nodata": 0, "scale": 2.75e-05, "offset": -0.2, "data_type": "uint16"}],
                            "proj:transform": [30, 0, X0, 0, -30, Y0], "proj:shape": [SIZE, SIZE]}
        items.append({"type": "Feature", "stac_version": "1.0.0", "id": f"SYN_{k:02d}", "collection": "bench",
                      "bbox": [-122.6, 37.3, -122.0, 37.9], "geometry": None,
                      "properties": {"datetime": f"2020-{1 + k:02d}-15T18:50:00Z", "proj:epsg": 32610,
                                     "eo:cloud_cover": 5.0},
                      "assets": assets, "links": []})
    (DATA / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": items}))


class Serve:
    """strata's loopback server in a child process; stops (and reports its request count) on exit."""

    def __init__(self, latency_ms):
        self.p = subprocess.Popen([BIN / "serve", "--root", DATA, "--latency-ms", str(latency_ms)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = self.p.stdout.readline().strip()
        self.requests = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _, err = self.p.communicate()
        for line in err.splitlines():
            if line.startswith("served "):
                self.requests = int(line.split()[1])


def timed(fn):
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def run_stackstac(url):
    import pystac
    import stackstac

    items = json.loads((DATA / "items.json").read_text())
    for it in items["features"]:
        for a in it["assets"].values():
            a["href"] = f"{url}/{a['href']}"
    ic = pystac.ItemCollection.from_dict(items)

    def once():
        st = stackstac.stack(ic, assets=BANDS, epsg=32610, bounds=WINDOW, resolution=30,
                             fill_value=np.nan, rescale=True, chunksize=1024)  # float64, as in the tutorial
        out = st.compute()
        assert out.shape == (SCENES, len(BANDS), 1024, 1024), out.shape
    return timed(once)


def run_async_tiff(url):
    from async_tiff import TIFF, ThreadPool
    from obstore.store import HTTPStore

    names = [f"s{k:02d}_{b}.tif" for k in range(SCENES) for b in BANDS]
    # The tiles the window touches: rows/cols 256..1280 of 1536 in 512-pixel tiles.
    xy = [(x, y) for y in range(256 // TILE, (1280 - 1) // TILE + 1) for x in range(256 // TILE, (1280 - 1) // TILE + 1)]
    pool = ThreadPool(os.cpu_count() or 2)

    async def read_all():
        store = HTTPStore.from_url(url, client_options={"allow_http": True})

        async def one(name):
            tiff = await TIFF.open(name, store=store)
            tiles = await tiff.fetch_tiles(xy, 0)
            arrays = await asyncio.gather(*(t.decode(pool=pool) for t in tiles))
            assert len(arrays) == len(xy)

        await asyncio.gather(*(one(n) for n in names))

    return timed(lambda: asyncio.run(read_all()))


def run_strata(bases):
    cmd = [BIN / "stack_bench", "--items", DATA / "items.json", "--window", ",".join(str(v) for v in WINDOW),
           "--repeat", str(REPEAT)]
    for b in bases:
        cmd += ["--base", b]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    make_data()
    pixels = SCENES * len(BANDS) * 1024 * 1024
    rows = []

    def record(peer, latency, times, requests):
        med = statistics.median(times)
        rows.append({"peer": peer, "latency_ms": latency, "median_s": med, "times_s": times,
                     "mpix_per_s": pixels / med / 1e6, "requests_per_run": requests})
        print(f"{peer:12s} {latency!s:>6} ms  median {med:7.3f} s  {pixels / med / 1e6:8.1f} Mpix/s  "
              f"requests/run {requests}", file=sys.stderr, flush=True)

    for latency in (0, 40):
        with Serve(latency) as s:
            r = run_strata([s.url])[0]
        record("strata", latency, r["times_s"], s.requests / REPEAT if s.requests else None)
        with Serve(latency) as s:
            t = run_async_tiff(s.url)
        record("async-tiff", latency, t, s.requests / REPEAT if s.requests else None)
        with Serve(latency) as s:
            t = run_stackstac(s.url)
        record("stackstac", latency, t, s.requests / REPEAT if s.requests else None)
    local = run_strata([str(DATA)])[0]
    record("strata-local", "local", local["times_s"], None)

    by = {(r["peer"], r["latency_ms"]): r["median_s"] for r in rows}
    ratios = {
        "strata_vs_stackstac_40ms": by[("stackstac", 40)] / by[("strata", 40)],
        "strata_vs_stackstac_0ms": by[("stackstac", 0)] / by[("strata", 0)],
        "strata_vs_async_tiff_40ms": by[("async-tiff", 40)] / by[("strata", 40)],
        "strata_vs_async_tiff_0ms": by[("async-tiff", 0)] / by[("strata", 0)],
        "strata_http_0ms_vs_local_decode": by[("strata-local", "local")] / by[("strata", 0)],
    }
    summary = {"window": WINDOW, "scenes": SCENES, "bands": BANDS, "pixels": pixels, "repeat": REPEAT,
               "rows": rows, "ratios": ratios}
    write_summary(DATA, summary, ["peer", "latency", "median s", "Mpix/s", "requests/run"],
                  lambda r: [r["peer"], str(r["latency_ms"]), f"{r['median_s']:.3f}", f"{r['mpix_per_s']:.1f}",
                             "" if r["requests_per_run"] is None else f"{r['requests_per_run']:.0f}"],
                  lambda v: f"{v:.2f}x")

if __name__ == "__main__":
    main()
