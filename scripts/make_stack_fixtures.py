"""Writes tests/data/stack: small Landsat-like COG scenes, their STAC items, and the stack of
them computed two independent ways, as goldens for strata's `stack`.

Run through make_stack_fixtures.sh (it makes the venv). Output:
  scene_<k>_<band>.tif   uint16 COGs (DEFLATE, predictor 2, 64x64 tiles), nodata 0
  items.json             an ItemCollection; hrefs are file names relative to this folder
  exact.npy              (time, band, y, x) float32: nearest neighbour computed here with
                         pyproj (exact transforms) and rasterio reads, scale/offset applied,
                         nodata and uncovered pixels NaN; pixel centres that fall exactly on
                         a source pixel edge go to the pixel east/south (floor)
  stackstac.npy          (float32) the same stack from stackstac.stack(...).compute() (GDAL warps)
  coords.json            x, y (pixel centres), time, band, bounds, shape, epsg

The scenes: several on the Landsat grid (origin 15 m off the 30 m lattice, so output pixel
centres sit exactly on source pixel edges), one on the 30 m lattice, one in the next UTM zone
(EPSG:32611, reprojected), one outside the area (never read), one without its nir08 asset,
clouds as nodata holes, and some pixels 0 (nodata) in every scene.
"""

import datetime as dt
import json
import math
import pathlib
import sys

import numpy as np
import pyproj
import rasterio
from rasterio.transform import from_origin

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "stack"
BANDS = ["red", "green", "nir08"]
SCALE, OFFSET = 2.75e-05, -0.2
# The area: a 3 km square around the tutorial's point, as lon/lat bounds.
AREA_UTM = (544000.0, 4179000.0, 547000.0, 4182000.0)


def to_lonlat(epsg, xs, ys):
    t = pyproj.Transformer.from_crs(epsg, 4326, always_xy=True)
    return t.transform(xs, ys)


