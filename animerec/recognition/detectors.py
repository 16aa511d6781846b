"""Which detector runs: `detector.kind` = cascade, learned, or both merged into one set of boxes.

Every box the learned detector adds (all of them with `learned`; with `both`, the ones the merge
adds) is confirmed by its second look (second_look.py; `detector.confirm_threshold`, 0 = off).

Merge rule for `both`: the learned detector's boxes, already mapped to the cascade's geometry, are
compared with the cascade's; every cascade box is kept (it is the report's detector), and a learned
box is added only where no cascade box overlaps it by IoU > 0.3. The two detectors run at the same
time, the learned one on a helper thread (OpenCV and ONNX Runtime both release the GIL), so a frame
costs the slower of the two rather than their sum: what a live frame's latency is made of (live
sources detect one frame at a time: `pipeline.live_detector_threads`).
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from animerec.recognition.detector import CascadeDetector, Detector, ScoredBoxes
from animerec.recognition.faceboxes import iou_matrix
from animerec.recognition.learned_detector import LearnedDetector, LearnedSettings
from animerec.recognition.second_look import SecondLook

if TYPE_CHECKING:
    from animerec.config import Config

SAME_FACE_IOU = 0.3  # a learned box overlapping a cascade box by more is the same face


def added(cascade: ScoredBoxes, learned: ScoredBoxes, same_face_iou: float = SAME_FACE_IOU) -> NDArray[np.bool_]:
    """Which learned boxes overlap no cascade box by more than `same_face_iou`: the ones `merge` adds."""
    if len(cascade) and len(learned):
        return np.asarray(iou_matrix(learned.boxes, cascade.boxes).max(axis=1) <= same_face_iou)
    return np.ones(len(learned), bool)


def merge(cascade: ScoredBoxes, learned: ScoredBoxes, same_face_iou: float = SAME_FACE_IOU) -> ScoredBoxes:
    """Every cascade box, then the learned boxes that overlap none of them by more than `same_face_iou`."""
    return _joined(cascade, learned.where(added(cascade, learned, same_face_iou)))


def _joined(first: ScoredBoxes, then: ScoredBoxes) -> ScoredBoxes:
    return ScoredBoxes(np.concatenate([first.boxes, then.boxes]), np.concatenate([first.scores, then.scores]))


class MergedDetector:
    """The cascade and the learned detector on the same frame, merged by `merge`; the learned boxes
    the merge adds are confirmed by the second look first, where there is one."""

    def __init__(self, cascade: CascadeDetector, learned: LearnedDetector, second_look: SecondLook | None) -> None:
        self.cascade, self.learned, self.second_look = cascade, learned, second_look

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.int32]:
        return self.detect_scored(image).boxes

    def detect_scored(self, image: NDArray[np.uint8]) -> ScoredBoxes:
        beside = _helpers().submit(self.learned.detect_scored, image)
        cascade = self.cascade.detect_scored(image)
        learned = beside.result()
        new = learned.where(added(cascade, learned))
        if self.second_look is not None:
            new = self.second_look.confirmed(image, new)
        return _joined(cascade, new)


class ConfirmedDetector:
    """The learned detector alone, every box confirmed by its second look."""

    def __init__(self, learned: LearnedDetector, second_look: SecondLook) -> None:
        self.learned, self.second_look = learned, second_look

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.int32]:
        return self.detect_scored(image).boxes

    def detect_scored(self, image: NDArray[np.uint8]) -> ScoredBoxes:
        return self.second_look.confirmed(image, self.learned.detect_scored(image))


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
    look = config.second_look_settings()
    second_look = SecondLook(learned, look) if look.threshold > 0 else None
    if config.detector.kind == "both":
        return MergedDetector(CascadeDetector(config.cascade_settings()), learned, second_look)
    return learned if second_look is None else ConfirmedDetector(learned, second_look)


@lru_cache(maxsize=1)
def _helpers() -> ThreadPoolExecutor:
    """The threads the learned detector runs on beside the cascade: one pool per process, as many
    as cores (more callers than cores would only queue for them); idle ones cost nothing."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="learned-detector")


@lru_cache(maxsize=4)
def _learned(settings: LearnedSettings) -> LearnedDetector:
    """Loading the model and warming it up costs ~0.2 s: once per settings, shared by threads."""
    return LearnedDetector(settings)


def describe(detector: Detector) -> str:
    """The detector in words, for `doctor` and a library job's record: kind, model id, provider, and
    the second look's settings."""
    if isinstance(detector, MergedDetector | ConfirmedDetector):
        kind = "both" if isinstance(detector, MergedDetector) else "learned"
        learned, second_look = detector.learned, detector.second_look
    elif isinstance(detector, LearnedDetector):
        kind, learned, second_look = "learned", detector, None
    else:
        return "cascade (LBP cascade on the CPU)"
    look = "no second look" if second_look is None else (
        f"second look at {second_look.settings.side} px, kept from {second_look.settings.threshold:g}")
    return f"{kind}: FaceBoxes model {learned.model_id} on {learned.provider}, {look}"
