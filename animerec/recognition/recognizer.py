"""Detector + report crop + classifier + naming decision: image in, named faces out."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from animerec.recognition.classifier import Classifier, Scores
from animerec.recognition.crop import report_crop
from animerec.recognition.detector import Detector
from animerec.records import Faces

TOP_K = 3


def name_faces(boxes: NDArray[np.int32], scores: Scores, labels: tuple[str, ...], top_k: int = TOP_K) -> Faces:
    """Turn class probabilities into a Faces record: top-k names and the decided name.

    Until open-set recognition exists the decision is the best class, with its probability as
    the confidence.
    """
    n = len(boxes)
    k = min(top_k, len(labels))
    order = np.argsort(-scores.probs, axis=1)[:, :k]
    top_probs = np.take_along_axis(scores.probs, order, axis=1)
    top_names = tuple(tuple(labels[j] for j in row) for row in order)
    names = tuple(row[0] for row in top_names)
    confidence = top_probs[:, 0] if n else np.zeros(0, np.float32)
    return Faces(boxes=boxes, top_names=top_names, top_probs=top_probs, names=names, confidence=confidence)


class Recognizer:
    """Names the faces of single images; the real-time pipeline runs the same parts in stages."""

    def __init__(self, detector: Detector, classifier: Classifier, top_k: int = TOP_K) -> None:
        self.detector = detector
        self.classifier = classifier
        self.top_k = top_k

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
        return name_faces(np.asarray(boxes, np.int32), scores, self.classifier.labels, self.top_k)
