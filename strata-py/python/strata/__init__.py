"""strata: lazy, chunked raster arrays for STAC imagery, computed on the GPU or the CPU.

The notebook's calls, with strata in place of dask + stackstac::

    import strata
    stack = strata.stack(items, assets=["red", "nir08"], bounds_latlon=bbox, resolution=30)
    ndvi = (stack.sel(band="nir08") - stack.sel(band="red")) / (
        stack.sel(band="nir08") + stack.sel(band="red"))
    monthly = ndvi.resample(time="MS").median()
    result = monthly.compute()          # an xarray.DataArray

Nothing is read until ``compute`` (or ``strata.compute(a, b, ...)`` for several results with
shared reads, or a writer such as ``to_zarr``). Computing releases the GIL; Ctrl-C interrupts
it within a second and leaves no half-written output. Errors are ``StrataError`` subclasses
whose messages name the URL, byte range, item, asset, dim or shape at fault.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Tuple, Union

from . import _strata
from ._strata import (
    ComputeError,
    DataArray,
    GeoError,
    GpuError,
    LabelError,
    LabelNotFoundError,
    OutputError,
    PlanError,
    ReadError,
    StacError,
    StackError,
    StrataError,
    project_lonlat,
)
from ._xr import to_xarray, from_xarray

__all__ = [
    "stack",
    "mosaic",
    "where",
    "cov",
    "corr",
    "search",
    "compute",
    "persist",
    "config",
    "from_xarray",
    "project_lonlat",
    "DataArray",
    "StrataError",
    "StacError",
    "StackError",
    "ReadError",
    "LabelError",
    "LabelNotFoundError",
    "PlanError",
    "ComputeError",
    "OutputError",
    "GpuError",
    "GeoError",
]

_OPTIONS: contextvars.ContextVar[dict] = contextvars.ContextVar("strata_options", default={})
_KNOWN = ("backend", "memory_budget", "threads", "dashboard", "progress")


@contextlib.contextmanager
def config(**options: Any) -> Iterator[None]:
    """Default compute options inside a ``with`` block (keyword arguments of a call win).

    ``backend``: ``"auto"`` (a hardware GPU if there is one, else the CPU), ``"gpu"``,
    ``"cpu"``; ``memory_budget``: bytes or text such as ``"2GiB"``; ``threads``: worker
    threads; ``dashboard``: an address such as ``"127.0.0.1:8787"`` to serve the live
    dashboard on; ``progress``: ``True``/``False`` for the progress bar (default: shown).
    """
    unknown = set(options) - set(_KNOWN)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}: expected {list(_KNOWN)}")
    token = _OPTIONS.set({**_OPTIONS.get(), **options})
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def _items_json(items: Any) -> str:
    """STAC items as FeatureCollection JSON: a pystac ItemCollection, a list of pystac Items
    or dicts, a FeatureCollection dict, or JSON text."""
    if isinstance(items, (str, bytes)):
        return items if isinstance(items, str) else items.decode()
    if hasattr(items, "to_dict") and not hasattr(items, "assets"):  # pystac ItemCollection
        return json.dumps(items.to_dict(transform_hrefs=False))
    if isinstance(items, Mapping):
        if items.get("type") == "FeatureCollection":
            return json.dumps(items)
        items = [items]
    features = []
    for item in items:
        if hasattr(item, "to_dict"):
            features.append(item.to_dict(include_self_link=False, transform_hrefs=False))
        elif isinstance(item, Mapping):
            features.append(dict(item))
        else:
            raise TypeError(f"an item is a pystac.Item or a STAC dict, not {type(item).__name__}")
    return json.dumps({"type": "FeatureCollection", "features": features})


def _pair(v: Any) -> Optional[Tuple[float, float]]:
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return (float(v), float(v))
    a, b = v
    return (float(a), float(b))


def stack(
    items: Any,
    assets: Optional[Sequence[str]] = None,
    epsg: Optional[int] = None,
    resolution: Union[None, float, Tuple[float, float]] = None,
    bounds: Optional[Tuple[float, float, float, float]] = None,
    bounds_latlon: Optional[Tuple[float, float, float, float]] = None,
    chunksize: Union[None, int, Tuple[int, int]] = None,
    fill_value: float = float("nan"),
    rescale: bool = True,
    xy_coords: str = "center",
    missing_as_nodata: bool = False,
) -> DataArray:
    """stackstac's ``stack``: STAC items as a lazy ``(time, band, y, x)`` float32 array on one
    grid (``epsg``, ``bounds`` or ``bounds_latlon``, ``resolution``), nodata and uncovered
    pixels ``fill_value`` (NaN), ``raster:bands`` scale/offset applied when ``rescale``.

    ``items``: a pystac ``ItemCollection``, a list of pystac ``Item``s or STAC dicts, a
    FeatureCollection dict or its JSON text. ``assets``: the bands, in order (default: every
    asset of the first item, sorted). ``xy_coords``: what the x/y coordinates name, the
    pixels' ``"center"`` (strata's default, what rioxarray expects) or ``"topleft"``
    (stackstac's default). ``missing_as_nodata``: an asset that does not exist (HTTP 404 or
    410) reads as ``fill_value`` instead of failing, as stackstac's default ``errors_as_nodata``
    treats 404s; a compute that read any so warns how many block reads it answered that way
    (``UserWarning``). Reads one header per
    asset, no pixels.
    """
    text = _items_json(items)
    if assets is None:
        first = json.loads(text)["features"][:1]
        assets = sorted(first[0]["assets"]) if first else []
    cs = _pair(chunksize)
    return _strata._stack(
        text,
        list(assets),
        epsg=epsg,
        bounds=None if bounds is None else tuple(map(float, bounds)),
        bounds_latlon=None if bounds_latlon is None else tuple(map(float, bounds_latlon)),
        resolution=_pair(resolution),
        chunksize=None if cs is None else (int(cs[0]), int(cs[1])),
        fill_value=float(fill_value),
        rescale=rescale,
        xy_coords=xy_coords,
        missing_as_nodata=bool(missing_as_nodata),
    )


def mosaic(arr: DataArray, dim: str = "time", *, reverse: bool = False, nodata: float = float("nan")) -> DataArray:
    """stackstac's ``mosaic``: flattens ``dim`` by taking, per pixel, the first valid value from
    the top (the last step; the first with ``reverse=True``). ``nodata``: the value that is not
    valid (NaN by default; another value is treated as missing, and stays where every step has
    it; NaN is then missing too, where stackstac would let a NaN on top win). Lazy and exact
    (values are chosen, never computed)."""
    if nodata != nodata:
        return arr.mosaic(dim, reverse)
    return arr.where(arr != nodata).mosaic(dim, reverse).fillna(nodata)


def where(cond: DataArray, x: Union[DataArray, float], y: Union[DataArray, float]) -> DataArray:
    """xarray's ``xr.where(cond, x, y)``: ``x`` where the mask ``cond`` holds, else ``y``;
    either may be a number. Lazy and fused, as ``x.where(cond, y)``."""
    if not isinstance(cond, DataArray):
        raise TypeError(f"where: cond is a strata DataArray (a mask), not {type(cond).__name__}")
    if isinstance(x, DataArray):
        return x.where(cond, y)
    if isinstance(y, DataArray):
        return y.where(~cond, x)
    # two numbers: spread x over cond's shape first
    return (cond * 0.0 + float(x)).where(cond, float(y))


def cov(da_a: DataArray, da_b: DataArray, dim: Union[None, str, Sequence[str]] = None, ddof: int = 1) -> DataArray:
    """xarray's ``xr.cov``: the covariance of two arrays over ``dim`` (a name, a list, or
    ``None``: every dim), counting only the positions where both have a value (lined up by
    label, inner join; broadcast by dim name), each demeaned by its own mean there, scaled by
    ``n / (n - ddof)``. Lazy; the means, the count and the mean of the products are its passes
    over the data (f64 sums of f32 products, as xarray's on f32 data)."""
    return da_a._cov(da_b, dim, ddof)


def corr(da_a: DataArray, da_b: DataArray, dim: Union[None, str, Sequence[str]] = None) -> DataArray:
    """xarray's ``xr.corr``: the Pearson correlation of two arrays over ``dim``, on the
    positions where both have a value (as :func:`cov`); NaN where a series is constant there.
    Lazy."""
    return da_a._corr(da_b, dim)


def search(
    url: str,
    collections: Optional[Sequence[str]] = None,
    bbox: Optional[Sequence[float]] = None,
    datetime: Optional[str] = None,
    query: Optional[Mapping[str, Any]] = None,
    limit: Optional[int] = None,
    max_items: Optional[int] = None,
) -> dict:
    """A STAC API search, for those without pystac-client: the items as a FeatureCollection
    dict (``pystac.ItemCollection.from_dict`` reads it; ``stack`` takes it as it is)."""
    text = _strata._search(
        url,
        collections=list(collections or []),
        bbox=None if bbox is None else [float(v) for v in bbox],
        datetime=datetime,
        query_json=None if query is None else json.dumps(query),
        limit=limit,
        max_items=max_items,
    )
    return json.loads(text)


def _merged_options(options: Optional[Mapping[str, Any]]) -> dict:
    """The options a writer runs with: ``strata.config``'s, then the call's (no bar)."""
    merged = {**_OPTIONS.get(), **(options or {})}
    merged.pop("progress", None)
    return merged


def _progress_bar(enabled: bool):
    """A callback drawing a tqdm bar (Jupyter widget or terminal) of tasks done."""
    if not enabled:
        return None, None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None, None
    state: dict = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            if total == 0:
                return
            bar = state["bar"] = tqdm(total=total, unit="task", desc="strata", leave=False)
        if total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    def close() -> None:
        bar = state.get("bar")
        if bar is not None:
            bar.close()

    return update, close


def _run(fn, arrays, options):
    """``fn(arrays, progress=, options=)`` with the merged options and a progress bar."""
    merged = {**_OPTIONS.get(), **options}
    unknown = set(merged) - set(_KNOWN)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}: expected {list(_KNOWN)}")
    show = merged.pop("progress", True)
    update, close = _progress_bar(bool(show))
    try:
        return fn(list(arrays), progress=update, options=merged)
    finally:
        if close is not None:
            close()


def compute(*arrays: DataArray, **options: Any):
    """Computes several arrays in one run, reading what they share once (``dask.compute``);
    returns a tuple of ``xarray.DataArray``.

    Options (also settable with ``strata.config``): ``backend``, ``memory_budget``,
    ``threads``, ``dashboard``, ``progress``. The GIL is released while it runs; Ctrl-C
    raises ``KeyboardInterrupt`` within a second, once the run has stopped.
    """
    out = _run(_strata._compute, arrays, options)
    return tuple(to_xarray(values, labels) for values, labels in out)


def persist(*arrays: DataArray, **options: Any):
    """Computes several arrays in one run, as ``compute``, and returns them as strata arrays
    whose values are held in memory, labels and blocks unchanged (``dask.persist``): what is
    built on them later reads the held values instead of recomputing them. Costs the run and
    the results' ``nbytes``. Options as ``compute``.
    """
    return tuple(_run(_strata._persist, arrays, options))
