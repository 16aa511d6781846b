#!/usr/bin/env bash
# Both ONNX models (classifier and learned detector) on CUDA against the CPU: per-frame and
# per-face times and output parity, as a Markdown table for benchmarks/RESULTS.md.
# Where no GPU is present (or ONNX Runtime's CUDA provider does not load) it says so and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU on this machine (nvidia-smi finds none); nothing was measured." >&2
  exit 1
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
exec "$python" scripts/gpu_check.py "$@"
