"""The still-image naming benchmark: its scenes and matching with stand-in detectors, then a small
real run (bundled model, cascade, ../shared faces) whose figures must be the real model's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from animerec.benchmarks.still_naming import FACE_SIDE, found_name, in_scene, main
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.recognition.classifier import OnnxClassifier
from animerec.recognition.detector import ScoredBoxes
from animerec.recognition.images import load_image
from animerec.recognition.recognizer import Recognizer


class FixedBoxes:
    """A detector that always finds the same boxes."""

    def __init__(self, *boxes: tuple[int, int, int, int]) -> None:
        self.boxes = np.array(boxes, np.int32).reshape(-1, 4)

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.int32]:
        return self.boxes

    def detect_scored(self, image: NDArray[np.uint8]) -> ScoredBoxes:
        return ScoredBoxes.certain(self.boxes)


def test_the_face_stands_in_the_centre_of_its_scene(face_paths: list[Path]) -> None:
    face, surround = load_image(face_paths[0]), load_image(face_paths[1])
    canvas, box = in_scene(face, surround)
    assert canvas.shape == (3 * FACE_SIDE, 3 * FACE_SIDE, 3)
    x, y, w, h = box
    assert (w, h) == (FACE_SIDE, FACE_SIDE) and (x, y) == (FACE_SIDE, FACE_SIDE)
    placed = canvas[y : y + h, x : x + w].astype(int)
    assert np.abs(placed - np.asarray(face, int)).mean() < 8  # the face (resized), not the scene
    assert np.abs(canvas[:FACE_SIDE, :FACE_SIDE].astype(int) - placed).mean() > 8


def test_a_face_counts_only_when_a_found_box_centre_is_inside_it(face_paths: list[Path]) -> None:
    classifier = OnnxClassifier(DEFAULT_MODEL_PATH, device="cpu", warmup=False)
    face, surround = load_image(face_paths[0]), load_image(face_paths[1])
    beside = Recognizer(FixedBoxes((0, 0, 100, 100)), classifier)
    assert found_name(beside, face, surround) is None
    on_it = Recognizer(FixedBoxes((0, 0, 100, 100), (FACE_SIDE + 10, FACE_SIDE + 5, FACE_SIDE, FACE_SIDE)), classifier)
    name = found_name(on_it, face, surround)
    assert name is not None and name in (*classifier.labels, "unknown")


def test_a_small_real_run_measures_the_bundled_model(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(shared_data), "--limit", "30", "--seeds", "1", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["known_faces"] >= 30 and result["unseen_faces"] >= 30 and result["negatives"] > 100
    for key in ("val_top1", "known_accepted_tight", "known_accepted_runtime", "unseen_named_tight",
                "5shot_top1", "5shot_false_accept"):
        assert 0.0 <= result[key] <= 1.0, key
    # The shipped model names its validation faces far better than chance (1/20) and refuses
    # most unseen faces: a pipeline that swapped colours or crops would not.
    assert result["val_top1"] > 0.8 and result["known_accepted_tight"] > 0.7
    assert result["unseen_named_tight"] < result["known_accepted_tight"]
    assert result["known_accepted_tight"] <= result["val_top1"] + 0.05


def test_without_the_shared_data_it_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path)]) == 1
    assert f"no shared data at {tmp_path}" in capsys.readouterr().err
