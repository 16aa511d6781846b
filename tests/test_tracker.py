"""The tracker on its own: identities, evidence that does not flicker, when it asks for a new look;
and with the batcher and a real open-set decider, names that one bad look cannot take away."""

import itertools
import time

import numpy as np
import pytest

from animerec.config import PipelineConfig, TrackerConfig
from animerec.realtime.batcher import Batcher
from animerec.realtime.stats import Stats
from animerec.realtime.tracker import NameChangeCounter, Track, Tracker, count_name_changes, iou_matrix
from animerec.recognition.classifier import Scores
from animerec.recognition.model_info import OpenSetCalibration
from animerec.recognition.naming import ClosedSetDecider, OpenSetDecider
from animerec.records import Faces, Frame

LABELS = ("ame", "gura", "ina")
DIM = 8


def boxes(*rows: tuple[int, int, int, int]) -> np.ndarray:
    return np.array(rows, np.int32).reshape(-1, 4)


def basis(i: int) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[i] = 1.0
    return vector


def faces_of(tracks) -> Faces:
    """What the pipeline would output: each track named from its evidence, holding its name."""
    decider = ClosedSetDecider(LABELS)
    looks = [t.evidence() for t in tracks]
    evidence = Scores(np.concatenate([e.probs for e in looks]), np.concatenate([e.embeddings for e in looks]))
    faces = decider.decide_tracks(np.stack([t.box for t in tracks]), evidence, [t.name for t in tracks])
    for track, name in zip(tracks, faces.names, strict=True):
        track.name = None if name == "unknown" else name
    return faces.with_tracks(np.array([t.id for t in tracks], np.int64))


def test_iou_matrix():
    a = boxes((0, 0, 10, 10), (100, 100, 10, 10))
    b = boxes((0, 0, 10, 10), (5, 0, 10, 10))
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 2)
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(50 / 150)
    assert iou[1].max() == 0.0
    assert iou_matrix(boxes(), b).shape == (0, 2)


def test_boxes_keep_their_track_as_they_move():
    tracker = Tracker()
    first, _ = tracker.update(boxes((10, 10, 50, 50), (200, 10, 50, 50)), 0)
    second, _ = tracker.update(boxes((204, 12, 50, 50), (14, 12, 50, 50)), 1)  # listed the other way
    assert [t.id for t in second] == [first[1].id, first[0].id]
    assert first[0].id != first[1].id


def test_a_one_or_two_frame_miss_keeps_the_track():
    tracker = Tracker(TrackerConfig(max_misses=2))
    (track,), _ = tracker.update(boxes((10, 10, 50, 50)), 0)
    tracker.update(boxes(), 1)
    tracker.update(boxes(), 2)
    (again,), _ = tracker.update(boxes((12, 10, 50, 50)), 3)
    assert again.id == track.id
    for index in range(4, 7):  # three misses in a row end it
        tracker.update(boxes(), index)
    (new,), _ = tracker.update(boxes((12, 10, 50, 50)), 7)
    assert new.id != track.id


def test_a_named_track_is_looked_at_on_first_sight_growth_and_interval_only():
    tracker = Tracker(TrackerConfig(reclassify_every=10, reclassify_growth=0.2))
    asked = []
    side = 50
    for index in range(25):
        if index == 5:
            side = 58  # +35% area: a closer look
        tracks, wanted = tracker.update(boxes((10, 10, side, side)), index)
        tracks[0].name = "ame"  # named at its first look
        if wanted:
            asked.append(index)
    assert asked == [0, 5, 15]  # first sight, growth, then every 10 frames from the last look


def test_an_undecided_track_is_looked_at_on_every_frame_until_named():
    tracker = Tracker(TrackerConfig(reclassify_every=10))
    asked = []
    for index in range(30):
        tracks, wanted = tracker.update(boxes((10, 10, 50, 50)), index)
        if index == 4:
            tracks[0].name = "gura"  # the evidence of five looks was enough
        if wanted:
            asked.append(index)
    assert asked == [0, 1, 2, 3, 4, 14, 24]


def test_small_growth_does_not_trigger_a_new_look():
    tracker = Tracker(TrackerConfig(reclassify_every=100, reclassify_growth=0.2))
    tracks, wanted = tracker.update(boxes((10, 10, 50, 50)), 0)
    assert wanted == [0]
    tracks[0].name = "ame"
    _, wanted = tracker.update(boxes((10, 10, 53, 53)), 1)  # +12% area
    assert wanted == []


def test_evidence_is_the_true_mean_of_every_look():
    track = Track(1, np.array([0, 0, 10, 10], np.int32), 0)
    looks = np.random.default_rng(0).normal(size=(7, DIM)).astype(np.float32)
    probs = np.random.default_rng(1).dirichlet((1.0, 1.0, 1.0), size=7).astype(np.float32)
    for p, e in zip(probs, looks, strict=True):
        track.add_look(p, e)
    evidence = track.evidence()
    mean = looks.mean(axis=0)
    np.testing.assert_allclose(evidence.embeddings[0], mean / np.linalg.norm(mean), atol=1e-6)  # the first look is 1/7
    np.testing.assert_allclose(evidence.probs[0], probs.mean(axis=0), atol=1e-6)
    assert track.looks == 7


