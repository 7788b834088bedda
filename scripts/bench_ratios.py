#!/usr/bin/env python3
"""Prints strata-vs-peer ratios from rounds of one benchmark run (stdlib only).

Usage: bench_ratios.py ROUND_DIR [ROUND_DIR ...]
  each ROUND_DIR holds python.json (scripts/bench_baselines.py) and criterion/ (the
  target/criterion groups of `cargo bench --bench cpu_kernels --bench scheduler` run right
  after it), as scripts/bench_compare.sh writes them.
Figures are medians: within a round, criterion's and the script's medians; across rounds, the
median of the rounds' figures and of their ratios. Ratios above 1 mean strata is faster.
"""
import json
import os
import statistics
import sys


def criterion(root, group, name):
    base = os.path.join(root, group, name, "new")
    with open(os.path.join(base, "estimates.json")) as f:
        seconds = json.load(f)["median"]["point_estimate"] / 1e9
    with open(os.path.join(base, "benchmark.json")) as f:
        elements = json.load(f)["throughput"]["Elements"]
    return seconds, elements


def bandmath_memory(d, py):
    """Band math in round `d` (its python.json results `py`): strata's share of copy bandwidth
    (allocating, into a reused result) and what a fresh result costs each side (allocating
    minus reused-result time, ms)."""
    b = py["bandmath"]
    root = os.path.join(d, "criterion")
    (s_new, n), (s_into, _) = criterion(root, "bandmath", "strata_cpu"), criterion(root, "bandmath", "strata_cpu_into")
    share = [16 * n / s / 1e9 / b["copy_gb_per_s"] for s in (s_new, s_into)]
    peer_ms = [n / b[k]["mpix_per_s"] / 1e3 for k in ("numexpr", "numexpr_out")]
    return share, (s_new - s_into) * 1e3, peer_ms[0] - peer_ms[1]


def round_rows(d):
    """{label: (strata figure, unit, peer name, peer figure, ratio, other)} for one round."""
    py = json.load(open(os.path.join(d, "python.json")))["results"]
    root = os.path.join(d, "criterion")
    rows = {}

    ran = lambda g: g in py and os.path.isdir(os.path.join(root, g))
    for g, what, peer in [
        ("nanmedian_t64", "nanmedian over time", "bottleneck"),
        ("nanargmax_t64", "nanargmax over time", "bottleneck"),
        ("ffill_t64", "ffill over time", "bottleneck"),
        ("cumsum_t64", "cumsum over time (NaN as 0)", "numpy"),
        ("interpolate_na_t64", "interpolate_na over time (uneven dates)", "xarray"),
        ("rolling_mean_t64", "rolling(time=5, min_periods=1).mean()", "bottleneck"),
        ("rolling_median_t64", "rolling(time=5, min_periods=1).median()", "bottleneck"),
        ("corr_t64", "xr.corr(a, b, \"time\") of a cube and its reverse", "xarray"),
        ("focal_mean_15", "rolling(y=15, x=15, center=True, min_periods=1).mean()", "scipy"),
        ("coarsen_mean_16", "coarsen(y=16, x=16).mean()", "bottleneck"),
        ("coarsen_median_16", "coarsen(y=16, x=16).median()", "bottleneck"),
        ("coarsen_median_4", "coarsen(y=4, x=4).median()", "bottleneck"),
    ]:
        if not ran(g):
            continue
        s, n = criterion(root, g, "strata_cpu")
        m = py[g]
        rate = n / s / 1e6
        others = [f"{k} {rate / m[k]['melem_per_s']:.0f}x" for k in ("numpy", "xarray") if k in m and k != peer]
        other = "; ".join(others) or None
        shape = ", ".join(map(str, m["shape"]))
        rows[f"{what}, ({shape}) f32 with NaN"] = (rate, "Melem/s", peer, m[peer]["melem_per_s"], other)

    if not ran("bandmath"):
        return rows, py
    b = py["bandmath"]
    for name, peer in [("strata_cpu", "numexpr"), ("strata_cpu_into", "numexpr_out")]:
        s, n = criterion(root, "bandmath", name)
        rate = n / s / 1e6
        label = f"band math (a-b)/(a+b)*c+0.5, three {b['shape'][0]}² f32" + (", into a reused result" if name.endswith("into") else "")
        gbs = 16 * n / s / 1e9
        rows[label] = (rate, "Mpix/s", peer, b[peer]["mpix_per_s"],
                       f"{gbs:.1f} GB/s = {gbs / b['copy_gb_per_s']:.0%} of copy; numpy {rate / b['numpy']['mpix_per_s']:.1f}x")

    g = py["gaussian_s2"]
    for name, peer in [("strata_cpu", "opencv"), ("strata_cpu_into", "opencv_out")]:
        s, n = criterion(root, "gaussian_s2", name)
        rate = n / s / 1e6
        label = f"gaussian sigma 2, reflect, {g['shape'][0]}² f32" + (", into a reused result" if name.endswith("into") else "")
        rows[label] = (rate, "Mpix/s", peer, g[peer]["mpix_per_s"], f"scipy {rate / g['scipy']['mpix_per_s']:.0f}x")

    if not ran("scheduler_100k"):
        return rows, py
    s, tasks = criterion(root, "scheduler_100k", "plan_and_run")
    us = s / tasks * 1e6
    d_ = py["scheduler_100k"]
    # per-task cost: lower is better, so the "rate" compared is tasks per microsecond
    rows["scheduler, per task (plan + run, 100k one-element blocks)"] = (
        1 / us, "tasks/µs", "dask threaded", 1 / d_["dask_threaded_us_per_task"],
        f"{us:.2f} µs vs dask's {d_['dask_threaded_us_per_task']:.0f} µs")
    return rows, py


