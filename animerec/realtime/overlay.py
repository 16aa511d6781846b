"""Annotators: style in the constructor, `annotate(image, ...)` returns the image.

They draw what the records say (the face record's `name`; never a decision of their own), with the
label text, colours (palette.json) and label layout (label_layout.py) the OBS page uses too. Text is
rendered with Pillow from a TrueType font so names in any script show (初音ミク): OpenCV's Hershey
fonts are ASCII only. Only the small text patches go through Pillow, and each rendered label is
cached, so a frame costs a few array blends.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from animerec.paths import OVERLAY_PALETTE
from animerec.realtime.label_layout import LabelPlacer, LabelRequest, Layout, Rect
from animerec.records import NO_TRACK, UNKNOWN, Faces

log = logging.getLogger(__name__)

# CJK-capable fonts first (Linux packages, Windows, macOS), then anything Latin.
FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKjp-Regular.otf",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "C:/Windows/Fonts/meiryo.ttc",
    "C:/Windows/Fonts/msgothic.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/YuGothM.ttc",
    "/System/Library/Fonts/ヒラギノ角ゴシック W3.ttc",
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
WHITE = (255, 255, 255)


@lru_cache(maxsize=1)
def find_font() -> Path | None:
    """A CJK-capable font on this system, else matplotlib's DejaVu Sans, else None."""
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    for folder in FONT_DIRS:
        root = Path(folder).expanduser()
        if root.is_dir():
            found = sorted(p for p in root.rglob("*CJK*") if p.suffix.lower() in (".ttc", ".otf", ".ttf"))
            if found:
                return found[0]
    spec = importlib.util.find_spec("matplotlib")
    for location in (spec.submodule_search_locations or []) if spec else []:
        dejavu = Path(location) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if dejavu.is_file():
            log.info("no CJK font found; names in Japanese or Chinese will show as boxes")
            return dejavu
    return None


class TextRenderer:
    """Text -> an 8-bit coverage mask, rendered once per distinct string among the last `cached`.

    The cache is the renderer's memory: size it to how often strings come back. Face labels
    repeat for as long as a track's vote holds; a status line changes with every refresh and is
    only reused until the next one.
    """

    def __init__(self, size: int = 16, font: str | Path = "", cached: int = 256) -> None:
        path = Path(font) if font else find_font()
        if path is not None:
            self.font: Any = ImageFont.truetype(str(path), size)
        else:
            self.font = ImageFont.load_default(size)
        self.path = path
        self.size = size
        self._mask = lru_cache(maxsize=cached)(self._render)

    def mask(self, text: str) -> NDArray[np.uint8]:
        return self._mask(text)

    def _render(self, text: str) -> NDArray[np.uint8]:
        # Line height from the font's metrics, not the glyphs, so every label is the same height.
        ascent, descent = self.font.getmetrics()
        width = max(1, int(np.ceil(self.font.getlength(text))))
        canvas = Image.new("L", (width, ascent + descent), 0)
        ImageDraw.Draw(canvas).text((0, 0), text, font=self.font, fill=255)
        mask = np.asarray(canvas, np.uint8)
        mask.flags.writeable = False
        return mask


def draw_text(image: NDArray[np.uint8], mask: NDArray[np.uint8], x: int, y: int,
              colour: tuple[int, int, int], background: tuple[int, int, int] | None, pad: int = 2) -> None:
    """Blend a text mask into `image` at (x, y) over an optional filled box; clipped at edges."""
    h, w = mask.shape[0] + 2 * pad, mask.shape[1] + 2 * pad
    top, left = max(0, y), max(0, x)
    bottom, right = min(image.shape[0], y + h), min(image.shape[1], x + w)
    if bottom <= top or right <= left:
        return
    roi = image[top:bottom, left:right]
    if background is not None:
        roi[:] = background
    patch = np.zeros((h, w), np.float32)
    patch[pad : pad + mask.shape[0], pad : pad + mask.shape[1]] = mask
    alpha = (patch[top - y : bottom - y, left - x : right - x] / 255.0)[..., None]
    roi[:] = (roi * (1.0 - alpha) + np.asarray(colour, np.float32) * alpha).astype(np.uint8)


