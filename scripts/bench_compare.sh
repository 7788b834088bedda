#!/usr/bin/env bash
# Times strata's CPU benchmarks (criterion) and the fastest Python peers (numpy, scipy,
# bottleneck, numexpr, OpenCV, dask) on the same data, on this machine, in one run, and prints
# the ratios as a Markdown table. `--quick` shrinks every size for a smoke run.
#
#   scripts/bench_compare.sh [--quick]        # results in target/bench-compare/
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
out=target/bench-compare
mkdir -p "$out"
quick=()
if [ "${1:-}" = "--quick" ]; then
  quick=(--quick)
  export STRATA_BENCH_QUICK=1
fi
bash "$here/bench_baselines.sh" "${quick[@]}" > "$out/python.json"
cargo bench --bench cpu_kernels --bench scheduler -- --noplot 2>&1 | tee "$out/cargo-bench.log" >&2
python3 "$here/bench_ratios.py" "$out/python.json" target/criterion | tee "$out/summary.md"
