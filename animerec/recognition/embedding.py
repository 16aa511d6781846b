"""Embeddings of many face crops, a chunk at a time: bounded memory on folders of thousands of
images. Enrolment, calibration and the naming benchmarks read faces this one way."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.recognition.classifier import Classifier
from animerec.recognition.images import load_image

CHUNK = 128  # crops embedded at a time


def embed(classifier: Classifier, crops: Iterable[NDArray[np.uint8]]) -> NDArray[np.float32]:
    """(n, dim) embeddings, classified CHUNK crops at a time."""
    chunks, batch = [], []
    for crop in crops:
        batch.append(crop)
        if len(batch) == CHUNK:
            chunks.append(classifier.classify(batch).embeddings)
            batch = []
    if batch:
        chunks.append(classifier.classify(batch).embeddings)
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def embed_files(classifier: Classifier, files: list[Path]) -> NDArray[np.float32]:
    """Embeddings of ready face crops; an unreadable one is an error (evaluation sets must be
    whole): UnreadableImage, an InputError naming the file."""
    return embed(classifier, (load_image(path) for path in files))
