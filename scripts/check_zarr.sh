#!/usr/bin/env bash
# Checks a Zarr group from `examples/tutorial.rs --zarr ZARR_DIR` against a run's .npy files
# in NPY_DIR with zarr-python, xarray and rioxarray, in the project's venv (scripts/.venv,
# made here from PyPI if missing).
#   scripts/check_zarr.sh ZARR_DIR NPY_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import zarr, xarray, rioxarray" 2>/dev/null \
  || "$venv/bin/pip" install -q "numpy>=2" "zarr>=3" "xarray>=2025.1" "rioxarray>=0.18"
"$venv/bin/python" "$here/check_zarr.py" "$1" "$2"
