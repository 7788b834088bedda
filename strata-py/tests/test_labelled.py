"""Every labelled operation against xarray on the same values (NaN included), at chunkings
that cut the arrays unevenly."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import strata


def cube(seed=0):
    """(time, y, x) with NaN holes, monthly-ish times over two years, descending y."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(14, 9, 7)).astype(np.float32)
    v[rng.random(v.shape) < 0.15] = np.nan
    v[3] = np.nan  # an all-NaN step
    times = pd.to_datetime("2020-01-05") + pd.to_timedelta(np.arange(14) * 45, unit="D")
    return xr.DataArray(
        v,
        dims=["time", "y", "x"],
        coords={"time": times.values, "y": 1000.0 - 30 * np.arange(9), "x": 500.0 + 30 * np.arange(7)},
        name="v",
    )


CHUNKS = [(14, 9, 7), (1, 4, 3), (5, 2, 7)]


def same(got, want, tol=1e-6):
    """Equal dims, coordinates and values (NaN where xarray has NaN)."""
    assert isinstance(got, xr.DataArray)
    want = want.transpose(*got.dims) if set(got.dims) == set(want.dims) else want
    assert got.dims == want.dims, (got.dims, want.dims)
    for d in got.dims:
        if d in want.coords:
            np.testing.assert_array_equal(got[d].values, want[d].values)
    np.testing.assert_allclose(got.values, want.values.astype(got.dtype), rtol=tol, atol=tol, equal_nan=True)


@pytest.mark.parametrize("chunks", CHUNKS)
def test_selections_arithmetic_and_masks_match_xarray(chunks):
    x = cube()
    s = strata.from_xarray(x, chunks=chunks)
    same(s.isel(time=2).compute(progress=False), x.isel(time=2))
    same(s.isel(x=slice(1, None, 2)).compute(progress=False), x.isel(x=slice(1, None, 2)))
    same(s.sel(time="2020-05").compute(progress=False), x.sel(time="2020-05"))
    same(s.sel(y=slice(940.0, 850.0)).compute(progress=False), x.sel(y=slice(940.0, 850.0)))
    same(s.loc[..., 970.0:880.0, 530.0:620.0].compute(progress=False), x.loc[..., 970.0:880.0, 530.0:620.0])
    a, b = s.isel(time=slice(0, 6)), s.isel(time=slice(2, 8))
    xa, xb = x.isel(time=slice(0, 6)), x.isel(time=slice(2, 8))
    same((a - b).compute(progress=False), xa - xb)  # inner join on time, as xarray
    same((1.0 - s / 2 + 3 * s).compute(progress=False), 1.0 - x / 2 + 3 * x)
    same((-s).compute(progress=False), -x)
    m = (s > 0.2) & ~(s > 1.0)
    xm = (x > 0.2) & ~(x > 1.0)
    got = m.compute(progress=False)
    assert got.dtype == bool
    np.testing.assert_array_equal(got.values, xm.values)
    same(s.where(s > 0).compute(progress=False), x.where(x > 0))
    same(s.clip(-0.5, 0.5).compute(progress=False), x.clip(-0.5, 0.5))
    same(s.fillna(7.0).compute(progress=False), x.fillna(7.0))
    same(s.transpose("x", "time", "y").compute(progress=False), x.transpose("x", "time", "y"))


@pytest.mark.parametrize("chunks", CHUNKS)
def test_reductions_and_calendar_groups_match_xarray(chunks):
    x = cube(1)
    s = strata.from_xarray(x, chunks=chunks)
    for name in ["mean", "median", "sum", "min", "max", "count"]:
        same(getattr(s, name)("time").compute(progress=False), getattr(x, name)("time"))
    same(s.mean(["y", "x"]).compute(progress=False), x.mean(["y", "x"]))
    same(s.mean("time", skipna=False).compute(progress=False), x.mean("time", skipna=False))
    q = s.quantile(0.9, "time").compute(progress=False)
    same(q, x.quantile(0.9, "time").drop_vars("quantile"))
    assert float(q["quantile"]) == 0.9
    for freq in ["MS", "QS", "2MS"]:
        same(s.resample(time=freq).median().compute(progress=False), x.resample(time=freq).median())
        same(s.resample(time=freq).mean().compute(progress=False), x.resample(time=freq).mean())
    same(s.groupby("time.month").mean().compute(progress=False), x.groupby("time.month").mean())
    same(s.groupby("time.season").median().compute(progress=False), x.groupby("time.season").median())
    same(s.rolling(time=3).mean().compute(progress=False), x.rolling(time=3).mean())
    for name in ["first", "last"]:
        same(getattr(s.resample(time="QS"), name)().compute(progress=False), getattr(x.resample(time="QS"), name)())
        same(getattr(s.groupby("time.season"), name)().compute(progress=False), getattr(x.groupby("time.season"), name)())
    kept = s.dropna("time", how="all").compute(progress=False)
    same(kept, x.dropna("time", how="all"))


