"""The annotators: boxes and labels where the record says, names in any script, the status line."""

import numpy as np
import pytest

from animerec.realtime.overlay import (
    FaceAnnotator,
    Label,
    StatusAnnotator,
    TextRenderer,
    find_font,
    fnv1a,
    palette,
    swatch_for,
)
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


def test_face_label_in_japanese_is_drawn_next_to_the_box():
    image = blank()
    annotator = FaceAnnotator(show_top3=False, font_size=20)
    question = annotator.annotate(image, one_face("?", top=(("?", 0.9),)))
    miku = annotator.annotate(image, one_face("初音ミク", top=(("初音ミク", 0.9),)))
    assert (image == BACKGROUND).all()  # the input is never drawn on
    label_area = (slice(142, 240), slice(100, 320))  # below the box (y 80-140), from its left edge
    assert (miku[label_area] != BACKGROUND).any(axis=2).sum() > 500
    assert not np.array_equal(miku[label_area], question[label_area])


def test_box_is_drawn_where_the_record_says():
    out = FaceAnnotator(thickness=2).annotate(blank(), one_face("gura"))
    assert (out[100, 100] != BACKGROUND).any()  # left edge of the box at x=100
    assert (out[110, 159] != BACKGROUND).any()  # right edge at x=100+60-1
    assert (out[110, 130] == BACKGROUND).all()  # the face itself is left alone
    assert (out[:78, :] == BACKGROUND).all()  # nothing above the box: the label is below it


def test_labels_show_the_decided_name_and_the_other_candidates():
    annotator = FaceAnnotator(show_top3=True, show_track=True)
    assert annotator.label(one_face("gura"), 0) == Label("gura 93%  #7", ("ame 4%", "ina 1%"))
    plain = FaceAnnotator(show_top3=False, show_track=False)
    assert plain.label(one_face("gura"), 0) == Label("gura 93%")
    tiny = one_face("gura", top=(("gura", 0.996), ("ame", 0.003), ("ina", 0.0)))
    assert annotator.label(tiny, 0).details == ("ame <1%", "ina 0%")


def test_unknown_faces_show_their_best_guess_as_a_question_not_a_score():
    # The record says unknown with confidence 0.40; "unknown : 40.00" read as "40% sure".
    label = FaceAnnotator(show_top3=True, show_track=False).label(one_face("unknown"), 0)
    assert label.head == "unknown (gura? 93%)"
    assert "40" not in label.head
    assert label.details == ("ame 4%", "ina 1%")
    detector_only = Faces(boxes=np.array([[10, 10, 40, 40]], np.int32))  # no classification yet
    assert FaceAnnotator(show_track=False).label(detector_only, 0) == Label("unknown")


def test_unknown_is_grey_and_each_character_keeps_its_palette_colour():
    unknown, named = palette()
    assert swatch_for("unknown") == unknown
    assert swatch_for("gura") in named and swatch_for("gura") == swatch_for("gura")
    assert len({swatch_for(name).box for name in ("gura", "ame", "ina", "kiara", "calli", "irys")}) >= 4
    assert fnv1a("") == 0x811C9DC5 and fnv1a("a") == 0xE40C292C  # the published FNV-1a test vectors
    out = FaceAnnotator(thickness=2).annotate(blank(), one_face("unknown"))
    assert tuple(out[110, 100]) == unknown.box  # the box edge, in the page's unknown colour


def test_a_label_never_covers_a_neighbouring_face():
    # A face at the top edge (no room above) with a neighbour right under it: the old overlay put
    # the label below, over the neighbour's face.
    faces = Faces(boxes=np.array([[20, 4, 60, 60], [20, 70, 60, 60]], np.int32),
                  top_names=(("gura", "ame", "ina"),) * 2,
                  top_probs=np.array([[0.9, 0.05, 0.01]] * 2, np.float32),
                  names=("gura", "gura"), confidence=np.array([0.9, 0.9], np.float32),
                  tracks=np.array([1, 2], np.int64))
    for top3 in (False, True):
        out = FaceAnnotator(show_top3=top3, thickness=2).annotate(blank(), faces)
        assert (out[73:128, 23:78] == BACKGROUND).all()  # the second face's inside is untouched
        assert (out[7:62, 23:78] == BACKGROUND).all()  # and the first face's


def test_labels_at_the_image_edge_stay_inside_the_frame():
    faces = Faces(boxes=np.array([[-10, -10, 50, 50], [280, 200, 60, 60]], np.int32))
    annotator = FaceAnnotator(show_top3=True)
    layout, _ = annotator.layout(faces, 320, 240)
    assert all(p is not None and p.rect.inside(320, 240) for p in layout.placements)
    out = annotator.annotate(blank(), faces)
    assert out.shape == (240, 320, 3)


def test_crowded_frames_count_the_labels_they_drop():
    boxes = [(10 + 40 * col, 10 + 40 * row, 36, 36) for row in range(5) for col in range(7)]  # 35 faces
    annotator = FaceAnnotator(show_track=False)
    annotator.annotate(blank(), Faces(boxes=np.array(boxes, np.int32)))
    layout, _ = annotator.layout(Faces(boxes=np.array(boxes, np.int32)), 320, 240)
    assert 0 < layout.dropped < len(boxes)
    assert annotator.labels_dropped == layout.dropped


@pytest.mark.parametrize(
    "command",
    [["predict", "x.png"], ["annotate", "in.mp4", "-o", "out.mp4"], ["run", "--source", "0"],
     ["serve", "--source", "0"]],
)
def test_every_command_that_draws_takes_top3(command):
    from animerec.cli import build_parser
    from animerec.config import config_from_args

    def top3(*flags: str) -> bool:
        return config_from_args(build_parser().parse_args([*command, *flags])).overlay.top3

    assert top3() is False  # the default reads well in a busy scene; JSON keeps the top 3 anyway
    assert top3("--top3") is True
    assert top3("--no-top3") is False
    assert top3("--set", "overlay.top3=true") is True
    assert top3("--set", "overlay.top3=true", "--no-top3") is False  # the flag wins


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
