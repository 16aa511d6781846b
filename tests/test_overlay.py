"""The annotators: boxes and labels where the record says, names in any script, the status line."""

import numpy as np
import pytest

from animerec.realtime.overlay import FaceAnnotator, StatusAnnotator, TextRenderer, find_font
from animerec.records import Faces

BACKGROUND = 30


def one_face(name: str, top=(("gura", 0.9312), ("ame", 0.04), ("ina", 0.01)), track: int = 7) -> Faces:
    return Faces(
        boxes=np.array([[100, 80, 60, 60]], np.int32),
        top_names=(tuple(n for n, _ in top),),
        top_probs=np.array([[p for _, p in top]], np.float32),
        names=(name,),
        confidence=np.array([top[0][1] if name == top[0][0] else 0.4], np.float32),
        tracks=np.array([track], np.int64),
    )


def blank(height: int = 240, width: int = 320) -> np.ndarray:
    return np.full((height, width, 3), BACKGROUND, np.uint8)


def test_a_cjk_font_is_found():
    # The test setup installs fonts-noto-cjk; a CI without it must fail here, not skip.
    font = find_font()
    assert font is not None and "CJK" in font.name


def test_cjk_names_render_as_glyphs_not_boxes():
    text = TextRenderer(size=24)
    miku = text.mask("初音ミク")
    unknown = text.mask("?")
    tofu = text.mask("\uffff\uffff\uffff\uffff")  # a character no font has: drawn as .notdef
    assert miku.shape[0] == unknown.shape[0]  # one line height for every label
    assert miku.shape[1] > 3 * unknown.shape[1]  # four wide glyphs, not one narrow one
    ink = miku > 128
    assert ink.sum() > 200
    columns = np.flatnonzero(ink.any(axis=0))
    # ink in each quarter of the patch: four glyphs, drawn where the text runs
    quarters = np.array_split(np.arange(miku.shape[1]), 4)
    assert all(np.isin(q, columns).any() for q in quarters)
    if tofu.shape == miku.shape:
        assert not np.array_equal(tofu, miku)


def test_face_label_in_japanese_is_drawn_above_the_box():
    image = blank()
    annotator = FaceAnnotator(show_top3=False, font_size=20)
    question = annotator.annotate(image, one_face("?", top=(("?", 0.9),)))
    miku = annotator.annotate(image, one_face("初音ミク", top=(("初音ミク", 0.9),)))
    assert (image == BACKGROUND).all()  # the input is never drawn on
    label_area = (slice(0, 80), slice(100, 320))  # above the box at y=80, from its left edge
    assert (miku[label_area] != BACKGROUND).any(axis=2).sum() > 500
    assert not np.array_equal(miku[label_area], question[label_area])


def test_box_is_drawn_where_the_record_says():
    out = FaceAnnotator(thickness=2).annotate(blank(), one_face("gura"))
    assert (out[100, 100] != BACKGROUND).any()  # left edge of the box at x=100
    assert (out[110, 159] != BACKGROUND).any()  # right edge at x=100+60-1
    assert (out[110, 130] == BACKGROUND).all()  # the face itself is left alone
    assert (out[200:, :] == BACKGROUND).all()  # nothing below the box


def test_labels_show_the_decided_name_and_top3_like_the_report():
    annotator = FaceAnnotator(show_top3=True, show_track=True)
    assert annotator.labels(one_face("gura"), 0) == ["gura : 93.12  #7", "ame : 4.00", "ina : 1.00"]
    # The overlay never re-decides: an "unknown" decision is drawn as such, then the top 3.
    assert annotator.labels(one_face("unknown"), 0)[0] == "unknown : 40.00  #7"
    plain = FaceAnnotator(show_top3=False, show_track=False)
    assert plain.labels(one_face("gura"), 0) == ["gura : 93.12"]


def test_labels_at_the_image_edge_do_not_crash():
    faces = Faces(boxes=np.array([[-10, -10, 50, 50], [300, 220, 60, 60]], np.int32))
    out = FaceAnnotator(show_top3=True).annotate(blank(), faces)
    assert out.shape == (240, 320, 3)


def test_rendered_labels_are_cached():
    text = TextRenderer(16)
    assert text.mask("gura : 93.12") is text.mask("gura : 93.12")


@pytest.mark.parametrize("provider", ["CUDAExecutionProvider", "CPUExecutionProvider"])
def test_status_line(provider):
    snapshot = {"fps": 29.97, "latency_ms": {"p50": 41.2, "p95": 80.9, "p99": 99.0},
                "dropped": 3, "provider": provider}
    line = StatusAnnotator.line(snapshot)
    assert line.startswith("30.0 fps")
    assert "p50 41 ms" in line and "p95 81 ms" in line and "dropped 3" in line
    assert provider.replace("ExecutionProvider", "") in line
    out = StatusAnnotator(font_size=14).annotate(blank(), snapshot)
    assert (out[-30:, :100] != BACKGROUND).any()  # bottom-left
    assert (out[:150] == BACKGROUND).all()
