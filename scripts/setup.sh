#!/usr/bin/env bash
# Create .venv at the repository root and install Animerec into it (editable).
#   bash scripts/setup.sh            the runtime: recognise, annotate, run, serve, bench
#   bash scripts/setup.sh train,dev  plus training/export (TensorFlow, tf2onnx) and the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
"$python" - <<'PY'
import sys
if not ((3, 10) <= sys.version_info[:2] <= (3, 12)):
    sys.exit(f"Animerec supports Python 3.10 to 3.12; this is {sys.version.split()[0]} (set PYTHON=...)")
PY
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
echo "animerec installed in .venv: $(.venv/bin/animerec --version)" >&2
