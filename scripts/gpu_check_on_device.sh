#!/usr/bin/env bash
# strata's GPU checks on a machine with a hardware GPU, in one call. Prepare on the build
# machine, from the project root:
#   ../shared/device/prepare.sh gpu gpu_split gpu_stress && cp scripts/gpu_check_on_device.sh .devrun/run.sh
# then, on the GPU machine with .gl/ and .devrun/ copied along: bash .devrun/run.sh
# Steps (pick with STEPS="bench peers tutorial repeat tests"): strata-bench on 32 x 4096 x 4096
# cubes, GPU and CPU; CuPy/PyTorch doing the same from host memory; the tutorial on a 24-scene
# 2048^2 catalog, GPU and CPU, twice each (compute wall time from report.json); five more GPU
# runs, each compared bitwise with the CPU's outputs; the GPU test binaries on the real driver.
# Logs and JSON land in $OUT (default /tmp/out).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"; D=$PWD/.devrun; chmod +x "$D"/strata-bench "$D"/tutorial "$D"/tests/* 2>/dev/null
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
export NODEVICE_SELECT=1
STEPS=${STEPS:-"bench peers tutorial repeat tests"}
TUT=${TUT:-"--scenes 24 --size 2048 --buffer 24000"}
has() { [[ " $STEPS " == *" $1 "* ]]; }
step() { local name=$1 t=$2; shift 2; echo "=== $name (limit ${t}s)"; local s=$(date +%s%N)
  timeout "$t" "$@" >"$OUT/$name.log" 2>&1; local rc=$?
  echo "rc=$rc in $(( ($(date +%s%N) - s) / 1000000 )) ms"; tail -n "${TAILN:-40}" "$OUT/$name.log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
has bench && TAILN=36 step bench 220 "$D/strata-bench" --time 32 --height 4096 --width 4096 --repeat 3 --json "$OUT/bench.json"
has peers && PYTHONUNBUFFERED=1 TAILN=14 step peers 150 python3 "$D/gpu_peers.py" --time 32 --height 4096 --width 4096 --json "$OUT/peers.json"
if has tutorial; then
  for b in gpu cpu gpu cpu; do TAILN=2 step tutorial-$b 120 "$D/tutorial" $TUT --backend $b --quiet --out /tmp/tut-$b
    python3 -c "import json; r=json.load(open('/tmp/tut-$b/report.json')); print('$b compute wall ms', r['wall_us']/1e3, 'peak MB', r['peak_bytes']/1e6, 'device tasks', sum(t['device'] for t in r['tasks']), 'of', len(r['tasks']))"
  done
fi
if has repeat; then
  for i in 1 2 3 4 5; do
    timeout 120 "$D/tutorial" $TUT --backend gpu --quiet --out /tmp/rep-$i >/dev/null 2>&1
    python3 - /tmp/rep-$i /tmp/tut-cpu <<'PY'
import sys, numpy as np
bad = []
for f in ["monthly_rgb", "ndvi_mean", "lum_median", "smoothed", "mask"]:
    a, b = np.load(f"{sys.argv[1]}/{f}.npy"), np.load(f"{sys.argv[2]}/{f}.npy")
    if not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
        d = np.abs(a.astype(float) - b.astype(float))
        bad.append(f"{f}: {int((~(d == 0) & ~(np.isnan(a.astype(float)) & np.isnan(b.astype(float)))).sum())} px, max {np.nanmax(d):.3g}")
print(sys.argv[1], "vs cpu:", ", ".join(bad) if bad else "bitwise equal")
PY
  done
fi
if has tests; then for t in gpu gpu_split gpu_stress; do TAILN=12 step "test-$t" 150 "$D/tests/$t" --test-threads 1; done; fi
cp /tmp/tut-gpu/report.json "$OUT/tutorial-gpu-report.json" 2>/dev/null
echo done
