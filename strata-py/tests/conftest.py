"""Shared fixtures: the embedded synthetic Landsat catalog served on loopback, searched as
the tutorial searches it."""

import pytest

import strata
import strata.testing

BBOX = [-124.031297, 36.473972, -120.831297, 39.073972]
POINT = (-122.4312, 37.7739)


@pytest.fixture(scope="session")
def catalog():
    with strata.testing.EmbeddedCatalog(scenes=8, size=256) as cat:
        yield cat


@pytest.fixture(scope="session")
def items(catalog):
    return strata.search(
        catalog.url,
        collections=["landsat-c2-l2"],
        bbox=BBOX,
        datetime="2020-01-31/2021-01-31",
    )


@pytest.fixture(scope="session")
def stack(items):
    return strata.stack(items, assets=["red", "green", "blue", "nir08"], bounds_latlon=BBOX, resolution=30)


@pytest.fixture(scope="session")
def aoi(stack):
    x, y = strata.project_lonlat(stack.epsg, *POINT)
    b = 1500
    return stack.loc[..., y + b : y - b, x - b : x + b]
