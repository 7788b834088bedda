#!/usr/bin/env bash
# strata's GPU checks on a machine with a hardware GPU, in one call. Prepare on the build
# machine, from the project root: bash scripts/gpu_prepare.sh
# then, on the GPU machine with .gl/ and .devrun/ copied along: bash .devrun/on-device.sh
# Steps, most telling first (pick with STEPS="bench tutorial repeat peers tests"; cube sizes
# with T H W, the tutorial's flags with TUT): strata-bench on 32 x 4096 x 4096 cubes,
# GPU and CPU, with each GPU kernel's device time (timestamp queries); the tutorial on a 24-scene 2048^2 catalog, GPU and
# CPU, twice each (compute wall time from report.json); five more GPU runs, each compared
# bitwise with the CPU's outputs; CuPy/PyTorch doing the bench's work from host memory and the
# copy ceilings; the GPU test binaries on the real driver. Then gpu_verdict.py prints issue
# 14's "done when" rows from these files. The whole run stops starting steps past $BUDGET
# seconds (default 380) and cuts each step to what is left, so one device call always ends
# with the verdict of what ran. Logs and JSON land in $OUT (default /tmp/out).
set -u
OUT=${OUT:-/tmp/out}; rm -rf "$OUT"; mkdir -p "$OUT"; D=$PWD/.devrun
# the binaries travel packed (scripts/gpu_prepare.sh); python3's tarfile reads xz anywhere
[ -f "$D/bins.tar.xz" ] && [ ! -e "$D/strata-bench" ] \
  && python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$D/bins.tar.xz" "$D"
chmod +x "$D"/strata-bench "$D"/tutorial "$D"/tests/* 2>/dev/null
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json; [ -f $icd ] && export VK_DRIVER_FILES=$icd
export NODEVICE_SELECT=1
STEPS=${STEPS:-"bench tutorial repeat peers tests"}
T=${T:-32}; H=${H:-4096}; W=${W:-4096}   # the cubes of strata-bench and the peers
TUT=${TUT:-"--scenes 24 --size 2048 --buffer 24000"}
BUDGET=${BUDGET:-380}; began=$(date +%s)
has() { [[ " $STEPS " == *" $1 "* ]]; }
left() { echo $(( BUDGET - ($(date +%s) - began) )); }
# step NAME LIMIT CMD...: runs CMD for at most min(LIMIT, what is left), its log in OUT/NAME.log
step() { local name=$1 t=$2; shift 2; local l; l=$(left)
  if [ "$l" -le 5 ]; then echo "=== $name skipped: the ${BUDGET}s budget is spent"; return 124; fi
  [ "$t" -gt "$l" ] && t=$l
  echo "=== $name (limit ${t}s)"; local s=$(date +%s%N)
  timeout "$t" "$@" >"$OUT/$name.log" 2>&1; local rc=$?
  echo "rc=$rc in $(( ($(date +%s%N) - s) / 1000000 )) ms"; tail -n "${TAILN:-40}" "$OUT/$name.log"; return $rc; }
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv,noheader
# --profile: each workload's untimed first run also gives the device's own time per kernel
has bench && TAILN=60 step bench 120 "$D/strata-bench" --time $T --height $H --width $W --repeat 3 --profile --json "$OUT/bench.json"
if has tutorial; then
  i=0; for b in gpu cpu gpu cpu; do i=$((i + 1))
    TAILN=2 step tutorial-$b-$i 40 "$D/tutorial" $TUT --backend $b --quiet --out /tmp/tut-$b \
      && cp /tmp/tut-$b/report.json "$OUT/tutorial-$b-$i.json" \
      && python3 -c "import json; r=json.load(open('/tmp/tut-$b/report.json')); print('$b compute wall ms', r['wall_us']/1e3, 'peak MB', r['peak_bytes']/1e6, 'device tasks', sum(t['device'] for t in r['tasks']), 'of', len(r['tasks']))"
  done
fi
if has repeat; then
  for i in 1 2 3 4 5; do
    [ -f /tmp/tut-cpu/mask.npy ] || break
    # a run that fails or times out is a row of its own, never left out of the count
    # the first also times each kernel by the device's clock (its report's device_profile)
    prof=0; [ $i = 1 ] && prof=1
    step repeat-run-$i 30 env STRATA_GPU_PROFILE=$prof "$D/tutorial" $TUT --backend gpu --quiet --out /tmp/rep-$i >/dev/null \
      || { echo "/tmp/rep-$i vs cpu: run failed (rc=$?, see repeat-run-$i.log)" | tee -a "$OUT/repeat.log"; continue; }
    [ $i = 1 ] && cp /tmp/rep-1/report.json "$OUT/profile-tutorial-gpu.json" && python3 -c "
import json; r = json.load(open('/tmp/rep-1/report.json')); p = r.get('device_profile') or {}
ks = sorted(p.get('kernels', []), key=lambda k: -k['device_ns'])
print('tutorial on the device clock: wall', r['wall_us'] / 1e3, 'ms;', p.get('submissions'), 'command buffers',
      p.get('submission_ns', 0) / 1e6, 'ms; ' + ', '.join(f\"{k['kernel']} {k['device_ns'] / 1e6:.1f} ms ({k['dispatches']}x)\" for k in ks))
" | tee "$OUT/profile-tutorial.log"
    python3 - /tmp/rep-$i /tmp/tut-cpu <<'PY' | tee -a "$OUT/repeat.log"
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
has peers && PYTHONUNBUFFERED=1 TAILN=14 step peers 60 python3 "$D/gpu_peers.py" --time $T --height $H --width $W --json "$OUT/peers.json"
has peers && TAILN=3 step limits 20 python3 "$D/limits.py"
if has tests; then for t in gpu gpu_elementwise gpu_reduce gpu_split gpu_stress gpu_windows gpu_along; do TAILN=12 step "test-$t" 60 "$D/tests/$t" --test-threads 1; done; fi
echo "=== verdict (after $(( $(date +%s) - began )) s)"
python3 "$D/gpu_verdict.py" "$OUT" --steps "$STEPS" | tee "$OUT/verdict.txt"
rc=${PIPESTATUS[0]}
echo "done (verdict rc=$rc)"
exit "$rc"
