"""Between strata's labels and xarray: ``to_xarray`` builds an ``xarray.DataArray`` around a
computed buffer (no copy), with the CRS where rioxarray looks for it; ``from_xarray`` brings an
xarray array (or numpy values with dims) into strata."""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import numpy as np
import xarray as xr

from . import _strata


def _coord_values(kind: str, values: Any) -> Any:
    if kind == "time":
        return np.asarray(values, dtype=np.int64).astype("datetime64[ns]")
    if kind == "str":
        return np.asarray(values, dtype=object).astype(str)
    return np.asarray(values)


@functools.lru_cache(maxsize=64)
def _crs_text(epsg: int) -> str:
    """WKT of ``epsg`` from pyproj when it is installed, else ``"EPSG:N"`` (which rioxarray and
    pyproj both read); computed once per code."""
    try:
        import pyproj

        return pyproj.CRS.from_epsg(epsg).to_wkt()
    except Exception:  # pyproj missing, or an EPSG code it does not know
        return f"EPSG:{epsg}"


def _spatial_ref(epsg: int, transform: Optional[tuple]) -> xr.Variable:
    """rioxarray's grid-mapping variable: ``spatial_ref`` and ``crs_wkt`` (WKT from pyproj
    when it is installed, else the EPSG code, which rioxarray and pyproj both read), and the
    GDAL GeoTransform."""
    text = _crs_text(epsg)
    attrs = {"spatial_ref": text, "crs_wkt": text}
    if transform is not None:
        a, b, c, d, e, f = transform
        attrs["GeoTransform"] = " ".join(repr(float(v)) for v in (c, a, b, f, d, e))
    return xr.Variable((), np.int64(0), attrs=attrs)


def to_xarray(values: np.ndarray, labels: dict) -> xr.DataArray:
    """The computed ``values`` with ``labels`` (what ``DataArray._labels`` gives) as an
    ``xarray.DataArray``: dims, index and non-index coordinates, attrs ``crs``
    (``"epsg:N"``, as stackstac), ``transform`` (affine order a..f), ``resolution``, and the
    rioxarray grid mapping so ``.rio.crs`` and ``.rio.transform()`` work. Masks become bool."""
    if labels.get("is_mask"):
        values = values != 0
    coords = {}
    for name, dim, kind, vals in labels["coords"]:
        v = _coord_values(kind, vals)
        if dim is None:
            coords[name] = ((), v[0] if len(v) else v)
        else:
            coords[name] = (dim, v)
    attrs = {}
    epsg = labels.get("epsg")
    if epsg is not None:
        attrs["crs"] = f"epsg:{epsg}"
        coords["spatial_ref"] = _spatial_ref(epsg, labels.get("transform"))
    if labels.get("transform") is not None:
        attrs["transform"] = tuple(labels["transform"])
    if labels.get("resolution") is not None:
        attrs["resolution"] = labels["resolution"][0]
    attrs["xy_coords"] = labels.get("xy_coords", "center")
    da = xr.DataArray(values, dims=labels["dims"], coords=coords, attrs=attrs, name=labels.get("name"))
    if epsg is not None:
        da.encoding["grid_mapping"] = "spatial_ref"
    return da


def labels_at(index: xr.DataArray, labels: dict, dim: str) -> xr.DataArray:
    """``index`` (float positions along ``dim``, NaN for none, as strata's ``argmax`` gives) as
    the labels of ``dim`` from ``labels`` (what ``DataArray._labels`` gives), named ``dim``:
    xarray's ``idxmax``/``idxmin``, NaN (NaT for times) where the position is NaN."""
    kind, vals = next((k, v) for name, d, k, v in labels["coords"] if name == dim and d == dim)
    values = _coord_values(kind, vals)
    pos = np.asarray(index.values)
    valid = ~np.isnan(pos)
    taken = values[np.where(valid, pos, 0).astype(np.int64)]
    if not valid.all():
        if kind == "time":
            fill: Any = np.datetime64("NaT", "ns")
        else:
            taken = taken.astype(object if kind == "str" else np.float64)
            fill = np.nan
        taken = np.where(valid, taken, fill)
    return index.copy(data=taken).rename(dim)


def from_xarray(da: Any, chunks: Optional[Sequence[int]] = None, dims: Optional[Sequence[str]] = None):
    """An ``xarray.DataArray`` (or numpy values with ``dims``) as a lazy strata array over a
    float32 copy of its values (a boolean array stays a mask), cut into ``chunks`` (default:
    one block). Index coordinates (numbers, datetimes, strings) come along; an ``epsg`` from
    ``attrs["crs"]``."""
    if not isinstance(da, xr.DataArray):
        if dims is None:
            raise TypeError("numpy values need dims=")
        da = xr.DataArray(np.asarray(da), dims=list(dims))
    values = np.ascontiguousarray(da.values, dtype=np.float32)
    coords = []
    for name, c in da.coords.items():
        if c.ndim > 1 or name == "spatial_ref":
            continue
        vals = np.atleast_1d(c.values)
        if np.issubdtype(vals.dtype, np.datetime64):
            kind, out = "time", vals.astype("datetime64[ns]").astype(np.int64).tolist()
        elif np.issubdtype(vals.dtype, np.number):
            kind, out = "f64", vals.astype(np.float64).tolist()
        else:
            kind, out = "str", [str(v) for v in vals]
        dim = c.dims[0] if c.ndim == 1 else None
        coords.append((name, dim, kind, out))
    epsg = None
    crs = da.attrs.get("crs")
    if isinstance(crs, str) and crs.lower().startswith("epsg:"):
        epsg = int(crs.split(":")[1])
    res = da.attrs.get("resolution")
    resolution = None if res is None else (float(res), float(res))
    return _strata._from_numpy(
        values,
        list(chunks) if chunks is not None else list(values.shape),
        [str(d) for d in da.dims],
        coords,
        epsg=epsg,
        resolution=resolution,
        name=None if da.name is None else str(da.name),
        mask=da.dtype == np.bool_,
    )
