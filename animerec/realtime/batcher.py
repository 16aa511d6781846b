"""The tracking stage: restore frame order, follow faces, and classify crops in batches.

Detector threads finish out of order; the reorder buffer puts their results back in the order the
frames left the queue. The tracker then decides which faces need a (new) look, and the batcher
collects those crops across frames, up to `max_batch` crops or `max_wait_ms`, and runs the
classifier once for all of them. Frames wait behind the batch that names their faces, so they
leave in order with their names decided.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from animerec.config import PipelineConfig, TrackerConfig
from animerec.realtime.queues import POLL_S, BoundedQueue
from animerec.realtime.stages import END, Detected, EndOfStream, Stage
from animerec.realtime.stats import Stats
from animerec.realtime.tracker import Track, Tracker
from animerec.recognition.classifier import Classifier, Scores
from animerec.recognition.crop import report_crop
from animerec.recognition.detector import Detector
from animerec.recognition.naming import Decider
from animerec.records import UNKNOWN, Faces, Frame

Result = tuple[Frame, Faces]


class ReorderBuffer:
    """Hands items back in ticket order 0, 1, 2, ... whatever order they arrive in."""

    def __init__(self) -> None:
        self._waiting: dict[int, object] = {}
        self._next = 0

    def push(self, ticket: int, item: object) -> list[object]:
        """Add one item; return every item now ready, in order."""
        self._waiting[ticket] = item
        ready = []
        while self._next in self._waiting:
            ready.append(self._waiting.pop(self._next))
            self._next += 1
        return ready

    def __len__(self) -> int:
        return len(self._waiting)


@dataclass(frozen=True)
class _Waiting:
    frame: Frame
    boxes: NDArray[np.int32]
    tracks: tuple[Track, ...]


class Batcher:
    """Collects crops across frames and classifies them in one call per batch."""

    def __init__(self, classifier: Classifier, decider: Decider, settings: PipelineConfig, stats: Stats) -> None:
        self.classifier, self.decider, self.stats = classifier, decider, stats
        self.max_batch, self.max_wait_s = settings.max_batch, settings.max_wait_ms / 1000.0
        self._frames: list[_Waiting] = []
        self._crops: list[NDArray[np.uint8]] = []
        self._crop_tracks: list[Track] = []
        self._opened_at = 0.0

    def add(self, frame: Frame, boxes: NDArray[np.int32], tracks: list[Track],
            wanted: list[int]) -> list[Result]:
        """Queue one frame and the crops of its faces in `wanted`; return the frames now done."""
        done: list[Result] = []
        if self._crops and len(self._crops) + len(wanted) > self.max_batch:
            done += self.flush()
        if wanted and not self._crops:
            self._opened_at = time.monotonic()
        started = time.monotonic()
        for row in wanted:  # crops from the full-resolution frame, whatever size detection ran at
            self._crops.append(report_crop(frame.image, boxes[row]))
            self._crop_tracks.append(tracks[row])
        if wanted:
            self.stats.busy("crop", time.monotonic() - started, items=len(wanted))
        self._frames.append(_Waiting(frame, boxes, tuple(tracks)))
        if not self._crops or len(self._crops) >= self.max_batch:
            done += self.flush()  # nothing to wait for, or the batch is full
        return done

    def time_left(self) -> float:
        """Seconds until the open batch must run (POLL_S when none is open)."""
        if not self._crops:
            return POLL_S
        return max(0.0, self._opened_at + self.max_wait_s - time.monotonic())

    def flush(self) -> list[Result]:
        """Classify the collected crops, fold them into their tracks' evidence, and name every
        waiting frame's faces from the evidence."""
        if self._crops:
            started = time.monotonic()
            scores = self.classifier.classify(self._crops)
            self.stats.busy("classify", time.monotonic() - started)
            self.stats.batch(len(self._crops))
            for i, track in enumerate(self._crop_tracks):
                track.add_look(scores.probs[i], scores.embeddings[i])
        done = [(w.frame, self._faces(w)) for w in self._frames]
        self._frames, self._crops, self._crop_tracks = [], [], []
        return done

    def _faces(self, waiting: _Waiting) -> Faces:
        """The decider names each face from all its track has seen, not from one classification,
        and the track holds the name it was given (every track is classified in the batch that
        holds its first frame, so each has evidence by now)."""
        if not len(waiting.boxes):
            return Faces.empty()
        looks = [t.evidence() for t in waiting.tracks]
        evidence = Scores(np.concatenate([e.probs for e in looks]), np.concatenate([e.embeddings for e in looks]))
        faces = self.decider.decide_tracks(waiting.boxes, evidence, [t.name for t in waiting.tracks])
        for track, name in zip(waiting.tracks, faces.names, strict=True):
            track.name = None if name == UNKNOWN else name
        return faces.with_tracks(np.array([t.id for t in waiting.tracks], np.int64))


class TrackStage(Stage):
    """Reorder -> reuse detections for near-duplicates -> track -> batch-classify -> name."""

    def __init__(self, detector: Detector, classifier: Classifier,
                 inbox: BoundedQueue[tuple[int, Detected | EndOfStream]],
                 outbox: BoundedQueue[Result | EndOfStream], decider: Decider,
                 settings: PipelineConfig, tracker: TrackerConfig, stop: threading.Event,
                 stats: Stats) -> None:
        super().__init__("track", stop, stats)
        self.detector, self.inbox, self.outbox = detector, inbox, outbox
        self.tracker = Tracker(tracker)
        self.batcher = Batcher(classifier, decider, settings, stats)
        self._reorder = ReorderBuffer()
        self._last_ref = -1
        self._last_boxes = np.zeros((0, 4), np.int32)

    def loop(self) -> None:
        while not self.stop.is_set():
            taken = self.inbox.get(timeout=min(POLL_S, self.batcher.time_left()))
            ready = self._reorder.push(*taken) if taken is not None else []
            for item in ready:
                if isinstance(item, EndOfStream):
                    self._emit(self.batcher.flush())
                    self.outbox.put(END, self.stop, force=True)
                    return
                assert isinstance(item, Detected)
                self._emit(self._track(item))
            if self.batcher.time_left() <= 0:
                self._emit(self.batcher.flush())

    def _track(self, item: Detected) -> list[Result]:
        started = time.monotonic()
        boxes = item.boxes
        first_late = item.late and self._last_ref < 0
        if boxes is None and item.ref_index != self._last_ref and (first_late or not item.late):
            # The frame this one duplicates was dropped before detection, or a late frame has no
            # detections before it to take (live sources only): detect here, once, and let the
            # following duplicates reuse the result.
            boxes = np.asarray(self.detector.detect(item.frame.image), np.int32).reshape(-1, 4)
        if boxes is None:
            boxes = self._last_boxes  # a duplicate's reference, or for a late frame the newest
        self._last_ref, self._last_boxes = item.ref_index, boxes
        tracks, wanted = self.tracker.update(boxes, item.frame.index)
        self.stats.busy("track", time.monotonic() - started)
        return self.batcher.add(item.frame, boxes, tracks, wanted)

    def _emit(self, results: list[Result]) -> None:
        for result in results:
            if not self.outbox.put(result, self.stop):
                return
