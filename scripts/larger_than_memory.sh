#!/usr/bin/env bash
# The tutorial over a catalog larger than memory, streamed into Zarr under a small budget:
# writes a 48-scene catalog of 4096^2 scenes (5 uint16 bands; about 5 GB of COGs), serves it
# from another process (examples/serve.rs), runs the tutorial over the whole stack
# (--buffer 1000000: the area of interest is everything) with --zarr under
# STRATA_MEMORY_BUDGET=512MiB, and prints the peak resident memory (GNU time), the wall time,
# and what report.json says the scheduler held. About 6 minutes on 2 cores; 10 GB of disk.
#   scripts/larger_than_memory.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/larger-than-memory}
mkdir -p "$work"
cargo build --release --example tutorial --example serve
export NODEVICE_SELECT=1
[ -f "$work/catalog/items.json" ] || target/release/examples/tutorial --scenes 48 --size 4096 --write-catalog "$work/catalog"
fifo="$work/serve.in"; rm -f "$fifo"; mkfifo "$fifo"
target/release/examples/serve --root "$work/catalog" < "$fifo" > "$work/serve.url" &
server=$!; exec 3>"$fifo"                     # the server serves until this closes
trap 'exec 3>&-; wait $server 2>/dev/null || true; rm -f "$fifo"' EXIT
for _ in $(seq 50); do [ -s "$work/serve.url" ] && break; sleep 0.1; done
url=$(cat "$work/serve.url")
rm -rf "$work/store.zarr" "$work/out"
STRATA_MEMORY_BUDGET=512MiB /usr/bin/time -v target/release/examples/tutorial --quiet --backend cpu \
  --items "$url/items.json" --buffer 1000000 --zarr "$work/store.zarr" --out "$work/out" 2> "$work/time.log"
grep -E "Maximum resident|Elapsed" "$work/time.log"
python3 -c "
import json; r = json.load(open('$work/out/report.json'))
print(f\"budget {r['memory_budget'] >> 20} MiB, held at most {r['peak_bytes'] >> 20} MiB, {len(r['tasks'])} tasks, {r['over_budget_starts']} started over budget\")"
du -sh "$work/store.zarr"
