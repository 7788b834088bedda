#!/usr/bin/env bash
# Stack-window read benchmark: strata vs stackstac (GDAL) vs async-tiff, same files, same
# loopback server, 0 and 40 ms latency. Makes its own venv (scripts/.venv, or
# $STRATA_BENCH_VENV) and data (target/bench-stack, ~100 MB). REPEAT=n sets the runs per peer.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${STRATA_BENCH_VENV:-$here/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# numbagg stays out: dask would dispatch to it, and that is not stackstac at its best.
"$venv/bin/pip" install -q "numpy>=2" "rasterio>=1.4" stackstac pystac "dask[array]" xarray async-tiff obstore
(cd "$here/.." && cargo build --release --example serve --example stack_bench)
"$venv/bin/python" "$here/bench_stack.py"
