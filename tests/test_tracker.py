"""The tracker on its own: identities, a vote that does not flicker, when it asks for a new look."""

import itertools

import numpy as np
import pytest

from animerec.config import TrackerConfig
from animerec.realtime.tracker import NameChangeCounter, Tracker, count_name_changes, iou_matrix
from animerec.records import Faces

LABELS = ("ame", "gura", "ina")


def boxes(*rows: tuple[int, int, int, int]) -> np.ndarray:
    return np.array(rows, np.int32).reshape(-1, 4)


def faces_of(tracks, classes=LABELS) -> Faces:
    """What the pipeline would output: each track's name decided from its vote."""
    names = tuple(classes[int(np.argmax(t.vote))] for t in tracks)
    return Faces(
        boxes=np.stack([t.box for t in tracks]) if tracks else np.zeros((0, 4), np.int32),
        top_names=tuple((n,) for n in names),
        top_probs=np.ones((len(tracks), 1), np.float32),
        names=names,
        confidence=np.ones(len(tracks), np.float32),
        tracks=np.array([t.id for t in tracks], np.int64),
    )


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


def test_classification_on_first_sight_growth_and_interval_only():
    tracker = Tracker(TrackerConfig(reclassify_every=10, reclassify_growth=0.2))
    asked = []
    side = 50
    for index in range(25):
        if index == 5:
            side = 58  # +35% area: a closer look
        _, wanted = tracker.update(boxes((10, 10, side, side)), index)
        if wanted:
            asked.append(index)
    assert asked == [0, 5, 15]  # first sight, growth, then every 10 frames from the last look


def test_small_growth_does_not_trigger_a_new_look():
    tracker = Tracker(TrackerConfig(reclassify_every=100, reclassify_growth=0.2))
    _, wanted = tracker.update(boxes((10, 10, 50, 50)), 0)
    assert wanted == [0]
    _, wanted = tracker.update(boxes((10, 10, 53, 53)), 1)  # +12% area
    assert wanted == []


def run_votes(probabilities, settings=None):
    """One face, classified on every frame with the given probabilities: each frame's Faces."""
    tracker = Tracker(settings or TrackerConfig(reclassify_every=1))
    voted = []
    for index, probs in enumerate(probabilities):
        tracks, wanted = tracker.update(boxes((10, 10, 50, 50)), index)
        for row in wanted:
            tracks[row].add_vote(probs, tracker.settings.vote_alpha)
        voted.append(faces_of(tracks))
    return voted


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vote_does_not_flicker_under_noisy_probabilities(seed):
    """The true class wins on average, yet one classification in five is wrong: the per-frame
    argmax flickers, the name from the vote (default settings) does not."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet((8.0, 4.0, 1.0), size=300).astype(np.float32)  # "ame" on average
    raw = [LABELS[i] for i in probabilities.argmax(axis=1)]
    voted = run_votes(probabilities)
    assert sum(a != b for a, b in itertools.pairwise(raw)) > 40  # the noise is real
    assert sum(count_name_changes(voted).values()) <= 2
    assert voted[-1].names == ("ame",)


def test_vote_follows_a_lasting_change_of_evidence():
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
