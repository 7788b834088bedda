"""The summary files every benchmark script writes: summary.json, and summary.md (a table of
the rows and the ratios), also printed."""

import json


def write_summary(folder, summary, header, row, ratio_format):
    """summary: JSON-able dict with "rows" and "ratios"; header: column names; row: one row's
    cells as strings; ratio_format: how a ratio prints."""
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row(r)) + " |" for r in summary["rows"]]
    lines += ["", *(f"- {k}: {ratio_format(v)}" for k, v in summary["ratios"].items())]
    (folder / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
