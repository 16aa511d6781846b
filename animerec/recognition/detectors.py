"""Which detector runs: `detector.kind` = cascade, learned, or both merged into one set of boxes.

Merge rule for `both`: the learned detector's boxes, already mapped to the cascade's geometry, are
compared with the cascade's; every cascade box is kept (it is the report's detector), and a learned
box is added only where no cascade box overlaps it by IoU > 0.3. Both detectors run one after the
other on the calling thread, so `both` stays within the pipeline's detector threads.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from animerec.recognition.detector import CascadeDetector, Detector, ScoredBoxes
from animerec.recognition.faceboxes import iou_matrix
from animerec.recognition.learned_detector import LearnedDetector, LearnedSettings

if TYPE_CHECKING:
    from animerec.config import Config

SAME_FACE_IOU = 0.3  # a learned box overlapping a cascade box by more is the same face


def merge(cascade: ScoredBoxes, learned: ScoredBoxes, same_face_iou: float = SAME_FACE_IOU) -> ScoredBoxes:
    """Every cascade box, then the learned boxes that overlap none of them by more than `same_face_iou`."""
    if len(cascade) and len(learned):
        new = iou_matrix(learned.boxes, cascade.boxes).max(axis=1) <= same_face_iou
    else:
        new = np.ones(len(learned), bool)
    return ScoredBoxes(np.concatenate([cascade.boxes, learned.boxes[new]]),
                       np.concatenate([cascade.scores, learned.scores[new]]))


class MergedDetector:
    """The cascade and the learned detector on the same frame, merged by `merge`."""

    def __init__(self, cascade: CascadeDetector, learned: LearnedDetector) -> None:
        self.cascade, self.learned = cascade, learned

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.int32]:
        return self.detect_scored(image).boxes

    def detect_scored(self, image: NDArray[np.uint8]) -> ScoredBoxes:
        return merge(self.cascade.detect_scored(image), self.learned.detect_scored(image))


def make_detector(config: Config, announce: bool = False) -> Detector:
    """The detector `config.detector.kind` names, with its settings; with `announce`, a line on
    standard error says where the learned detector runs (as the classifier's line does). A command
    calls it with `announce` before any work, so a bad model fails early; the pipelines it builds
    later get the same learned detector again (one session per settings and process)."""
    if config.detector.kind == "cascade":
        return CascadeDetector(config.cascade_settings())
    learned = _learned(config.learned_settings())
    if announce:
        print(learned.describe_provider(), file=sys.stderr)
    if config.detector.kind == "learned":
        return learned
    return MergedDetector(CascadeDetector(config.cascade_settings()), learned)


@lru_cache(maxsize=4)
def _learned(settings: LearnedSettings) -> LearnedDetector:
    """Loading the model and warming it up costs ~0.2 s: once per settings, shared by threads."""
    return LearnedDetector(settings)


def describe(detector: Detector) -> str:
    """The detector in words, for `doctor` and a library job's record: kind, model id, provider."""
    if isinstance(detector, MergedDetector):
        kind, learned = "both", detector.learned
    elif isinstance(detector, LearnedDetector):
        kind, learned = "learned", detector
    else:
        return "cascade (LBP cascade on the CPU)"
    return f"{kind}: FaceBoxes model {learned.model_id} on {learned.provider}"
