"""The seed tutorial in Python (stackstac + xarray + numpy + scipy), on the reduced embedded
catalog that `examples/tutorial.rs --write-catalog` writes: the independent reference that
tests/tutorial.rs checks strata against.

It reads the same COGs with stackstac (GDAL), filters the items as the STAC search does
(datetime interval, eo:cloud_cover < cloud_lt), and computes every output of the tutorial in
float64 with the notebook's own calls. It writes tests/data/tutorial/: the five outputs as
.npy (float32, the mask uint8), coords.json (pixel-centre x/y, the kept months) and
params.json (the flags both sides run with).

Run through make_tutorial_goldens.sh (venv, cargo build, catalog).
"""

import json
import pathlib
import sys

import numpy as np
import pyproj
import pystac
import scipy.ndimage
import stackstac

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "tutorial"
CATALOG = pathlib.Path(sys.argv[1])
PARAMS = json.loads(sys.argv[2])

BBOX = [-124.031297, 36.473972, -120.831297, 39.073972]
START, END = "2020-01-31T00:00:00Z", "2021-01-31T23:59:59Z"


def items():
    """The search: items in the interval with eo:cloud_cover below the limit."""
    raw = json.loads((CATALOG / "items.json").read_text())
    keep = []
    for f in raw["features"]:
        p = f["properties"]
        if not (START <= p["datetime"] <= END) or not p["eo:cloud_cover"] < PARAMS["cloud_lt"]:
            continue
        for a in f["assets"].values():
            a["href"] = str(CATALOG / a["href"])
        keep.append(pystac.Item.from_dict(f))
    return pystac.ItemCollection(keep)


def main():
    found = items()
    print(f"{len(found)} items")
    stack = stackstac.stack(found, epsg=32610, assets=["red", "green", "blue", "nir08", "swir16"],
                            bounds_latlon=BBOX, resolution=30, xy_coords="center")
    x, y = pyproj.Proj("EPSG:32610")(PARAMS["lon"], PARAMS["lat"])
    b = PARAMS["buffer"]

    rgb = stack.sel(band=["red", "green", "blue"])
    monthly = rgb.resample(time="MS").median("time", keep_attrs=True)
    aoi_monthly = monthly.loc[..., y + b:y - b, x - b:x + b]
    data = aoi_monthly.compute().dropna(dim="time", how="all")

    aoi = stack.loc[..., y + b:y - b, x - b:x + b]
    ndvi = (aoi.sel(band="swir16") - aoi.sel(band="nir08")) / (aoi.sel(band="swir16") + aoi.sel(band="nir08"))
    av_ndvi = ndvi.mean(dim="time").compute()
    lum = aoi.sel(band="red") * 0.2125 + aoi.sel(band="green") * 0.7154 + aoi.sel(band="blue") * 0.0721
    av_lum = lum.median(dim="time").compute()
    smoothed = scipy.ndimage.gaussian_filter(av_lum.values, sigma=PARAMS["sigma"], mode="reflect")
    mask = smoothed > PARAMS["threshold"]
    # A pixel within f32 rounding of the threshold could flip between float64 and strata's f32.
    close = np.abs(smoothed - PARAMS["threshold"]) < 1e-5
    if close.any():
        sys.exit(f"{close.sum()} pixels within 1e-5 of the threshold: pick another threshold")

    OUT.mkdir(parents=True, exist_ok=True)
    np.save(OUT / "monthly_rgb.npy", data.values.astype(np.float32))
    np.save(OUT / "ndvi_mean.npy", av_ndvi.values.astype(np.float32))
    np.save(OUT / "lum_median.npy", av_lum.values.astype(np.float32))
    np.save(OUT / "smoothed.npy", smoothed.astype(np.float32))
    np.save(OUT / "mask.npy", mask.astype(np.uint8))
    coords = {
        "epsg": 32610,
        "pixel": "centre",
        "x": [float(v) for v in aoi.x.values],
        "y": [float(v) for v in aoi.y.values],
        "time": [str(np.datetime_as_string(t, unit="s")) + "Z" for t in data.time.values],
    }
    (OUT / "coords.json").write_text(json.dumps(coords, indent=1) + "\n")
    (OUT / "params.json").write_text(json.dumps(PARAMS, indent=1) + "\n")
    for name, v in [("monthly_rgb", data.values), ("ndvi_mean", av_ndvi.values), ("lum_median", av_lum.values),
                    ("smoothed", smoothed)]:
        print(f"{name}: shape {v.shape}, mean {np.nanmean(v):.6f}, {np.isnan(v).sum()} NaN")
    print(f"mask: {mask.sum()} of {mask.size} above {PARAMS['threshold']}")


if __name__ == "__main__":
    main()