@dataclass(frozen=True)
class Swatch:
    """A face's colours (BGR): its box and label background, and the label's text."""

    box: tuple[int, int, int]
    text: tuple[int, int, int]


def _bgr(hex_colour: str) -> tuple[int, int, int]:
    value = int(hex_colour.lstrip("#"), 16)
    return value & 0xFF, (value >> 8) & 0xFF, value >> 16


@lru_cache(maxsize=1)
def palette() -> tuple[Swatch, tuple[Swatch, ...]]:
    """(unknown, named): the colours the OBS page uses too (OVERLAY_PALETTE)."""
    data = json.loads(OVERLAY_PALETTE.read_text(encoding="utf-8"))

    def swatch(entry: Mapping[str, str]) -> Swatch:
        return Swatch(_bgr(entry["box"]), _bgr(entry["text"]))

    return swatch(data["unknown"]), tuple(swatch(entry) for entry in data["named"])


def fnv1a(text: str) -> int:
    """32-bit FNV-1a of the UTF-8 bytes: a hash the page computes the same way in a few lines."""
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def swatch_for(name: str) -> Swatch:
    """Grey for unknown faces; a stable palette colour per character, the same on every run."""
    unknown, named = palette()
    return unknown if name == UNKNOWN else named[fnv1a(name) % len(named)]


def percent(probability: float) -> str:
    """`93%`, rounding half up (as JavaScript's Math.round does); `<1%` rather than a bare 0%."""
    value = math.floor(100 * probability + 0.5)
    return "<1%" if value == 0 and probability > 0 else f"{value}%"


@dataclass(frozen=True)
class Label:
    """A face's label: the head line, and the other candidates (the top-3 lines) under it."""

    head: str
    details: tuple[str, ...] = ()


def label_for(name: str, confidence: float, top: Sequence[tuple[str, float]], *, top3: bool,
              track: int = NO_TRACK) -> Label:
    """`gura 93%`; an unknown face reads `unknown (gura? 9%)`, its best guess with a question mark,
    so its confidence is never mistaken for a match. The OBS page (overlay.js) writes the same."""
    if name == UNKNOWN:
        guess = top[0][0] if top else ""
        head = f"{UNKNOWN} ({guess}? {percent(top[0][1])})" if top else UNKNOWN
    else:
        guess, head = name, f"{name} {percent(confidence)}"
    if track != NO_TRACK:
        head += f"  #{track}"
    details = tuple(f"{n} {percent(p)}" for n, p in top if n != guess) if top3 else ()
    return Label(head, details)


PAD = 2  # pixels around each label line
SHRINK = 0.75  # the smaller text: top-3 lines always, the head line when room is short


