"""The pipeline's first stages and their base: reading and detecting.

Every blocking call has a timeout and checks the one stop event, so shutdown never waits on a
queue (animerec/realtime/queues.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.realtime.protocols import Source
from animerec.realtime.queues import BoundedQueue
from animerec.realtime.stats import Stats
from animerec.recognition.detector import Detector
from animerec.records import Frame

log = logging.getLogger(__name__)

THUMB_SIZE = (160, 90)  # near-duplicate test resolution: enough to see a mouth move


class EndOfStream:
    """The marker a finite source leaves behind its last frame; it travels through every stage."""


END = EndOfStream()


class Stage:
    """One job on one named thread. An exception in the thread is kept and stops the pipeline,
    which raises it on the caller's thread."""

    def __init__(self, name: str, stop: threading.Event, stats: Stats) -> None:
        self.name, self.stop, self.stats = name, stop, stats
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name=f"animerec-{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _main(self) -> None:
        try:
            self.loop()
        except BaseException as error:  # kept for the caller; the thread must not die silently
            log.debug("stage %s failed", self.name, exc_info=True)
            self.error = error
            self.stop.set()

    def loop(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Work:
    """A frame on its way to detection. `reuse`: a near-duplicate of frame `ref_index`, whose
    detections it takes instead of running the cascade."""

    frame: Frame
    reuse: bool
    ref_index: int


@dataclass(frozen=True)
class Detected:
    frame: Frame
    boxes: NDArray[np.int32] | None  # None: reuse the detections of frame `ref_index`
    ref_index: int
    late: bool = False  # a live frame that waited too long: it takes the newest detections


class NearDuplicates:
    """Anime is drawn on twos and threes: most frames repeat the one before. A frame whose
    160x90 grey thumbnail differs from the last detected frame's by less than `threshold` grey
    levels on average reuses its detections. Comparing with the last *detected* frame (not the
    previous one) keeps a slow pan from drifting through a chain of small differences."""

    def __init__(self, threshold: float, max_reuse: int) -> None:
        self.threshold, self.max_reuse = threshold, max_reuse
        self._reference: NDArray[np.uint8] | None = None
        self._reference_index = -1
        self._reuses = 0

    def check(self, frame: Frame) -> Work:
        if self.threshold <= 0 or self.max_reuse <= 0:
            return Work(frame, False, frame.index)
        small = cv2.resize(frame.image, THUMB_SIZE, interpolation=cv2.INTER_AREA)
        thumb = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), np.uint8)
        if self._reference is not None and self._reuses < self.max_reuse:
            difference = float(cv2.absdiff(thumb, self._reference).mean())
            if difference < self.threshold:
                self._reuses += 1
                return Work(frame, True, self._reference_index)
        self._reference, self._reference_index, self._reuses = thumb, frame.index, 0
        return Work(frame, False, frame.index)


class SourceReader(Stage):
    """Pulls frames from the source, marks near-duplicates, and ends the stream with one end
    marker per detector thread."""

    def __init__(self, source: Source, outbox: BoundedQueue[Work | EndOfStream], consumers: int,
                 dedup: NearDuplicates, stop: threading.Event, stats: Stats) -> None:
        super().__init__("reader", stop, stats)
        self.source, self.outbox, self.consumers, self.dedup = source, outbox, consumers, dedup

    def loop(self) -> None:
        for frame in self.source.frames(self.stop):
            started = time.monotonic()
            self.stats.frame_in()
            work = self.dedup.check(frame)
            if work.reuse:
                self.stats.reused()
            self.stats.busy("dedup", time.monotonic() - started)
            if not self.outbox.put(work, self.stop):
                return
            self.stats.set_dropped("source", self.source.dropped)
        if self.stop.is_set():
            return
        for _ in range(self.consumers):
            self.outbox.put(END, self.stop, force=True)


class DetectWorker(Stage):
    """Runs the detector on fresh frames. Several run at once (the cascade releases the GIL);
    each passes on the departure number it took its frame with, for the reorder buffer.

    With `late_after_s` (live sources), a frame older than that when taken skips the cascade and
    takes the newest detections: skipping costs nothing, so the workers catch up with the newest
    frame within one detection, and latency stays bounded instead of queueing up behind a burst.
    A late frame's near-duplicates borrow the same boxes, until the next fresh detection (at most
    `max_reuse` frames later).
    """

    def __init__(self, number: int, detector: Detector, inbox: BoundedQueue[Work | EndOfStream],
                 outbox: BoundedQueue[tuple[int, Detected | EndOfStream]],
                 stop: threading.Event, stats: Stats, late_after_s: float = 0.0) -> None:
        super().__init__(f"detect-{number}", stop, stats)
        self.detector, self.inbox, self.outbox = detector, inbox, outbox
        self.late_after_s = late_after_s

    def loop(self) -> None:
        while not self.stop.is_set():
            taken = self.inbox.take()
            if taken is None:
                continue
            ticket, work = taken
            if isinstance(work, EndOfStream):
                self.outbox.put((ticket, END), self.stop, force=True)
                return
            detected = self._detect(work)
            if not self.outbox.put((ticket, detected), self.stop):
                return

    def _detect(self, work: Work) -> Detected:
        if work.reuse:
            return Detected(work.frame, None, work.ref_index)
        started = time.monotonic()
        if self.late_after_s and started - work.frame.captured_at > self.late_after_s:
            self.stats.late()
            return Detected(work.frame, None, work.ref_index, late=True)
        boxes = np.asarray(self.detector.detect(work.frame.image), np.int32).reshape(-1, 4)
        self.stats.busy("detect", time.monotonic() - started)
        return Detected(work.frame, boxes, work.ref_index)
