"""Label layout: on crowded fixtures no label covers another face or label, and labels stay put.

The fixtures are face boxes only (no pictures): the boxes the detector finds at full resolution
in ../shared/data/multiface (nagadomi's 17 idols, the hysts collage), a frame of the bundled demo
clip, and a 6x6 grid too dense to label every face. Labels get their real sizes from the
annotator's text renderer, so the test measures what the overlay would draw.
"""

from __future__ import annotations

import numpy as np
import pytest

from animerec.realtime.label_layout import LabelPlacer, LabelRequest, Layout, Rect, place_labels
from animerec.realtime.overlay import FaceAnnotator
from animerec.records import Faces

NAGADOMI = (950, 380, [
    (96, 43, 53, 53), (227, 46, 52, 52), (296, 28, 58, 58), (157, 35, 56, 56), (43, 38, 56, 56),
    (606, 186, 57, 57), (84, 187, 55, 55), (522, 189, 54, 54), (829, 181, 63, 63), (140, 195, 56, 56),
    (329, 187, 56, 56), (753, 194, 60, 60), (195, 187, 59, 59), (677, 189, 59, 59), (18, 192, 56, 56),
    (392, 206, 52, 52), (260, 207, 59, 59),
])
HYSTS = (2048, 2048, [
    (1858, 434, 76, 76), (1884, 67, 68, 68), (814, 52, 102, 102), (1800, 79, 80, 80), (437, 399, 125, 125),
    (1463, 409, 194, 194), (1108, 364, 167, 167), (58, 417, 194, 194), (769, 412, 172, 172),
    (372, 36, 189, 189), (1078, 86, 209, 209), (1410, 76, 183, 183), (1573, 746, 111, 111),
    (109, 728, 122, 122), (1436, 731, 124, 124), (1153, 743, 206, 206), (757, 736, 120, 120),
    (1912, 796, 114, 114), (404, 870, 64, 64), (500, 1072, 96, 96), (1491, 1059, 120, 120),
    (783, 1091, 110, 110), (1893, 1104, 110, 110), (1152, 1102, 149, 149), (57, 1082, 141, 141),
    (81, 1432, 200, 200), (1463, 1438, 175, 175), (437, 1452, 122, 122), (757, 1390, 133, 133),
    (1831, 1413, 98, 98), (1093, 1467, 197, 197), (393, 1549, 207, 207), (64, 1753, 159, 159),
    (763, 1762, 208, 208), (1440, 1771, 177, 177), (438, 1727, 116, 116), (1817, 1756, 102, 102),
    (1114, 1804, 144, 144),
])
DEMO_FRAME_120 = (1280, 720, [(1006, 106, 188, 188), (506, 286, 204, 204), (656, 308, 192, 192)])
GRID_36 = (420, 420, [(10 + 70 * col, 10 + 70 * row, 60, 60) for row in range(6) for col in range(6)])
FIXTURES = {"nagadomi": NAGADOMI, "hysts": HYSTS, "demo": DEMO_FRAME_120, "grid36": GRID_36}
CANDIDATES = (("gura", 0.62), ("ame", 0.21), ("ina", 0.09))


def named_faces(boxes: list[tuple[int, int, int, int]]) -> Faces:
    """Every other face unknown (the longest label), tracked, with a top 3."""
    n = len(boxes)
    return Faces(
        boxes=np.array(boxes, np.int32),
        top_names=tuple(tuple(name for name, _ in CANDIDATES) for _ in range(n)),
        top_probs=np.array([[p for _, p in CANDIDATES]] * n, np.float32),
        names=tuple("unknown" if i % 2 else "gura" for i in range(n)),
        confidence=np.full(n, 0.62, np.float32),
        tracks=np.arange(n, dtype=np.int64),
    )


def overlaps(requests: list[LabelRequest], layout: Layout) -> int:
    """Labels that cover another face's box or another label, and labels outside the frame."""
    placed = [(i, p.rect) for i, p in enumerate(layout.placements) if p is not None]
    count = 0
    for i, rect in placed:
        count += sum(rect.overlaps(r.box) for j, r in enumerate(requests) if j != i)
        count += sum(rect.overlaps(other) for j, other in placed if j > i)
    return count


