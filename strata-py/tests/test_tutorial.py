"""examples/tutorial.py, the notebook in Python, writes what examples/tutorial.rs writes: the
same .npy files, value for value."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def rust_tutorial() -> Path:
    """The Rust example's binary (`cargo test --release` builds it; built here if missing)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    exe = target / "release" / "examples" / "tutorial"
    if not exe.exists():
        subprocess.run(["cargo", "build", "--release", "--example", "tutorial"], cwd=ROOT, check=True)
    return exe


def test_tutorial_py_writes_what_the_rust_example_writes(tmp_path):
    py_out, rs_out = tmp_path / "py", tmp_path / "rs"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "tutorial.py"), "--out", str(py_out), "--backend", "cpu"],
        check=True,
    )
    subprocess.run([str(rust_tutorial()), "--out", str(rs_out), "--backend", "cpu", "--quiet"], check=True)
    for name in ["monthly_rgb", "ndvi_mean", "lum_median", "smoothed", "mask"]:
        want, got = np.load(rs_out / f"{name}.npy"), np.load(py_out / f"{name}.npy")
        assert got.dtype == want.dtype and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert (py_out / "monthly_rgb.png").stat().st_size > 0  # matplotlib drew the notebook's plots
