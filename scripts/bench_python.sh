#!/usr/bin/env bash
# The Python bindings' overhead: examples/tutorial.py against examples/tutorial.rs on the same
# embedded catalog, alternating, ROUNDS times each; prints each run's compute time (the one
# compute call: five results in one run), the medians and their ratio.
# Usage: scripts/bench_python.sh [ROUNDS] [--scenes N --size PX --buffer M]
# Needs strata-py/.venv (scripts/test_python.sh makes it) and the release tutorial example.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
shift || true
cargo build --release --example tutorial -q
py="strata-py/.venv/bin/python"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq "$rounds"); do
  r=$(./target/release/examples/tutorial --backend cpu --quiet --out "$out/rs" "$@" | sed -n 's/^computed on .* in \([0-9.]*\) s.*/\1/p')
  p=$("$py" examples/tutorial.py --backend cpu --no-plots --out "$out/py" "$@" 2>/dev/null | sed -n 's/^computed in \([0-9.]*\) s/\1/p')
  echo "round $i: rust $r s, python $p s"
  echo "$r $p" >> "$out/times"
done
"$py" - "$out/times" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1])]
rs, py = statistics.median(r for r, _ in rows), statistics.median(p for _, p in rows)
ratios = sorted(p / r for r, p in rows)
print(f"median compute: rust {rs:.3f} s, python {py:.3f} s, python/rust {py / rs:.3f} "
      f"(paired ratios {', '.join(f'{x:.3f}' for x in ratios)})")
PY
