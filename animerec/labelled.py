"""Folder-per-class sets of face crops, as `dataset build` writes them and `train`/`eval` read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError
from animerec.media import is_image


def list_labelled(
    folder: Path, labels: tuple[str, ...] | None = None, limit: int = 0
) -> tuple[list[Path], NDArray[np.int64], tuple[str, ...]]:
    """The image files of a folder-per-class set with their class indices; `labels` fixes the order."""
    if not folder.is_dir():
        raise InputError(f"not a folder: {folder}")
    found = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir()))
    labels = labels or found
    unknown = sorted(set(found) - set(labels))
    if unknown:
        raise InputError(
            f"class folders {', '.join(unknown)} in {folder} are not among the model's labels: " + ", ".join(labels)
        )
    paths: list[Path] = []
    classes: list[int] = []
    for index, label in enumerate(labels):
        files = sorted(p for p in (folder / label).glob("*") if p.is_file() and is_image(p))
        files = files[:limit] if limit else files
        paths += files
        classes += [index] * len(files)
    if not paths:
        raise InputError(f"no images in the class folders of {folder}")
    return paths, np.asarray(classes, np.int64), labels
