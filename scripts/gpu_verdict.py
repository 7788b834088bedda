"""Issue 14's "done when" figures from one device run's files, as a table with a verdict per row.

  python3 scripts/gpu_verdict.py OUT [--steps "bench tutorial repeat peers tests"]
  (OUT: the folder scripts/gpu_check_on_device.sh wrote; --steps: the steps that were asked
  for, whose missing files are failures; default all of them)

Reads OUT/bench.json (strata-bench, GPU and CPU), OUT/peers.json (CuPy/PyTorch, optional),
OUT/limits.log (the pinned host->device ceiling, optional; 47.6 GB/s, the H200's, otherwise),
OUT/tutorial-{gpu,cpu}-*.json (the tutorial's execution reports), OUT/repeat.log and
OUT/test-*.log. A target whose files are missing is a row saying so (FAIL when its step was
asked for); nothing is guessed. Exits 1 when any row fails. Standard library only (runs on the
device machine).
"""
import argparse, glob, json, os, re, statistics, sys

ap = argparse.ArgumentParser()
ap.add_argument("out", nargs="?", default="/tmp/out")
ap.add_argument("--steps", default="bench tutorial repeat peers tests")
args = ap.parse_args()
out, steps = args.out, set(args.steps.split())
rows = []


def missing(check, step, what):
    """A target whose files are not there: a failure if its step was asked for."""
    row(check, f"{what} missing", False if step in steps else None)


def row(check, figure, ok):
    rows.append((check, figure, "n/a" if ok is None else ("pass" if ok else "FAIL")))


def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None


bench = load("bench.json")
peers = load("peers.json")
# strata-bench workload -> the CuPy peer doing the same from host memory
peer_of = {
    "bandmath": "cupy.fuse",
    "nanmedian": "cupy.nanmedian",
    "nanmean": "cupy.nanmean",
    "monthly-nanmedian": "cupy.nanmedian",
    "gaussian": "cupyx.ndimage",
    "ndvi-nanmean": "cupy",
}
if bench is None:
    missing("strata-bench: every kernel family and pipeline", "bench", "bench.json")
else:
    for c in bench.get("checks", []):
        if not c["pass"]:
            row(f'{c["workload"]}: gpu matches the cpu', f'max abs {c["max_abs"]:.3g}, NaN mismatches {c["nan_mismatches"]}', False)
    t = {(r["workload"], r["backend"]): r for r in bench["timings"]}
    shape = f'{bench["args"]["time"]} x {bench["args"]["height"]} x {bench["args"]["width"]}'
    print(f'strata-bench on {bench["adapter"]["name"] if bench.get("adapter") else "?"}, {shape}, '
          f'{bench["threads"]} threads')
    for w in dict.fromkeys(r["workload"] for r in bench["timings"]):
        g, c = t.get((w, "gpu")), t.get((w, "cpu"))
        if not g or not c:
            row(f"{w}: gpu >= 2x cpu", "missing a backend", False)
            continue
        ratio = c["median_s"] / g["median_s"]
        row(f"{w}: gpu >= 2x cpu",
            f'gpu {g["median_s"]*1e3:.1f} ms, cpu {c["median_s"]*1e3:.1f} ms: {ratio:.2f}x', ratio >= 2)
        p = g.get("device_profile")
        if p and ratio < 2:
            # where the device's own clock says the time went (the untimed first run): a note
            # under the row, no verdict of its own
            ks = sorted(p["kernels"], key=lambda k: -k["device_ns"])
            rows.append(("  device clock", f'{p["submissions"]} command buffers {p["submission_ns"]/1e6:.1f} ms, '
                         + ", ".join(f'{k["kernel"]} {k["device_ns"]/1e6:.1f} ms ({k["dispatches"]}x)' for k in ks)
                         + f' (first run; wall {g["median_s"]*1e3:.1f} ms)', ""))
        if w in peer_of:
            check = f"{w}: gpu >= 1.5x {peer_of[w]} from host"
            hits = [p for p in (peers or {}).get("results", [])
                    if p["workload"] == w and p["peer"] == peer_of[w] and p["where"] == "host"]
            if hits:
                r = hits[0]["median_s"] / g["median_s"]
                row(check, f'{peer_of[w]} {hits[0]["median_s"]*1e3:.1f} ms: {r:.2f}x', r >= 1.5)
            else:
                missing(check, "peers", "peers.json (or its row)")
        for key, limit in (("host_copies_per_byte", 1.0), ("worker_waits", 0.0)):
            if g.get(key, 0) > limit:
                row(f"{w}: {key} <= {limit:g}", f"{g[key]:.2f}", False)
    g = t.get(("nanmedian", "gpu"))
    if g:
        gbps = 47.6
        if os.path.exists(os.path.join(out, "limits.log")):
            m = re.search(r"pinned\s+h2d\s+([\d.]+)", open(os.path.join(out, "limits.log")).read())
            gbps = float(m.group(1)) if m else gbps
        a = bench["args"]
        bound = a["time"] * a["height"] * a["width"] * 4 / (gbps * 1e9)
        row("nanmedian within 3x of the pinned-bus bound",
            f'{g["median_s"]*1e3:.1f} ms vs bound {bound*1e3:.1f} ms ({gbps} GB/s): '
            f'{g["median_s"]/bound:.2f}x', g["median_s"] <= 3 * bound)

walls = {}
for b in ("gpu", "cpu"):
    runs = [json.load(open(f))["wall_us"] / 1e3 for f in sorted(glob.glob(os.path.join(out, f"tutorial-{b}-*.json")))]
    if runs:
        walls[b] = statistics.median(runs)
if len(walls) == 2:
    row("tutorial compute: gpu <= half the cpu's",
        f'gpu {walls["gpu"]:.0f} ms, cpu {walls["cpu"]:.0f} ms (medians of wall_us in the reports)',
        walls["gpu"] <= walls["cpu"] / 2)
else:
    missing("tutorial compute: gpu <= half the cpu's", "tutorial", "a gpu or cpu report")

rep = os.path.join(out, "repeat.log")
if os.path.exists(rep):
    lines = [l for l in open(rep) if "vs cpu:" in l]
    same = sum(l.rstrip().endswith("bitwise equal") for l in lines)
    row("repeated GPU tutorials bitwise the CPU's", f"{same} of {len(lines)} runs",
        len(lines) == 5 and same == len(lines))
else:
    missing("repeated GPU tutorials bitwise the CPU's", "repeat", "repeat.log")

for name in ["gpu", "gpu_elementwise", "gpu_reduce", "gpu_split", "gpu_stress", "gpu_windows", "gpu_along"]:
    log = os.path.join(out, f"test-{name}.log")
    if not os.path.exists(log):
        missing(f"GPU tests: {name}", "tests", f"test-{name}.log")
        continue
    m = re.findall(r"test result: (\w+)\. (\d+) passed; (\d+) failed", open(log).read())
    row(f"GPU tests: {name}", m[-1][0] + f" ({m[-1][1]} passed, {m[-1][2]} failed)" if m else "no result",
        bool(m) and m[-1][0] == "ok")

width = max(len(r[0]) for r in rows)
for check, figure, verdict in rows:
    print(f"{verdict:5s} {check:{width}s}  {figure}")
failed = sum(v == "FAIL" for _, _, v in rows)
print(f"{failed} of {sum(bool(v) for _, _, v in rows)} checks failed")
sys.exit(1 if failed else 0)
