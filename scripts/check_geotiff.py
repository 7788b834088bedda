"""Reads the GeoTIFFs `examples/write_geotiff.rs` writes with GDAL (rasterio) and checks the
transform, CRS, nodata, tiling, compression and pixels. Run through scripts/check_geotiff.sh."""
import sys

import numpy as np
import rasterio
from rasterio.transform import Affine

d = sys.argv[1]
with rasterio.open(f"{d}/float.tif") as f:
    assert f.crs.to_epsg() == 32610, f.crs
    assert f.transform == Affine(30.0, 0.0, 545000.0, 0.0, -30.0, 4185000.0), f.transform
    assert np.isnan(f.nodata), f.nodata
    assert f.count == 2 and f.dtypes == ("float32", "float32") and (f.height, f.width) == (300, 530)
    assert f.profile["tiled"] and f.block_shapes == [(256, 256), (256, 256)], f.block_shapes
    assert f.compression.name == "deflate", f.compression
    got = f.read()
want = np.load(f"{d}/float.npy")
assert np.array_equal(got, want, equal_nan=True)
with rasterio.open(f"{d}/mask.tif") as m:
    assert m.crs.to_epsg() == 4326, m.crs
    assert m.transform.almost_equals(Affine(0.001, 0.0, -122.6, 0.0, -0.001, 37.9)), m.transform
    mask = m.read(1)
    assert mask.dtype == np.uint8 and mask.shape == (33, 47)
    rows, cols = np.indices(mask.shape)
    assert np.array_equal(mask, ((rows + cols) % 3 == 0).astype(np.uint8))
print(f"GDAL {rasterio.__gdal_version__} reads both GeoTIFFs with the expected transform, CRS, nodata, tiles and pixels")
