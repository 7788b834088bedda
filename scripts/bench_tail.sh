#!/usr/bin/env bash
# The tutorial against a misbehaving object store (the embedded catalog on the loopback
# server): each pair of configurations runs alternately, RUNS times each, in the same call,
# and prints the median wall time of each, their ratio, and the requests and hedges.
#
#   scripts/bench_tail.sh [RUNS=5]
#
# Pairs: 40 ms latency with and without hedging (what hedging costs when nothing is wrong);
# a long tail (95% of answers at 20 ms, 5% at 2 s) with and without hedging; 5% of GeoTIFF
# answers stalling 60 s after their headers against no faults.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
cargo build --release --quiet --example tutorial
BIN=target/release/examples/tutorial
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# run ARGS... -> "wall_s requests hedges timeouts"
run() {
    local began ended line
    began=$(date +%s.%N)
    line=$("$BIN" --quiet --backend cpu --out "$OUT/o" "$@" | grep '^reads:')
    ended=$(date +%s.%N)
    echo "$line" | awk -v a="$began" -v b="$ended" '{
        for (i = 1; i <= NF; i++) {
            if ($(i+1) == "requests,") req = $i
            if ($(i+1) == "hedges,") hedges = $i
            if ($(i+1) == "stalled") stalled = $i
        }
        printf "%.3f %d %d %d\n", b - a, req, hedges, stalled
    }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

pair() {
    local name=$1 a=$2 b=$3
    : >"$OUT/a" && : >"$OUT/b"
    for _ in $(seq "$RUNS"); do
        # shellcheck disable=SC2086
        run $a >>"$OUT/a"
        # shellcheck disable=SC2086
        run $b >>"$OUT/b"
    done
    local ma mb
    ma=$(cut -d' ' -f1 "$OUT/a" | median)
    mb=$(cut -d' ' -f1 "$OUT/b" | median)
    awk -v n="$name" -v ma="$ma" -v mb="$mb" -v fa="$OUT/a" -v fb="$OUT/b" 'BEGIN {
        while ((getline l < fa) > 0) { split(l, x, " "); ra += x[2]; ha += x[3]; sa += x[4]; na++ }
        while ((getline l < fb) > 0) { split(l, x, " "); rb += x[2]; hb += x[3]; sb += x[4]; nb++ }
        printf "%-34s A %.2f s  B %.2f s  A/B %.2f | A: %.0f requests, %.1f%% hedged, %.0f abandoned | B: %.0f requests, %.1f%% hedged, %.0f abandoned (per run)\n",
            n, ma, mb, ma / mb, ra / na, 100 * ha / ra, sa / na, rb / nb, 100 * hb / rb, sb / nb
    }'
}

echo "tutorial (embedded catalog), $RUNS runs each, alternating; medians of whole-process wall time"
pair "40 ms latency: hedging vs off" "--latency-ms 40" "--latency-ms 40 --no-hedge"
pair "tail 5% at 2 s: hedging vs off" "--latency-ms 20 --slow-share 0.05 --slow-ms 2000" \
    "--latency-ms 20 --slow-share 0.05 --slow-ms 2000 --no-hedge"
pair "5% stall 60 s vs no faults" "--stall-share 0.05 --stall-ms 60000" ""
