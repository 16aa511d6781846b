"""The learned detector's second look (recognition/second_look.py): real faces are found again
when zoomed in, the false boxes of the held-aside clips are not, and `both` and `learned` keep only
confirmed boxes."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from animerec.benchmarks.detectors import Detections
from animerec.config import load_config
from animerec.recognition.detector import CascadeDetector, ScoredBoxes
from animerec.recognition.detectors import ConfirmedDetector, MergedDetector, describe, make_detector
from animerec.recognition.learned_detector import LearnedDetector, LearnedSettings
from animerec.recognition.second_look import SURE, SecondLook, SecondLookSettings


@pytest.fixture(scope="module")
def learned() -> LearnedDetector:
    return LearnedDetector(LearnedSettings(device="cpu"))


@pytest.fixture(scope="module")
def second_look(learned) -> SecondLook:
    return SecondLook(learned)


def framed(path) -> np.ndarray:
    return cv2.copyMakeBorder(cv2.imread(str(path)), 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255, 255, 255))


def test_a_grey_picture_is_looked_at_in_colour(second_look, learned, face_paths):
    grey = cv2.cvtColor(framed(face_paths[0]), cv2.COLOR_BGR2GRAY)
    found = learned.detect_scored(grey)
    assert len(found) >= 1 and second_look.scores(grey, found.boxes).max() >= second_look.settings.threshold


def test_every_sample_face_is_found_again(second_look, learned, face_paths):
    for path in face_paths:
        image = framed(path)
        found = learned.detect_scored(image)
        face = int(np.argmax(found.boxes[:, 2]))  # the crop's face; at 0.5 a small stray box may come too
        assert found.boxes[face, 2] > 150, path.name
        assert second_look.scores(image, found.boxes)[face] >= second_look.settings.threshold, path.name
        assert len(second_look.confirmed(image, found)) == 1, path.name


def test_a_box_over_nothing_scores_zero_and_no_boxes_no_scores(second_look):
    blank = np.full((360, 640, 3), 128, np.uint8)
    assert second_look.scores(blank, np.array([[300, 100, 80, 80]], np.int32)).tolist() == [0.0]
    assert second_look.scores(blank, np.zeros((0, 4), np.int32)).shape == (0,)


def test_the_zoomed_window_puts_the_box_in_its_middle_at_the_chosen_side(learned):
    look = SecondLook(learned, SecondLookSettings(side=100))
    image = np.zeros((300, 400, 3), np.uint8)
    image[50:100, 200:250] = 255  # the box's area, white
    window, target = look._zoom(image, np.array([200, 50, 50, 50], np.int32))
    assert window.shape == (250, 250, 3) and target.tolist() == [75.0, 75.0, 100.0, 100.0]
    assert window[80:170, 80:170].min() == 255 and window[:60].max() == 0  # the box, scaled 2x


class Refusing(SecondLook):
    """A second look that confirms nothing: the filtering without the network."""

    def __init__(self) -> None:
        self.settings = SecondLookSettings()

    def scores(self, image, boxes):
        return np.zeros(len(boxes), np.float32)


class Fixed:
    """A learned detector that finds the same boxes on every image."""

    def __init__(self, found: ScoredBoxes) -> None:
        self.found = found

    def detect_scored(self, image):
        return self.found


def test_unconfirmed_learned_boxes_are_dropped_unless_the_detector_is_sure(face_paths):
    sure, unsure = [300, 0, 80, 80], [500, 0, 60, 60]
    learned = Fixed(ScoredBoxes(np.array([sure, unsure]), np.array([SURE, SURE - 0.01])))
    image = framed(face_paths[0])
    assert ConfirmedDetector(learned, Refusing()).detect(image).tolist() == [sure]
    cascade = CascadeDetector()
    face = cascade.detect(image).tolist()
    assert len(face) == 1
    assert MergedDetector(cascade, learned, Refusing()).detect(image).tolist() == [*face, sure]
    assert MergedDetector(cascade, learned, None).detect(image).tolist() == [*face, sure, unsure]


class Meeting:
    """A detector that answers only once the other one is running too: run one after the other,
    the first would wait for the second in vain and fail."""

    def __init__(self, barrier: threading.Barrier, found: ScoredBoxes) -> None:
        self.barrier, self.found, self.thread = barrier, found, ""

    def detect_scored(self, image):
        self.thread = threading.current_thread().name
        self.barrier.wait(timeout=10)
        return self.found


def test_both_detectors_run_at_once_the_learned_one_on_a_helper_thread():
    meet = threading.Barrier(2)
    face, other = [10, 10, 50, 50], [200, 10, 50, 50]
    cascade = Meeting(meet, ScoredBoxes.certain(np.array([face], np.int32)))
    learned = Meeting(meet, ScoredBoxes(np.array([face, other]), np.array([SURE, SURE])))
    image = np.zeros((100, 300, 3), np.uint8)
    assert MergedDetector(cascade, learned, None).detect(image).tolist() == [face, other]
    assert cascade.thread == threading.current_thread().name
    assert learned.thread.startswith("learned-detector")


def test_the_second_look_is_on_by_default_and_off_at_zero():
    config = load_config(overrides=["detector.kind=both", "detector.learned_device=cpu"])
    assert config.second_look_settings() == SecondLookSettings(threshold=0.7, side=256)
    both = make_detector(config)
    assert isinstance(both, MergedDetector) and both.second_look is not None
    assert describe(both).endswith("second look at 256 px, kept from 0.7")
    off = make_detector(load_config(overrides=["detector.kind=both", "detector.confirm_threshold=0"]))
    assert isinstance(off, MergedDetector) and off.second_look is None


def test_the_benchmark_drops_learned_boxes_the_second_look_does_not_confirm():
    cascade = ScoredBoxes.certain(np.array([[0, 0, 50, 50]]))
    learned = ScoredBoxes(np.array([[300, 0, 80, 80], [500, 0, 60, 60], [2, 2, 50, 50]]), np.array([0.95, 0.9, 0.9]))
    detections = Detections(cascade, learned, np.array([0.8, 0.2, 0.1], np.float32))
    assert detections.at(0.7, 0.5).boxes("both") == [(0, 0, 50, 50), (300, 0, 80, 80)]
    assert detections.at(0.7, 0.1).boxes("both") == [(0, 0, 50, 50), (300, 0, 80, 80), (500, 0, 60, 60)]
    only = detections.learned_only()  # the box on the cascade's is not added; each keeps its score
    assert only.learned.boxes.tolist() == [[300, 0, 80, 80], [500, 0, 60, 60]]
    assert only.looks is not None and only.looks.tolist() == pytest.approx([0.8, 0.2])
    sure = Detections(cascade, ScoredBoxes(np.array([[300, 0, 80, 80]]), np.array([SURE])), np.zeros(1, np.float32))
    assert sure.at(0.7, 0.7).boxes("both") == [(0, 0, 50, 50), (300, 0, 80, 80)]  # kept without a second look


# Boxes the learned detector added on the held-aside clips (every 3rd frame, threshold 0.7), found
# false or true by eye on the contact sheets (DETECTOR_CARD.md); (clip, frame, box).
FALSE_BOXES = [("digimon_a4kml_720p.mp4", 750, (317, 476, 55, 55)),  # "USA" on a shirt
               ("digimon_a4kml_720p.mp4", 750, (7, 365, 187, 187)),  # a tree before a brick wall
               ("patorn_taki.mp4", 318, (205, 331, 14, 14)),  # a subtitle's "Bi"
               ("patorn_taki.mp4", 402, (413, 333, 16, 16))]  # a subtitle's "ke."
FACES = [("digimon_a4kml_720p.mp4", 612, (361, 215, 162, 162)), ("patorn_taki.mp4", 534, (204, 21, 196, 196))]


def frame_of(path, index):
    from animerec.media import every_nth_frame

    return next(frame for k, frame in every_nth_frame(path, 1) if k == index)


def overlaps(found, box):
    from animerec.recognition.faceboxes import iou_matrix

    return len(found) > 0 and iou_matrix(found.astype(np.float32), np.array([box], np.float32)).max() > 0.3


def test_on_the_held_aside_clips_both_keeps_the_faces_and_drops_the_false_boxes(shared_data):
    both = make_detector(load_config(overrides=["detector.kind=both", "detector.learned_device=cpu"]))
    unchecked = make_detector(load_config(overrides=["detector.kind=both", "detector.learned_device=cpu",
                                                     "detector.confirm_threshold=0"]))
    for clip, index, box in FALSE_BOXES:
        frame = frame_of(shared_data / "videos" / clip, index)
        assert overlaps(unchecked.detect(frame), box), (clip, index)  # there without the second look
        assert not overlaps(both.detect(frame), box), (clip, index)
    for clip, index, box in FACES:
        assert overlaps(both.detect(frame_of(shared_data / "videos" / clip, index)), box), (clip, index)


def test_the_second_look_benchmark_counts_lettering_boxes_and_unseen_faces(shared_data, capsys):
    import json

    from animerec.benchmarks.second_look import main as benchmark

    argv = ["--data", str(shared_data), "--frames", "8", "--sides", "256", "--thresholds", "0.5,0.99", "--json"]
    assert benchmark(argv) == 0
    loose, strict = json.loads(capsys.readouterr().out)
    assert (loose["side"], loose["threshold"], strict["threshold"]) == (256, 0.5, 0.99)
    assert loose["faces"] == strict["faces"] > 0 and loose["false_boxes"] == strict["false_boxes"]
    assert strict["faces_lost"] >= loose["faces_lost"] and strict["false_confirmed"] <= loose["false_confirmed"]
    assert loose["false_confirmed"] <= loose["false_boxes"]
