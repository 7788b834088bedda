"""Reads a Zarr group written by `examples/tutorial.rs --zarr DIR` with zarr-python, xarray and
rioxarray, and checks it against the `.npy` files and `coords.json` of a run without `--zarr`:
every variable bitwise (the monthly cube after `dropna("time", how="all")`, which needs the
values and so is the reader's), dims, x/y/time/band coordinates, the CRS and the transform.

  python check_zarr.py ZARR_DIR NPY_DIR
"""
import json
import sys
import warnings

import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
import zarr

zarr_dir, npy_dir = sys.argv[1], sys.argv[2]
coords = json.load(open(f"{npy_dir}/coords.json"))
warnings.filterwarnings("error", message=".*not recognized as a component")  # stray objects fail
group = zarr.open_group(zarr_dir, mode="r")
assert group.metadata.zarr_format == 3, group.metadata
ds = xr.open_zarr(zarr_dir, consolidated=False)
failures = []


def check(what, ok):
    if not ok:
        failures.append(what)


for name, meta in coords["outputs"].items():
    var = ds[name]
    check(f"{name} dims {var.dims} != {meta['dims']}", list(var.dims) == meta["dims"])
    got = var.load()
    if name == "monthly_rgb":
        got = got.dropna("time", how="all")
        times = [np.datetime64(t.rstrip("Z"), "ns") for t in meta["time"]]
        check(f"{name} times {got.time.values} != {times}", list(got.time.values) == times)
        check(f"{name} bands", list(got.band.values) == meta["band"])
    want = np.load(f"{npy_dir}/{name}.npy")
    check(f"{name} dtype {got.dtype} != {want.dtype}", got.dtype == want.dtype)
    same = np.array_equal(got.values.view(np.uint8) if want.dtype == np.uint8 else got.values, want, equal_nan=want.dtype.kind == "f")
    if want.dtype.kind == "f":
        same = same and np.array_equal(got.values.view(np.uint32)[~np.isnan(want)], want.view(np.uint32)[~np.isnan(want)])
    check(f"{name} values differ", same)
    check(f"{name} crs {var.rio.crs}", var.rio.crs is not None and var.rio.crs.to_epsg() == coords["epsg"])
    t = var.rio.transform()
    check(f"{name} transform {t}", np.allclose(list(t)[:6], coords["transform"]))
check("x", np.array_equal(ds.x.values, np.array(coords["x"])))
check("y", np.array_equal(ds.y.values, np.array(coords["y"])))
if failures:
    print("FAIL:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"ok: {len(coords['outputs'])} variables of {zarr_dir} equal {npy_dir} (values bitwise, dims, coords, CRS)")
