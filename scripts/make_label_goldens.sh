#!/usr/bin/env bash
# Makes a private venv with numpy, pandas, xarray, stackstac and scipy (interp) and regenerates tests/data/labelled.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv-xarray"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "numpy>=2" "pandas>=2.2" "xarray>=2024.6" "stackstac>=0.5" "scipy>=1.11"
"$venv/bin/python" "$here/make_label_goldens.py"
