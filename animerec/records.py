"""The immutable records that flow through every stage: one frame, and the faces found in it.

A stage never passes a bare array or a tuple: a `Frame` carries its index and clocks so later
stages can see drops and keep order, and `Faces` is columnar (one row per face) so filtering and
drawing stay vectorised. Both are frozen; "changing" one returns a new record.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

UNKNOWN = "unknown"
NO_TRACK = -1


@dataclass(frozen=True)
class Frame:
    """One picture from a source, with where and when it came from."""

    image: NDArray[np.uint8]  # BGR, (height, width, 3)
    index: int  # 0-based running index within the source; gaps mean drops
    captured_at: float  # time.monotonic() when the frame was grabbed or decoded
    time: float  # presentation time in seconds within the source (0 for live starts)
    source_id: str = ""

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def _readonly(array: NDArray[Any]) -> NDArray[Any]:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class Faces:
    """The faces of one image, one row each.

    boxes      (n, 4) int32   detector box x, y, w, h in source pixels (not the enlarged crop)
    top_names  n tuples       the k best characters, best first (empty before classification)
    top_probs  (n, k) float32 their probabilities
    names      n strings      the recogniser's decision: a character or "unknown"
    confidence (n,) float32   the evidence for that decision
    tracks     (n,) int64     track id, or -1 where no tracker ran
    """

    boxes: NDArray[np.int32]
    top_names: tuple[tuple[str, ...], ...] = ()
    top_probs: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    names: tuple[str, ...] = ()
    confidence: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    tracks: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        n = len(self.boxes)
        boxes = _readonly(np.asarray(self.boxes, np.int32).reshape(n, 4))
        object.__setattr__(self, "boxes", boxes)
        # Unclassified faces (straight from the detector) get neutral columns of the right length.
        if not self.names:
            object.__setattr__(self, "names", (UNKNOWN,) * n)
            object.__setattr__(self, "top_names", ((),) * n)
            object.__setattr__(self, "top_probs", np.zeros((n, 0), np.float32))
            object.__setattr__(self, "confidence", np.zeros(n, np.float32))
        if len(self.tracks) == 0:
            object.__setattr__(self, "tracks", np.full(n, NO_TRACK, np.int64))
        k = len(self.top_names[0]) if self.top_names else 0
        if any(len(row) != k for row in self.top_names):
            raise ValueError("Faces.top_names rows must all have the same length")
        probs = np.asarray(self.top_probs, np.float32).reshape(n, k)
        object.__setattr__(self, "top_probs", _readonly(probs))
        object.__setattr__(self, "confidence", _readonly(np.asarray(self.confidence, np.float32)))
        object.__setattr__(self, "tracks", _readonly(np.asarray(self.tracks, np.int64)))
        columns = (len(self.top_names), len(self.names), len(self.confidence), len(self.tracks))
        if any(length != n for length in columns):
            raise ValueError(f"Faces columns disagree: {n} boxes but lengths {columns}")

    @classmethod
    def empty(cls) -> Faces:
        return cls(np.zeros((0, 4), np.int32))

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: NDArray[np.bool_] | NDArray[np.intp]) -> Faces:
        """A new record with only the rows `keep` selects (a mask or indices)."""
        rows = np.arange(len(self))[keep]
        return Faces(
            boxes=self.boxes[rows],
            top_names=tuple(self.top_names[i] for i in rows),
            top_probs=self.top_probs[rows],
            names=tuple(self.names[i] for i in rows),
            confidence=self.confidence[rows],
            tracks=self.tracks[rows],
        )

    def with_tracks(self, tracks: NDArray[np.int64]) -> Faces:
        return replace(self, tracks=np.asarray(tracks, np.int64))

    def to_records(self, width: int | None = None, height: int | None = None) -> list[dict[str, Any]]:
        """The face records of CONTRACTS.md; with width and height, boxes are normalised to 0..1."""
        records = []
        for i in range(len(self)):
            x, y, w, h = (int(v) for v in self.boxes[i])
            box: list[int] | list[float] = [x, y, w, h]
            if width and height:
                box = [x / width, y / height, w / width, h / height]
            track = int(self.tracks[i])
            records.append(
                {
                    "box": box,
                    "name": self.names[i],
                    "confidence": round(float(self.confidence[i]), 6),
                    "top": [
                        [name, round(float(p), 6)] for name, p in zip(self.top_names[i], self.top_probs[i], strict=True)
                    ],
                    "track": None if track == NO_TRACK else track,
                }
            )
        return records


@dataclass(frozen=True)
class AnnotatedFrame:
    """A frame leaving the pipeline: the picture, its faces, and the picture with the overlay drawn."""

    frame: Frame
    faces: Faces
    annotated: NDArray[np.uint8]

    def to_json(self) -> dict[str, Any]:
        """One JSON Lines row of CONTRACTS.md."""
        return {
            "index": self.frame.index,
            "time": round(self.frame.time, 6),
            "faces": self.faces.to_records(),
        }
