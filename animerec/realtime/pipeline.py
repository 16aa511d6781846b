"""The real-time pipeline: source -> detect (N threads) -> track + batch-classify -> overlay -> caller.

    reader ──frames──▶ detect-0..N-1 ──detections──▶ track ──named──▶ overlay ──out──▶ run() (caller)

Each arrow is a bounded `BoundedQueue`. Only the first one may drop (live sources: oldest frame out,
counted), because dropping after detection would throw away paid-for work; the others block, so
back-pressure from a slow consumer reaches the one place that drops. One stop event ends every
thread; `run()` yields `AnnotatedFrame`s in order on the calling thread, so a window can live on
the main thread, and the caller writes the sinks.

    pipeline = Pipeline(source, CascadeDetector(config.cascade_settings()), classifier,
                        settings=config.pipeline, tracker=config.tracker)
    for item in pipeline:          # or: with pipeline: ...
        sink.write(item)
    pipeline.stats.snapshot()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from types import TracebackType
from typing import Any

import cv2

from animerec.config import PipelineConfig, TrackerConfig
from animerec.realtime.batcher import Result, TrackStage
from animerec.realtime.overlay import FaceAnnotator, StatusAnnotator
from animerec.realtime.protocols import Source
from animerec.realtime.queues import BoundedQueue, DropPolicy
from animerec.realtime.stages import END, DetectWorker, EndOfStream, NearDuplicates, SourceReader, Stage
from animerec.realtime.stats import Stats
from animerec.recognition.classifier import Classifier
from animerec.recognition.detector import Detector
from animerec.recognition.detectors import MergedDetector
from animerec.recognition.naming import Decider
from animerec.recognition.recognizer import TOP_K, default_decider
from animerec.records import AnnotatedFrame

log = logging.getLogger(__name__)

SHUTDOWN_S = 2.0  # every thread gets this long, all together, to finish after stop
STATUS_REFRESH_S = 0.25  # the status line's numbers change four times a second, not per frame


class OverlayStage(Stage):
    """Draws faces (and the status line) onto each frame; without annotators, passes it through."""

    def __init__(self, inbox: BoundedQueue[Result | EndOfStream],
                 outbox: BoundedQueue[AnnotatedFrame | EndOfStream], faces: FaceAnnotator | None,
                 status: StatusAnnotator | None, stop: threading.Event, stats: Stats) -> None:
        super().__init__("overlay", stop, stats)
        self.inbox, self.outbox, self.faces, self.status = inbox, outbox, faces, status
        self._snapshot: dict[str, Any] = {}
        self._snapshot_at = -1.0

    def loop(self) -> None:
        while not self.stop.is_set():
            item = self.inbox.get()
            if item is None:
                continue
            if isinstance(item, EndOfStream):
                self.outbox.put(END, self.stop, force=True)
                return
            frame, faces = item
            started = time.monotonic()
            image = frame.image
            if self.faces is not None:
                image = self.faces.annotate(image, faces)
            if self.status is not None:
                image = self.status.annotate(image, self._status(started), in_place=image is not frame.image)
            self.stats.busy("overlay", time.monotonic() - started)
            if not self.outbox.put(AnnotatedFrame(frame, faces, image), self.stop):
                return

    def _status(self, now: float) -> dict[str, Any]:
        if now - self._snapshot_at > STATUS_REFRESH_S:
            self._snapshot, self._snapshot_at = self.stats.snapshot(), now
        return self._snapshot


class Pipeline:
    """Source in, annotated frames out, in order. Iterate it once (or call `run()`).

    `policy` defaults from the source: live sources drop the oldest waiting frame, files block
    and lose nothing. Files are detected `detector_threads` frames at a time, for throughput;
    live sources `live_detector_threads` (one by default), for latency.

    `decider` names faces from their tracks' votes (default: the model's own
    decision, open-set when it is calibrated, no gallery). Without `annotator`,
    `AnnotatedFrame.annotated` is the frame itself.
    """

    def __init__(self, source: Source, detector: Detector, classifier: Classifier, *,
                 settings: PipelineConfig | None = None, tracker: TrackerConfig | None = None,
                 annotator: FaceAnnotator | None = None, status: StatusAnnotator | None = None,
                 policy: DropPolicy | None = None, decider: Decider | None = None,
                 top_k: int = TOP_K) -> None:
        settings = settings or PipelineConfig()
        self.source, self.settings = source, settings
        self.policy = policy or (DropPolicy.DROP_OLDEST if source.info.live else DropPolicy.BLOCK)
        self.stop_event = threading.Event()
        self.stats = Stats(provider=classifier.provider, policy=self.policy.value)
        live = self.policy is DropPolicy.DROP_OLDEST
        stop, stats = self.stop_event, self.stats
        n = settings.live_detector_threads if live else settings.detector_threads
        self._frames: BoundedQueue[Any] = BoundedQueue("frames", settings.frame_queue, self.policy, stats.dropped)
        self._detected: BoundedQueue[Any] = BoundedQueue("detections", settings.result_queue, DropPolicy.BLOCK)
        self._named: BoundedQueue[Any] = BoundedQueue("named", settings.result_queue, DropPolicy.BLOCK)
        self._out: BoundedQueue[Any] = BoundedQueue("out", settings.result_queue, DropPolicy.BLOCK)
        late_after_s = settings.late_frame_ms / 1000.0 if live else 0.0
        # Live, a frame waiting for other frames' crops is latency: classify what is there now.
        batching = replace(settings, max_wait_ms=0.0) if live else settings
        dedup = NearDuplicates(settings.dedup_threshold, settings.max_reuse)
        decider = decider if decider is not None else default_decider(classifier, top_k)
        self.stages: list[Stage] = [
            SourceReader(source, self._frames, n, dedup, stop, stats),
            *(DetectWorker(i, detector, self._frames, self._detected, stop, stats, late_after_s) for i in range(n)),
            TrackStage(detector, classifier, self._detected, self._named, decider, batching,
                       tracker or TrackerConfig(), stop, stats),
            OverlayStage(self._named, self._out, annotator, status, stop, stats),
        ]
        # OpenCV's own pool speeds the cascade up only where nothing else detects beside it: one
        # detector thread, and no learned detector on a helper thread (`both`); else it oversubscribes.
        self._cascade_alone = n == 1 and not isinstance(detector, MergedDetector)
        self._started = False
        self._cv_threads: int | None = None

    def stop(self) -> None:
        """Ask every stage to finish; safe from any thread or a signal handler."""
        self.stop_event.set()

    def __iter__(self) -> Iterator[AnnotatedFrame]:
        return self.run()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def run(self) -> Iterator[AnnotatedFrame]:
        """Start the stages and yield finished frames in order until the source ends or `stop()`.

        A stage's exception stops the pipeline and is raised here. Leaving the loop early
        (break, Ctrl-C) shuts the threads down within SHUTDOWN_S.
        """
        if self._started:
            raise RuntimeError("a Pipeline runs once; build a new one")
        self._start()
        try:
            while not self.stop_event.is_set():  # after stop(), nothing more is handed out
                item = self._out.get()
                if item is None:
                    continue
                if isinstance(item, EndOfStream):
                    break
                self.stats.frame_out(item.frame.captured_at, len(item.faces))
                yield item
        finally:
            self.close()
        for stage in self.stages:
            if stage.error is not None:
                raise stage.error

    def _start(self) -> None:
        self._started = True
        if not self._cascade_alone:
            self._cv_threads = cv2.getNumThreads()
            cv2.setNumThreads(1)
        for stage in self.stages:
            stage.start()

    def close(self) -> None:
        """Stop, unblock and join every thread (upstream first) within SHUTDOWN_S all told;
        log any thread that did not exit."""
        self.stop_event.set()
        deadline = time.monotonic() + SHUTDOWN_S
        for stage in self.stages:
            if stage.thread.ident is None:
                continue
            for queue in (self._frames, self._detected, self._named, self._out):
                queue.drain()  # nobody may stay blocked on a full queue
            stage.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [s.thread.name for s in self.stages if s.thread.is_alive()]
        if stuck:
            log.warning("threads still running %.1f s after stop: %s", SHUTDOWN_S, ", ".join(stuck))
        if self._cv_threads is not None:
            cv2.setNumThreads(self._cv_threads)
            self._cv_threads = None
