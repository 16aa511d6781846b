#!/usr/bin/env bash
# Set up, then annotate the bundled sample clip with the bundled default model (no webcam, GPU or
# ../shared needed). Writes demo_annotated.mp4 (with the sample's audio) and demo_annotated.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/animerec annotate animerec/samples/demo.mp4 -o demo_annotated.mp4 --jsonl demo_annotated.jsonl --overwrite
echo "wrote demo_annotated.mp4 and demo_annotated.jsonl" >&2
