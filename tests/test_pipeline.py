"""The pipeline with fakes: order, loss, drops, near-duplicates, batching, errors and shutdown.

Frames carry their index drawn in (tests/media.py), so the output's own pixels prove order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from media import read_index, synthetic_frame

from animerec.config import PipelineConfig, TrackerConfig
from animerec.realtime.pipeline import Pipeline
from animerec.realtime.protocols import SourceInfo
from animerec.realtime.queues import BoundedQueue, DropPolicy
from animerec.realtime.stages import DetectWorker
from animerec.recognition.classifier import Scores
from animerec.recognition.detector import ScoredBoxes
from animerec.recognition.detectors import MergedDetector
from animerec.records import Faces, Frame

SIZE = (192, 108)
LABELS = ("ame", "gura", "ina")


class FakeSource:
    """`count` synthetic frames (endless when None); `same_for` consecutive frames share a
    picture (anime drawn on twos/threes) when drawn without the index."""

    def __init__(self, count: int | None = 60, *, live: bool = False, delay: float = 0.0,
                 same_for: int = 1, draw: bool = True) -> None:
        self.info = SourceInfo("fake", live, SIZE[0], SIZE[1], 30.0, count or 0)
        self.count, self.delay, self.same_for, self.draw = count, delay, same_for, draw
        self.produced = 0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        index = 0
        while not stop.is_set() and (self.count is None or index < self.count):
            if self.delay:
                time.sleep(self.delay)
            image = synthetic_frame(index // self.same_for, SIZE, draw=self.draw)
            if self.draw:
                image = synthetic_frame(index, SIZE)
            self.produced += 1
            yield Frame(image, index, time.monotonic(), index / 30.0, "fake")
            index += 1

    dropped = 0
    errors = 0

    def close(self) -> None:
        pass


class FakeDetector:
    """One face per frame at a fixed place; random work time scrambles the threads' order."""

    def __init__(self, delay: float = 0.0, jitter: float = 0.0, fail_at: int = -1) -> None:
        self.delay, self.jitter, self.fail_at = delay, jitter, fail_at
        self.calls = 0
        self._rng = np.random.default_rng(1)
        self._lock = threading.Lock()

    def detect(self, image: np.ndarray) -> np.ndarray:
        with self._lock:
            self.calls += 1
            pause = self.delay + self.jitter * float(self._rng.random())
        if self.fail_at >= 0 and read_index(image) == self.fail_at:
            raise RuntimeError("detector exploded")
        time.sleep(pause)
        return np.array([[40, 30, 48, 48], [120, 30, 40, 40]], np.int32)


class FakeClassifier:
    labels = LABELS
    provider = "FakeExecutionProvider"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def classify(self, crops: list[np.ndarray]) -> Scores:
        self.batches.append(len(crops))
        probs = np.tile(np.array([0.1, 0.8, 0.1], np.float32), (len(crops), 1))
        embeddings = np.tile(np.array([0.0, 0.0, 1.0], np.float32), (len(crops), 1))
        return Scores(probs, embeddings)


class EmbeddingDecider:
    """Names a face from its track's (mean) embedding, as the open-set decision does."""

    names = LABELS

    def __init__(self) -> None:
        self.seen: list[Scores] = []

    def decide_tracks(self, boxes: np.ndarray, evidence: Scores, held: list[str | None]) -> Faces:
        return self.decide(boxes, evidence)

    def decide(self, boxes: np.ndarray, scores: Scores) -> Faces:
        self.seen.append(scores)
        best = scores.embeddings.argmax(axis=1)
        n = len(boxes)
        return Faces(boxes=boxes, top_names=tuple((LABELS[j],) for j in best),
                     top_probs=np.ones((n, 1), np.float32), names=tuple(LABELS[j] for j in best),
                     confidence=np.ones(n, np.float32))


def run_all(pipeline: Pipeline) -> list:
    return list(pipeline)


def animerec_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("animerec-")]


def test_file_source_keeps_every_frame_in_order_with_several_detector_threads():
    settings = PipelineConfig(detector_threads=3, dedup_threshold=0.0)
    classifier = FakeClassifier()
    pipeline = Pipeline(FakeSource(60), FakeDetector(jitter=0.01), classifier, settings=settings)
    items = run_all(pipeline)
    assert [item.frame.index for item in items] == list(range(60))
    assert [read_index(item.annotated) for item in items] == list(range(60))
    assert all(item.faces.names == ("gura", "gura") for item in items)
    assert all(len(set(item.faces.tracks.tolist())) == 2 for item in items)
    stats = pipeline.stats.snapshot()
    assert stats["frames_in"] == stats["frames_out"] == 60
    assert stats["dropped"] == 0 and stats["faces"] == 120
    assert {"fps", "latency_ms", "dropped", "provider"} <= stats.keys()
    assert stats["provider"] == "FakeExecutionProvider"
    assert set(stats["latency_ms"]) == {"p50", "p95", "p99"}
    assert {"detect", "track", "classify"} <= stats["stages_ms"].keys()
    assert not animerec_threads()


