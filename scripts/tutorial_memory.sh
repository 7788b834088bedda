#!/usr/bin/env bash
# The tutorial's peak resident memory and wall time at issue 17's scale: the 32-scene 2048²
# catalog (written once into target/bench-tutorial/catalog, as bench_tutorial.py does) served
# by examples/serve.rs from another process, a 1024² area (--buffer 15360), the notebook's
# order and the cut-first order in turn, ROUNDS rounds; medians (GNU time's maximum RSS).
# Usage: scripts/tutorial_memory.sh [ROUNDS] [LATENCY_MS] [TUTORIAL ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds="${1:-5}"
latency="${2:-0}"
shift 2 || shift $#
cd "$here/.."
cargo build --release --quiet --example tutorial --example serve
bin=target/release/examples
data=target/bench-tutorial
if [ ! -f "$data/catalog/items.json" ] || [ "$(cat "$data/shape.json" 2>/dev/null)" != "[32, 2048]" ]; then
  mkdir -p "$data"
  "$bin/tutorial" --write-catalog "$data/catalog" --scenes 32 --size 2048
  echo '[32, 2048]' >"$data/shape.json"
fi
out=$(mktemp -d)
coproc SERVE { exec "$bin/serve" --root "$data/catalog" --latency-ms "$latency"; }
trap 'kill $SERVE_PID 2>/dev/null; rm -rf "$out"' EXIT
read -r url <&"${SERVE[0]}"
for round in $(seq 1 "$rounds"); do
  for order in notebook cut-first; do
    /usr/bin/time -f "$order %M %e" -a -o "$out/times" \
      "$bin/tutorial" --items "$url/items.json" --backend cpu --quiet --buffer 15360 \
      --order "$order" --out "$out/$order" "$@" >/dev/null
  done
done
python3 - "$out/times" "$latency" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip() and not l.startswith("Command")]
print(f"latency {sys.argv[2]} ms, {len(rows) // 2} rounds")
for order in ("notebook", "cut-first"):
    mine = [(int(kb), float(s)) for o, kb, s in rows if o == order]
    print(f"{order:10s} peak RSS median {statistics.median(k for k, _ in mine) / 1000:7.0f} MB "
          f"(max {max(k for k, _ in mine) / 1000:.0f})  wall median {statistics.median(s for _, s in mine):6.2f} s")
PY
