"""Accuracy numbers and the plots people would rather look at, shared by `train`, `eval` and
`eval-enroll` (few-shot enrolment with a temporary gallery) and the naming benchmark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError
from animerec.media import is_image
from animerec.recognition.classifier import Scores
from animerec.recognition.gallery import Character, Gallery, clean_name
from animerec.recognition.naming import OpenSetDecider
from animerec.records import UNKNOWN


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


def class_files(data_dir: Path, shots: int) -> dict[str, list[Path]]:
    """The image files of each class folder of `data_dir`, by character name; each must hold more than `shots`."""
    if shots < 1:
        raise InputError(f"--shots must be at least 1, got {shots}")
    if not data_dir.is_dir():
        raise InputError(f"not a folder: {data_dir}")
    classes = {}
    for folder in sorted(p for p in data_dir.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))
        if len(files) <= shots:
            raise InputError(f"{folder} has {len(files)} image(s): --shots {shots} needs at least {shots + 1}")
        classes[clean_name(folder.name)] = files
    if not classes:
        raise InputError(f"no class folders in {data_dir}")
    return classes


def decided_names(decider: OpenSetDecider, embeddings: NDArray[np.float32]) -> tuple[str, ...]:
    """The names the recogniser would give faces with these embeddings."""
    n = len(embeddings)
    if not n:
        return ()
    scores = Scores(np.zeros((n, decider.trained), np.float32), embeddings)
    return decider.decide(np.zeros((n, 4), np.int32), scores).names


def few_shot(decider: OpenSetDecider, model_id: str, embedded: dict[str, NDArray[np.float32]], shots: int,
             seed: int, negatives: NDArray[np.float32] | None) -> dict[str, float | int | None]:
    """Enrol `shots` random faces per class, name the rest; the JSON document of the contract."""
    rng = np.random.default_rng(seed)
    characters, truth, tests = [], [], []
    for name, embeddings in embedded.items():
        order = rng.permutation(len(embeddings))
        characters.append(Character(name, embeddings[order[:shots]]))
        tests.append(embeddings[order[shots:]])
        truth += [name] * (len(embeddings) - shots)
    with_gallery = decider.with_gallery(Gallery(model_id, tuple(characters)))
    names = np.array(decided_names(with_gallery, np.concatenate(tests)), dtype=object)
    false_accept, n_negatives = None, 0
    if negatives is not None:
        n_negatives = len(negatives)
        named = np.array(decided_names(with_gallery, negatives), dtype=object) != UNKNOWN
        false_accept = float(named.mean()) if n_negatives else 0.0
    return {
        "n": len(truth),
        "top1": float(np.mean(names == np.array(truth, dtype=object))),
        "known_accept": float(np.mean(names != UNKNOWN)),
        "false_accept": false_accept,
        "n_negatives": n_negatives,
    }
