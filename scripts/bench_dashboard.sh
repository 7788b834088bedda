#!/usr/bin/env bash
# What watching costs: the tutorial's wall time with the timeline off (STRATA_TIMELINE=0),
# recorded (the default: report.html), and served live (--dashboard on a free loopback port),
# the three modes in turn each round so drift hits them alike. Prints each mode's median
# whole-process and compute (report.json's wall_us) seconds and the ratios to "off".
# Usage: scripts/bench_dashboard.sh [ROUNDS] [TUTORIAL ARGS...]
#   scripts/bench_dashboard.sh 5                                        # the default catalog
#   scripts/bench_dashboard.sh 5 --scenes 32 --size 2048 --buffer 15360 # a larger one
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds="${1:-5}"
shift || true
cd "$here/.."
cargo build --release --quiet --example tutorial
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
results="$out/times.tsv"
for round in $(seq 1 "$rounds"); do
  for mode in off recorded live; do
    args=(--quiet --out "$out/$mode" "$@")
    env=()
    case $mode in
      off) env=(STRATA_TIMELINE=0) ;;
      live) args+=(--dashboard 127.0.0.1:0) ;;
    esac
    start=$(date +%s.%N)
    env "${env[@]}" ./target/release/examples/tutorial "${args[@]}" >"$out/$mode.log" 2>&1
    end=$(date +%s.%N)
    compute=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['wall_us'] / 1e6)" "$out/$mode/report.json")
    echo -e "$round\t$mode\t$(python3 -c "print($end - $start)")\t$compute" >>"$results"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().split("\n") if line]
by = {}
for r, mode, wall, compute in rows:
    by.setdefault(mode, []).append((int(r), float(wall), float(compute)))
med = lambda xs: statistics.median(xs)
print(f"{'mode':<10}{'process s':>11}{'compute s':>11}{'process/off':>13}{'compute/off':>13}   rounds: {len(by['off'])}")
off = {r: (w, c) for r, w, c in by["off"]}
for mode in ("off", "recorded", "live"):
    xs = by[mode]
    pw = med([w / off[r][0] for r, w, c in xs])  # paired by round
    pc = med([c / off[r][1] for r, w, c in xs])
    print(f"{mode:<10}{med([w for _, w, _ in xs]):>11.3f}{med([c for _, _, c in xs]):>11.3f}{pw:>13.3f}{pc:>13.3f}")
PY
