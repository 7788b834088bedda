#!/usr/bin/env bash
# Prepares strata's real-GPU check (scripts/gpu_check_on_device.sh) from the project root, on
# this GPU-less machine: the shared prepare step with strata's GPU test binaries, this repo's
# device script and verdict beside them, and the binaries packed into one xz tarball, which
# the device script unpacks with python3's tarfile. Packed, .devrun/ and .gl/ take about 38 MB,
# under the device tool's 64 MiB carry limit; the stripped binaries alone take about 150 MB.
# Then one device run: command `bash .devrun/on-device.sh`, carry [".gl", ".devrun"].
set -euo pipefail
cd "$(dirname "$0")/.."
../shared/device/prepare.sh gpu gpu_elementwise gpu_reduce gpu_split gpu_stress gpu_windows gpu_along
cp scripts/gpu_check_on_device.sh .devrun/on-device.sh
cp scripts/gpu_verdict.py .devrun/
tar -C .devrun -cf - strata-bench tutorial tests | xz -T0 -6 > .devrun/bins.tar.xz
rm -rf .devrun/strata-bench .devrun/tutorial .devrun/tests
du -sh .devrun .gl
