"""The two seams of the real-time pipeline: where frames come from and where results go.

Sources (capture.py) produce `Frame`s; sinks (the window, the video writer, JSON Lines, the OBS
server) consume `AnnotatedFrame`s. The pipeline in between knows neither side's details.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from animerec.records import AnnotatedFrame, Frame


@dataclass(frozen=True)
class SourceInfo:
    """What a source knows about itself before the first frame."""

    source_id: str
    live: bool  # live: keep the newest frame, drop and count older ones; file: lose nothing
    width: int
    height: int
    fps: float  # nominal frame rate (0 when unknown)
    frame_count: int = 0  # 0 when unknown or endless
    path: Path | None = None  # the media file, for sinks that copy its audio


class Source(Protocol):
    info: SourceInfo

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Frames in order until the source ends or `stop` is set; never blocks longer than
        about 0.5 s without checking `stop`."""
        ...

    @property
    def dropped(self) -> int:
        """Frames the source itself discarded (live sources keep only the newest)."""
        ...

    @property
    def errors(self) -> int:
        """Bad packets or failed grabs that were skipped."""
        ...

    def close(self) -> None: ...


class Sink(Protocol):
    def write(self, item: AnnotatedFrame) -> None:
        """Take one finished frame; called from one thread, in frame order. Must not block for
        long: a slow consumer (a network client) buffers and drops on its own side."""
        ...

    def close(self) -> None:
        """Flush and finalise; after Ctrl-C too, so the output is always valid."""
        ...
