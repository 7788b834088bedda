#!/usr/bin/env bash
# End-to-end tutorial benchmark: strata (CPU backend) against stackstac + dask on the same
# 32 x 2048² x 5-band catalog and loopback server (a 1024² area), 0 and 40 ms latency, strata in
# the notebook's order and cut first; wall time and peak
# RSS per run. Makes its own venv (scripts/.venv, or $STRATA_BENCH_VENV) and catalog
# (target/bench-tutorial, ~1 GB). See bench_tutorial.py for the knobs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${STRATA_BENCH_VENV:-$here/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# numbagg stays out: it is not what the tutorial's environment has.
"$venv/bin/pip" install -q "numpy>=2" "scipy>=1.13" "rasterio>=1.4" stackstac pystac "dask[array]" xarray pyproj
(cd "$here/.." && cargo build --release --example serve --example tutorial)
"$venv/bin/python" "$here/bench_tutorial.py"