def run_votes(probabilities, settings=None):
    """One face, classified whenever the tracker asks, with the given probabilities: each frame's Faces."""
    tracker = Tracker(settings or TrackerConfig(reclassify_every=1))
    voted = []
    for index, probs in enumerate(probabilities):
        tracks, wanted = tracker.update(boxes((10, 10, 50, 50)), index)
        for row in wanted:
            tracks[row].add_look(probs, np.zeros(DIM, np.float32))
        voted.append(faces_of(tracks))
    return voted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evidence_does_not_flicker_under_noisy_probabilities(seed):
    """The true class wins on average, yet one classification in five is wrong: the per-frame
    argmax flickers, the name from the track's evidence does not."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet((8.0, 4.0, 1.0), size=300).astype(np.float32)  # "ame" on average
    raw = [LABELS[i] for i in probabilities.argmax(axis=1)]
    voted = run_votes(probabilities)
    assert sum(a != b for a, b in itertools.pairwise(raw)) > 40  # the noise is real
    assert sum(count_name_changes(voted).values()) <= 2
    assert voted[-1].names == ("ame",)


def test_evidence_follows_a_lasting_change():
    probabilities = np.array([[0.8, 0.15, 0.05]] * 20 + [[0.1, 0.85, 0.05]] * 20, np.float32)
    voted = run_votes(probabilities)
    assert voted[19].names == ("ame",)
    assert voted[-1].names == ("gura",)
    assert sum(count_name_changes(voted).values()) == 1


def test_name_change_counter_counts_per_track():
    def frame(names, tracks):
        n = len(names)
        return Faces(
            boxes=np.zeros((n, 4), np.int32),
            top_names=tuple((x,) for x in names),
            top_probs=np.ones((n, 1), np.float32),
            names=tuple(names),
            confidence=np.ones(n, np.float32),
            tracks=np.array(tracks, np.int64),
        )

    counter = NameChangeCounter()
    for faces in (frame(["a", "b"], [1, 2]), frame(["a", "c"], [1, 2]), frame(["b"], [1]),
                  frame(["b", "x"], [1, 3]), Faces.empty()):
        counter.observe(faces)
    assert counter.changes == {1: 1, 2: 1, 3: 0}
    assert counter.total == 2
    # 7 face-frames at 2 fps are 3.5 track-seconds on screen: 2 changes -> 5.714 per 10 s
    assert counter.per_10_seconds(2.0) == pytest.approx(10 * 2 / 3.5, abs=1e-3)
    assert counter.per_10_seconds(0.0) is None and NameChangeCounter().per_10_seconds(30.0) is None


def test_a_tracks_first_decision_after_unknown_is_not_a_change():
    """Undecided tracks show "unknown" until their evidence names them: that first name is a
    decision; dropping it later, or coming back to it, is a change the viewer sees."""
    def frame(name):
        return Faces(boxes=np.zeros((1, 4), np.int32), top_names=((name,),), top_probs=np.ones((1, 1), np.float32),
                     names=(name,), confidence=np.ones(1, np.float32), tracks=np.array([7], np.int64))

    counter = NameChangeCounter()
    for name in ("unknown", "unknown", "ame", "ame", "unknown", "ame", "gura"):
        counter.observe(frame(name))
    assert counter.changes == {7: 3}


class ScriptedClassifier:
    """Gives the crops of successive calls the embeddings of a script, one per crop."""

    labels, provider = LABELS, "FakeExecutionProvider"

    def __init__(self, script: list[np.ndarray]) -> None:
        self.script = iter(script)

    def classify(self, crops: list[np.ndarray]) -> Scores:
        embeddings = np.stack([next(self.script) for _ in crops])
        embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
        return Scores(np.full((len(crops), len(LABELS)), 1 / 3, np.float32), embeddings.astype(np.float32))


def names_on_video(script: list[np.ndarray], decider: OpenSetDecider) -> list[str]:
    """One face followed over len(script) frames, named by the batcher from its track's looks."""
    tracker = Tracker(TrackerConfig(reclassify_every=1))
    batcher = Batcher(ScriptedClassifier(script), decider, PipelineConfig(max_batch=1, max_wait_ms=0.0), Stats())
    image = np.zeros((64, 64, 3), np.uint8)
    names = []
    for index in range(len(script)):
        face = boxes((10, 10, 30, 30))
        tracks, wanted = tracker.update(face, index)
        for _, faces in batcher.add(Frame(image, index, time.monotonic(), index / 30.0, "test"), face, tracks, wanted):
            names += faces.names
    return names


def test_one_blurred_look_never_makes_a_named_track_unknown():
    """Looks of gura, and at the third a blurred one that resembles nobody: a track once named
    keeps its name. (The old moving average gave the third look a third of the weight, dropped
    below the threshold, and showed "unknown".)"""
    calibration = OpenSetCalibration(np.stack([basis(0), basis(1), basis(2)]), np.zeros(DIM, np.float32), 0.9, 10.0)
    decider = OpenSetDecider.from_calibration(LABELS, calibration)
    script = [basis(1)] * 2 + [basis(6)] + [basis(1)] * 5
    assert names_on_video(script, decider) == ["gura"] * len(script)


def test_a_track_is_named_from_the_mean_of_its_looks_not_from_its_first():
    """No single look reaches the bar, but their mean does: a face seen for long gets its name."""
    calibration = OpenSetCalibration(np.stack([basis(0), basis(1), basis(2)]), np.zeros(DIM, np.float32), 0.8, 10.0)
    decider = OpenSetDecider.from_calibration(LABELS, calibration)
    rng = np.random.default_rng(3)
    noise = [rng.normal(size=DIM).astype(np.float32) * 0.45 for _ in range(40)]
    script = [basis(1) + n * (1 - basis(1)) for n in noise]  # gura plus noise in every other direction
    single = decider.decide(boxes(*[(0, 0, 10, 10)] * len(script)), ScriptedClassifier(script).classify([None] * 40))
    assert single.names.count("gura") < 10  # one look at a time, mostly unknown
    names = names_on_video(script, decider)
    assert names[-20:] == ["gura"] * 20
