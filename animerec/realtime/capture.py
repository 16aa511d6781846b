"""Where frames come from: `open_source` turns the user's `--source` into a Source.

  "0", "1", ...           a webcam (live)
  "screen", "screen:N"    monitor N as mss numbers them (1 = first, 0 = all), optional region (live)
  rtsp:// http(s):// srt://  a network stream (live, reconnected when it drops)
  a video file            every frame in order; with `paced` at its native rate as a live source
                          (an animated GIF or PNG is a video: see animerec.media)
  an image, or a folder   one frame per image, sorted; unreadable images skipped and counted

The sources themselves live in video_source.py (PyAV) and live_source.py (camera and screen).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError, UsageError
from animerec.media import is_image
from animerec.realtime.live_source import (
    CameraGrabber,
    Grabber,
    LiveSource,
    Region,
    ScreenGrabber,
)
from animerec.realtime.protocols import Source, SourceInfo
from animerec.realtime.threaded_source import Backoff
from animerec.realtime.video_source import StreamGrabber, VideoFileSource
from animerec.recognition.images import UnreadableImage, load_image
from animerec.records import Frame

log = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "srt", "udp", "tcp")
SCREEN_FPS = 30.0  # screens have no frame rate; grabbing faster only burns a core
START_ATTEMPTS = 3  # a device busy for a moment at start gets two more chances
FIRST_RETRY_S = 0.5  # then 1 s, 2 s, ... up to 10 s between reconnection attempts
_SCREEN_SPEC = re.compile(r"screen(?::(\d+))?")
_URL_SPEC = re.compile(r"([a-z][a-z0-9+.-]*)://", re.IGNORECASE)


def open_source(
    spec: str | int | os.PathLike[str],
    *,
    paced: bool = False,
    loop: bool = False,
    screen_region: Region | None = None,
) -> Source:
    """Open the source `spec` names (see the module's docstring).

    `paced` plays a video file at its native rate as a live source (newest frame kept), `loop`
    restarts it at the end; both are ignored by sources that are live anyway. `screen_region` is
    (x, y, width, height) within the monitor. Raises InputError naming the source when it cannot
    be opened, UsageError for a malformed spec. A Path or an int (a camera) is taken as well.
    """
    spec = os.fspath(spec) if isinstance(spec, os.PathLike) else str(spec).strip()
    screen = _SCREEN_SPEC.fullmatch(spec)
    if screen_region is not None and screen is None:
        raise UsageError(f"a screen region only applies to a screen source, not {spec!r}")
    if re.fullmatch(r"\d+", spec):
        return _live(CameraGrabber(int(spec)), spec)
    if screen is not None:
        monitor = int(screen.group(1)) if screen.group(1) else 1
        return _live(ScreenGrabber(monitor, screen_region), spec, max_fps=SCREEN_FPS)
    url = _URL_SPEC.match(spec)
    if url is not None:
        if url.group(1).lower() not in STREAM_SCHEMES:
            raise UsageError(f"{spec}: unsupported URL scheme (use one of {', '.join(STREAM_SCHEMES)})")
        return _live(StreamGrabber(spec), spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(f"{spec}: no such file or folder")
    if path.is_dir() or is_image(path):
        return ImageSource(path)
    return VideoFileSource(path, paced=paced, loop=loop)


def _live(grabber: Grabber, spec: str, max_fps: float = 0.0) -> LiveSource:
    backoff = Backoff(FIRST_RETRY_S)
    return LiveSource(grabber, spec, max_fps=max_fps, start_attempts=START_ATTEMPTS, backoff=backoff)


class ImageSource:
    """Still images: one file, or every image in a folder and its subfolders, sorted by path."""

    def __init__(self, path: Path) -> None:
        if path.is_dir():
            paths = sorted(p for p in path.rglob("*") if p.is_file() and is_image(p))
            if not paths:
                raise InputError(f"{path}: no images in this folder")
        else:
            paths = [path]
        self._paths = paths
        self._errors = 0
        self._stop = threading.Event()
        # The first readable image gives the size SourceInfo promises before the first frame.
        self._first: tuple[int, NDArray[np.uint8]] | None = None
        for position, candidate in enumerate(paths):
            image = self._load(candidate)
            if image is not None:
                self._first = (position, image)
                break
        if self._first is None:
            raise InputError(f"{path}: none of its {len(paths)} image(s) could be read")
        height, width = self._first[1].shape[:2]
        self.info = SourceInfo(
            source_id=str(path), live=False, width=width, height=height, fps=0.0,
            frame_count=len(paths),
        )

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """One frame per readable image, in path order; `time` is 0 (stills have no timeline)."""
        assert self._first is not None
        start, first = self._first
        index = 0
        for position in range(start, len(self._paths)):
            if stop.is_set() or self._stop.is_set():
                return
            image = first if position == start else self._load(self._paths[position])
            if image is None:
                continue
            yield Frame(image, index, time.monotonic(), 0.0, str(self._paths[position]))
            index += 1

    def _load(self, path: Path) -> NDArray[np.uint8] | None:
        try:
            return load_image(path)
        except UnreadableImage as error:
            self._errors += 1
            log.warning("skipping %s", error)
            return None

    @property
    def dropped(self) -> int:
        return 0

    @property
    def errors(self) -> int:
        return self._errors

    def close(self) -> None:
        self._stop.set()