@pytest.mark.parametrize("chunks", CHUNKS)
def test_spreads_and_every_group_reduction_match_xarray(chunks):
    x = cube(4)
    s = strata.from_xarray(x, chunks=chunks)
    for ddof in (0, 1):
        for skipna in (True, False):
            same(s.std("time", ddof=ddof, skipna=skipna).compute(progress=False), x.std("time", ddof=ddof, skipna=skipna), 1e-5)
            same(s.var("time", ddof=ddof, skipna=skipna).compute(progress=False), x.var("time", ddof=ddof, skipna=skipna), 1e-5)
    same(s.std(["y", "x"]).compute(progress=False), x.std(["y", "x"]), 1e-5)
    for name in ["sum", "min", "max", "count", "std", "var", "median"]:
        same(getattr(s.groupby("time.month"), name)().compute(progress=False), getattr(x.groupby("time.month"), name)(), 1e-5)
        same(getattr(s.resample(time="QS"), name)().compute(progress=False), getattr(x.resample(time="QS"), name)(), 1e-5)
    same(s.groupby("time.season").std(ddof=1).compute(progress=False), x.groupby("time.season").std(ddof=1), 1e-5)
    same(s.resample(time="MS").var(dim="time", ddof=1).compute(progress=False), x.resample(time="MS").var(dim="time", ddof=1), 1e-5)
    for name in ["sum", "min", "max"]:
        same(getattr(s.rolling(time=3), name)().compute(progress=False), getattr(x.rolling(time=3), name)())
    with pytest.raises(ValueError, match="grouped along"):
        s.groupby("time.month").max(dim="x")
    # as in xarray, a resample is a group-by whose groups are calendar bins
    assert isinstance(s.resample(time="MS"), type(s.groupby("time.month")))


@pytest.mark.parametrize("chunks", CHUNKS)
def test_rolling_windows_match_xarray(chunks):
    # centred or trailing, with min_periods, along time or over y and x (a focal window)
    x = cube(5)
    s = strata.from_xarray(x, chunks=chunks)
    cases = [
        ({"time": 3}, {}),
        ({"time": 4}, {"center": True}),
        ({"time": 5}, {"min_periods": 1}),
        ({"time": 4}, {"center": True, "min_periods": 2}),
        ({"y": 3, "x": 2}, {"center": True, "min_periods": 1}),
        ({"y": 2, "x": 3}, {"center": {"y": True, "x": False}, "min_periods": 3}),
    ]
    for windows, kw in cases:
        r, want = s.rolling(windows, **kw), x.rolling(windows, **kw)
        for name in ["mean", "sum", "min", "max", "count", "median", "std", "var", "prod"]:
            same(getattr(r, name)().compute(progress=False), getattr(want, name)(), 1e-5)
        same(r.std(ddof=1).compute(progress=False), want.std(ddof=1), 1e-5)
    # keyword windows, as xarray's rolling(time=3)
    same(s.rolling(time=3, min_periods=2).median().compute(progress=False), x.rolling(time=3, min_periods=2).median())
    with pytest.raises(strata.LabelError, match="min_periods 4"):
        s.rolling(time=3, min_periods=4)
    with pytest.raises(strata.LabelError, match="no dim"):
        s.rolling(band=3)
    with pytest.raises(TypeError, match="needs a window"):
        s.rolling()
    with pytest.raises(ValueError, match="positive number of steps"):
        s.rolling(time=-2)
    with pytest.raises(strata.LabelError, match="at least one step"):
        s.rolling(time=0)


