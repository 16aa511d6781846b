import numpy as np
import pytest

from animerec.records import Faces


def named(n: int) -> Faces:
    return Faces(
        boxes=np.arange(n * 4).reshape(n, 4),
        top_names=tuple(("gura", "ame", "ina") for _ in range(n)),
        top_probs=np.tile([0.9, 0.07, 0.03], (n, 1)),
        names=("gura",) * n,
        confidence=np.full(n, 0.9),
    )


def test_empty_and_detector_only_records():
    assert len(Faces.empty()) == 0
    faces = Faces(np.array([[1, 2, 3, 4]]))
    assert faces.names == ("unknown",) and faces.top_probs.shape == (1, 0)
    assert faces.to_records() == [{"box": [1, 2, 3, 4], "name": "unknown", "confidence": 0.0, "top": [], "track": None}]


def test_records_are_immutable():
    faces = named(2)
    with pytest.raises(ValueError):
        faces.boxes[0, 0] = 99
    with pytest.raises(AttributeError):
        faces.names = ()  # type: ignore[misc]


def test_mismatched_columns_are_rejected():
    with pytest.raises(ValueError, match="disagree"):
        Faces(boxes=np.zeros((2, 4)), names=("a",), top_names=((),), confidence=np.zeros(1))


def test_select_and_tracks_and_normalised_records():
    faces = named(3).with_tracks(np.array([5, 6, 7]))
    picked = faces.select(np.array([False, True, True]))
    assert len(picked) == 2 and picked.tracks.tolist() == [6, 7]
    record = picked.to_records(width=100, height=50)[0]
    assert record["box"] == [4 / 100, 5 / 50, 6 / 100, 7 / 50]
    assert record["top"][0] == ["gura", 0.9] and record["track"] == 6
