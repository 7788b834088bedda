#!/usr/bin/env python3
"""Prints strata-vs-peer ratios from one benchmark run (stdlib only).

Usage: bench_ratios.py PYTHON_JSON CRITERION_DIR
  PYTHON_JSON    output of scripts/bench_baselines.py
  CRITERION_DIR  target/criterion after `cargo bench --bench cpu_kernels --bench scheduler`
Figures are medians; ratios above 1 mean strata is faster.
"""
import json
import os
import sys


def criterion(root, group, name):
    base = os.path.join(root, group, name, "new")
    with open(os.path.join(base, "estimates.json")) as f:
        seconds = json.load(f)["median"]["point_estimate"] / 1e9
    with open(os.path.join(base, "benchmark.json")) as f:
        elements = json.load(f)["throughput"]["Elements"]
    return seconds, elements


def main():
    py = json.load(open(sys.argv[1]))["results"]
    root = sys.argv[2]
    rows = []

    s, n = criterion(root, "nanmedian_t64", "strata_cpu")
    m = py["nanmedian_t64"]
    rate = n / s / 1e6
    rows.append(("nanmedian over T=64", f"{rate:.0f} Melem/s", f"bottleneck {m['bottleneck']['melem_per_s']:.0f}", rate / m["bottleneck"]["melem_per_s"], f"numpy {rate / m['numpy']['melem_per_s']:.1f}x"))

    b = py["bandmath"]
    for name, peer in [("strata_cpu", "numexpr"), ("strata_cpu_into", "numexpr_out")]:
        s, n = criterion(root, "bandmath", name)
        rate, gbs = n / s / 1e6, 16 * n / s / 1e9
        label = "band math (a-b)/(a+b)*c+0.5" + (", into a reused result" if name.endswith("into") else "")
        rows.append((label, f"{rate:.0f} Mpix/s, {gbs:.1f} GB/s ({gbs / b['copy_gb_per_s']:.0%} of copy)", f"{peer} {b[peer]['mpix_per_s']:.0f}", rate / b[peer]["mpix_per_s"], f"numpy {rate / b['numpy']['mpix_per_s']:.1f}x"))

    g = py["gaussian_s2"]
    for name in ["strata_cpu", "strata_cpu_into"]:
        s, n = criterion(root, "gaussian_s2", name)
        rate = n / s / 1e6
        label = "gaussian sigma 2, reflect" + (", into a reused result" if name.endswith("into") else "")
        rows.append((label, f"{rate:.0f} Mpix/s", f"OpenCV {g['opencv']['mpix_per_s']:.0f}", rate / g["opencv"]["mpix_per_s"], f"scipy {rate / g['scipy']['mpix_per_s']:.1f}x"))

    s, tasks = criterion(root, "scheduler_100k", "plan_and_run")
    us = s / tasks * 1e6
    d = py["scheduler_100k"]
    rows.append(("scheduler, per task (plan + run)", f"{us:.2f} µs", f"dask threaded {d['dask_threaded_us_per_task']:.0f} µs", d["dask_threaded_us_per_task"] / us, f"dask sync {d['dask_sync_us_per_task'] / us:.0f}x"))

    print("| workload | strata (median) | fastest peer | strata / peer | other |")
    print("| --- | --- | --- | --- | --- |")
    for label, ours, peer, ratio, other in rows:
        print(f"| {label} | {ours} | {peer} | {ratio:.2f}x | {other} |")
    print(f"\ncopy bandwidth (np.copyto, read+write): {b['copy_gb_per_s']:.1f} GB/s; machine: {json.load(open(sys.argv[1]))['machine'].get('cpu_model', '?')}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
