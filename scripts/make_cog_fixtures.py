"""Writes the GeoTIFF fixtures of tests/data/cog with GDAL (through rasterio) and the pixels GDAL
reads back from each, as the goldens the Rust reader is checked against.

Run through make_cog_fixtures.sh, which makes the venv. Output:
  tests/data/cog/<name>.tif        the fixture
  tests/data/cog/<name>.npy        (bands, rows, cols) in the file's own dtype, as GDAL reads it
  tests/data/cog/manifest.json     per file: dtype, shape, layout, compression, predictor, byte
                                   order, BigTIFF, block shape, overviews, geotransform, EPSG, nodata

Rasters are 70 x 50 so edge tiles and the last strip are partial. Values mix smooth gradients
(which the predictors exist for) with noise and the dtype's extremes.
"""

import json
import pathlib
import sys
import zlib

import numpy as np
import rasterio
from rasterio.transform import Affine, from_origin

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "cog"
W, H = 70, 50
UTM = from_origin(500000.0, 4200000.0, 30.0, 30.0)


def pixels(dtype: str, bands: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    info = np.finfo(dtype) if dtype.startswith("float") else np.iinfo(dtype)
    out = []
    for b in range(bands):
        if dtype.startswith("float"):
            v = np.sin(xx / 7.0 + b) * 1000.0 + yy * 3.25 + rng.normal(0, 0.5, (H, W))
            v = v.astype(dtype)
            v[0, 0] = np.nan
            v[1, 1] = np.inf
            v[2, 2] = -np.inf
            v[3, 3] = info.max
            v[4, 4] = info.tiny
        else:
            span = float(info.max) - float(info.min)
            base = float(info.min) + span * ((xx * 3 + yy * 5 + b * 11) % 97) / 96.0
            noise = rng.integers(-3, 4, (H, W))
            v = np.clip(base + noise, info.min, info.max).astype(dtype)
            v[0, 0] = info.min
            v[0, 1] = info.max
        out.append(v)
    return np.stack(out)


def write(name, dtype, *, bands=1, compress="NONE", predictor=1, tiled=True, block=(32, 16),
          strip_rows=7, endian="LITTLE", bigtiff=False, interleave="pixel", nodata=None,
          transform=UTM, crs="EPSG:32610", driver="GTiff", overviews=0, manifest=None):
    path = OUT / f"{name}.tif"
    data = pixels(dtype, bands, seed=zlib.crc32(name.encode()))
    if nodata is not None:
        data[:, 5:9, 10:14] = nodata
    profile = dict(driver=driver, width=W, height=H, count=bands, dtype=dtype, crs=crs,
                   transform=transform, nodata=nodata)
    if driver == "GTiff":
        profile.update(compress=compress, interleave=interleave, ENDIANNESS=endian,
                       BIGTIFF="YES" if bigtiff else "NO")
        if predictor != 1:
            profile["predictor"] = predictor
        if tiled:
            profile.update(tiled=True, blockxsize=block[0], blockysize=block[1])
        else:
            profile.update(tiled=False, blockysize=strip_rows)
    else:
        profile.update(compress=compress, blocksize=block[0], OVERVIEWS="AUTO",
                       OVERVIEW_COUNT=overviews, predictor={1: "NO", 2: "STANDARD", 3: "FLOATING_POINT"}[predictor])
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    with rasterio.open(path) as src:
        back = src.read()
        ovr = src.overviews(1)
        entry = dict(
            dtype=dtype, bands=bands, height=src.height, width=src.width,
            tiled=tiled, block=list(src.block_shapes[0]), compress=compress, predictor=predictor,
            byte_order=endian.lower(), bigtiff=bigtiff, interleave=interleave,
            overviews=[[H // f, W // f] for f in ovr] if ovr else [],
            overview_factors=ovr,
            geotransform=list(src.transform.to_gdal()), epsg=src.crs.to_epsg() if src.crs else None,
            nodata=src.nodata if src.nodata is None or np.isfinite(src.nodata) else str(src.nodata),
        )
    np.save(OUT / f"{name}.npy", back)
    manifest[name] = entry


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*"):
        old.unlink()
    manifest = {}
    ints = ["uint8", "uint16", "int16", "uint32", "int32"]
    floats = ["float32", "float64"]
    # Every sample format under every compression and predictor GDAL writes, tiled.
    for dtype in ints + floats:
        for compress in ["NONE", "PACKBITS", "DEFLATE", "LZW", "ZSTD"]:
            preds = [1] if compress in ("NONE", "PACKBITS") else ([1, 2, 3] if dtype in floats else [1, 2])
            for p in preds:
                write(f"tiled_{dtype}_{compress.lower()}_p{p}", dtype, compress=compress, predictor=p,
                      manifest=manifest)
    # Stripped layouts, each compression.
    for compress, p in [("NONE", 1), ("PACKBITS", 1), ("DEFLATE", 2), ("LZW", 2), ("ZSTD", 1)]:
        write(f"strip_uint16_{compress.lower()}_p{p}", "uint16", compress=compress, predictor=p, tiled=False,
              manifest=manifest)
    write("strip_float32_deflate_p3", "float32", compress="DEFLATE", predictor=3, tiled=False, manifest=manifest)
    # Big-endian, with predictors, classic and BigTIFF.
    for dtype, compress, p in [("uint16", "DEFLATE", 2), ("int16", "NONE", 1), ("float32", "LZW", 3),
                               ("float64", "ZSTD", 2), ("int32", "PACKBITS", 1), ("uint8", "DEFLATE", 2)]:
        write(f"big_{dtype}_{compress.lower()}_p{p}", dtype, compress=compress, predictor=p, endian="BIG",
              manifest=manifest)
    write("big_strip_uint16_deflate_p2", "uint16", compress="DEFLATE", predictor=2, tiled=False, endian="BIG",
          manifest=manifest)
    for dtype, compress, p, endian in [("uint16", "DEFLATE", 2, "LITTLE"), ("float32", "ZSTD", 3, "LITTLE"),
                                       ("uint16", "LZW", 2, "BIG"), ("int16", "NONE", 1, "BIG")]:
        write(f"bigtiff_{endian.lower()}_{dtype}_{compress.lower()}_p{p}", dtype, compress=compress, predictor=p,
              bigtiff=True, endian=endian, manifest=manifest)
    write("bigtiff_strip_uint8_packbits", "uint8", compress="PACKBITS", tiled=False, bigtiff=True,
          manifest=manifest)
    # Multi-band: pixel-interleaved (chunky) and band-interleaved (planar).
    for dtype, compress, p in [("uint16", "DEFLATE", 2), ("uint8", "NONE", 1), ("float32", "ZSTD", 3),
                               ("int16", "LZW", 2)]:
        write(f"rgb_pixel_{dtype}_{compress.lower()}_p{p}", dtype, bands=3, compress=compress, predictor=p,
              manifest=manifest)
    write("rgb_pixel_strip_uint16_deflate_p2", "uint16", bands=3, compress="DEFLATE", predictor=2, tiled=False,
          manifest=manifest)
    write("rgb_band_uint16_deflate_p2", "uint16", bands=3, compress="DEFLATE", predictor=2,
          interleave="band", manifest=manifest)
    write("rgb_band_strip_float32_lzw_p3", "float32", bands=3, compress="LZW", predictor=3, tiled=False,
          interleave="band", manifest=manifest)
    # Nodata, geographic CRS, a rotated transform (written as ModelTransformation).
    write("nodata_uint16_deflate", "uint16", compress="DEFLATE", predictor=2, nodata=0, manifest=manifest)
    write("nodata_int16_neg", "int16", compress="DEFLATE", nodata=-9999, manifest=manifest)
    write("nodata_float32_nan", "float32", compress="DEFLATE", nodata=float("nan"), manifest=manifest)
    write("geographic_float32", "float32", compress="DEFLATE", crs="EPSG:4326",
          transform=from_origin(-122.5, 37.9, 0.001, 0.001), manifest=manifest)
    write("rotated_uint8", "uint8", compress="DEFLATE",
          transform=Affine(30.0, 5.0, 500000.0, 4.0, -30.0, 4200000.0), manifest=manifest)
    # Cloud-Optimized layout with overviews, as Landsat COGs ship.
    write("cog_uint16_deflate_overviews", "uint16", driver="COG", compress="DEFLATE", predictor=2,
          block=(16, 16), overviews=2, nodata=0, manifest=manifest)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    size = sum(p.stat().st_size for p in OUT.glob("*"))
    print(f"{len(manifest)} fixtures, {size / 1e6:.2f} MB in {OUT.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
