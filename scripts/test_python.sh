#!/usr/bin/env bash
# The Python bindings' tests: a venv (strata-py/.venv), maturin building the `strata` package
# into it with its test extras (pystac, rioxarray, zarr, scipy, matplotlib), then pytest.
# Needs python3 (3.9 or newer) with venv, and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$PWD/strata-py/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "maturin>=1.16,<2"
(cd strata-py && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --release --extras test -q)
"$venv/bin/python" -m pytest -q strata-py/tests
