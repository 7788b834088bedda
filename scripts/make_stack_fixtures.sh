#!/usr/bin/env bash
# Makes a private venv with rasterio, pyproj and stackstac and regenerates tests/data/stack.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "numpy>=2" "rasterio>=1.4" pyproj stackstac pystac "dask[array]" xarray
"$venv/bin/python" "$here/make_stack_fixtures.py"
