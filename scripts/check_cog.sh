#!/usr/bin/env bash
# Writes GeoTIFFs with strata (examples/write_geotiff.rs: two float bands with overviews, and
# a mask; then the tutorial's outputs) and checks each with `rio cogeo validate --strict`
# (rio-cogeo, GDAL inside rasterio's wheel), in the project's venv (scripts/.venv, made here
# if missing). Exits non-zero if any file is not a valid Cloud-Optimized GeoTIFF.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x scripts/.venv/bin/python ] || python3 -m venv scripts/.venv
scripts/.venv/bin/pip install -q "numpy>=2" "rasterio>=1.4" "rio-cogeo>=5"
out=target/cog-check
cargo run --release --quiet --example write_geotiff -- "$out"
cargo run --release --quiet --example tutorial -- --quiet --backend cpu --out "$out/tutorial"
for f in "$out"/*.tif "$out"/tutorial/*.tif; do
  scripts/.venv/bin/rio cogeo validate --strict "$f"
done
