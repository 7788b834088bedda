#!/usr/bin/env bash
# Runs the dense-output sink's unit tests under miri (nightly with the miri component:
# `rustup component add miri rust-src --toolchain nightly`). Tree Borrows, because under
# Stacked Borrows miri stops inside crossbeam-epoch (rayon's work-stealing, not strata's code)
# before reaching ours; leaks ignored because rayon's global pool threads are never joined.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRIFLAGS="${MIRIFLAGS:--Zmiri-tree-borrows -Zmiri-ignore-leaks}" \
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/miri}" \
  cargo +nightly miri test --lib exec::sink
