#!/usr/bin/env bash
# The whole test suite: the Rust crate (`cargo test --release`, which needs no Python), then
# the Python bindings (scripts/test_python.sh: venv, maturin, pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release
bash scripts/test_python.sh
