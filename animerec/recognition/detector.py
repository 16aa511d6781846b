"""The detector protocol, and face detection with nagadomi's LBP cascade (the report's detector).

The learned detector (FaceBoxes) is in `learned_detector.py`; `detectors.py` chooses between them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.errors import ModelError
from animerec.paths import CASCADE_PATH


@dataclass(frozen=True)
class ScoredBoxes:
    """Face boxes (n, 4: x, y, w, h, int32, in the cascade's geometry) and the detector's
    confidence in each (n,), from 0 to 1. The cascade has no graded confidence: its boxes score 1."""

    boxes: NDArray[np.int32]
    scores: NDArray[np.float32]

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, np.int32).reshape(-1, 4)
        scores = np.asarray(self.scores, np.float32).reshape(-1)
        if len(scores) != len(boxes):
            raise ValueError(f"ScoredBoxes: {len(boxes)} boxes but {len(scores)} scores")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)

    @classmethod
    def certain(cls, boxes: NDArray[np.int32]) -> ScoredBoxes:
        """Boxes from a detector without graded confidence."""
        boxes = np.asarray(boxes, np.int32).reshape(-1, 4)
        return cls(boxes, np.ones(len(boxes), np.float32))

    def where(self, keep: NDArray[np.bool_]) -> ScoredBoxes:
        """The boxes (and their scores) where `keep` is true."""
        return ScoredBoxes(self.boxes[keep], self.scores[keep])

    def __len__(self) -> int:
        return len(self.boxes)


class Detector(Protocol):
    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.int32]:
        """Face boxes (n, 4) as x, y, w, h in the pixels of `image` (BGR)."""
        ...

    def detect_scored(self, image: NDArray[np.uint8]) -> ScoredBoxes:
        """The same boxes with the detector's confidence in each."""
        ...


@dataclass(frozen=True)
class CascadeSettings:
    """The report's detector settings. `working_height` downscales frames taller than it before
    detection (boxes are mapped back); sizes are in source pixels."""

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 24
    max_size: int = 0  # 0 = no limit
    working_height: int = 0  # 0 = detect at full resolution
    equalize: bool = True

    def __post_init__(self) -> None:
        if self.scale_factor <= 1.0:
            raise ValueError(f"detector.scale_factor must be > 1, got {self.scale_factor}")
        if self.min_neighbors < 0:
            raise ValueError(f"detector.min_neighbors must be >= 0, got {self.min_neighbors}")
        if self.min_size < 1:
            raise ValueError(f"detector.min_size must be >= 1, got {self.min_size}")
        if self.max_size and self.max_size < self.min_size:
            raise ValueError("detector.max_size must be 0 or at least detector.min_size")
        if self.working_height < 0:
            raise ValueError(f"detector.working_height must be >= 0, got {self.working_height}")


class CascadeDetector:
    """Grey, equalised, cascade. One OpenCV cascade object per thread: `detectMultiScale`
    releases the GIL, so several detector threads run in parallel."""

    def __init__(self, settings: CascadeSettings | None = None, path: Path = CASCADE_PATH) -> None:
        self.settings = settings or CascadeSettings()
        self.path = Path(path)
        self._local = threading.local()
        self._cascade()  # load now, so a bad file fails at start-up, not in a worker thread

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            if not self.path.is_file():
                raise ModelError(f"cascade file not found: {self.path}")
            try:
                cascade = cv2.CascadeClassifier(str(self.path))
            except (cv2.error, SystemError) as error:  # OpenCV raises SystemError on some XML
                raise ModelError(f"cascade file is not a valid OpenCV cascade: {self.path}") from error
            if cascade.empty():
                raise ModelError(f"cascade file is not a valid OpenCV cascade: {self.path}")
            self._local.cascade = cascade
        return cascade

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.int32]:
        return self.detect_scored(image).boxes

    def detect_scored(self, image: NDArray[np.uint8]) -> ScoredBoxes:
        s = self.settings
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        scale = 1.0
        if s.working_height and grey.shape[0] > s.working_height:
            scale = s.working_height / grey.shape[0]
            size = (max(1, round(grey.shape[1] * scale)), s.working_height)
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        if s.equalize:
            grey = cv2.equalizeHist(grey)
        min_side = max(1, round(s.min_size * scale))
        # (0, 0) is OpenCV's "no maximum".
        max_side = round(s.max_size * scale) if s.max_size else 0
        boxes = self._cascade().detectMultiScale(
            grey,
            scaleFactor=s.scale_factor,
            minNeighbors=s.min_neighbors,
            minSize=(min_side, min_side),
            maxSize=(max_side, max_side),
        )
        if len(boxes) == 0:
            return ScoredBoxes.certain(np.zeros((0, 4), np.int32))
        return ScoredBoxes.certain(np.round(np.asarray(boxes, np.float64) / scale).astype(np.int32))
