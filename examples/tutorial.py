"""The seed notebook's cells with strata in place of dask + stackstac (the Python twin of
examples/tutorial.rs, writing the same .npy files).

Run: python examples/tutorial.py [--out DIR] [--backend auto|cpu|gpu] [--stac-api URL]
Without --stac-api it serves strata's embedded synthetic Landsat catalog on loopback.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

import strata
import strata.testing

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--out", default="tutorial-py-out")
p.add_argument("--backend", default="auto")
p.add_argument("--stac-api", default=None)
p.add_argument("--scenes", type=int, default=16)
p.add_argument("--size", type=int, default=512)
p.add_argument("--buffer", type=float, default=6000.0, help="half the area's side, metres")
p.add_argument("--no-plots", action="store_true", help="skip the matplotlib figures")
args = p.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# catalog = pystac_client.Client.open(URL); items = catalog.search(...).item_collection()
served = None
url = args.stac_api
if url is None:
    served = strata.testing.EmbeddedCatalog(scenes=args.scenes, size=args.size)
    url = served.url
bbox = [-124.031297, 36.473972, -120.831297, 39.073972]
items = strata.search(
    url,
    collections=["landsat-c2-l2"],
    bbox=bbox,
    datetime="2020-01-31/2021-01-31",
    query={"eo:cloud_cover": {"lt": 20}},
)
print(f"There are {len(items['features'])} images that fit your search criteria")

# stack = stackstac.stack(items, epsg=epsg, assets=[...], bounds_latlon=bbox, resolution=30)
stack = strata.stack(items, assets=["red", "green", "blue", "nir08", "swir16"], bounds_latlon=bbox, resolution=30)
print(stack)
print(f"projected dataset size (GB): {stack.nbytes / 1e9:.3f}")

# x_utm, y_utm = pyproj.Proj(stack.crs)(lon, lat)
x_utm, y_utm = strata.project_lonlat(stack.epsg, -122.4312, 37.7739)
buffer = args.buffer
area_of_interest = stack.loc[..., y_utm + buffer : y_utm - buffer, x_utm - buffer : x_utm + buffer]

# rgb = stack.sel(band=['red', 'green', 'blue']); monthly = rgb.resample(time="MS").median("time")
rgb = stack.sel(band=["red", "green", "blue"])
monthly = rgb.resample(time="MS").median("time")
monthly_aoi = monthly.loc[..., y_utm + buffer : y_utm - buffer, x_utm - buffer : x_utm + buffer]

# NDVI = (swir16 - nir08) / (swir16 + nir08); av_NDVI = NDVI.mean(dim='time')
swir, nir = area_of_interest.sel(band="swir16"), area_of_interest.sel(band="nir08")
av_ndvi = ((swir - nir) / (swir + nir)).mean(dim="time")

# lum = 0.2125 red + 0.7154 green + 0.0721 blue; av_lum = lum.median(dim='time')
aoi = area_of_interest
lum = aoi.sel(band="red") * 0.2125 + aoi.sel(band="green") * 0.7154 + aoi.sel(band="blue") * 0.0721
av_lum = lum.median(dim="time")

# smoothed = skimage.filters.gaussian(av_lum, sigma=(0, 0.1), mode='reflect'); mask = smoothed > 0.175
smoothed = av_lum.gaussian((0, 0.1), mode="reflect")
mask = smoothed > 0.175

# dask.compute(...): one run, the stack's tiles read once for all five results
began = time.perf_counter()
monthly_rgb, ndvi, lum_median, smooth, mask_v = strata.compute(
    monthly_aoi, av_ndvi, av_lum, smoothed, mask, backend=args.backend
)
print(f"computed in {time.perf_counter() - began:.3f} s")

# data = data.dropna(dim='time', how='all')
monthly_rgb = monthly_rgb.dropna(dim="time", how="all")
for name, a in [("monthly_rgb", monthly_rgb), ("ndvi_mean", ndvi), ("lum_median", lum_median), ("smoothed", smooth)]:
    v = a.values
    print(f"{name}: dims {list(a.dims)} shape {list(v.shape)}, mean {np.nanmean(v):.6f}, {int(np.isnan(v).sum())} NaN")
    np.save(out / f"{name}.npy", v)
np.save(out / "mask.npy", mask_v.values.astype(np.uint8))
print(f"mask: {int(mask_v.sum())} of {mask_v.size} pixels above 0.175")
(out / "coords.json").write_text(
    json.dumps(
        {
            "x": smooth.x.values.tolist(),
            "y": smooth.y.values.tolist(),
            "time": [str(t) for t in monthly_rgb.time.values.astype("datetime64[s]")],
            "epsg": stack.epsg,
        }
    )
)

if not args.no_plots:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # data.plot.imshow(row='time', rgb='band', robust=True); av_NDVI.plot.imshow(cmap='RdBu_r'); ...
    monthly_rgb.plot.imshow(col="time", col_wrap=4, rgb="band", robust=True)
    plt.savefig(out / "monthly_rgb.png", dpi=60)
    plt.close("all")
    for name, a, kw in [
        ("ndvi_mean", ndvi, {"cmap": "RdBu_r", "vmin": -0.3, "vmax": 0.3}),
        ("lum_median", lum_median, {"cmap": "Greys_r"}),
        ("mask", mask_v, {}),
    ]:
        a.plot.imshow(**kw)
        plt.savefig(out / f"{name}.png", dpi=60)
        plt.close("all")
print(f"wrote results to {out}")
if served is not None:
    served.close()
