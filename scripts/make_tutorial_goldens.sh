#!/usr/bin/env bash
# Regenerates tests/data/tutorial: writes the reduced embedded catalog with the tutorial
# example, then runs the seed tutorial on it in Python (stackstac, xarray, numpy, scipy) in a
# private venv (scripts/.venv). The flags below are the ones tests/tutorial.rs runs with.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root="$here/.."
venv="$here/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "numpy>=2" "scipy>=1.13" "rasterio>=1.4" stackstac pystac "dask[array]" xarray pyproj
params='{"scenes": 14, "size": 64, "buffer": 600.0, "sigma": [1.0, 1.5], "threshold": 0.175,
         "lon": -122.4312, "lat": 37.7739, "cloud_lt": 20.0}'
catalog="$root/target/tutorial-golden/catalog"
rm -rf "$catalog"
(cd "$root" && cargo run --release --example tutorial -- --write-catalog "$catalog" --scenes 14 --size 64)
"$venv/bin/python" "$here/make_tutorial_goldens.py" "$catalog" "$params"
