#!/usr/bin/env bash
# Runs the dense-output sink's unit tests, then the output writers' (isolation off: they write
# files; the percentile proptest skipped, too slow interpreted), under miri (nightly with the miri component:
# `rustup component add miri rust-src --toolchain nightly`). Tree Borrows, because under
# Stacked Borrows miri stops inside crossbeam-epoch (rayon's work-stealing, not strata's code)
# before reaching ours; leaks ignored because rayon's global pool threads are never joined.
set -euo pipefail
cd "$(dirname "$0")/.."
MIRIFLAGS="${MIRIFLAGS:--Zmiri-tree-borrows -Zmiri-ignore-leaks}" \
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/miri}" \
  cargo +nightly miri test --lib exec::sink
MIRIFLAGS="${MIRIFLAGS:--Zmiri-tree-borrows -Zmiri-ignore-leaks} -Zmiri-disable-isolation" \
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/miri}" \
  cargo +nightly miri test --lib output:: -- --skip streamed_percentiles_equal_selection
