"""The JSON Lines sink: one line per frame, in order, readable while being written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from animerec.errors import AnimerecError, InputError
from animerec.realtime.jsonl import JsonLinesWriter
from animerec.records import AnnotatedFrame, Faces, Frame


def annotated(index: int, faces: Faces) -> AnnotatedFrame:
    image = np.zeros((120, 160, 3), np.uint8)
    return AnnotatedFrame(Frame(image, index, 0.0, index / 24), faces, image)


def named_faces() -> Faces:
    return Faces(
        boxes=np.array([[10, 20, 30, 40]]),
        top_names=(("がうる", "ame", "ina"),),
        top_probs=np.array([[0.9, 0.06, 0.04]]),
        names=("がうる",),
        confidence=np.array([0.9]),
        tracks=np.array([7]),
    )


def test_round_trip_one_line_per_frame_including_empty_ones(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    items = [annotated(0, Faces.empty()), annotated(1, named_faces()), annotated(2, Faces.empty())]
    with JsonLinesWriter(path) as writer:
        for item in items:
            writer.write(item)
    text = path.read_text(encoding="utf-8")
    assert "がうる" in text, "non-ASCII names are written as they are"
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows == [item.to_json() for item in items]
    assert rows[1]["faces"][0] == {
        "box": [10, 20, 30, 40], "name": "がうる", "confidence": pytest.approx(0.9),
        "top": [["がうる", pytest.approx(0.9)], ["ame", pytest.approx(0.06)],
                ["ina", pytest.approx(0.04)]],
        "track": 7,
    }
    assert [row["index"] for row in rows] == [0, 1, 2] and rows[2]["faces"] == []


def test_lines_are_on_disk_before_close_and_close_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    writer = JsonLinesWriter(path)
    writer.write(annotated(0, named_faces()))
    writer.write(annotated(1, Faces.empty()))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # as after a Ctrl-C
    writer.close()
    writer.close()
    assert writer.lines_written == 2
    with pytest.raises(AnimerecError, match="after close"):
        writer.write(annotated(2, Faces.empty()))


def test_unwritable_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot write"):
        JsonLinesWriter(tmp_path / "missing" / "out.jsonl")
