"""The real cascade, at the report's settings, against the counts ../shared/data/README.md states."""

import cv2
import numpy as np
import pytest

from animerec.errors import ModelError
from animerec.recognition.detector import CascadeDetector, CascadeSettings


@pytest.mark.parametrize(("name", "expected"), [("nagadomi_imas.jpg", 17), ("hysts_anime-face-detector_input.jpg", 38)])
def test_cascade_finds_the_stated_faces(shared_data, name, expected):
    image = cv2.imread(str(shared_data / "multiface" / name))
    boxes = CascadeDetector().detect(image)
    assert len(boxes) == expected
    assert boxes.dtype == np.int32 and (boxes[:, 2:] >= 24).all()


def test_working_height_maps_boxes_back_to_full_resolution(face_paths):
    face = cv2.imread(str(face_paths[0]))
    canvas = np.full((720, 1280, 3), 255, np.uint8)
    big = cv2.resize(face, (384, 384))
    canvas[200:584, 600:984] = big
    full = CascadeDetector().detect(canvas)
    small = CascadeDetector(CascadeSettings(working_height=360)).detect(canvas)
    assert len(full) == 1 and len(small) == 1
    assert np.abs(full[0] - small[0]).max() < 30  # same face, in full-resolution pixels


def test_max_size_filters_large_faces(face_paths):
    face = cv2.imread(str(face_paths[0]))
    canvas = cv2.copyMakeBorder(face, 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    assert len(CascadeDetector().detect(canvas)) == 1
    assert len(CascadeDetector(CascadeSettings(max_size=100)).detect(canvas)) == 0


def test_bad_settings_name_the_field():
    with pytest.raises(ValueError, match="scale_factor"):
        CascadeSettings(scale_factor=1.0)
    with pytest.raises(ValueError, match="max_size"):
        CascadeSettings(min_size=40, max_size=30)


def test_missing_or_corrupt_cascade_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        CascadeDetector(path=tmp_path / "none.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    with pytest.raises(ModelError, match="not a valid"):
        CascadeDetector(path=bad)