def test_live_source_drops_the_oldest_and_counts_every_drop():
    source = FakeSource(80, live=True)
    settings = PipelineConfig(detector_threads=1, frame_queue=2, dedup_threshold=0.0)
    pipeline = Pipeline(source, FakeDetector(delay=0.01), FakeClassifier(), settings=settings)
    assert pipeline.policy is DropPolicy.DROP_OLDEST
    indices = [item.frame.index for item in pipeline]
    stats = pipeline.stats.snapshot()
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert stats["dropped"] > 0
    assert stats["dropped_by"]["frames"] == stats["dropped"]
    assert stats["policy"] == "drop_oldest"
    assert len(indices) + stats["dropped"] == stats["frames_in"] == 80
    assert indices[-1] == 79  # the newest frame is never the one dropped


def test_drop_policy_is_a_constructor_argument():
    stop = threading.Event()
    dropped: list[str] = []
    queue: BoundedQueue[int] = BoundedQueue("q", 2, DropPolicy.DROP_OLDEST, dropped.append)
    for i in range(5):
        assert queue.put(i, stop)
    assert dropped == ["q", "q", "q"]
    assert [queue.get(), queue.get(), queue.get(0.01)] == [3, 4, None]
    blocking: BoundedQueue[int] = BoundedQueue("b", 1, DropPolicy.BLOCK)
    assert blocking.put(1, stop)
    stop.set()
    started = time.monotonic()
    assert not blocking.put(2, stop)  # full and stopped: gives up instead of waiting forever
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(("live", "workers"), [(True, 1), (False, 3)])
def test_a_live_source_detects_one_frame_at_a_time_and_a_file_several(live, workers):
    """Live, a frame's latency is its own detection time: one at a time, with the whole machine."""
    settings = PipelineConfig(detector_threads=3, dedup_threshold=0.0)
    pipeline = Pipeline(FakeSource(12, live=live), FakeDetector(), FakeClassifier(), settings=settings)
    assert sum(isinstance(stage, DetectWorker) for stage in pipeline.stages) == workers
    assert len(run_all(pipeline)) >= (1 if live else 12)


class OpenCvThreadsSeen:
    """A detector part that notes how many threads OpenCV's own pool had when it ran."""

    def __init__(self) -> None:
        self.seen: set[int] = set()

    def detect(self, image: np.ndarray) -> np.ndarray:
        return self.detect_scored(image).boxes

    def detect_scored(self, image: np.ndarray) -> ScoredBoxes:
        self.seen.add(cv2.getNumThreads())
        return ScoredBoxes.certain(np.array([[40, 30, 48, 48]], np.int32))


