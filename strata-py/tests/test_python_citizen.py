"""strata behaves as a Python library should: the GIL is released while computing, Ctrl-C
interrupts a run promptly and leaves no half-written file, progress is reported, errors are
typed exceptions that name their cause, and pystac objects are accepted."""

import _thread
import threading
import time

import numpy as np
import pytest

import strata
import strata.testing
from strata import _strata


def test_the_gil_is_released_while_computing():
    slow = strata.testing.slow_array(40, 20)  # 40 blocks x 20 ms: ~0.4 s on two threads
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    began = time.perf_counter()
    t.start()
    out = slow.sum().compute(progress=False, threads=2)
    ended = time.perf_counter()
    stop.set()
    t.join()
    assert float(out) == 40 * 8
    during = [x for x in ticks if began < x < ended]
    # a thread held off by the GIL would tick a handful of times; this one ticks throughout
    assert len(during) > 50, f"{len(during)} ticks in {ended - began:.2f} s"


def test_ctrl_c_interrupts_a_run_promptly_and_writes_nothing(tmp_path):
    slow = strata.testing.slow_array(2000, 20)  # 20 s of work on two threads
    timer = threading.Timer(0.5, _thread.interrupt_main)
    path = tmp_path / "never.tif"
    began = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        slow.to_geotiff(path, threads=2)
    took = time.perf_counter() - began
    assert took < 0.5 + 1.0, f"stopped {took - 0.5:.2f} s after Ctrl-C"
    assert not path.exists() and list(tmp_path.iterdir()) == []
    # the library is usable afterwards
    assert float(strata.testing.slow_array(4, 1).sum().compute(progress=False)) == 32


def test_progress_reports_tasks_done_up_to_the_total():
    seen = []
    _strata._compute([strata.testing.slow_array(30, 10).sum()], progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1] and seen[-1][1] >= 30
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    # the tqdm bar draws without error in a terminal-less run
    strata.testing.slow_array(5, 1).sum().compute(progress=True)


def test_errors_arrive_as_typed_exceptions_naming_the_cause(items, stack):
    with pytest.raises(strata.StackError, match="nir09"):
        strata.stack(items, assets=["red", "nir09"], resolution=30)
    with pytest.raises(strata.StackError, match="swapped"):
        strata.stack(items, assets=["red"], bounds_latlon=(37.7, -122.5, 37.8, -122.4), resolution=30)
    with pytest.raises(strata.LabelError, match="band"):
        stack.sel(band="nir99")
    # a missing label is also a KeyError, as xarray raises, so `except KeyError` code works
    with pytest.raises(KeyError, match="nir99"):
        stack.sel(band="nir99")
    assert issubclass(strata.LabelNotFoundError, strata.LabelError)
    with pytest.raises(strata.LabelError):
        # x labels that share nothing: the inner join leaves no x
        stack.sel(band="red").isel(x=slice(0, 3)) - stack.sel(band="red").isel(x=slice(3, 6))
    with pytest.raises(strata.StrataError):
        strata.search("http://127.0.0.1:9/nowhere")
    with pytest.raises(TypeError, match="unknown option"):
        stack.sum().compute(colour="red")
    with pytest.raises(ValueError, match="backend"):
        stack.isel(time=0, band=0).sum().compute(backend="tpu")
    assert issubclass(strata.StackError, strata.StrataError)


def test_pystac_items_and_item_collections_stack_as_dicts_do(items, stack):
    import pystac
    collection = pystac.ItemCollection.from_dict(items)
    bbox = (-122.45, 37.76, -122.41, 37.79)
    want = strata.stack(items, assets=["red"], bounds_latlon=bbox, resolution=30).compute(progress=False)
    for form in [collection, list(collection), [i.to_dict() for i in collection]]:
        got = strata.stack(form, assets=["red"], bounds_latlon=bbox, resolution=30).compute(progress=False)
        np.testing.assert_array_equal(got.values, want.values)
        np.testing.assert_array_equal(got.time.values, want.time.values)


def test_config_sets_defaults_for_a_block():
    a = strata.testing.slow_array(4, 1).sum()
    with strata.config(backend="cpu", threads=1, progress=False):
        assert float(a.compute()) == 32
    with pytest.raises(TypeError):
        with strata.config(speed="max"):
            pass


def test_writers_take_config_defaults(tmp_path):
    a = strata.from_xarray(np.ones((256, 256), np.float32), dims=["y", "x"]) + 1.0  # one 256 KiB block
    with strata.config(memory_budget="1KiB"):
        # the configured budget is too small for one task: a typed error, and no file
        with pytest.raises(strata.ComputeError, match="budget"):
            a.to_npy(tmp_path / "a.npy")
    assert not (tmp_path / "a.npy").exists()
    a.to_npy(tmp_path / "a.npy")
    assert (np.load(tmp_path / "a.npy") == 2.0).all()


def test_the_type_stubs_name_every_method_the_classes_have():
    import ast
    import pathlib

    stub = ast.parse((pathlib.Path(_strata.__file__).parent / "_strata.pyi").read_text())
    declared = {
        c.name: {f.name for f in c.body if isinstance(f, ast.FunctionDef)}
        for c in stub.body
        if isinstance(c, ast.ClassDef)
    }
    for name in ["DataArray", "Resample", "GroupBy", "Rolling", "Coarsen"]:
        runtime = {m for m in vars(getattr(_strata, name)) if not m.startswith("_")}
        missing = runtime - declared[name]
        assert not missing, f"{name}: {sorted(missing)} not in _strata.pyi"


def test_a_missing_asset_fails_by_default_and_reads_as_nodata_when_asked(items):
    import copy
    import warnings

    broken = copy.deepcopy(items)
    first = broken["features"][0]
    href = first["assets"]["red"]["href"]
    first["assets"]["red"]["href"] = href.rsplit("/", 1)[0] + "/no-such-scene.tif"
    bbox = (-122.45, 37.76, -122.41, 37.79)
    want = strata.stack(items, assets=["red", "green"], bounds_latlon=bbox, resolution=30).compute(progress=False)
    with pytest.raises(strata.StrataError, match="no-such-scene"):
        strata.stack(broken, assets=["red", "green"], bounds_latlon=bbox, resolution=30).compute(progress=False)
    lenient = strata.stack(broken, assets=["red", "green"], bounds_latlon=bbox, resolution=30, missing_as_nodata=True)
    with pytest.warns(UserWarning, match="missing assets"):
        got = lenient.compute(progress=False)
    t = list(got.id.values).index(first["id"])
    assert np.isnan(got.values[t, 0]).all()
    expected = want.values.copy()
    expected[t, 0] = np.nan
    np.testing.assert_array_equal(got.values, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a run that met none says nothing
        strata.stack(items, assets=["red"], bounds_latlon=bbox, resolution=30, missing_as_nodata=True).compute(progress=False)
