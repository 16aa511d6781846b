"""What travels inside an ONNX model's metadata, so a model and its labels never drift apart.

Besides the labels and input convention, a calibrated model carries its open-set calibration
(`animerec calibrate`): one prototype embedding per trained character, the embedding centre, the
default unknown threshold and the probability scale. It lives in the metadata, not in the graph,
so calibrating never changes the weights hash (`model_id`) that galleries are tied to.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

PREFIX = "animerec."
COLOR_ORDER = "RGB"
SCALING = "0..1"
PROBS_OUTPUT = "probs"
EMBEDDING_OUTPUT = "embedding"
OPEN_SET_KEY = PREFIX + "open_set"


def encode_array(array: NDArray[np.float32]) -> str:
    """float32 little-endian, base64: exact and about a third the size of a JSON list of floats."""
    return base64.b64encode(np.ascontiguousarray(array, "<f4").tobytes()).decode("ascii")


def decode_array(text: str, shape: tuple[int, ...]) -> NDArray[np.float32]:
    """Raises ValueError when `text` does not hold exactly `shape` float32 values."""
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) != 4 * int(np.prod(shape)):
        raise ValueError(f"expected {int(np.prod(shape))} float32 values, got {len(raw)} bytes")
    return np.frombuffer(raw, "<f4").astype(np.float32).reshape(shape)


@dataclass(frozen=True, eq=False)
class OpenSetCalibration:
    """The open-set decision's parameters, measured by `animerec calibrate` on validation data.

    prototypes (classes, dim): unit class means of centred training embeddings, in label order
    centre     (dim,):         mean training embedding, subtracted before comparing
    threshold:  the cosine similarity below which a face is "unknown"
    scale:      the softmax temperature that turns similarities into probabilities
    stats:      what calibration measured (accept rates, set sizes), for people and `doctor`
    track_threshold, track_margin: the bar for a video track's mean evidence, and how far below
                it a named track keeps its name (None until measured on tracks: the decider then
                uses `threshold` and its default margin)
    """

    prototypes: NDArray[np.float32]
    centre: NDArray[np.float32]
    threshold: float
    scale: float
    stats: dict[str, Any] = field(default_factory=dict)
    track_threshold: float | None = None
    track_margin: float | None = None

    def __post_init__(self) -> None:
        if self.prototypes.ndim != 2 or self.centre.shape != (self.prototypes.shape[1],):
            raise ValueError("open-set prototypes and centre disagree in dimension")
        if not -1.0 <= self.threshold <= 1.0 or self.scale <= 0:
            raise ValueError(f"open-set threshold {self.threshold} or scale {self.scale} out of range")

    def to_json(self) -> str:
        classes, dim = self.prototypes.shape
        return json.dumps(
            {
                "threshold": self.threshold,
                "scale": self.scale,
                "classes": classes,
                "dim": dim,
                "prototypes": encode_array(self.prototypes),
                "centre": encode_array(self.centre),
                "stats": self.stats,
                **({} if self.track_threshold is None else {"track_threshold": self.track_threshold}),
                **({} if self.track_margin is None else {"track_margin": self.track_margin}),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> OpenSetCalibration:
        """Raises KeyError or ValueError (json errors are ValueErrors) on malformed text."""
        data = json.loads(text)
        classes, dim = int(data["classes"]), int(data["dim"])
        return cls(
            prototypes=decode_array(data["prototypes"], (classes, dim)),
            centre=decode_array(data["centre"], (dim,)),
            threshold=float(data["threshold"]),
            scale=float(data["scale"]),
            stats=dict(data.get("stats", {})),
            track_threshold=None if data.get("track_threshold") is None else float(data["track_threshold"]),
            track_margin=None if data.get("track_margin") is None else float(data["track_margin"]),
        )


@dataclass(frozen=True)
class ModelInfo:
    labels: tuple[str, ...]
    input_size: int
    arch: str
    model_id: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    color_order: str = COLOR_ORDER
    scaling: str = SCALING
    open_set: OpenSetCalibration | None = None  # None until `animerec calibrate` has run
    mirrored: bool = False  # the graph also looks at each face's mirror image (export --mirrored)

    def to_metadata(self) -> dict[str, str]:
        metadata = {
            PREFIX + "labels": json.dumps(list(self.labels), ensure_ascii=False),
            PREFIX + "input_size": str(self.input_size),
            PREFIX + "arch": self.arch,
            PREFIX + "model_id": self.model_id,
            PREFIX + "metrics": json.dumps(self.metrics),
            PREFIX + "color_order": self.color_order,
            PREFIX + "scaling": self.scaling,
            PREFIX + "mirrored": json.dumps(self.mirrored),
        }
        if self.open_set is not None:
            metadata[OPEN_SET_KEY] = self.open_set.to_json()
        return metadata

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ModelInfo:
        """Raises KeyError or ValueError when the metadata is missing or malformed."""
        open_set = OpenSetCalibration.from_json(metadata[OPEN_SET_KEY]) if OPEN_SET_KEY in metadata else None
        info = cls(
            labels=tuple(json.loads(metadata[PREFIX + "labels"])),
            input_size=int(metadata[PREFIX + "input_size"]),
            arch=metadata[PREFIX + "arch"],
            model_id=metadata.get(PREFIX + "model_id", ""),
            metrics=json.loads(metadata.get(PREFIX + "metrics", "{}")),
            color_order=metadata.get(PREFIX + "color_order", COLOR_ORDER),
            scaling=metadata.get(PREFIX + "scaling", SCALING),
            open_set=open_set,
            mirrored=bool(json.loads(metadata.get(PREFIX + "mirrored", "false"))),
        )
        if (info.color_order, info.scaling) != (COLOR_ORDER, SCALING):
            raise ValueError(f"unsupported input convention {info.color_order} {info.scaling}")
        if not info.labels or info.input_size < 8:
            raise ValueError("labels or input size missing")
        if open_set is not None and len(open_set.prototypes) != len(info.labels):
            count = len(open_set.prototypes)
            raise ValueError(f"open-set calibration has {count} prototypes for {len(info.labels)} labels")
        return info