def test_chunk_and_persist_as_dask_backed_xarray():
    x = cube(6)
    s = strata.from_xarray(x, chunks=(14, 9, 7))
    assert s.chunks == ((14,), (9,), (7,))
    c = s.chunk({"time": 5}, x=3)
    assert c.chunks == ((5, 5, 4), (9,), (3, 3, 1))
    assert c.chunksizes == {"time": (5, 5, 4), "y": (9,), "x": (3, 3, 1)}
    assert s.chunk(4).chunks == ((4, 4, 4, 2), (4, 4, 1), (4, 3))
    assert c.chunk(time=-1, x=None).chunks == ((14,), (9,), (3, 3, 1))
    assert s.chunk((7, None, -1)).chunks == ((7, 7), (9,), (7,))
    same(c.mean("time").compute(progress=False), x.mean("time"))
    with pytest.raises(ValueError, match="positive number of steps"):
        s.chunk(time="auto")
    with pytest.raises(ValueError, match="2 blocks for the 3 dims"):
        s.chunk((1, 2))
    # persist: a strata array held in memory, blocks and labels kept; what is built on it
    # reads the held values
    monthly = c.resample(time="MS").median()
    held = monthly.persist(progress=False)
    assert isinstance(held, strata.DataArray)
    assert held.dims == monthly.dims and held.chunks == monthly.chunks
    same(held.compute(progress=False), x.resample(time="MS").median())
    same((held * 2).mean("time").compute(progress=False), (x.resample(time="MS").median() * 2).mean("time"), 1e-5)
    a, b = strata.persist(c.max("time"), c.min("time"), progress=False)
    same(a.compute(progress=False), x.max("time"))
    same(b.compute(progress=False), x.min("time"))


@pytest.mark.parametrize("chunks", CHUNKS[:2])
def test_numpy_ufuncs_stay_lazy_and_match_numpy(chunks):
    x = cube(5)
    s = strata.from_xarray(x, chunks=chunks)
    with np.errstate(invalid="ignore", divide="ignore"):
        for fn in (np.sqrt, np.log, np.exp, np.abs, np.negative, np.fabs):
            out = fn(s)
            assert isinstance(out, strata.DataArray), fn
            same(out.compute(progress=False), fn(x))
        same(abs(s).compute(progress=False), abs(x))
        a, b = s.isel(time=slice(0, 5)), s.isel(time=slice(2, 7))
        xa, xb = x.isel(time=slice(0, 5)), x.isel(time=slice(2, 7))
        for fn in (np.maximum, np.minimum, np.add, np.subtract, np.multiply, np.divide, np.power):
            same(fn(a, b).compute(progress=False), fn(xa, xb))
        same((np.float32(2) * s).compute(progress=False), np.float32(2) * x)
        same(np.subtract(np.float64(1.5), s).compute(progress=False), 1.5 - x)
        same(np.power(s, 2).compute(progress=False), x**2)
    for fn, want in ((np.isnan, np.isnan(x)), (np.greater, x > 0.3), (np.less_equal, x <= 0.3)):
        got = (fn(s) if fn is np.isnan else fn(s, 0.3)).compute(progress=False)
        np.testing.assert_array_equal(got.values.astype(bool), want.values)
    np.testing.assert_array_equal(np.logical_not(s > 0).compute(progress=False).values.astype(bool), ~(x.values > 0))
    # == and != are elementwise masks as in xarray (NaN never equal), not Python's identity
    z = s.where(s > 0.5, 0.0)
    xz = x.where(x > 0.5, 0.0)
    for got, want in ((z == 0, xz == 0), (z != 0, xz != 0), (np.equal(z, 0.0), xz == 0), (z == z, xz == xz)):
        np.testing.assert_array_equal(got.compute(progress=False).values.astype(bool), want.values)
    same(s.where(s != 0).compute(progress=False), x.where(x != 0))
    assert (s == None) is False and s in [s]  # noqa: E711 (other operands: identity)
    with pytest.raises(TypeError):
        hash(s)  # unhashable, as xarray's arrays
    with pytest.raises(ValueError, match="ambiguous"):
        bool(s == s)  # `if a == b:` must not pass quietly
    with pytest.raises(TypeError):
        np.invert(s)  # numpy refuses invert on floats
    np.testing.assert_array_equal(np.invert(s > 0).compute(progress=False).values.astype(bool), ~(x.values > 0))
    # what strata cannot keep lazy is refused, never computed behind the user's back
    with pytest.raises(TypeError):
        np.sin(s)
    with pytest.raises(TypeError):
        np.sqrt(s, out=np.empty(x.shape, np.float32))