class FaceAnnotator:
    """Boxes, and labels laid out so that none hides another face or label (label_layout).

    The one state it keeps is each track's label spot, so a label stays put while its face does;
    `labels_dropped` counts the labels left out because no free spot was found.
    """

    def __init__(self, *, show_top3: bool = False, show_track: bool = True, font_size: int = 16,
                 thickness: int = 2, font: str | Path = "") -> None:
        self.show_top3, self.show_track, self.thickness = show_top3, show_track, thickness
        self.text = TextRenderer(font_size, font)
        self.small = TextRenderer(max(6, round(font_size * SHRINK)), font)
        self.placer = LabelPlacer(gap=thickness)
        self.labels_dropped = 0
        self._blocks = lru_cache(maxsize=256)(self._render_blocks)

    def label(self, faces: Faces, row: int) -> Label:
        """The label of face `row`: the decided name as the record says, never re-decided."""
        top = [(n, float(p)) for n, p in zip(faces.top_names[row], faces.top_probs[row], strict=True)]
        track = int(faces.tracks[row]) if self.show_track else NO_TRACK
        return label_for(faces.names[row], float(faces.confidence[row]), top, top3=self.show_top3, track=track)

    def blocks(self, label: Label, swatch: Swatch) -> tuple[NDArray[np.uint8], ...]:
        """The label drawn at each size it may take, largest first: the full label, smaller text,
        then without the top-3 lines (the page's label_layout.js sizes are the same). Cached: a
        label repeats for as long as its track's vote holds."""
        return self._blocks(label, swatch)

    def _render_blocks(self, label: Label, swatch: Swatch) -> tuple[NDArray[np.uint8], ...]:
        heads = (self.text.mask(label.head), self.small.mask(label.head))
        details = tuple(self.small.mask(line) for line in label.details)
        line_sets = [(head, *details) for head in heads] if details else []
        return tuple(_block(lines, swatch) for lines in (*line_sets, *((head,) for head in heads)))

    def layout(self, faces: Faces, width: int, height: int) -> tuple[Layout, list[tuple[NDArray[np.uint8], ...]]]:
        """Where each face's label goes (None: dropped), and its blocks at every size offered."""
        blocks = [self.blocks(self.label(faces, row), swatch_for(faces.names[row])) for row in range(len(faces))]
        requests = [
            LabelRequest(Rect(*(float(v) for v in faces.boxes[row])),
                         tuple((float(b.shape[1]), float(b.shape[0])) for b in blocks[row]),
                         None if faces.tracks[row] == NO_TRACK else int(faces.tracks[row]))
            for row in range(len(faces))
        ]
        return self.placer.place(requests, width, height), blocks

    def annotate(self, image: NDArray[np.uint8], faces: Faces, *, in_place: bool = False) -> NDArray[np.uint8]:
        out = image if in_place else image.copy()
        layout, blocks = self.layout(faces, out.shape[1], out.shape[0])
        self.labels_dropped += layout.dropped
        for row, placement in enumerate(layout.placements):
            x, y, w, h = (int(v) for v in faces.boxes[row])
            cv2.rectangle(out, (x, y), (x + w, y + h), swatch_for(faces.names[row]).box, self.thickness)
            if placement is not None:  # inside the frame by construction
                block = blocks[row][placement.size]
                left, top = int(placement.rect.x), int(placement.rect.y)
                out[top : top + block.shape[0], left : left + block.shape[1]] = block
        return out


def _block(masks: Sequence[NDArray[np.uint8]], swatch: Swatch) -> NDArray[np.uint8]:
    """A label block: its lines stacked on the face's colour, padded."""
    block = np.empty((sum(m.shape[0] + 2 * PAD for m in masks), max(m.shape[1] for m in masks) + 2 * PAD, 3), np.uint8)
    block[:] = swatch.box
    top = 0
    for mask in masks:
        draw_text(block, mask, 0, top, swatch.text, None, PAD)
        top += mask.shape[0] + 2 * PAD
    block.flags.writeable = False
    return block


class StatusAnnotator:
    """One status line: FPS, latency p50/p95, execution provider and drops, from a stats
    snapshot (the keys of `Stats.snapshot`)."""

    def __init__(self, *, font_size: int = 14, font: str | Path = "") -> None:
        self.text = TextRenderer(font_size, font, cached=2)

    @staticmethod
    def line(snapshot: Mapping[str, Any]) -> str:
        latency = snapshot.get("latency_ms", {})
        provider = str(snapshot.get("provider", "")).replace("ExecutionProvider", "")
        parts: Iterable[str] = (
            f"{snapshot.get('fps', 0.0):.1f} fps",
            f"latency p50 {latency.get('p50', 0.0):.0f} ms  p95 {latency.get('p95', 0.0):.0f} ms",
            provider or "?",
            f"dropped {snapshot.get('dropped', 0)}",
        )
        return "  |  ".join(parts)

    def annotate(self, image: NDArray[np.uint8], snapshot: Mapping[str, Any], *,
                 in_place: bool = False) -> NDArray[np.uint8]:
        out = image if in_place else image.copy()
        mask = self.text.mask(self.line(snapshot))
        # Bottom-left: faces are rarely there, and the top rows often carry subtitles or a logo.
        y = out.shape[0] - mask.shape[0] - 8
        draw_text(out, mask, 0, y, WHITE, (40, 40, 40), pad=4)
        return out
