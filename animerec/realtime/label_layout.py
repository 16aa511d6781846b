"""Where each face's label goes: beside its face, over no other face and no other label, in the frame.

One algorithm for every overlay. The burnt-in overlay (overlay.py) runs this module; the OBS page
runs its port, animerec/server/static/label_layout.js, line for line: change both together
(tests/test_overlay_browser.py runs the two on the same cases and compares).

Labels are placed greedily, one face at a time. Each label offers its sizes, largest first (the
full label, then smaller text, then without the top-3 lines): for each size the spots are tried in
order (below the face, above, beside), and the first spot inside the frame that covers no other
face's box and no label placed before wins. Only when no size fits beside the face does the label
go over the face's own lower edge. A label with no free spot is dropped and counted: a crowded
frame cannot show every name.

In video a label keeps its spot while its face stays: faces whose track had a spot last frame are
placed first, and try that spot first. Everything else goes top to bottom, left to right.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SPOTS = ("below", "below-end", "above", "above-end", "right", "left", "inside")


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float

    def overlaps(self, other: Rect) -> bool:
        """True when the two share area; touching edges is not overlapping."""
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)

    def inside(self, width: float, height: float) -> bool:
        return self.x >= 0 and self.y >= 0 and self.x + self.w <= width and self.y + self.h <= height

    def grown(self, by: float) -> Rect:
        return Rect(self.x - by, self.y - by, self.w + 2 * by, self.h + 2 * by)


@dataclass(frozen=True)
class LabelRequest:
    """One face's box and the sizes (width, height) its label can take, preferred first."""

    box: Rect
    sizes: tuple[tuple[float, float], ...]
    track: int | None = None


@dataclass(frozen=True)
class Placement:
    rect: Rect
    size: int  # index into the request's sizes
    spot: str  # one of SPOTS


@dataclass(frozen=True)
class Layout:
    placements: tuple[Placement | None, ...]  # one per request; None: dropped, no room

    @property
    def dropped(self) -> int:
        return sum(p is None for p in self.placements)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(value, high))


def spot_rect(spot: str, box: Rect, size: tuple[float, float], width: float, height: float, gap: float) -> Rect:
    """The label's rectangle at `spot`, slid along the face's edge to stay inside the frame."""
    w, h = size
    start = _clamp(box.x, 0, width - w)  # left-aligned with the face
    end = _clamp(box.x + box.w - w, 0, width - w)  # right-aligned with the face
    beside = _clamp(box.y, 0, height - h)  # top-aligned with the face
    return {
        "below": Rect(start, box.y + box.h + gap, w, h),
        "below-end": Rect(end, box.y + box.h + gap, w, h),
        "above": Rect(start, box.y - gap - h, w, h),
        "above-end": Rect(end, box.y - gap - h, w, h),
        "right": Rect(box.x + box.w + gap, beside, w, h),
        "left": Rect(box.x - gap - w, beside, w, h),
        "inside": Rect(start, min(box.y + box.h, height) - h, w, h),
    }[spot]


def place_labels(requests: Sequence[LabelRequest], width: float, height: float, *, gap: float = 0,
                 previous: Mapping[int, str] | None = None) -> Layout:
    """Lay out every request's label; `previous` maps track ids to last frame's spots.

    `gap` keeps labels that far from every box edge (the box's line width).
    """
    previous = previous or {}
    obstacles = [r.box.grown(gap) for r in requests]

    def order(i: int) -> tuple[int, float, float]:
        track = requests[i].track
        return (0 if track is not None and track in previous else 1, requests[i].box.y, requests[i].box.x)

    placed: list[Rect] = []
    placements: list[Placement | None] = [None] * len(requests)
    for i in sorted(range(len(requests)), key=order):
        request, track = requests[i], requests[i].track
        before = previous.get(track) if track is not None else None
        spots = ([before] if before in SPOTS else []) + [s for s in SPOTS if s != before]
        placement = _first_free(request, spots, obstacles[:i] + obstacles[i + 1:], placed, width, height, gap)
        if placement is not None:
            placed.append(placement.rect)
        placements[i] = placement
    return Layout(tuple(placements))


def _first_free(request: LabelRequest, spots: Sequence[str], faces: Sequence[Rect], labels: Sequence[Rect],
                width: float, height: float, gap: float) -> Placement | None:
    # Over the face's own edge only when no size fits beside it: a smaller label beats a hidden chin.
    for group in ([s for s in spots if s != "inside"], ["inside"]):
        for size_index, size in enumerate(request.sizes):
            for spot in group:
                rect = spot_rect(spot, request.box, size, width, height, gap)
                if rect.inside(width, height) and not any(rect.overlaps(o) for o in (*faces, *labels)):
                    return Placement(rect, size_index, spot)
    return None


class LabelPlacer:
    """`place_labels` with a memory: each track's spot is kept for the next frame."""

    def __init__(self, gap: float = 0) -> None:
        self.gap = gap
        self._spots: dict[int, str] = {}

    def place(self, requests: Sequence[LabelRequest], width: float, height: float) -> Layout:
        layout = place_labels(requests, width, height, gap=self.gap, previous=self._spots)
        # Only the faces of this frame are remembered: a track that left forgets its spot.
        self._spots = {
            r.track: p.spot for r, p in zip(requests, layout.placements, strict=True)
            if r.track is not None and p is not None
        }
        return layout