@pytest.mark.parametrize("chunks", CHUNKS[1:])
def test_nearest_labels_match_xarray(chunks):
    x = cube(6)
    s = strata.from_xarray(x, chunks=chunks)
    # a pixel's time series, on descending y and ascending x; ties (midpoints) and points
    # beyond the ends included
    for xv, yv in [(531.0, 901.0), (515.0, 985.0), (-100.0, 5000.0), (680.0, 745.0)]:
        same(s.sel(x=xv, y=yv, method="nearest").compute(progress=False), x.sel(x=xv, y=yv, method="nearest"))
    same(s.sel(x=[700.0, 500.0, 700.0], method="nearest").compute(progress=False), x.sel(x=[700.0, 500.0, 700.0], method="nearest"))
    when = pd.Timestamp("2020-07-01")
    same(s.sel(time=when, method="nearest").compute(progress=False), x.sel(time=when, method="nearest"))
    same(
        s.sel(time=when, method="nearest", tolerance=pd.Timedelta("30D")).compute(progress=False),
        x.sel(time=when, method="nearest", tolerance=pd.Timedelta("30D")),
    )
    for tol in (pd.Timedelta("1D"), np.timedelta64(24, "h")):
        # a KeyError, as xarray's, and a LabelError, as strata's other label errors
        with pytest.raises(KeyError, match="within 86400"):
            s.sel(time=when, method="nearest", tolerance=tol)
        with pytest.raises(strata.LabelError):
            s.sel(time=when, method="nearest", tolerance=tol)
        with pytest.raises(KeyError):
            x.sel(time=when, method="nearest", tolerance=tol)
    # numpy scalars are one label; a dict of indexers as xarray's first argument; a pandas
    # string tolerance on times, a bare number refused there (pandas would read nanoseconds)
    same(s.sel(x=np.float64(531.0), method="nearest").compute(progress=False), x.sel(x=531.0, method="nearest"))
    same(s.sel({"time": np.datetime64("2020-07-01")}, method="nearest").compute(progress=False), x.sel(time=when, method="nearest"))
    same(s.sel(x=x.x.values[2]).compute(progress=False), x.sel(x=x.x.values[2]))
    same(s.sel(time=when, method="nearest", tolerance="30D").compute(progress=False), x.sel(time=when, method="nearest"))
    with pytest.raises(TypeError, match="timedelta"):
        s.sel(time=when, method="nearest", tolerance=86400)
    with pytest.raises(ValueError, match="nearest"):
        s.sel(x=slice(500.0, 600.0), method="nearest")
    with pytest.raises(ValueError, match="method"):
        s.sel(x=500.0, method="pad")


@pytest.mark.parametrize("chunks", CHUNKS)
def test_coarsen_matches_xarray(chunks):
    x = cube(9)
    s = strata.from_xarray(x, chunks=chunks)
    for windows, boundary in [({"x": 7}, "exact"), ({"y": 3, "x": 7}, "exact"), ({"time": 4, "y": 2}, "trim")]:
        for op in ["mean", "sum", "min", "max", "count", "median", "std", "var"]:
            got = getattr(s.coarsen(boundary=boundary, **windows), op)().compute(progress=False)
            with np.errstate(invalid="ignore"):
                same(got, getattr(x.coarsen(windows, boundary=boundary), op)(), 1e-5)
    with pytest.raises(strata.LabelError, match="multiple"):
        s.coarsen(y=2)
    with pytest.raises(ValueError, match="boundary"):
        s.coarsen(y=2, boundary="pad")


