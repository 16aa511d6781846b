"""Detector + report crop + classifier + naming decision: image in, named faces out."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from animerec.recognition.classifier import Classifier, Scores
from animerec.recognition.crop import report_crop
from animerec.recognition.detector import Detector
from animerec.recognition.naming import TOP_K, ClosedSetDecider, Decider, make_decider
from animerec.records import Faces

__all__ = ["TOP_K", "Recognizer", "default_decider", "name_faces"]


def name_faces(
    boxes: NDArray[np.int32],
    scores: Scores,
    labels: tuple[str, ...],
    top_k: int = TOP_K,
    decider: Decider | None = None,
) -> Faces:
    """Turn classifier scores into a Faces record: top-k names and the decided name.

    With a `decider` (see `animerec.recognition.naming`) the decision is its own, open-set with
    "unknown" for a calibrated model; `labels` and `top_k` are then the decider's. Without one it
    is the closed-set argmax of old: the best trained class, its probability the confidence.
    """
    chosen = decider if decider is not None else ClosedSetDecider(labels, top_k=top_k)
    return chosen.decide(np.asarray(boxes, np.int32), scores)


def default_decider(classifier: Classifier, top_k: int = TOP_K) -> Decider:
    """The model's own decision (open-set when it is calibrated), with no gallery."""
    info = getattr(classifier, "info", None)
    if info is None:  # a classifier that carries no model metadata: its softmax alone
        return ClosedSetDecider(classifier.labels, top_k=top_k)
    return make_decider(info, top_k=top_k)


class Recognizer:
    """Names the faces of single images; the real-time pipeline runs the same parts in stages."""

    def __init__(self, detector: Detector, classifier: Classifier, top_k: int = TOP_K,
                 decider: Decider | None = None) -> None:
        self.detector = detector
        self.classifier = classifier
        self.top_k = top_k
        self.decider = decider if decider is not None else default_decider(classifier, top_k)

    def with_decider(self, decider: Decider) -> Recognizer:
        """The same detector and classifier naming faces with another decision (e.g. a gallery)."""
        return Recognizer(self.detector, self.classifier, self.top_k, decider)

    def recognise(self, image: NDArray[np.uint8]) -> Faces:
        boxes = self.detector.detect(image)
        return self.name(boxes, [report_crop(image, box) for box in boxes])

    def recognise_crop(self, crop: NDArray[np.uint8]) -> Faces:
        """A ready face crop is one face whose box is the whole image."""
        box = np.array([[0, 0, crop.shape[1], crop.shape[0]]], np.int32)
        return self.name(box, [crop])

    def name(self, boxes: NDArray[np.int32], crops: list[NDArray[np.uint8]]) -> Faces:
        if not len(boxes):
            return Faces.empty()
        scores = self.classifier.classify(crops)
        return self.decider.decide(np.asarray(boxes, np.int32), scores)

