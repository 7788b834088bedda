#!/usr/bin/env bash
# Times strata's CPU benchmarks (criterion) and the fastest Python peers (numpy, scipy,
# bottleneck, numexpr, OpenCV, dask) on the same data, on this machine, and prints the ratios
# as a Markdown table. The two sides alternate in ROUNDS rounds (default 3: peers, then
# strata, then peers again...) and each ratio is the median of the per-round ratios, so a
# slow spell on a shared machine lands on both sides of one round instead of on one side of
# the comparison. `--quick` shrinks every size for a smoke run.
#
#   [ROUNDS=3] [ONLY=nanargmax_t64,...] scripts/bench_compare.sh [--quick]
#                                                     # results in target/bench-compare/
# ONLY names the workloads to time (nanmedian_t64, nanargmax_t64, ffill_t64,
# interpolate_na_t64, rolling_mean_t64, rolling_median_t64, focal_mean_15, coarsen_mean_16,
# coarsen_median_16, coarsen_median_4, bandmath, gaussian_s2, scheduler_100k); default all.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
out=target/bench-compare
rounds=${ROUNDS:-3}
rm -rf "$out"
mkdir -p "$out"
quick=()
if [ "${1:-}" = "--quick" ]; then
  quick=(--quick)
  export STRATA_BENCH_QUICK=1
fi
only=()
filter=()
if [ -n "${ONLY:-}" ]; then
  only=(--only "$ONLY")
  filter=("^(${ONLY//,/|})/")
fi
cargo bench --no-run --bench cpu_kernels --bench scheduler >&2
for r in $(seq 1 "$rounds"); do
  dir="$out/round$r"
  mkdir -p "$dir"
  skip=()
  # numpy.nanmedian takes minutes and only fills an "other" column: once is enough
  [ "$r" -gt 1 ] && skip=(--skip-numpy-median)
  echo "round $r/$rounds: Python peers" >&2
  bash "$here/bench_baselines.sh" "${quick[@]}" "${skip[@]}" "${only[@]}" > "$dir/python.json"
  echo "round $r/$rounds: strata" >&2
  cargo bench --bench cpu_kernels --bench scheduler -- --noplot "${filter[@]}" > "$dir/cargo-bench.log" 2>&1
  for g in nanmedian_t64 nanargmax_t64 ffill_t64 cumsum_t64 interpolate_na_t64 rolling_mean_t64 rolling_median_t64 \
    corr_t64 focal_mean_15 coarsen_mean_16 coarsen_median_16 coarsen_median_4 bandmath gaussian_s2 scheduler_100k; do
    [ -n "${ONLY:-}" ] && [[ ",$ONLY," != *",$g,"* ]] && continue
    mkdir -p "$dir/criterion/$g"
    cp -r "target/criterion/$g/." "$dir/criterion/$g/"
  done
done
python3 "$here/bench_ratios.py" "$out"/round* | tee "$out/summary.md"