@pytest.mark.parametrize("chunks", CHUNKS)
def test_argmax_and_idxmax_match_xarray(chunks):
    x = cube(12).round(0)  # ties: the first wins
    x[:, 2, 3] = np.nan  # an all-NaN pixel over time (step 3 is all-NaN over x and y)
    s = strata.from_xarray(x, chunks=chunks)
    for f in ["argmax", "argmin"]:
        for dim in ["time", "x"]:
            got = getattr(s, f)(dim).compute(progress=False)
            # xarray raises on an all-NaN pixel; strata gives NaN there, as idxmax does
            allna = x.isnull().all(dim)
            same(got, getattr(x.where(~allna, 0), f)(dim).where(~allna))
            # numpy's NaN-propagating form: the first NaN wins
            same(getattr(s, f)(dim, skipna=False).compute(progress=False), getattr(x, f)(dim, skipna=False))
            idx = "idx" + f[3:]
            got = getattr(s, idx)(dim, progress=False)
            want = getattr(x, idx)(dim)
            assert got.name == want.name == dim
            assert got.dims == want.dims and got.dtype.kind == want.dtype.kind, (got, want)
            np.testing.assert_array_equal(got.values, want.values)
    with pytest.raises(ValueError, match="one dim"):
        s.argmax()
    with pytest.raises(KeyError, match="coordinate"):
        strata.from_xarray(x.drop_vars("x"), chunks=chunks).idxmax("x")


@pytest.mark.parametrize("chunks", CHUNKS)
def test_where_with_an_array_matches_xarray(chunks):
    x = cube(13)
    s = strata.from_xarray(x, chunks=chunks)
    fallback = x.median("time").transpose("x", "y")  # broadcast over time, other axis order
    f = strata.from_xarray(fallback, chunks=(4, 5))
    same(s.where(s > 0, f).compute(progress=False), x.where(x > 0, fallback))
    same(s.where(s > 0, -1.0).compute(progress=False), x.where(x > 0, -1.0))
    # labels on a shared dim must be equal, as xarray's exact join for three operands
    g = strata.from_xarray(fallback.isel(x=slice(1, None)), chunks=(4, 5))
    with pytest.raises(strata.LabelError):
        s.where(s > 0, g)
    with pytest.raises(ValueError):
        x.where(x > 0, fallback.isel(x=slice(1, None)))


@pytest.mark.parametrize("chunks", CHUNKS)
def test_gap_fills_along_time_match_xarray(chunks):
    x = cube(14)  # uneven gaps: 45 days apart, NaN runs of any length, an all-NaN step
    x[:, 1, 2] = np.nan
    x[5, 1, 2] = 1.0  # one valid value: left as it is
    s = strata.from_xarray(x, chunks=chunks)
    for limit in (None, 1, 2):
        same(s.ffill("time", limit=limit).compute(progress=False), x.ffill("time", limit=limit))
        same(s.bfill("time", limit=limit).compute(progress=False), x.bfill("time", limit=limit))
        same(s.interpolate_na("time", limit=limit).compute(progress=False), x.interpolate_na("time", limit=limit))
    same(s.ffill("x").compute(progress=False), x.ffill("x"))
    for gap in ("100D", pd.Timedelta("50D"), np.timedelta64(91, "D")):
        same(s.interpolate_na("time", max_gap=gap).compute(progress=False), x.interpolate_na("time", max_gap=gap))
    same(
        s.interpolate_na("time", use_coordinate=False, max_gap=2).compute(progress=False),
        x.interpolate_na("time", use_coordinate=False, max_gap=2),
    )
    same(s.interpolate_na("x").compute(progress=False), x.interpolate_na("x"))
    with pytest.raises(ValueError, match="linearly"):
        s.interpolate_na("time", method="cubic")
    # y descends: xarray refuses it, as strata does
    with pytest.raises(strata.LabelError, match="increase"):
        s.interpolate_na("y")
    with pytest.raises(ValueError):
        x.interpolate_na("y")
    with pytest.raises(strata.PlanError, match="limit"):
        s.ffill("time", limit=0)


