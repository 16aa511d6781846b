"""What a file is: a still image, a video, or neither. The one rule every command uses.

By suffix, except for formats that can hold a still or an animation: a GIF or PNG with more
than one frame is a video (PyAV decodes animated GIF and APNG, frame by frame with their
timing), a one-frame GIF or PNG is an image. Animated WebP stays an image (its first frame):
FFmpeg cannot decode it.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".flv", ".wmv"}
)
PLAYABLE_ANIMATIONS = frozenset({".gif", ".png"})  # animated ones are videos; see the docstring


class MediaKind(Enum):
    IMAGE = "image"
    VIDEO = "video"


def media_kind(path: Path) -> MediaKind | None:
    """IMAGE, VIDEO, or None for a file of neither kind. Opens GIF and PNG files to count frames."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return MediaKind.VIDEO
    if suffix in PLAYABLE_ANIMATIONS and is_animated(path):
        return MediaKind.VIDEO
    if suffix in IMAGE_SUFFIXES:
        return MediaKind.IMAGE
    return None


def is_image(path: Path) -> bool:
    return media_kind(path) is MediaKind.IMAGE


def is_video(path: Path) -> bool:
    return media_kind(path) is MediaKind.VIDEO


def is_animated(path: Path) -> bool:
    """True for an image file with more than one frame (GIF, APNG, WebP); False for a still or
    for a file that cannot be opened as an image (reading it says why, later)."""
    try:
        with Image.open(path) as image:
            return bool(getattr(image, "is_animated", False))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def every_nth_frame(path: Path, step: int) -> Iterator[tuple[int, NDArray[np.uint8]]]:
    """Every `step`-th frame of a video (or GIF), with its index: for tools that sample clips."""
    capture = cv2.VideoCapture(str(path))
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            if index % step == 0:
                yield index, np.asarray(frame, np.uint8)
            index += 1
    finally:
        capture.release()
