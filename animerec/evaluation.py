"""Accuracy numbers and the plots people would rather look at, shared by `train` and `eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


def score(probs: NDArray[np.float32], truth: NDArray[np.int64], labels: tuple[str, ...]) -> dict[str, Any]:
    """n, top1, top3, per-class top-1 and the confusion matrix (rows: truth, columns: predicted)."""
    n = len(truth)
    predicted = probs.argmax(axis=1) if n else np.zeros(0, np.int64)
    top3 = np.argsort(-probs, axis=1)[:, :3] if n else np.zeros((0, 3), np.int64)
    confusion = np.zeros((len(labels), len(labels)), np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    per_class = {
        label: float(confusion[i, i] / confusion[i].sum()) for i, label in enumerate(labels) if confusion[i].sum()
    }
    return {
        "n": int(n),
        "top1": float((predicted == truth).mean()) if n else 0.0,
        "top3": float((top3 == truth[:, None]).any(axis=1).mean()) if n else 0.0,
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "labels": list(labels),
    }


def plot_confusion(result: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(result["confusion"], np.float64)
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    labels = result["labels"]
    fig, ax = plt.subplots(figsize=(1 + 0.45 * len(labels), 0.8 + 0.45 * len(labels)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(f"{title}: top-1 {result['top1']:.1%} on {result['n']} faces")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_report(result: dict[str, Any]) -> str:
    lines = [f"n={result['n']}  top-1 {result['top1']:.2%}  top-3 {result['top3']:.2%}", "per class:"]
    for label, accuracy in sorted(result["per_class"].items(), key=lambda kv: kv[1]):
        lines.append(f"  {label:<24} {accuracy:.2%}")
    return "\n".join(lines)