@pytest.mark.parametrize("chunks", CHUNKS)
def test_fillna_from_another_array_lines_it_up_as_xarray_does(chunks):
    x = cube(11)
    s = strata.from_xarray(x, chunks=chunks)
    # a later composite fills this one's gaps; its labels cover part of this one's (left join)
    filler = x.isel(time=slice(2, 9)).mean("time").isel(x=slice(1, None))
    f = strata.from_xarray(filler, chunks=(4, 3))
    same(s.fillna(f).compute(progress=False), x.fillna(filler))
    same(s.isel(time=0).fillna(s.isel(time=1)).compute(progress=False), x.isel(time=0).fillna(x.isel(time=1)))


@pytest.mark.parametrize("chunks", CHUNKS)
def test_diff_and_shift_match_xarray(chunks):
    x = cube(10)
    s = strata.from_xarray(x, chunks=chunks)
    for n in (1, 2):
        same(s.diff("time", n=n).compute(progress=False), x.diff("time", n=n))
    for by in (1, -2, 20):
        same(s.shift(time=by).compute(progress=False), x.shift(time=by))
    same(s.shift(x=2, y=-1).compute(progress=False), x.shift(x=2, y=-1))
    # a mask shifts as 0/1 floats with NaN moved in, as xarray promotes booleans
    same((s > 0).shift(time=1).compute(progress=False), (x > 0).shift(time=1).astype(np.float32))


@pytest.mark.parametrize("chunks", CHUNKS)
def test_running_sums_and_products_match_xarray(chunks):
    x = cube(12)
    s = strata.from_xarray(x, chunks=chunks)
    x64 = x.astype(np.float64)  # strata's totals are f64, each step rounded once
    for skipna in (True, False):
        same(s.cumsum("time", skipna=skipna).compute(progress=False), x64.cumsum("time", skipna=skipna))
        same(s.cumprod("time", skipna=skipna).compute(progress=False), x64.cumprod("time", skipna=skipna))
    same(s.cumsum(["y", "x"]).compute(progress=False), x64.cumsum(["y", "x"]))
    same(s.cumsum().compute(progress=False), x64.cumsum())


@pytest.mark.parametrize("chunks", CHUNKS)
def test_covariance_and_correlation_match_xarray(chunks):
    x = cube(13)
    y = (x * 0.5 + cube(14).fillna(0.0) * 0.25).where(cube(15).notnull())
    y[:, 4, 4] = 2.0  # a constant series: its correlation is 0 / 0
    s, t = strata.from_xarray(x, chunks=chunks), strata.from_xarray(y, chunks=chunks)
    # xarray in f64 is the reference; strata's products are f32, as xarray's on f32 data
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    for ddof in (0, 1):
        same(strata.cov(s, t, "time", ddof=ddof).compute(progress=False), xr.cov(x64, y64, "time", ddof=ddof), tol=1e-5)
    same(strata.cov(s, t, ["y", "x"]).compute(progress=False), xr.cov(x64, y64, ["y", "x"]), tol=1e-5)
    got = strata.corr(s, t, "time").compute(progress=False)
    same(got, xr.corr(x64, y64, "time"), tol=1e-5)
    assert np.isnan(got.values[4, 4])
    # every dim: one number
    whole = strata.corr(s, t).compute(progress=False)
    np.testing.assert_allclose(float(whole.values), float(xr.corr(x64, y64)), rtol=1e-5)
    # lined up by label: the second array shifted along x meets the first on the overlap
    part = t.isel(x=slice(2, None))
    same(strata.cov(s, part, "time").compute(progress=False), xr.cov(x64, y64.isel(x=slice(2, None)), "time"), tol=1e-5)
    # dims in another order line up by name, as xarray's
    turned = t.transpose("y", "x", "time")
    same(strata.cov(turned, s, "time").compute(progress=False), xr.cov(y64.transpose("y", "x", "time"), x64, "time"), tol=1e-5)
    same((s - turned).compute(progress=False), x - y.transpose("y", "x", "time"))
    with pytest.raises(strata.LabelError, match="band"):
        strata.cov(s, t, "band")


