"""The learned detector's second look: each new box is confirmed by finding it again, zoomed in.

The fine-tuned FaceBoxes boxes shirt lettering, subtitles, bricks, hands and patches of sky as
well as faces, and its score does not separate them from the small faces it must keep
(DETECTOR_CARD.md). Looking again does. A window `CONTEXT` times the box's side, centred on it, is
scaled so that the box is `side` pixels wide (256 by default, chosen by measurement) and run
through the same network; the box is kept only where a box found there overlaps it (IoU >
SAME_BOX_IOU) with a score of at least `threshold`. A face stays a face when zoomed in; most
lettering and texture that looked like one at a small scale stops doing so.

On the held-aside clips (DETECTOR_CARD.md) it kept 1 of the 134 false boxes the learned detector
added and dropped 1 of the 332 people's faces; on drawn lettering unlike theirs it drops about 70%
(benchmarks/second_look.py). It costs one network run on a 640x640 window per new box, all of a
frame's boxes in one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.recognition.detector import ScoredBoxes
from animerec.recognition.faceboxes import iou_matrix
from animerec.recognition.learned_detector import LearnedDetector

CONTEXT = 2.5  # window side as a multiple of the box side: the face and some of what surrounds it
SAME_BOX_IOU = 0.3  # a box found in the window overlapping the zoomed box by more is the same face
LEAST_SCORE = 0.05  # boxes found again scoring less count as not found (score 0)
# Boxes the detector scores at least this are kept without a second look: three in four faces do,
# no false box on the held-aside clips did (the highest scored 0.978), and 2 of the 110 boxes it put
# on drawn lettering at threshold 0.7 did (benchmarks/second_look.py's frames). It spares most
# faces the window's cost.
SURE = 0.99


@dataclass(frozen=True)
class SecondLookSettings:
    threshold: float = 0.7  # least score of the box found again; 0 = no second look
    side: int = 256  # the box's side in the zoomed window, in pixels


def kept(scores: NDArray[np.float32], looks: NDArray[np.float32], threshold: float) -> NDArray[np.bool_]:
    """Which boxes stay: those the detector scored at least SURE, and those whose second look
    (`looks`, aligned with `scores`) reached `threshold`."""
    return np.asarray((scores >= SURE) | (looks >= threshold))


class SecondLook:
    """Confirms boxes with the learned detector's own network, zoomed in."""

    def __init__(self, learned: LearnedDetector, settings: SecondLookSettings | None = None) -> None:
        self.learned, self.settings = learned, settings or SecondLookSettings()
        self.window_side = round(CONTEXT * self.settings.side)

    def scores(self, image: NDArray[np.uint8], boxes: NDArray[np.int32]) -> NDArray[np.float32]:
        """For each box (cascade geometry), the best score of a box found again over it when zoomed
        (0 where none is found)."""
        if not len(boxes):
            return np.zeros(0, np.float32)
        if image.ndim == 2:  # the network reads colour; grey pictures come as they are
            image = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), np.uint8)
        zoomed = [self._zoom(image, box) for box in boxes]
        windows = np.stack([window for window, _ in zoomed])
        found = self.learned.detect_windows(windows, LEAST_SCORE)
        best = np.zeros(len(boxes), np.float32)
        for k, (again, (_, target)) in enumerate(zip(found, zoomed, strict=True)):
            if len(again):
                same = iou_matrix(again.boxes.astype(np.float32), target[np.newaxis])[:, 0] > SAME_BOX_IOU
                best[k] = again.scores[same].max(initial=0.0)
        return best

    def looks(self, image: NDArray[np.uint8], found: ScoredBoxes) -> NDArray[np.float32]:
        """The second look's score of each box of `found`; boxes the detector is sure of are not
        looked at again and score 1."""
        looks = np.ones(len(found), np.float32)
        unsure = found.scores < SURE
        looks[unsure] = self.scores(image, found.boxes[unsure])
        return looks

    def confirmed(self, image: NDArray[np.uint8], found: ScoredBoxes) -> ScoredBoxes:
        """The boxes of `found` the detector is sure of, and the others seen again with at least the
        threshold."""
        return found.where(kept(found.scores, self.looks(image, found), self.settings.threshold))

    def _zoom(self, image: NDArray[np.uint8], box: NDArray[np.int32]) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        """The window around `box` (edges replicated beyond the image), and the box in its pixels."""
        x, y, w, h = (float(v) for v in box)
        scale = self.settings.side / max(w, h, 1.0)
        middle = self.window_side / 2
        shift = np.array([[scale, 0, middle - (x + w / 2) * scale], [0, scale, middle - (y + h / 2) * scale]])
        window = cv2.warpAffine(image, shift, (self.window_side, self.window_side), borderMode=cv2.BORDER_REPLICATE)
        target = np.array([middle - w * scale / 2, middle - h * scale / 2, w * scale, h * scale], np.float32)
        return np.asarray(window, np.uint8), target
