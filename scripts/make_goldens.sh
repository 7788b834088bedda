#!/usr/bin/env bash
# Makes a private venv with numpy and scipy and regenerates tests/data/golden.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "numpy>=2" "scipy>=1.13"
"$venv/bin/python" "$here/make_goldens.py"
