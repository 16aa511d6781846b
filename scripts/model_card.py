"""Write animerec/models/MODEL_CARD.md from the default model's training run, the runs it is
compared with, and the exported default model.

    .venv/bin/python scripts/model_card.py runs/anime runs/cosface runs/seed [--model animerec/models/default.onnx]

Accuracy comes from each run's metrics.json (the same validation split for all); CPU speed is
measured here, on the exported ONNX model through the runtime classifier. Hand-written findings
go into the card's "Findings" section after it is generated.
"""

from __future__ import annotations

import argparse
import json
import os
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


def per_class_table(runs: list[dict[str, Any]]) -> list[str]:
    rows = ["| character | " + " | ".join(f"`{r['arch']}`" for r in runs) + " |",
            "|---|" + "---:|" * len(runs)]
    for label, _ in sorted(runs[0]["validation"]["per_class"].items(), key=lambda kv: kv[1]):
        cells = [f"{r['validation']['per_class'].get(label, float('nan')):.1%}" for r in runs]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows


def loss_text(run: dict[str, Any]) -> str:
    recipe = run["recipe"]
    if recipe.get("margin", 0) > 0 and recipe.get("angular"):
        return f"sub-centre ArcFace loss (angular margin {recipe['margin']}, scale {recipe['scale']})"
    if recipe.get("margin", 0) > 0:
        return f"CosFace loss (cosine head, margin {recipe['margin']}, scale {recipe['scale']})"
    return f"softmax cross-entropy, label smoothing {recipe['label_smoothing']}"


def data_text(run: dict[str, Any]) -> str:
    n_val = run["validation"]["n"]
    split = ("Validation: the posts whose md5 starts with 0 or 1, scored on their files in `clean.txt` "
             f"({n_val} faces)")
    if not run["recipe"].get("identities"):
        return ("`../shared/data/holoen20` (20 Hololive EN characters, 9,979 Danbooru face crops). "
                f"{split}; training: every other file, noisy ones included ({run['n_train']} faces). "
                "No post is on both sides.")
    return (f"{run['identities']} identities of `animerec/train/identities.toml` ({run['n_train']} faces): "
            "holoen20's training posts (the 20 characters the model names), keima3, genshin38, figures10 and "
            "more_identities, less the 25 calibration identities it holds out. The other identities only "
            f"teach the embedding: the model names the 20 holoen20 characters. {split}; danbooru6 is never "
            "trained or calibrated on.")


def training_text(run: dict[str, Any]) -> str:
    recipe = run["recipe"]
    if not recipe.get("identities"):
        return (f"{run['epochs_run']} epochs, batch {recipe['batch_size']}, AdamW with warm-up and "
                f"cosine decay, {loss_text(run)}, augmentation (flips, small rotations, zoom, shifts, brightness, "
                "contrast; no hue shifts)")
    return (f"{run['epochs_run']} epochs of {recipe['steps_per_epoch']} class-balanced batches of "
            f"{recipe['batch_size']} (the named characters {recipe['named_share']:.0%} of each batch), AdamW with "
            f"warm-up and cosine decay, {loss_text(run)}; {recipe['renders']} degraded renders per face made "
            "before training (`animerec/train/degrade.py`: the report crop around a simulated detector box, "
            "partial crops, small faces, blur, JPEG, a camera filming a screen), then flips, crop jitter, "
            "brightness and contrast per batch (no hue shifts)")


def train_command(run: dict[str, Any]) -> str:
    data = "../shared/data" if run["recipe"].get("identities") else "data/holoen20"
    epochs = f" --epochs {run['epochs_run']}" if run["epochs_run"] != run["recipe"]["epochs"] else ""
    return f".venv/bin/animerec train {data} --arch {run['arch']} -o runs/{run['arch']}{epochs}"


def row(name: str, run: dict[str, Any]) -> str:
    v = run["validation"]
    return f"| {name} | {run['epochs_run']} | {v['top1']:.2%} | {v['top3']:.2%} | {run['train_seconds'] / 60:.0f} min |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ours", type=Path, help="the training run of the default model")
    parser.add_argument("others", type=Path, nargs="*", help="training runs to compare with (e.g. runs/seed)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--framing", default="", help="the output of scripts/framing_check.py, quoted")
    args = parser.parse_args()
    ours = json.loads((args.ours / "metrics.json").read_text())
    others = [json.loads((run / "metrics.json").read_text()) for run in args.others]
    classifier = OnnxClassifier(args.model, device="cpu")
    speed = {batch: ms_per_face(classifier, batch) for batch in (1, 32)}
    lines = [
        "# Model card: default.onnx",
        "",
        f"- **Model id** `{classifier.model_id}`; architecture `{ours['arch']}` ({ours['params']:,} parameters), "
        f"input {ours['recipe']['input_size']}x{ours['recipe']['input_size']} RGB scaled to 0..1; outputs `probs` "
        f"({len(classifier.labels)} characters) and an L2-normalised 128-d `embedding`.",
        f"- **Data**: {data_text(ours)}",
        f"- **Training**: {training_text(ours)}, seed {ours['seed']}: {ours['train_seconds'] / 60:.0f} minutes on "
        f"{platform.processor() or platform.machine()} with {os.cpu_count()} cores.",
        "",
        "## Validation accuracy (the same split for every architecture)",
        "",
        "| architecture | epochs | top-1 | top-3 | training time |",
        "|---|---:|---:|---:|---:|",
        row(f"default (`{ours['arch']}`)", ours),
        *(row(f"`{run['arch']}`", run) for run in others),
        "",
        "## Findings",
        "",
        f"CPU inference through ONNX Runtime (this machine, {classifier.provider}): "
        f"**{speed[1]:.2f} ms/face at batch 1, {speed[32]:.2f} ms/face at batch 32** (preprocessing included).",
        "",
        *([f"Framing check (`scripts/framing_check.py`): {args.framing}", ""] if args.framing else []),
        "## Per-class top-1",
        "",
        *per_class_table([ours, *others]),
        "",
        "Curves and confusion matrix of the default model: `training_curves.png` and `confusion.png` beside this card.",
        "",
        "## Retrain",
        "",
        "```bash",
        "bash scripts/setup.sh train,dev",
        ".venv/bin/animerec dataset build ../shared/data/holoen20 data/holoen20 --crops \\",
        "    --group-regex '^([0-9a-f]{32})' --val-groups '^[01]' --clean-list ../shared/data/holoen20/clean.txt",
        *(train_command(r) for r in [ours, *others]),
        f".venv/bin/animerec export runs/{ours['arch']} -o animerec/models/default.onnx \\",
        "    --parity-data data/holoen20/val --overwrite",
        "# then calibrate it for unknown faces: the command in docs/OPEN_SET.md",
        ".venv/bin/python scripts/model_card.py " + " ".join(f"runs/{r['arch']}" for r in [ours, *others]),
        "```",
    ]
    (MODELS_DIR / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {MODELS_DIR / 'MODEL_CARD.md'}: {speed[1]:.2f} / {speed[32]:.2f} ms per face")


if __name__ == "__main__":
    main()
