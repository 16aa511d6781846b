"""Detectors side by side (issue 12): recall by face size against ground truth, on tables of
synthetic boxes, and the recall targets that read it; the detectors themselves run in test_detector.py and
test_learned_detector.py."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pytest

from animerec.benchmarks.detectors import Detections
from animerec.benchmarks.quality import recall_by_size
from animerec.benchmarks.synthetic import PlacedFace
from animerec.benchmarks.targets import evaluate, load_targets
from animerec.recognition.detector import ScoredBoxes

# One frame of true faces, one per size (side = the larger of width and height, in source pixels),
# and a second frame where a face lies mostly under a later one (not expected, not counted).
TRUTH = [
    [PlacedFace("ame", (0, 0, 30, 30)), PlacedFace("bae", (100, 0, 47, 50)), PlacedFace("calli", (200, 0, 96, 96)),
     PlacedFace("gura", (400, 0, 97, 60)), PlacedFace("ina", (600, 0, 200, 200))],
    [PlacedFace("irys", (0, 0, 100, 100)), PlacedFace("kronii", (5, 5, 100, 100))],
]
FOUND = [
    [(5, 5, 20, 20), (210, 10, 70, 70), (650, 50, 100, 100), (900, 900, 40, 40)],  # ame, calli, ina, nothing
    [(20, 20, 60, 60)],  # its centre is inside both faces: it matches kronii, the only one expected
]


@pytest.mark.parametrize(
    ("bucket", "faces", "recall"),
    [
        ("<48", 1, 1.0),  # ame (30 px); bae is 47 x 50: its side is 50
        ("48-96", 2, 0.5),  # bae (50, missed), calli (96, found)
        (">96", 3, round(2 / 3, 4)),  # gura (97, missed), ina (200), kronii (100)
        (">=48", 5, 0.6),
        ("all", 6, round(4 / 6, 4)),
    ],
)
def test_recall_by_size_counts_each_true_face_in_its_bucket(bucket: str, faces: int, recall: float) -> None:
    assert recall_by_size(FOUND, TRUTH)[bucket] == {"faces": faces, "recall": recall}


def test_recall_by_size_of_an_empty_bucket_is_none_not_zero() -> None:
    result = recall_by_size([[]], [[PlacedFace("ame", (0, 0, 200, 200))]])
    assert result["<48"] == {"faces": 0, "recall": None}
    assert result[">96"] == {"faces": 1, "recall": 0.0}


def test_both_keeps_every_cascade_box_and_adds_the_learned_ones_elsewhere() -> None:
    cascade = ScoredBoxes.certain(np.array([[0, 0, 50, 50]]))
    learned = ScoredBoxes(np.array([[2, 2, 50, 50], [300, 0, 80, 80]]), np.array([0.9, 0.8]))
    detections = Detections(cascade, learned)
    assert detections.boxes("both") == [(0, 0, 50, 50), (300, 0, 80, 80)]
    assert detections.learned_only().learned.boxes.tolist() == [[300, 0, 80, 80]]
    assert detections.boxes("learned") == [(2, 2, 50, 50), (300, 0, 80, 80)]


def test_a_higher_threshold_drops_only_the_weaker_learned_boxes() -> None:
    cascade = ScoredBoxes.certain(np.array([[0, 0, 50, 50]]))
    learned = ScoredBoxes(np.array([[300, 0, 80, 80], [500, 0, 60, 60]]), np.array([0.95, 0.75]))
    detections = Detections(cascade, learned)
    assert detections.at(0.7).boxes("both") == [(0, 0, 50, 50), (300, 0, 80, 80), (500, 0, 60, 60)]
    assert detections.at(0.9).boxes("both") == [(0, 0, 50, 50), (300, 0, 80, 80)]
    assert detections.at(0.99).boxes("both") == [(0, 0, 50, 50)]  # cascade boxes are never dropped


def test_threshold_lists_are_probabilities() -> None:
    from animerec.benchmarks.detectors import thresholds_list

    assert thresholds_list("0.5,0.9") == (0.5, 0.9)
    for bad in ("0.5,x", "1.5", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            thresholds_list(bad)


def _clip(name: str, camera: bool, recall: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "camera": camera, "true_faces": 10, "found_share": 0.5, "recall_by_size": recall}


def test_recall_targets_read_the_truth_by_size_per_clip() -> None:
    targets = [t for t in load_targets() if t["name"] in ("recall_ge48", "recall_lt48", "recall_camera")]
    assert len(targets) == 3
    plain = recall_by_size(FOUND, TRUTH)
    camera = {**plain, "all": {"faces": 20, "recall": 0.9}}
    report = {"workloads": [], "naming_clips": [_clip("a", False, plain), _clip("a-camera", True, camera)]}
    rows = {row["name"]: row for row in evaluate(report, targets)}
    assert set(rows) == {"recall_ge48[a]", "recall_lt48[a]", "recall_camera[a-camera]"}
    assert (rows["recall_ge48[a]"]["value"], rows["recall_ge48[a]"]["met"]) == (0.6, False)
    assert (rows["recall_lt48[a]"]["value"], rows["recall_lt48[a]"]["met"]) == (1.0, True)
    assert (rows["recall_camera[a-camera]"]["value"], rows["recall_camera[a-camera]"]["met"]) == (0.9, True)


def test_a_clip_without_small_faces_skips_that_target_with_a_reason() -> None:
    targets = [t for t in load_targets() if t["name"] == "recall_lt48"]
    recall = recall_by_size([[]], [[PlacedFace("ame", (0, 0, 200, 200))]])
    row = evaluate({"workloads": [], "naming_clips": [_clip("b", False, recall)]}, targets)[0]
    assert (row["value"], row["skipped"], row["met"]) == (None, True, False)
    assert "<48" in row["note"]
