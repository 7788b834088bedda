"""Issue 14's "done when" figures from one device run's files, as a table with a verdict per row.

  python3 scripts/gpu_verdict.py OUT      (OUT: the folder scripts/gpu_check_on_device.sh wrote)

Reads OUT/bench.json (strata-bench, GPU and CPU), OUT/peers.json (CuPy/PyTorch, optional),
OUT/limits.log (the pinned host->device ceiling, optional; 47.6 GB/s, the H200's, otherwise),
OUT/tutorial-{gpu,cpu}-*.json (the tutorial's execution reports) and OUT/repeat.log. Rows whose
files are missing say so; nothing is guessed. Standard library only (runs on the device machine).
"""
import glob, json, os, re, statistics, sys

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/out"
rows = []


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
    row("strata-bench", "no bench.json", False)
else:
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
        if peers and w in peer_of:
            hits = [p for p in peers["results"] if p["workload"] == w and p["peer"] == peer_of[w] and p["where"] == "host"]
            if hits:
                r = hits[0]["median_s"] / g["median_s"]
                row(f"{w}: gpu >= 1.5x {peer_of[w]} from host",
                    f'{peer_of[w]} {hits[0]["median_s"]*1e3:.1f} ms: {r:.2f}x', r >= 1.5)
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
    row("tutorial compute: gpu <= half the cpu's", "reports missing", None)

rep = os.path.join(out, "repeat.log")
if os.path.exists(rep):
    lines = [l for l in open(rep) if "vs cpu:" in l]
    same = sum(l.rstrip().endswith("bitwise equal") for l in lines)
    row("repeated GPU tutorials bitwise the CPU's", f"{same} of {len(lines)}", bool(lines) and same == len(lines))
else:
    row("repeated GPU tutorials bitwise the CPU's", "no repeat.log", None)

for log in sorted(glob.glob(os.path.join(out, "test-*.log"))):
    text = open(log).read()
    m = re.findall(r"test result: (\w+)\. (\d+) passed; (\d+) failed", text)
    name = os.path.basename(log)[5:-4]
    row(f"GPU tests: {name}", m[-1][0] + f" ({m[-1][1]} passed, {m[-1][2]} failed)" if m else "no result",
        bool(m) and m[-1][0] == "ok")

width = max(len(r[0]) for r in rows)
for check, figure, verdict in rows:
    print(f"{verdict:5s} {check:{width}s}  {figure}")
failed = sum(v == "FAIL" for _, _, v in rows)
print(f"{failed} of {len(rows)} checks failed")
