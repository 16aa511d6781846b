"""Write animerec/models/MODEL_CARD.md from two training runs and the exported default model.

    .venv/bin/python scripts/model_card.py runs/anime runs/seed [--model animerec/models/default.onnx]

Accuracy comes from each run's metrics.json (the same validation split for both); CPU speed is
measured here, on the exported ONNX model through the runtime classifier.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from animerec.paths import DEFAULT_MODEL_PATH, MODELS_DIR
from animerec.recognition.classifier import OnnxClassifier


def ms_per_face(classifier: OnnxClassifier, batch: int, seconds: float = 5.0) -> float:
    crops = [np.random.default_rng(i).integers(0, 255, (150, 150, 3), dtype=np.uint8) for i in range(batch)]
    classifier.classify(crops)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        classifier.classify(crops)
        runs += 1
    return (time.perf_counter() - started) / (runs * batch) * 1000


def per_class_table(ours: dict[str, Any], seed: dict[str, Any]) -> list[str]:
    rows = ["| character | ours | seed |", "|---|---:|---:|"]
    for label, accuracy in sorted(ours["per_class"].items(), key=lambda kv: kv[1]):
        rows.append(f"| {label} | {accuracy:.1%} | {seed['per_class'].get(label, float('nan')):.1%} |")
    return rows


def row(name: str, run: dict[str, Any]) -> str:
    v = run["validation"]
    return f"| {name} | {run['epochs_run']} | {v['top1']:.2%} | {v['top3']:.2%} | {run['train_seconds'] / 60:.0f} min |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ours", type=Path)
    parser.add_argument("seed", type=Path)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--framing", default="", help="the output of scripts/framing_check.py, quoted")
    args = parser.parse_args()
    ours = json.loads((args.ours / "metrics.json").read_text())
    seed = json.loads((args.seed / "metrics.json").read_text())
    classifier = OnnxClassifier(args.model, device="cpu")
    speed = {batch: ms_per_face(classifier, batch) for batch in (1, 32)}
    o, s = ours["validation"], seed["validation"]
    lines = [
        "# Model card: default.onnx",
        "",
        f"- **Model id** `{classifier.model_id}`; architecture `{ours['arch']}` ({ours['params']:,} parameters), "
        f"input {ours['recipe']['input_size']}x{ours['recipe']['input_size']} RGB scaled to 0..1; outputs `probs` "
        f"({len(classifier.labels)} characters) and an L2-normalised 128-d `embedding`.",
        "- **Data**: `../shared/data/holoen20` (20 Hololive EN characters, 9,979 Danbooru face crops). "
        "Validation: the posts whose md5 starts with 0 or 1, scored on their files in `clean.txt` "
        f"({o['n']} faces); training: every other file, noisy ones included ({ours['n_train']} faces). "
        "No post is on both sides.",
        f"- **Training**: {ours['epochs_run']} epochs, batch {ours['recipe']['batch_size']}, AdamW with warm-up and "
        "cosine decay, label smoothing 0.1, augmentation (flips, small rotations, zoom, shifts, brightness, "
        f"contrast; no hue shifts), seed {ours['seed']}: {ours['train_seconds'] / 60:.0f} minutes on "
        f"{platform.processor() or platform.machine()} with 2 cores (the machine was shared with other work).",
        "",
        "## Validation accuracy (same split for both architectures)",
        "",
        "| architecture | epochs | top-1 | top-3 | training time |",
        "|---|---:|---:|---:|---:|",
        row("ours (`anime`)", ours),
        row("the report's (`seed`)", seed),
        "",
        f"CPU inference through ONNX Runtime (this machine, {classifier.provider}): "
        f"**{speed[1]:.2f} ms/face at batch 1, {speed[32]:.2f} ms/face at batch 32** (preprocessing included).",
        "",
        *([f"Framing check (`scripts/framing_check.py`): {args.framing}", ""] if args.framing else []),
        "## Per-class top-1",
        "",
        *per_class_table(o, s),
        "",
        "Curves and confusion matrix of the default model: `training_curves.png` and `confusion.png` beside this card.",
        "",
        "## Retrain",
        "",
        "```bash",
        "bash scripts/setup.sh train,dev",
        ".venv/bin/animerec dataset build ../shared/data/holoen20 data/holoen20 --crops \\",
        "    --group-regex '^([0-9a-f]{32})' --val-groups '^[01]' --clean-list ../shared/data/holoen20/clean.txt",
        ".venv/bin/animerec train data/holoen20 --arch anime -o runs/anime",
        f".venv/bin/animerec train data/holoen20 --arch seed -o runs/seed --epochs {seed['epochs_run']}",
        ".venv/bin/animerec export runs/anime -o animerec/models/default.onnx \\",
        "    --parity-data data/holoen20/val --overwrite",
        ".venv/bin/python scripts/model_card.py runs/anime runs/seed",
        "```",
    ]
    (MODELS_DIR / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {MODELS_DIR / 'MODEL_CARD.md'}: {speed[1]:.2f} / {speed[32]:.2f} ms per face")


if __name__ == "__main__":
    main()