def main():
    rounds = [round_rows(d) for d in sys.argv[1:]]
    print(f"{len(rounds)} rounds, peers and strata alternating; medians over rounds, then each round's ratio\n")
    print("| workload | strata | fastest peer | strata / peer | per round | other (round 1) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label in rounds[0][0]:
        per = [r[0][label] for r in rounds]
        unit, peer = per[0][1], per[0][2]
        ours = statistics.median(p[0] for p in per)
        theirs = statistics.median(p[3] for p in per)
        ratios = [p[0] / p[3] for p in per]
        other = next((p[4] for p in per if p[4]), "")
        if unit == "tasks/µs":
            ours_s, theirs_s = f"{1 / ours:.2f} µs/task", f"{peer} {1 / theirs:.0f} µs/task"
        else:
            ours_s, theirs_s = f"{ours:.0f} {unit}", f"{peer} {theirs:.0f} {unit}"
        each = " / ".join(f"{r:.2f}" for r in ratios)
        print(f"| {label} | {ours_s} | {theirs_s} | {statistics.median(ratios):.2f}x | {each} | {other} |")
    if "bandmath" not in rounds[0][1]:
        return
    mem = [bandmath_memory(d, r[1]) for d, r in zip(sys.argv[1:], rounds)]
    per = lambda xs, f: " / ".join(f.format(x) for x in xs)
    print(f"\nband math, share of copy bandwidth per round: allocating {per([m[0][0] for m in mem], '{:.0%}')} "
          f"(median {statistics.median(m[0][0] for m in mem):.0%}); into a reused result "
          f"{per([m[0][1] for m in mem], '{:.0%}')} (median {statistics.median(m[0][1] for m in mem):.0%})")
    print(f"band math, what a fresh result costs (allocating minus reused-result time) per round: "
          f"strata {per([m[1] for m in mem], '{:.1f}')} ms; numexpr {per([m[2] for m in mem], '{:.1f}')} ms")
    copy = [r[1]["bandmath"]["copy_gb_per_s"] for r in rounds]
    machine = json.load(open(os.path.join(sys.argv[1], "python.json")))["machine"]
    print(f"\ncopy bandwidth (np.copyto, read+write), per round: {' / '.join(f'{c:.1f}' for c in copy)} GB/s; "
          f"machine: {machine.get('cpu_model', '?')}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
