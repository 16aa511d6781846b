"""The identity embedding's training data: every training identity's faces, each with degraded
renders made once before training, drawn in class-balanced batches with cheap jitter.

Balanced sampling draws an identity first, then one of its faces, so an Arknights operator with
4 drawings weighs as much as a holoen20 character with 500; the named characters together get
`named_share` of every batch, so the 20 shipped names keep enough samples however many other
identities there are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import cv2
import keras
import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError
from animerec.progress import tracked
from animerec.recognition.crop import resize_square, to_model_input
from animerec.recognition.detector import CascadeDetector
from animerec.train.degrade import render
from animerec.train.identities import Identity, IdentitySplit, identity_faces

RENDER_SIDE = 96  # degradations work on this square; the stored faces are a little over input size
SURROUNDS = 64  # how many recent faces a render picks its surround from


@dataclass(frozen=True, eq=False)
class IdentitySet:
    """faces (n, variants, side, side, 3) RGB uint8, variant 0 clean, the others degraded."""

    faces: NDArray[np.uint8]
    identity: NDArray[np.int64]  # (n,) index into labels
    labels: tuple[str, ...]  # named characters first
    named: int


def build_identity_set(split: IdentitySplit, input_size: int, renders: int, seed: int,
                       limit_per_identity: int = 0) -> IdentitySet:
    """Load (and, for whole illustrations, detect) every training face and render its variants."""
    rng = np.random.default_rng(seed)
    side = input_size * 9 // 8  # room for crop jitter
    detector = CascadeDetector()
    identities: list[Identity] = [*split.named, *split.extra]
    faces, owners = [], []
    recent: deque[NDArray[np.uint8]] = deque(maxlen=SURROUNDS)  # earlier faces, flipped: a face's scene
    for index, identity in enumerate(tracked(identities, "rendering identities", "character")):
        if limit_per_identity:
            identity = replace(identity, files=identity.files[:limit_per_identity])
        for crop in identity_faces(identity, detector):
            base = resize_square(crop, RENDER_SIDE)
            recent.append(np.ascontiguousarray(base[::-1, ::-1]))
            variants = [base, *(resize_square(render(base, recent[int(rng.integers(len(recent)))], rng), RENDER_SIDE)
                                for _ in range(renders))]
            faces.append(np.stack([cv2.cvtColor(resize_square(v, side), cv2.COLOR_BGR2RGB) for v in variants]))
            owners.append(index)
    missing = sorted(set(range(len(split.named))) - set(owners))
    if missing:
        raise InputError(f"no training faces for {', '.join(identities[i].name for i in missing)}")
    return IdentitySet(np.stack(faces), np.asarray(owners, np.int64), split.labels, len(split.named))


def validation_inputs(split: IdentitySplit, input_size: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The named characters' validation faces, preprocessed exactly as at run time."""
    crops, classes = [], []
    for index, identity in enumerate(split.named_val):
        found = list(identity_faces(identity))
        crops += found
        classes += [index] * len(found)
    return to_model_input(crops, input_size), np.asarray(classes, np.int64)


def sampling_weights(identity: NDArray[np.int64], classes: int, named: int, named_share: float) -> NDArray[np.float64]:
    """Per-face probabilities: identities equal within the named and within the other group,
    the named group `named_share` of the draw (all of it when there is no other identity)."""
    counts = np.bincount(identity, minlength=classes).astype(np.float64)
    is_named = np.arange(classes) < named
    others = int(np.count_nonzero(counts[~is_named]))
    share = np.where(is_named, named_share if others else 1.0, 1 - named_share)
    group_size = np.where(is_named, np.count_nonzero(counts[is_named]), max(others, 1))
    weights = (share / group_size)[identity] / counts[identity]
    return weights / weights.sum()


def jitter(face: NDArray[np.uint8], size: int, rng: np.random.Generator) -> NDArray[np.float32]:
    """Cheap per-sample jitter: crop position and scale, mirror, brightness and contrast."""
    side = face.shape[0]
    window = int(rng.integers(int(side * 0.85), side + 1))
    x, y = (int(v) for v in rng.integers(0, side - window + 1, 2))
    out = cv2.resize(face[y : y + window, x : x + window], (size, size), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        out = out[:, ::-1]
    image = out.astype(np.float32) / 255.0
    mean = image.mean()
    image = (image - mean) * rng.uniform(0.8, 1.2) + mean + rng.uniform(-0.12, 0.12)
    return np.clip(image, 0.0, 1.0)


class BalancedBatches(keras.utils.PyDataset):
    """`steps` batches per epoch of (images, one-hot identities); each epoch's draw depends only
    on (seed, epoch, batch), so a run is reproducible."""

    def __init__(self, data: IdentitySet, input_size: int, batch_size: int, steps: int, seed: int,
                 named_share: float) -> None:
        super().__init__()
        self.data, self.input_size, self.batch_size, self.steps, self.seed = data, input_size, batch_size, steps, seed
        self.weights = sampling_weights(data.identity, len(data.labels), data.named, named_share)
        self.epoch = 0

    def __len__(self) -> int:
        return self.steps

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, index: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        rng = np.random.default_rng((self.seed, self.epoch, index))
        picks = rng.choice(len(self.weights), self.batch_size, p=self.weights)
        variants = rng.integers(0, self.data.faces.shape[1], self.batch_size)
        faces = self.data.faces[picks, variants]
        images = np.stack([jitter(face, self.input_size, rng) for face in faces])
        targets = np.eye(len(self.data.labels), dtype=np.float32)[self.data.identity[picks]]
        return images, targets