@pytest.mark.parametrize(("live", "merged", "pool"), [(True, False, 3), (True, True, 1), (False, False, 1)])
def test_opencv_keeps_its_pool_only_where_the_cascade_detects_alone(live, merged, pool):
    """One live detector thread may use OpenCV's pool; beside a second detector thread or the
    learned detector (`both`) it would only oversubscribe the cores. The count comes back after."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        part = OpenCvThreadsSeen()
        detector = MergedDetector(part, OpenCvThreadsSeen(), None) if merged else part
        source = FakeSource(6, live=live)
        run_all(Pipeline(source, detector, FakeClassifier(), settings=PipelineConfig(detector_threads=2)))
        assert part.seen == {pool}
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_near_duplicate_frames_reuse_detections_and_still_get_names():
    detector = FakeDetector()
    source = FakeSource(60, same_for=3, draw=False)  # each picture held for three frames
    pipeline = Pipeline(source, detector, FakeClassifier(), settings=PipelineConfig(detector_threads=2))
    items = run_all(pipeline)
    assert [item.frame.index for item in items] == list(range(60))
    assert all(len(item.faces) == 2 and item.faces.names == ("gura", "gura") for item in items)
    stats = pipeline.stats.snapshot()
    assert detector.calls == 20
    assert stats["reused"] == 40 and stats["reuse_rate"] == pytest.approx(40 / 60, abs=1e-3)


def test_live_drops_never_leave_a_near_duplicate_without_detections():
    """When the frame a duplicate refers to was dropped before detection, the duplicate is
    detected itself: no frame goes out without its faces."""
    source = FakeSource(90, live=True, same_for=3, draw=False)
    settings = PipelineConfig(detector_threads=1, frame_queue=1)
    pipeline = Pipeline(source, FakeDetector(delay=0.01), FakeClassifier(), settings=settings)
    items = run_all(pipeline)
    stats = pipeline.stats.snapshot()
    assert stats["dropped"] > 0 and stats["reused"] > 0
    assert all(len(item.faces) == 2 for item in items)


def test_late_live_frames_take_the_newest_detections_instead_of_queueing():
    """A detector slower than the camera: frames that waited too long skip the cascade (counted
    as late) and still go out with faces; with the budget off, every delivered frame is detected."""
    outcomes = {}
    for late_ms in (0.0, 15.0):
        detector = FakeDetector(delay=0.03)
        settings = PipelineConfig(detector_threads=1, frame_queue=4, dedup_threshold=0.0, late_frame_ms=late_ms)
        pipeline = Pipeline(FakeSource(60, live=True, delay=0.01), detector, FakeClassifier(), settings=settings)
        items = run_all(pipeline)
        outcomes[late_ms] = (pipeline.stats.snapshot(), detector.calls, items)
    stats, calls, items = outcomes[0.0]
    assert stats["late"] == 0 and calls == len(items)
    stats, calls, items = outcomes[15.0]
    assert stats["late"] > 0 and len(items) <= calls + stats["late"] <= len(items) + 1  # + a late first frame
    assert all(len(item.faces) == 2 and item.faces.names == ("gura", "gura") for item in items)
    assert stats["dropped"] < outcomes[0.0][0]["dropped"]  # skipping drains the queue


def test_live_sources_classify_at_once_instead_of_waiting_for_a_fuller_batch():
    settings = PipelineConfig(detector_threads=1, max_batch=64, max_wait_ms=1000.0, dedup_threshold=0.0)
    classifier = FakeClassifier()
    source = FakeSource(20, live=True, delay=0.01)
    pipeline = Pipeline(source, FakeDetector(), classifier, settings=settings)
    items = run_all(pipeline)
    assert len(items) == 20 and classifier.batches and max(classifier.batches) <= 4
    assert pipeline.stats.snapshot()["latency_ms"]["p95"] < 500  # a file source would hold them 1 s


def test_a_late_first_frame_is_still_detected():
    detector = FakeDetector(delay=0.02)
    settings = PipelineConfig(detector_threads=1, frame_queue=8, dedup_threshold=0.0, late_frame_ms=0.001)
    pipeline = Pipeline(FakeSource(10, live=True), detector, FakeClassifier(), settings=settings)
    items = run_all(pipeline)
    assert items and all(len(item.faces) == 2 for item in items)
    assert detector.calls >= 1


def test_crops_from_several_frames_share_one_classifier_call():
    classifier = FakeClassifier()
    settings = PipelineConfig(detector_threads=2, max_batch=6, max_wait_ms=1000.0, dedup_threshold=0.0)
    pipeline = Pipeline(FakeSource(30), FakeDetector(), classifier, settings=settings,
                        tracker=TrackerConfig(reclassify_every=1))
    items = run_all(pipeline)
    assert len(items) == 30
    assert sum(classifier.batches) == 60  # every face, every frame (reclassify_every=1)
    assert max(classifier.batches) <= 6
    assert len(classifier.batches) == 10  # full batches of three frames' crops
    assert pipeline.stats.snapshot()["mean_batch"] == 6.0


def test_tracks_are_classified_once_then_only_on_their_interval():
    classifier = FakeClassifier()
    settings = PipelineConfig(detector_threads=2, max_wait_ms=0.0, dedup_threshold=0.0)
    pipeline = Pipeline(FakeSource(31), FakeDetector(), classifier, settings=settings,
                        tracker=TrackerConfig(reclassify_every=15))
    run_all(pipeline)
    assert sum(classifier.batches) == 2 * 3  # two faces, at frames 0, 15 and 30


def test_a_given_decider_names_faces_from_the_tracks_voted_embeddings():
    decider = EmbeddingDecider()
    pipeline = Pipeline(FakeSource(10), FakeDetector(), FakeClassifier(), decider=decider)
    items = run_all(pipeline)
    assert all(item.faces.names == ("ina", "ina") for item in items)
    assert all(len(set(item.faces.tracks.tolist())) == 2 for item in items)
    assert all(scores.embeddings.shape == (2, 3) for scores in decider.seen)


def test_a_stage_error_stops_the_pipeline_and_is_raised_to_the_caller():
    pipeline = Pipeline(FakeSource(None), FakeDetector(fail_at=5), FakeClassifier(),
                        settings=PipelineConfig(dedup_threshold=0.0))
    with pytest.raises(RuntimeError, match="detector exploded"):
        run_all(pipeline)
    assert not animerec_threads()


@pytest.mark.parametrize("live", [True, False])
def test_stop_mid_run_ends_every_thread_within_two_seconds(live):
    source = FakeSource(None, live=live, delay=0.005)
    pipeline = Pipeline(source, FakeDetector(delay=0.02), FakeClassifier(),
                        settings=PipelineConfig(detector_threads=2, dedup_threshold=0.0))
    seen = 0
    stopped_at = 0.0
    for _ in pipeline:
        seen += 1
        if seen == 10:
            threading.Timer(0.0, pipeline.stop).start()  # as a signal handler or window would
            stopped_at = time.monotonic()
    assert seen >= 10
    assert time.monotonic() - stopped_at < 2.0
    assert not animerec_threads()


def test_leaving_the_loop_early_shuts_down_too():
    pipeline = Pipeline(FakeSource(None), FakeDetector(delay=0.01), FakeClassifier())
    for item in pipeline:
        if item.frame.index == 5:
            break
    started = time.monotonic()
    while animerec_threads() and time.monotonic() - started < 2.0:
        time.sleep(0.01)
    assert not animerec_threads()
    with pytest.raises(RuntimeError, match="runs once"):
        list(pipeline)
