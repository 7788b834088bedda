#!/usr/bin/env bash
# Writes GeoTIFFs with strata (examples/write_geotiff.rs) and reads them back with GDAL through
# rasterio, in the project's venv (scripts/.venv, made here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x scripts/.venv/bin/python ] || python3 -m venv scripts/.venv
scripts/.venv/bin/pip install -q "numpy>=2" "rasterio>=1.4"
out=target/geotiff-check
cargo run --release --example write_geotiff -- "$out"
scripts/.venv/bin/python scripts/check_geotiff.py "$out"