def scene_values(k, b, rows, cols, rng):
    """uint16 DN: smooth per-scene/band field + noise; clouds and scattered pixels are 0."""
    yy, xx = np.mgrid[0:rows, 0:cols]
    v = 7000 + 900 * k + 1500 * b + 40 * np.sin(xx / 9.0 + k) * (yy % 17) + rng.integers(0, 50, (rows, cols))
    v = v.astype(np.uint16)
    cy, cx = rng.integers(10, rows - 10), rng.integers(10, cols - 10)
    v[(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 0  # a cloud hole
    v[rng.random((rows, cols)) < 0.01] = 0
    return v


def write_cog(path, data, transform, epsg):
    profile = dict(driver="COG", width=data.shape[1], height=data.shape[0], count=1, dtype="uint16",
                   crs=f"EPSG:{epsg}", transform=transform, nodata=0, compress="DEFLATE",
                   predictor="STANDARD", blocksize=64, OVERVIEWS="NONE")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    rng = np.random.default_rng(42)
    # (epsg, origin x, origin y, rows, cols, day of year, cloud cover, assets)
    scenes = [
        (32610, 543615.0, 4182315.0, 90, 100, 20, 3.5, BANDS),       # Landsat grid (15 m off)
        (32610, 545505.0, 4180815.0, 80, 90, 45, 12.0, BANDS),       # Landsat grid, partly outside
        (32610, 543600.0, 4182600.0, 100, 110, 80, 0.5, BANDS),      # on the 30 m lattice: aligned reads
        (32611, -1, -1, 100, 100, 110, 7.25, BANDS),                 # next UTM zone: reprojected
        (32610, 600015.0, 4100015.0, 40, 40, 140, 1.0, BANDS),       # far outside the area
        (32610, 543015.0, 4183515.0, 130, 140, 170, 18.0, ["red", "green"]),  # no nir08 asset
        (32610, 544515.0, 4181115.0, 70, 80, 200, 9.0, BANDS),
    ]
    items = []
    for k, (epsg, x0, y0, rows, cols, doy, cc, assets) in enumerate(scenes):
        if epsg == 32611:
            # Cover the area's centre: its lon/lat in zone 11, snapped to the Landsat grid.
            lon, lat = to_lonlat(32610, [545500.0], [4180500.0])
            x, y = pyproj.Transformer.from_crs(4326, 32611, always_xy=True).transform(lon[0], lat[0])
            x0 = math.floor((x - 1500) / 30) * 30 + 15.0
            y0 = math.floor((y + 1500) / 30) * 30 + 15.0
        transform = from_origin(x0, y0, 30.0, 30.0)
        item_assets = {}
        for b, band in enumerate(BANDS):
            if band not in assets:
                continue
            name = f"scene_{k}_{band}.tif"
            write_cog(OUT / name, scene_values(k, b, rows, cols, rng), transform, epsg)
            item_assets[band] = {
                "href": name, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "raster:bands": [{"nodata": 0, "data_type": "uint16", "scale": SCALE, "offset": OFFSET}],
                "proj:transform": [30.0, 0.0, x0, 0.0, -30.0, y0], "proj:shape": [rows, cols],
            }
        xs = [x0, x0 + 30 * cols, x0, x0 + 30 * cols]
        ys = [y0, y0, y0 - 30 * rows, y0 - 30 * rows]
        lons, lats = to_lonlat(epsg, xs, ys)
        when = dt.datetime(2020, 1, 1, 18, 51, 55, tzinfo=dt.timezone.utc) + dt.timedelta(days=doy)
        items.append({
            "type": "Feature", "stac_version": "1.0.0",
            "stac_extensions": ["https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                                "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
            "id": f"LC08_SYN_{k:02d}", "collection": "landsat-c2-l2",
            "bbox": [min(lons), min(lats), max(lons), max(lats)],
            "geometry": {"type": "Polygon", "coordinates": [[[min(lons), min(lats)], [max(lons), min(lats)],
                                                             [max(lons), max(lats)], [min(lons), max(lats)],
                                                             [min(lons), min(lats)]]]},
            "properties": {"datetime": when.isoformat().replace("+00:00", "Z"), "eo:cloud_cover": cc,
                           "proj:epsg": epsg, "platform": "landsat-8"},
            "assets": item_assets, "links": [],
        })
    # Catalog order is not time order: the stack must sort.
    items = items[3:] + items[:3]
    collection = {"type": "FeatureCollection", "features": items}
    (OUT / "items.json").write_text(json.dumps(collection, indent=1) + "\n")

    lon, lat = to_lonlat(32610, [AREA_UTM[0], AREA_UTM[2]], [AREA_UTM[1], AREA_UTM[3]])
    bounds_latlon = (lon[0], lat[0], lon[1], lat[1])

    # --- stackstac, with absolute hrefs ---
    import pystac
    import stackstac
    abs_items = json.loads(json.dumps(collection))
    for it in abs_items["features"]:
        for a in it["assets"].values():
            a["href"] = str(OUT / a["href"])
    ic = pystac.ItemCollection.from_dict(abs_items)
    st = stackstac.stack(ic, assets=BANDS, epsg=32610, bounds_latlon=bounds_latlon, resolution=30,
                         xy_coords="center", rescale=True, fill_value=np.nan, dtype="float64")
    ref = st.compute()
    np.save(OUT / "stackstac.npy", ref.values.astype(np.float32))

    # --- exact nearest neighbour, independent of GDAL's warper ---
    xs_c = ref.x.values
    ys_c = ref.y.values
    gx, gy = np.meshgrid(xs_c, ys_c)
    # stackstac drops items that miss the bounds; so does strata.
    kept = set(str(v) for v in ref.id.values)
    order = sorted((i for i in range(len(items)) if items[i]["id"] in kept),
                   key=lambda i: items[i]["properties"]["datetime"])
    exact = np.full((len(order), len(BANDS), len(ys_c), len(xs_c)), np.nan)
    for t, i in enumerate(order):
        it = items[i]
        epsg = it["properties"]["proj:epsg"]
        if epsg == 32610:
            sx, sy = gx, gy
        else:
            sx, sy = pyproj.Transformer.from_crs(32610, epsg, always_xy=True).transform(gx, gy)
        for b, band in enumerate(BANDS):
            a = it["assets"].get(band)
            if a is None:
                continue
            with rasterio.open(OUT / a["href"]) as src:
                data = src.read(1).astype(np.float64)
                inv = ~src.transform
                col, row = inv * (sx, sy)
            col = np.floor(col + 1e-6).astype(np.int64)
            row = np.floor(row + 1e-6).astype(np.int64)
            inside = (row >= 0) & (row < data.shape[0]) & (col >= 0) & (col < data.shape[1])
            v = np.full(gx.shape, np.nan)
            v[inside] = data[row[inside], col[inside]]
            v[v == 0] = np.nan
            exact[t, b] = v * SCALE + OFFSET
    np.save(OUT / "exact.npy", exact.astype(np.float32))

    diff = ~((exact == ref.values) | (np.isnan(exact) & np.isnan(ref.values)))
    per_time = diff.reshape(diff.shape[0], -1).mean(axis=1)
    coords = {
        "x": xs_c.tolist(), "y": ys_c.tolist(), "band": BANDS,
        "time": [str(np.datetime_as_string(t, unit="ms")) + "Z" for t in ref.time.values],
        "id": [str(v) for v in ref.id.values],
        "bounds": list(ref.attrs["spec"].bounds), "shape": list(ref.shape), "epsg": 32610,
        "bounds_latlon": list(bounds_latlon), "xy_coords": "center",
        "stackstac_vs_exact_mismatch_per_time": per_time.tolist(),
    }
    (OUT / "coords.json").write_text(json.dumps(coords, indent=1) + "\n")
    size = sum(p.stat().st_size for p in OUT.glob("*"))
    print(f"stack {ref.shape}, mismatch stackstac vs exact per time: {np.round(per_time, 4)}; "
          f"{size / 1e6:.2f} MB in {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