@pytest.mark.parametrize("chunks", CHUNKS)
def test_polyfit_draws_xarrays_lines(chunks):
    x = cube(16)
    x[:, 2, 2] = np.nan
    x[4, 2, 2] = 1.5  # one value: xarray's minimum-norm fit, strata's NaN
    s = strata.from_xarray(x, chunks=chunks)
    for deg in (0, 1):
        got = s.polyfit("time", deg).compute(progress=False)
        want = x.astype(np.float64).polyfit("time", deg).polyfit_coefficients
        assert got.dims == want.dims and got.name == "polyfit_coefficients"
        np.testing.assert_array_equal(got.degree.values, want.degree.values)
        if deg == 1:
            assert np.isnan(got.values[:, 2, 2]).all()
            want = want.where(x.count("time") > 1)
        # each coefficient within 1e-5 of the largest of its degree (a slope per ns is ~1e-17)
        scale = np.nanmax(np.abs(want.values), axis=(1, 2), keepdims=True)
        assert (np.isnan(got.values) == np.isnan(want.values)).all()
        assert (np.nan_to_num(np.abs(got.values - want.values)) <= 1e-5 * scale).all()
    whole = s.polyfit("time", 1, skipna=False).compute(progress=False)
    assert np.isnan(whole.values[:, x.isnull().any("time").values]).all()
    with pytest.raises(strata.LabelError, match="over 1"):
        s.polyfit("time", 2)


@pytest.mark.parametrize("chunks", CHUNKS)
def test_interp_onto_new_dates_and_positions_matches_xarray(chunks):
    x = cube(17)
    s = strata.from_xarray(x, chunks=chunks)
    t = x.time.values
    # the 1st of each month inside the span, the first and last dates, one outside
    at = pd.date_range("2020-01-01", "2021-09-01", freq="MS")
    at = at[(at > t[0]) & (at < t[-1])].append(pd.DatetimeIndex([t[0], t[-1], t[-1] + np.timedelta64(1, "D")]))
    x64 = x.astype(np.float64)
    same(s.interp(time=at).compute(progress=False), x64.interp(time=at))
    same(s.interp({"time": at[:3]}).compute(progress=False), x64.interp(time=at[:3]))
    xs = x.x.values
    between = [xs[0], (xs[1] + xs[2]) / 2, xs[-1] + 5.0]
    same(s.interp(x=between).compute(progress=False), x64.interp(x=between))
    with pytest.raises(ValueError, match="linearly"):
        s.interp(time=at, method="cubic")


def top_valid(v, reverse):
    """Per pixel, the first non-NaN value going down from the top step: an oracle by loops."""
    out = np.full(v.shape[1:], np.nan, np.float32)
    for t in range(v.shape[0]) if reverse else reversed(range(v.shape[0])):
        hole = np.isnan(out)
        out[hole] = v[t][hole]
    return out


@pytest.mark.parametrize("chunks", CHUNKS)
def test_mosaic_takes_the_top_valid_value(chunks):
    x = cube(8)
    s = strata.from_xarray(x, chunks=chunks)
    for reverse in (False, True):
        got = strata.mosaic(s, dim="time", reverse=reverse).compute(progress=False)
        assert got.dims == ("y", "x") and "time" not in got.coords
        np.testing.assert_array_equal(got.values, top_valid(x.values, reverse))
    # another nodata: zeros are holes, and stay where every step is zero
    z = x.fillna(0.0)
    got = strata.mosaic(strata.from_xarray(z, chunks=chunks), nodata=0.0).compute(progress=False)
    want = np.nan_to_num(top_valid(np.where(z.values == 0, np.nan, z.values), False), nan=0.0)
    np.testing.assert_array_equal(got.values, want)


