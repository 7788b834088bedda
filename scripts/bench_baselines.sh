#!/usr/bin/env bash
# Makes a private venv with the Python peers (numpy, scipy, bottleneck, numexpr, OpenCV, dask)
# and times them on strata's benchmark workloads; see bench_baselines.py for what and how.
# Usage: scripts/bench_baselines.sh [--quick] [--repeats N]   (JSON on stdout, table on stderr)
# numbagg is deliberately NOT installed: with it dask sends nanmedian to numbagg, which is
# slower, and the baseline must be the peers at their best.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="${STRATA_BENCH_VENV:-$here/.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q numpy scipy bottleneck numexpr opencv-python-headless "dask[array]" xarray pandas
exec "$venv/bin/python" "$here/bench_baselines.py" "$@"
