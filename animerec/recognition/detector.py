"""Face detection with nagadomi's LBP cascade, at the report's settings by default."""

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


class Detector(Protocol):
    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.int32]:
        """Face boxes (n, 4) as x, y, w, h in the pixels of `image` (BGR)."""
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
            return np.zeros((0, 4), np.int32)
        return np.round(np.asarray(boxes, np.float64) / scale).astype(np.int32)
