#!/usr/bin/env bash
# The tutorial's results into Zarr computed here and as a Slurm array (needs a running
# cluster: scripts/slurm_local.sh up), over a written catalog of SCENES scenes of SIZE^2
# (default 24 x 2048^2, area --buffer 24000), ROUNDS rounds alternating the two; prints each
# round's seconds (as the tutorial reports them: search to last shard), the medians and
# their ratio, and what the workers logged about start-up and planning.
#   scripts/bench_slurm.sh [ROUNDS] [SHARDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}; shards=${2:-16}
scenes=${SCENES:-24}; size=${SIZE:-2048}; buffer=${BUFFER:-24000}
work=target/bench-slurm
mkdir -p "$work"
cargo build --release --example tutorial --bin strata-worker
export NODEVICE_SELECT=1 STRATA_WORKER=$PWD/target/release/strata-worker
cat="$work/catalog-$scenes-$size"
[ -f "$cat/items.json" ] || target/release/examples/tutorial --scenes "$scenes" --size "$size" --write-catalog "$cat"
common=(--quiet --backend cpu --items "$cat/items.json" --buffer "$buffer")
local_s=(); slurm_s=()
for r in $(seq "$rounds"); do
  rm -rf "$work/local.zarr" "$work/slurm.zarr" "$work/slurm"
  l=$(target/release/examples/tutorial "${common[@]}" --zarr "$work/local.zarr" --out "$work/local" | sed -n 's/.* in \([0-9.]*\) s$/\1/p')
  s=$(target/release/examples/tutorial "${common[@]}" --zarr "$work/slurm.zarr" --out "$work/slurm" --executor slurm --shards "$shards" | sed -n 's/^slurm array.* in \([0-9.]*\) s$/\1/p')
  echo "round $r: local ${l} s, slurm ${s} s"
  local_s+=("$l"); slurm_s+=("$s")
done
python3 - "${local_s[*]}" "${slurm_s[*]}" <<'PY'
import statistics, sys
l = [float(x) for x in sys.argv[1].split()]; s = [float(x) for x in sys.argv[2].split()]
print(f"median: local {statistics.median(l):.2f} s, slurm {statistics.median(s):.2f} s, ratio {statistics.median(s) / statistics.median(l):.2f}")
PY
grep -h "^shard" "$work"/slurm/job.json.d/logs/*.out | sed 's/.*loaded \([0-9.]*\) ms after start, planned in \([0-9.]*\) ms.*/\1 \2/' \
  | python3 -c "import sys; v=[sum(map(float,l.split())) for l in sys.stdin]; print(f'worker start-up + planning: {min(v):.1f}-{max(v):.1f} ms over {len(v)} shards')"
