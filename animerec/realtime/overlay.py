"""Stateless annotators: style in the constructor, `annotate(image, ...)` returns the image.

They draw what the records say (the face record's `name`; never a decision of their own). Text is
rendered with Pillow from a TrueType font so names in any script show (初音ミク): OpenCV's Hershey
fonts are ASCII only. Only the small text patches go through Pillow, and each rendered label is
cached, so a frame costs a few array blends.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from animerec.records import NO_TRACK, Faces

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
BLACK = (0, 0, 0)


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


def colour_for(name: str) -> tuple[int, int, int]:
    """A stable, saturated BGR colour per name, so a character keeps its colour across runs."""
    hue = int(hashlib.md5(name.encode()).hexdigest()[:4], 16) % 180
    hsv = np.array([[[hue, 200, 230]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _ink(background: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = background
    return BLACK if 0.114 * b + 0.587 * g + 0.299 * r > 150 else WHITE


class FaceAnnotator:
    """Box, `name : 93.12` (or the top 3 as the report's demo prints them) and the track id."""

    def __init__(self, *, show_top3: bool = False, show_track: bool = True, font_size: int = 16,
                 thickness: int = 2, font: str | Path = "") -> None:
        self.show_top3, self.show_track, self.thickness = show_top3, show_track, thickness
        self.text = TextRenderer(font_size, font)

    def labels(self, faces: Faces, row: int) -> list[str]:
        """The label lines of face `row`: the decided name first, as the record says."""
        name, confidence = faces.names[row], float(faces.confidence[row])
        first = f"{name} : {100 * confidence:.2f}"
        track = int(faces.tracks[row])
        suffix = f"  #{track}" if self.show_track and track != NO_TRACK else ""
        top = list(zip(faces.top_names[row], faces.top_probs[row], strict=True))
        if not self.show_top3 or not top:
            return [first + suffix]
        lines = [f"{n} : {100 * float(p):.2f}" for n, p in top]
        if top[0][0] != name:  # the decision is not the best class (e.g. "unknown"): say both
            lines.insert(0, first)
        lines[0] += suffix
        return lines

    def annotate(self, image: NDArray[np.uint8], faces: Faces, *, in_place: bool = False) -> NDArray[np.uint8]:
        out = image if in_place else image.copy()
        for row in range(len(faces)):
            x, y, w, h = (int(v) for v in faces.boxes[row])
            colour = colour_for(faces.names[row])
            cv2.rectangle(out, (x, y), (x + w, y + h), colour, self.thickness)
            masks = [self.text.mask(line) for line in self.labels(faces, row)]
            height = sum(m.shape[0] + 4 for m in masks)
            # Above the box when there is room, else below it, else inside its top edge.
            if y - height >= 0:
                top = y - height
            elif y + h + self.thickness + height <= out.shape[0]:
                top = y + h + self.thickness
            else:
                top = y + self.thickness
            for mask in masks:
                draw_text(out, mask, x, top, _ink(colour), colour)
                top += mask.shape[0] + 4
        return out


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
