#!/usr/bin/env bash
# The GPU check, on a lent GPU machine (one H200; its python3 has torch, torchvision, timm, tensorboard, pandas and
# seaborn, but no PyAV, torchcodec or submitit, and no network). Carry the missing wheels in .whl/ (git-ignored),
# made here with:
#   pip download av submitit --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 -d .whl
# Usage: scripts/gpu_check.sh [OUT]   -> OUT/results/perf/gpu.md and gpu.json (each stage written as it ends)
# Needs <= 5 minutes there; on a machine without CUDA it resolves every stage on the meta device and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-.}}"
PY="${PYTHON:-python3}"
if [ -d .whl ]; then
  "$PY" -m pip install --no-index --find-links .whl --quiet av submitit 2>/dev/null || echo "note: could not install the carried wheels"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m benchmark bench gpu --out "$OUT"
