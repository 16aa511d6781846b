"""The open-set calibration's measurements: which faces are known and which unknown, how the
runtime sees them, one prototype per character, and the threshold and temperature that decide.

`animerec calibrate` writes what these measure into a model; `eval-enroll` and the naming
benchmark read faces the same way.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError, UsageError
from animerec.labelled import list_labelled
from animerec.recognition.classifier import OnnxClassifier
from animerec.recognition.crop import framed_in_scene, report_crop, resize_square
from animerec.recognition.detector import CascadeDetector
from animerec.recognition.embedding import embed
from animerec.recognition.images import load_image
from animerec.recognition.naming import unit_rows
from animerec.train.identities import identity_faces, load_identity_split

SCALES = np.geomspace(1.0, 200.0, 60)  # the temperatures fit_scale tries
VIDEO_STEP = 6  # anime repeats frames: every 6th loses no face

def split_training(train_dir: Path, labels: tuple[str, ...], val_regex: str,
                   clean: Path | None) -> tuple[list[Path], NDArray[np.int64], list[Path], NDArray[np.int64]]:
    """(training files, classes, validation files, classes): posts never straddle the split."""
    try:
        pattern = re.compile(val_regex)
    except re.error as error:
        raise UsageError(f"--val-regex is not a valid regular expression: {error}") from error
    keep = set(clean.read_text(encoding="utf-8").split()) if clean else None
    paths, classes, _ = list_labelled(train_dir, labels)
    is_val = np.array([bool(pattern.match(p.name)) for p in paths])
    in_clean = np.array([keep is None or f"{p.parent.name}/{p.name}" in keep for p in paths])
    train = np.flatnonzero(~is_val)
    val = np.flatnonzero(is_val & in_clean)
    missing = sorted(set(labels) - {labels[c] for c in classes[train]})
    if missing:
        raise InputError(f"no training faces for {', '.join(missing)} in {train_dir}")
    if not len(val):
        raise InputError(f"no validation faces in {train_dir} (file names matching {val_regex!r})")
    return [paths[i] for i in train], classes[train], [paths[i] for i in val], classes[val]


def video_faces(path: Path, step: int, detector: CascadeDetector) -> Iterator[NDArray[np.uint8]]:
    """Every face the cascade finds in every `step`-th frame (anime repeats frames: no loss)."""
    import av

    try:
        with av.open(str(path)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % step == 0:
                    image = np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)
                    yield from (report_crop(image, box) for box in detector.detect(image))
    except av.error.FFmpegError as error:
        raise InputError(f"cannot read video {path}: {error}") from error


# The cascade's box on a tight face crop in a scene, measured on the naming clips (median): 1.05
# times the crop's side, its centre 4% of the side low. Crops are framed at SEEN_SIDE pixels.
SEEN_BOX_RATIO, SEEN_SHIFT, SEEN_SIDE = 1.05, (0.0, 0.04), 192


def calibration_unknowns(classifier: OnnxClassifier, manifest: Path, root: Path, step: int) -> NDArray[np.float32]:
    """Embeddings of the manifest's calibration unknowns: identities never trained on (whole
    illustrations through the cascade) and the faces of its clips."""
    split = load_identity_split(manifest, root)
    detector = CascadeDetector()
    parts = [embed(classifier, identity_faces(identity, detector)) for identity in split.calibration]
    parts += [embed(classifier, video_faces(video, step, detector)) for video in split.calibration_videos]
    return np.concatenate([p for p in parts if len(p)])


def embed_as_seen(classifier: OnnxClassifier, files: list[Path]) -> NDArray[np.float32]:
    """Embeddings of face crops as given, then of the same crops as the runtime sees them in a
    scene (crop.framed_in_scene at the cascade's typical box; the scene: another crop, turned
    over): (2n, dim). Prototypes and the known faces' similarities from both looks, so that the
    decision does not reject a face for the rim of scene a detector's crop shows around it.
    Crops stream from disk (read twice) rather than wait in memory: a training set is ~1 GB of them."""
    def faces() -> Iterator[NDArray[np.uint8]]:
        return (resize_square(load_image(path), SEEN_SIDE) for path in files)

    with_next = itertools.pairwise(itertools.chain(faces(), itertools.islice(faces(), 1)))
    scenes = (framed_in_scene(face, following[::-1], SEEN_BOX_RATIO, SEEN_SHIFT) for face, following in with_next)
    return np.concatenate([embed(classifier, faces()), embed(classifier, scenes)])


def prototypes(embeddings: NDArray[np.float32], classes: NDArray[np.int64],
               n: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(centre, unit class means of centred, re-normalised embeddings)."""
    centre = embeddings.mean(axis=0).astype(np.float32)
    centred = unit_rows(embeddings - centre)
    return centre, unit_rows(np.stack([centred[classes == c].mean(axis=0) for c in range(n)]))


def choose_threshold(known: NDArray[np.float32], unknown: NDArray[np.float32], target_accept: float,
                     target_named: float, prefer: str = "balanced") -> float:
    """Midway between the highest threshold still naming `target_accept` of the known faces and
    the lowest naming at most `target_named` of the unknown ones, when both targets can be met.
    When they cannot, `prefer` decides: "accept" keeps the known-face target, "reject" the
    unknown-face one, "balanced" maximises (known named - unknown named), the curve's knee."""
    if not 0 < target_accept <= 1 or not 0 <= target_named < 1:
        raise UsageError("--target-accept must be in (0, 1] and --target-named in [0, 1)")
    ordered = np.sort(known)
    accept_at = float(ordered[int(np.floor((1 - target_accept) * len(ordered)))])
    descending = np.sort(unknown)[::-1]
    allowed = int(np.floor(target_named * len(descending)))
    reject_at = float(np.nextafter(descending[allowed], np.float32(2))) if allowed < len(descending) else -1.0
    if reject_at <= accept_at:
        return (accept_at + reject_at) / 2
    if prefer == "accept":
        return accept_at
    if prefer == "reject":
        return reject_at
    candidates = np.unique(np.concatenate([known, unknown]))
    named_known = 1 - np.searchsorted(ordered, candidates, side="left") / len(ordered)
    named_unknown = 1 - np.searchsorted(np.sort(unknown), candidates, side="left") / len(unknown)
    return float(candidates[int(np.argmax(named_known - named_unknown))])


def fit_scale(similarity: NDArray[np.float32], truth: NDArray[np.int64], unknown: NDArray[np.float32],
              threshold: float) -> float:
    """The temperature that makes the probabilities honest: best log-likelihood of the known
    faces' true classes and of "unknown" for the unknown faces."""
    def loss(scale: float) -> float:
        total = 0.0
        for sims, target in ((similarity, truth), (unknown, np.full(len(unknown), unknown.shape[1]))):
            logits = scale * np.concatenate([sims, np.full((len(sims), 1), threshold)], axis=1)
            logits -= logits.max(axis=1, keepdims=True)
            log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            total -= float(log_probs[np.arange(len(sims)), target].sum())
        return total

    return float(min(SCALES, key=loss))


def rates(known: NDArray[np.float32], unknown: NDArray[np.float32], threshold: float) -> tuple[float, float]:
    """(share of known faces named, share of unknown faces named) at `threshold`."""
    return float(np.mean(known >= threshold)), float(np.mean(unknown >= threshold))
