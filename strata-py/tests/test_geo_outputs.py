"""Results carry their georeferencing into xarray (rioxarray reads the CRS and transform),
and the writers' files read back with xarray/zarr-python and rioxarray/GDAL."""

import numpy as np
import pytest
import xarray as xr

import strata

POINT = (-122.4312, 37.7739)  # as conftest.py's


def test_compute_carries_the_crs_where_rioxarray_reads_it(items, aoi):
    import rioxarray  # noqa: F401 (registers the .rio accessor)
    red = aoi.sel(band="red").median("time").compute(progress=False)
    assert red.rio.crs.to_epsg() == aoi.epsg == 32610
    assert red.attrs["crs"] == "epsg:32610"
    # x/y name the pixels' centres (strata's default): rioxarray's transform is exact
    a, b, c, d, e, f = aoi.attrs["transform"]
    t = red.rio.transform()
    assert (t.a, t.b, t.c, t.d, t.e, t.f) == pytest.approx((a, b, c, d, e, f))
    assert red.x.values[0] == pytest.approx(c + a / 2) and red.y.values[0] == pytest.approx(f + e / 2)
    # stackstac's xy_coords="topleft": the corners, and attrs["transform"] still exact
    bbox = (-122.45, 37.76, -122.41, 37.79)
    corners = strata.stack(items, assets=["red"], bounds_latlon=bbox, resolution=30, xy_coords="topleft")
    got = corners.isel(time=0, band=0).compute(progress=False)
    a, b, c, d, e, f = corners.attrs["transform"]
    assert got.x.values[0] == pytest.approx(c) and got.y.values[0] == pytest.approx(f)
    assert got.attrs["transform"] == pytest.approx((a, b, c, d, e, f))


def test_to_zarr_and_to_geotiff_read_back(aoi, tmp_path):
    import rioxarray  # noqa: F401 (registers the .rio accessor)
    ndvi = ((aoi.sel(band="nir08") - aoi.sel(band="red")) / (aoi.sel(band="nir08") + aoi.sel(band="red"))).mean("time")
    ndvi = ndvi.rename("ndvi")
    want = ndvi.compute(progress=False)
    import zarr  # noqa: F401 (xr.open_zarr needs it)
    shards = ndvi.to_zarr(tmp_path / "out.zarr")
    assert shards >= 1
    ds = xr.open_zarr(tmp_path / "out.zarr")
    np.testing.assert_allclose(ds["ndvi"].values, want.values, equal_nan=True)
    ndvi.to_geotiff(tmp_path / "ndvi.tif")
    tif = rioxarray.open_rasterio(tmp_path / "ndvi.tif").squeeze("band", drop=True)
    assert tif.rio.crs.to_epsg() == 32610
    np.testing.assert_allclose(tif.values, want.values, equal_nan=True)
    ndvi.to_npy(tmp_path / "ndvi.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "ndvi.npy"), want.values)


def test_visualize_draws_the_task_graph(aoi, tmp_path):
    lum = aoi.sel(band="red") * 0.2125 + aoi.sel(band="green") * 0.7154 + aoi.sel(band="blue") * 0.0721
    drawn = lum.median("time").visualize(tmp_path / "graph")
    # Graphviz renders the DOT to SVG (`.ci/run` installs it)
    assert str(drawn).endswith(".svg"), drawn
    text = open(drawn).read()
    assert text.lstrip().startswith("<?xml") or "<svg" in text
    assert (tmp_path / "graph.dot").exists()


def test_explain_shows_the_cut_moved_below_the_resample(stack, tmp_path):
    # the notebook's order: resample the stack, then cut the area
    x, y = strata.project_lonlat(stack.epsg, *POINT)
    b = 1500
    monthly = stack.sel(band=["red", "green", "blue"]).resample(time="MS").median()
    cut = monthly.loc[..., y + b : y - b, x - b : x + b]
    text = cut.explain(backend="cpu")
    assert "through group reduction x1" in text, text
    assert "placed for cpu" in text and "device: -" in text, text
    as_written = cut.explain(backend="cpu", optimize=False)
    assert "(no rule fired)" in as_written, as_written
    # as written, every source block the area touches is read whole (37.7 MB decoded here);
    # optimized, only the area's pixels (0.7 MB)
    def decoded_mb(t):
        line = next(l for l in t.splitlines() if "source reads:" in l)
        return float(line.split("blocks,")[1].split()[0])
    assert decoded_mb(text) * 10 < decoded_mb(as_written), (text, as_written)
    drawn = cut.visualize(tmp_path / "plan", backend="cpu", optimize=False)
    assert "[host]" in open(tmp_path / "plan.dot").read(), drawn
