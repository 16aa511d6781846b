"""Face tracks across frames: identities by box overlap, names from everything a track has seen.

A track is matched to the new detections by IoU. It keeps the sum of every classification it
has been given (probabilities and embeddings), so its evidence is the true mean of all its looks:
one blurred or half-hidden look weighs 1/n, and a face seen for long is named from many looks.
The decider names the track from that mean and remembers the name (`Track.name`), which it keeps
until the evidence falls below a lower bar (hysteresis, animerec/recognition/naming.py).

A track nobody is named yet asks for a look on every frame, to gather evidence fast; a named one
only when its box has grown (a closer look at a bigger face) or after an interval. A track
survives `max_misses` frames without a detection, so one missed frame does not reset its name.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from animerec.config import TrackerConfig
from animerec.recognition.classifier import Scores
from animerec.records import NO_TRACK, UNKNOWN, Faces


@dataclass
class Track:
    """One face followed over frames. Mutable, and owned by the tracker's single thread."""

    id: int
    box: NDArray[np.int32]
    last_seen: int  # frame index of the last detection
    misses: int = 0
    looks: int = 0  # classifications folded into the evidence
    probs_sum: NDArray[np.float64] | None = None  # sums, not averages: the mean stays exact
    embedding_sum: NDArray[np.float64] | None = None
    name: str | None = None  # the name the decider gave it and holds; None while undecided
    looked_at: int = -1  # frame index of the last classification request
    looked_area: float = 0.0  # box area at that request

    def add_look(self, probs: NDArray[np.float32], embedding: NDArray[np.float32]) -> None:
        """Fold one classification into the evidence."""
        self.looks += 1
        self.probs_sum = _added(self.probs_sum, probs)
        self.embedding_sum = _added(self.embedding_sum, embedding)

    def evidence(self) -> Scores:
        """The mean of every look so far, as one row of scores. The mean embedding is brought
        back to unit length, like every single embedding: looks that disagree make a shorter
        mean, and the open-set decision subtracts a centre from it, which would turn a shorter
        vector towards another character."""
        if self.probs_sum is None or self.embedding_sum is None:
            raise ValueError(f"track {self.id} has not been classified yet")
        direction = self.embedding_sum / max(float(np.linalg.norm(self.embedding_sum)), 1e-12)
        return Scores((self.probs_sum / self.looks).astype(np.float32)[None], direction.astype(np.float32)[None])


def _added(total: NDArray[np.float64] | None, value: NDArray[np.float32]) -> NDArray[np.float64]:
    value64 = np.asarray(value, np.float64)
    return value64.copy() if total is None else total + value64


def iou_matrix(a: NDArray[np.int32], b: NDArray[np.int32]) -> NDArray[np.float64]:
    """Intersection over union of every box in `a` (n, 4 as x, y, w, h) with every box in `b`."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    p = a.astype(np.float64)[:, None, :]
    q = b.astype(np.float64)[None, :, :]
    left = np.maximum(p[..., 0], q[..., 0])
    top = np.maximum(p[..., 1], q[..., 1])
    right = np.minimum(p[..., 0] + p[..., 2], q[..., 0] + q[..., 2])
    bottom = np.minimum(p[..., 1] + p[..., 3], q[..., 1] + q[..., 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = p[..., 2] * p[..., 3] + q[..., 2] * q[..., 3] - inter
    return np.asarray(inter / np.maximum(union, 1e-9))


class Tracker:
    """IoU tracking; tracks gather evidence. Call `update` once per frame, in frame order."""

    def __init__(self, settings: TrackerConfig | None = None) -> None:
        self.settings = settings or TrackerConfig()
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def update(self, boxes: NDArray[np.int32], index: int) -> tuple[list[Track], list[int]]:
        """Match this frame's boxes to tracks.

        Returns the track of each box (in box order) and the box positions whose track wants a
        (new) classification; those tracks are marked as looked at now, so the caller must
        pass their crops' scores to `Track.add_look` once classified.
        """
        boxes = np.asarray(boxes, np.int32).reshape(-1, 4)
        matched = self._match(boxes)
        assigned: list[Track] = []
        for row, box in enumerate(boxes):
            track = matched.get(row)
            if track is None:
                track = Track(next(self._ids), box.copy(), index)
                self.tracks.append(track)
            track.box, track.last_seen, track.misses = box.copy(), index, 0
            assigned.append(track)
        seen = {id(t) for t in assigned}
        for track in self.tracks:
            if id(track) not in seen:
                track.misses += 1
        self.tracks = [t for t in self.tracks if t.misses <= self.settings.max_misses]
        wanted = [row for row, track in enumerate(assigned) if self._wants_look(track, index)]
        for row in wanted:
            track = assigned[row]
            track.looked_at, track.looked_area = index, _area(track.box)
        return assigned, wanted

    def _match(self, boxes: NDArray[np.int32]) -> dict[int, Track]:
        """Greedy best-IoU-first matching: a few faces per frame need nothing cleverer."""
        if not self.tracks or not len(boxes):
            return {}
        ious = iou_matrix(boxes, np.stack([t.box for t in self.tracks]))
        result: dict[int, Track] = {}
        used: set[int] = set()
        for flat in np.argsort(-ious, axis=None):
            row, col = divmod(int(flat), ious.shape[1])
            if ious[row, col] < self.settings.iou_threshold:
                break
            if row not in result and col not in used:
                result[row] = self.tracks[col]
                used.add(col)
        return result

    def _wants_look(self, track: Track, index: int) -> bool:
        s = self.settings
        if track.looked_at < 0 or track.name is None:
            return True  # undecided: every look is evidence that is still missing
        if index - track.looked_at >= s.reclassify_every:
            return True
        return _area(track.box) > track.looked_area * (1.0 + s.reclassify_growth)


def _area(box: NDArray[np.int32]) -> float:
    return float(box[2]) * float(box[3])


class NameChangeCounter:
    """Flicker: how often the name shown for the same track changes over a run.

    Feed it every frame's `Faces`, in order. A track's first decision is not a change: a new
    track shows "unknown" while its evidence is still too thin, and the name it then reaches is
    its first. After that every change counts, to and from "unknown" too
    (quality.naming_against_truth counts only jumps from one character to another).
    """

    def __init__(self) -> None:
        self.changes: dict[int, int] = {}
        self.frames: dict[int, int] = {}
        self._last: dict[int, str] = {}
        self._decided: set[int] = set()

    def observe(self, faces: Faces) -> None:
        for track, name in zip(faces.tracks, faces.names, strict=True):
            tid = int(track)
            if tid == NO_TRACK:
                continue
            self.frames[tid] = self.frames.get(tid, 0) + 1
            self.changes.setdefault(tid, 0)
            if tid in self._decided and self._last[tid] != name:
                self.changes[tid] += 1
            if name != UNKNOWN:
                self._decided.add(tid)
            self._last[tid] = name

    @property
    def total(self) -> int:
        return sum(self.changes.values())

    def per_10_seconds(self, fps: float) -> float | None:
        """Name changes per 10 seconds a track is on screen (the flicker target), over all tracks
        together at the clip's frame rate; None when no track was on screen or the rate is unknown."""
        seconds = sum(self.frames.values()) / fps if fps > 0 else 0.0
        return round(10.0 * self.total / seconds, 3) if seconds else None


def count_name_changes(frames: Iterable[Faces]) -> dict[int, int]:
    """Name changes per track id over a sequence of frames' faces (the flicker measure)."""
    counter = NameChangeCounter()
    for faces in frames:
        counter.observe(faces)
    return counter.changes
