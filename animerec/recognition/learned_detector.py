"""The learned face detector: FaceBoxes with anime weights on ONNX Runtime (see DETECTOR_CARD.md).

It finds faces the cascade misses (profiles, tilted heads, close-ups, other drawing styles). The
published weights find only faces of about 96 px and more in a 720p frame (their smallest anchors
are 32 px on an input trained at about 1024 px); the shipped model, fine-tuned on faces pasted at
24-400 px, finds most faces from 40 px (the smallest on the naming clips). Frames are resized to
`input_height` (up or down) before the network, so that setting trades speed for the smallest face
it finds.

The network's boxes are head boxes; the report crop is defined on the cascade's box, so they are
mapped to the cascade's geometry (`HeadGeometry.to_cascade`) before anyone sees them. How a model's
boxes sit around the cascade's is a property of its training: each exported model carries its own
in its metadata (the published weights' is `PUBLISHED`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.errors import ModelError
from animerec.paths import FACEBOXES_PATH
from animerec.recognition.classifier import CUDA, execution_providers, quiet_stderr, where_it_runs
from animerec.recognition.detector import ScoredBoxes
from animerec.recognition.faceboxes import LOC_OUTPUT, SCORE_OUTPUT, anchors, decode, nms

Heads = NDArray[np.float32]  # (n, 4) head boxes x, y, w, h in network pixels

GEOMETRY_KEYS = ("head_width_ratio", "head_centre_above")  # ONNX metadata keys


@dataclass(frozen=True)
class HeadGeometry:
    """Where a detector's box lies around the cascade's box for the same face: `width_ratio` times
    as wide, its centre `centre_above` cascade widths higher."""

    width_ratio: float
    centre_above: float

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> HeadGeometry:
        """A model's own geometry, or the published weights' for a model exported without one."""
        if not all(key in metadata for key in GEOMETRY_KEYS):
            return PUBLISHED
        return cls(*(float(metadata[key]) for key in GEOMETRY_KEYS))

    def as_metadata(self) -> dict[str, str]:
        return dict(zip(GEOMETRY_KEYS, (repr(self.width_ratio), repr(self.centre_above)), strict=True))

    def to_cascade(self, heads: NDArray[Any]) -> NDArray[np.int32]:
        """Head boxes (n, 4: x, y, w, h) -> square boxes where the cascade would put them."""
        heads = np.asarray(heads, np.float64).reshape(-1, 4)
        side = heads[:, 2] / self.width_ratio
        cx = heads[:, 0] + heads[:, 2] / 2
        cy = heads[:, 1] + heads[:, 3] / 2 + self.centre_above * side
        return np.round(np.stack([cx - side / 2, cy - side / 2, side, side], axis=1)).astype(np.int32)

    def to_head(self, boxes: NDArray[Any]) -> NDArray[np.float32]:
        """The inverse of `to_cascade`: the head box around each cascade box."""
        square = np.asarray(boxes, np.float64).reshape(-1, 4)
        side = square[:, 2] * self.width_ratio
        cx = square[:, 0] + square[:, 2] / 2
        cy = square[:, 1] + square[:, 3] / 2 - self.centre_above * square[:, 2]
        return np.stack([cx - side / 2, cy - side / 2, side, side], axis=1).astype(np.float32)


# The published weights' head boxes, measured on frames where both detectors found the same face
# (NOTICE.md of the weights): 1.22x as wide as the cascade's box, the centre 0.19 of its width higher.
PUBLISHED = HeadGeometry(1.22, 0.19)


@dataclass(frozen=True)
class LearnedSettings:
    """`score_threshold`: the least face probability kept; `nms_iou`: overlap above which the
    weaker of two boxes goes; `input_height`: frames are resized to this height for the network
    (0 = as they come); `threads`: ONNX Runtime's threads per call (detector threads run calls in
    parallel, so 1 keeps the pipeline within its cores)."""

    model: Path = FACEBOXES_PATH
    score_threshold: float = 0.5  # with the second look behind it (second_look.py)
    nms_iou: float = 0.3
    input_height: int = 720
    threads: int = 1
    device: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 < self.score_threshold < 1.0:
            raise ValueError(f"detector.learned_threshold must be between 0 and 1, got {self.score_threshold}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ValueError(f"detector.learned_nms_iou must be in (0, 1], got {self.nms_iou}")
        if self.input_height < 0:
            raise ValueError(f"detector.learned_height must be >= 0, got {self.input_height}")


class LearnedDetector:
    """One ONNX Runtime session (thread-safe: detector threads share it), warmed up when built."""

    def __init__(self, settings: LearnedSettings | None = None, warmup: bool = True) -> None:
        import onnxruntime as ort

        self.settings = s = settings or LearnedSettings()
        self.path = Path(s.model)
        if not self.path.is_file():
            raise ModelError(f"detector model file not found: {self.path}")
        ort.set_default_logger_severity(3)  # as the classifier: a CUDA fallback is ours to report
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = s.threads
        options.inter_op_num_threads = 1
        wanted = execution_providers(s.device, ort.get_available_providers())
        try:
            with quiet_stderr(enabled=CUDA in str(wanted)):
                self._session = ort.InferenceSession(str(self.path), options, providers=wanted)
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            raise ModelError(f"cannot load detector model {self.path}: {error}") from error
        outputs = {o.name for o in self._session.get_outputs()}
        if not {LOC_OUTPUT, SCORE_OUTPUT} <= outputs:
            raise ModelError(f"{self.path} is not a FaceBoxes model (outputs {sorted(outputs)})")
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.model_id = metadata.get("model_id", "unknown")
        self.geometry = HeadGeometry.from_metadata(metadata)
        self.provider = self._session.get_providers()[0]
        self._cuda_failed = CUDA in str(wanted) and self.provider != CUDA
        if s.device == "cuda" and self.provider != CUDA:
            raise ModelError("detector.learned_device cuda: the CUDA execution provider did not load")
        if warmup:  # the first run at a size is slow (allocations; cuDNN's algorithm choice)
            height = s.input_height or 720
            self.detect_heads(np.zeros((height, height * 16 // 9, 3), np.uint8))

    def describe_provider(self) -> str:
        """One line for standard error, saying where the detector really runs."""
        return f"animerec: detector {self.path.name} on {where_it_runs(self.provider, self._cuda_failed)}"

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.int32]:
        return self.detect_scored(image).boxes

    def detect_scored(self, image: NDArray[np.uint8]) -> ScoredBoxes:
        heads = self.detect_heads(image)
        return ScoredBoxes(self.geometry.to_cascade(heads.boxes), heads.scores)

    def detect_heads(self, image: NDArray[np.uint8]) -> ScoredBoxes:
        """The network's own head boxes, in the pixels of `image`, best first."""
        network_input, scale = self._resized(image)
        ((boxes, scores),) = self._decoded(network_input[np.newaxis], self.settings.score_threshold)
        return ScoredBoxes(np.round(boxes / scale).astype(np.int32), scores)

    def detect_windows(self, windows: NDArray[np.uint8], min_score: float) -> list[ScoredBoxes]:
        """Boxes (cascade geometry) scoring at least `min_score` in each of a batch of same-sized
        BGR windows (n, height, width, 3), run as they are in one call: no resizing."""
        decoded = self._decoded(windows, min_score)
        return [ScoredBoxes(self.geometry.to_cascade(boxes), scores) for boxes, scores in decoded]

    def _decoded(self, batch: NDArray[np.uint8], min_score: float) -> list[tuple[Heads, NDArray[np.float32]]]:
        """Head boxes (network pixels) and scores of each image of `batch`, after NMS, best first."""
        height, width = batch.shape[1:3]
        loc, score = self._session.run([LOC_OUTPUT, SCORE_OUTPUT], {"image": np.ascontiguousarray(batch)})
        priors = anchors(height, width)
        found = []
        for offsets, scores in zip(loc, score, strict=True):
            confident = scores >= min_score
            boxes = decode(offsets[confident], priors[confident])
            keep = nms(boxes, scores[confident], self.settings.nms_iou)
            found.append((boxes[keep], scores[confident][keep]))
        return found

    def _resized(self, image: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], float]:
        """The BGR image at the input height, and the scale from source to network pixels."""
        colour = np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image, np.uint8)
        height = self.settings.input_height
        if not height or height == colour.shape[0]:
            return colour, 1.0
        scale = height / colour.shape[0]
        size = (max(1, round(colour.shape[1] * scale)), height)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        return np.asarray(cv2.resize(colour, size, interpolation=interpolation), np.uint8), scale