def test_bit_flags_of_a_qa_band_match_numpy():
    # Landsat QA_PIXEL codes as stackstac gives them (float, NaN where no scene covers)
    rng = np.random.default_rng(7)
    codes = rng.choice([21824, 21952, 22080, 22280, 23888, 54596, 55052, 1], size=(6, 5, 4)).astype(np.uint16)
    values = codes.astype(np.float32)
    values[0, 0, :] = np.nan
    qa = xr.DataArray(values, dims=["time", "y", "x"])
    s = strata.from_xarray(qa, chunks=(2, 3, 3))
    cloud = ((s & 0b11000) != 0).compute(progress=False)
    want = (codes & 0b11000) != 0
    want[0, 0, :] = True  # NaN != 0, as numpy says of NaN
    np.testing.assert_array_equal(cloud.values.astype(bool), want)
    np.testing.assert_array_equal((0b11000 & s).compute(progress=False).values[1:], (codes & 0b11000)[1:].astype(np.float32))
    got = np.bitwise_or(s, 0x100).compute(progress=False).values
    expected = (codes | 0x100).astype(np.float32)
    expected[0, 0, :] = np.nan
    np.testing.assert_array_equal(got, expected)
    clear = s.where((s & 24) == 0).mean("time").compute(progress=False)
    with np.errstate(invalid="ignore"):
        same(clear, qa.where((codes & 24) == 0).mean("time"))
    # masks stay logical
    m = (s > 30000) & (s < 60000)
    np.testing.assert_array_equal(m.compute(progress=False).values.astype(bool), (values > 30000) & (values < 60000))


def test_gaussian_matches_scipy():
    import scipy.ndimage as scipy_ndimage
    x = cube(2).isel(time=0).fillna(0.0)
    s = strata.from_xarray(x, chunks=(4, 3))
    got = s.gaussian((1.5, 0.8), mode="reflect").compute(progress=False)
    want = scipy_ndimage.gaussian_filter(x.values.astype(np.float64), (1.5, 0.8), mode="reflect", truncate=4.0)
    np.testing.assert_allclose(got.values, want, rtol=1e-5, atol=1e-6)


def test_compute_returns_xarray_without_copying_and_shares_reads():
    x = cube(3)
    s = strata.from_xarray(x, chunks=(2, 9, 7))
    a, b = strata.compute(s.mean("time"), s.max("time"), progress=False)
    same(a, x.mean("time"))
    same(b, x.max("time"))
    # the buffer strata computed into, owned by strata's allocation (no copy into numpy)
    assert not a.values.flags["OWNDATA"] and a.values.base is not None
    assert repr(s).startswith("<strata.DataArray>") and "time" in repr(s)
    assert s.nbytes == x.nbytes and s.shape == x.shape and s.sizes == dict(x.sizes)


def test_where_as_a_function_matches_xarray():
    x = cube(7)
    s = strata.from_xarray(x, chunks=(5, 4, 3))
    cond, xcond = s > 0, x > 0
    same(strata.where(cond, s, -s).compute(progress=False), xr.where(xcond, x, -x))
    same(strata.where(cond, s, 0.5).compute(progress=False), xr.where(xcond, x, 0.5))
    same(strata.where(cond, 2.0, s).compute(progress=False), xr.where(xcond, 2.0, x))
    # NaN compares false: the mask is False there, as xarray's
    same(strata.where(cond, 1.0, 0.0).compute(progress=False), xr.where(xcond, 1.0, 0.0).astype(np.float32))
    with pytest.raises(TypeError, match="cond"):
        strata.where(True, s, s)


def test_numpy_conversion_computes_as_xarray_on_dask_does():
    x = cube(8)
    s = strata.from_xarray(x, chunks=(5, 4, 3))
    assert s.size == x.size
    with strata.config(progress=False):
        np.testing.assert_array_equal(s.values, x.values)
        np.testing.assert_array_equal(s.to_numpy(), x.values)
        np.testing.assert_array_equal(np.asarray(s * 2), x.values * 2)
        as64 = np.asarray(s, dtype=np.float64)
        assert as64.dtype == np.float64
        np.testing.assert_array_equal(as64, x.values.astype(np.float64))
        np.testing.assert_array_equal(s.notnull().values, x.notnull().values)


def test_a_boolean_xarray_arrives_as_a_mask():
    x = cube(9)
    m = strata.from_xarray(x > 0, chunks=(5, 4, 3))
    assert m.dtype == "bool"
    same(m.compute(progress=False), x > 0)
    s = strata.from_xarray(x, chunks=(5, 4, 3))
    # a mask selects as a mask: where, & and ~ take it as xarray's do
    same(s.where(m).compute(progress=False), x.where(x > 0))
    same((m & ~strata.from_xarray(x.isnull(), chunks=(5, 4, 3))).compute(progress=False), (x > 0) & ~x.isnull())
