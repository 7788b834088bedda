#!/usr/bin/env bash
# Makes a private venv with rasterio (its wheel bundles GDAL) and regenerates tests/data/cog.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "numpy>=2" "rasterio>=1.4"
"$venv/bin/python" "$here/make_cog_fixtures.py"
