"""Face tracks across frames: identities by box overlap, names by a vote that does not flicker.

A track is matched to the new detections by IoU. It keeps an exponential moving average of the
class probabilities it has been given (the vote); the name shown is the vote's decision, so one
noisy classification cannot flip it. A track asks to be classified again only when its box has
grown (a closer look at a bigger face) or after an interval, not on every frame, and survives
`max_misses` frames without a detection, so one missed frame does not reset its name.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from animerec.config import TrackerConfig
from animerec.records import NO_TRACK, Faces


@dataclass
class Track:
    """One face followed over frames. Mutable, and owned by the tracker's single thread."""

    id: int
    box: NDArray[np.int32]
    last_seen: int  # frame index of the last detection
    misses: int = 0
    vote: NDArray[np.float32] | None = None  # EMA of class probabilities; None until classified
    embedding: NDArray[np.float32] | None = None  # EMA of embeddings (open-set naming uses these)
    looked_at: int = -1  # frame index of the last classification request
    looked_area: float = 0.0  # box area at that request
    classifications: int = 0

    def add_vote(self, probs: NDArray[np.float32], alpha: float,
                 embedding: NDArray[np.float32] | None = None) -> None:
        """Fold one classification into the vote: a plain mean over the first 1/alpha looks
        (so the first, often partial, view does not weigh more than the next ones), then an
        exponential moving average that lets a wrong early name be outvoted. The embedding is
        averaged the same way, as a gallery averages the faces of a character."""
        self.classifications += 1
        weight = max(alpha, 1.0 / self.classifications)
        self.vote = _blend(self.vote, np.asarray(probs, np.float32), weight)
        if embedding is not None:
            # Back to unit length: the model's embeddings are unit vectors, and a shorter mean
            # would point elsewhere once the open-set decision subtracts its centre.
            blended = _blend(self.embedding, np.asarray(embedding, np.float32), weight)
            self.embedding = (blended / max(float(np.linalg.norm(blended)), 1e-12)).astype(np.float32)


def _blend(old: NDArray[np.float32] | None, new: NDArray[np.float32], weight: float) -> NDArray[np.float32]:
    if old is None:
        return new.copy()
    return ((1.0 - weight) * old + weight * new).astype(np.float32)


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
    """IoU tracking with a probability vote. Call `update` once per frame, in frame order."""

    def __init__(self, settings: TrackerConfig | None = None) -> None:
        self.settings = settings or TrackerConfig()
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def update(self, boxes: NDArray[np.int32], index: int) -> tuple[list[Track], list[int]]:
        """Match this frame's boxes to tracks.

        Returns the track of each box (in box order) and the box positions whose track wants a
        (new) classification; those tracks are marked as looked at now, so the caller must
        pass their crops to `Track.add_vote` once classified.
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
        if track.looked_at < 0:
            return True
        if index - track.looked_at >= s.reclassify_every:
            return True
        return _area(track.box) > track.looked_area * (1.0 + s.reclassify_growth)


def _area(box: NDArray[np.int32]) -> float:
    return float(box[2]) * float(box[3])


class NameChangeCounter:
    """Flicker: how often the name shown for the same track changes over a run.

    Feed it every frame's `Faces`, in order; a track's first name is not a change.
    """

    def __init__(self) -> None:
        self.changes: dict[int, int] = {}
        self.frames: dict[int, int] = {}
        self._last: dict[int, str] = {}

    def observe(self, faces: Faces) -> None:
        for track, name in zip(faces.tracks, faces.names, strict=True):
            tid = int(track)
            if tid == NO_TRACK:
                continue
            self.frames[tid] = self.frames.get(tid, 0) + 1
            previous = self._last.get(tid)
            self.changes.setdefault(tid, 0)
            if previous is not None and previous != name:
                self.changes[tid] += 1
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