@pytest.mark.parametrize("top3", [False, True])
@pytest.mark.parametrize("fixture", FIXTURES)
def test_no_label_covers_another_face_or_label(fixture: str, top3: bool) -> None:
    width, height, boxes = FIXTURES[fixture]
    annotator = FaceAnnotator(show_top3=top3, font_size=max(16, height // 45))
    faces = named_faces(boxes)
    layout, _ = annotator.layout(faces, width, height)
    placed = [p for p in layout.placements if p is not None]
    requests = [LabelRequest(Rect(*map(float, box)), ()) for box in boxes]
    assert overlaps(requests, layout) == 0
    assert all(p.rect.inside(width, height) for p in placed)
    assert layout.dropped == len(boxes) - len(placed)
    print(f"\n{fixture} top3={top3}: {len(boxes)} faces, {layout.dropped} labels dropped, "
          f"{sum(p.size > 0 for p in placed)} shrunk or without top 3")
    if fixture != "grid36":  # 10 px between faces: no room for a name; everything else has some
        assert placed


def test_a_label_that_fits_nowhere_is_dropped_and_counted() -> None:
    # Two faces filling the frame side by side: a label wider than either face has no free spot.
    requests = [LabelRequest(Rect(0, 0, 50, 100), ((80, 20),)), LabelRequest(Rect(50, 0, 50, 100), ((20, 20),))]
    layout = place_labels(requests, 100, 100)
    assert layout.placements[0] is None and layout.dropped == 1
    assert layout.placements[1] is not None and layout.placements[1].spot == "inside"


@pytest.mark.parametrize(
    ("box", "sizes", "spot", "size"),
    [
        ((10, 10, 40, 40), ((30, 10),), "below", 0),  # room everywhere: below first
        ((10, 80, 40, 15), ((30, 10),), "above", 0),  # at the bottom edge: above
        ((0, 0, 40, 95), ((30, 10),), "right", 0),  # nearly as tall as the frame: beside
        ((0, 0, 100, 80), ((90, 25), (60, 15)), "below", 1),  # 20 px left below: the smaller size
        ((60, 10, 40, 40), ((70, 10),), "below", 0),  # slid left to stay inside the frame
    ],
)
def test_spots_and_sizes_are_tried_in_order(box, sizes, spot, size) -> None:
    placement = place_labels([LabelRequest(Rect(*box), sizes)], 100, 100).placements[0]
    assert placement is not None
    assert (placement.spot, placement.size) == (spot, size)
    assert placement.rect.inside(100, 100)


def test_a_label_keeps_its_spot_while_its_face_stays() -> None:
    face = LabelRequest(Rect(40, 40, 20, 20), ((20, 10),), track=1)
    below = LabelRequest(Rect(40, 62, 20, 20), ((20, 10),), track=2)  # sits where face 1's label would go
    placer = LabelPlacer()
    first = placer.place([face, below], 100, 100)
    assert first.placements[0] is not None and first.placements[0].spot == "above"
    moved = LabelRequest(Rect(41, 40, 20, 20), ((20, 10),), track=1)  # the neighbour left
    assert place_labels([moved], 100, 100).placements[0].spot == "below"  # type: ignore[union-attr]
    assert placer.place([moved], 100, 100).placements[0].spot == "above"  # type: ignore[union-attr]
    # A new face does not take the place of one that was already there.
    newcomer = LabelRequest(Rect(10, 10, 20, 20), ((40, 10),), track=3)
    again = placer.place([newcomer, moved], 100, 100)
    assert again.placements[1].spot == "above"  # type: ignore[union-attr]
    assert overlaps([newcomer, moved], again) == 0


def test_a_track_that_left_forgets_its_spot() -> None:
    placer = LabelPlacer()
    blocked = [LabelRequest(Rect(40, 40, 20, 20), ((20, 10),), track=1),
               LabelRequest(Rect(40, 62, 20, 20), ((20, 10),), track=2)]
    placer.place(blocked, 100, 100)
    placer.place([], 100, 100)
    alone = LabelRequest(Rect(40, 40, 20, 20), ((20, 10),), track=1)
    assert placer.place([alone], 100, 100).placements[0].spot == "below"  # type: ignore[union-attr]
