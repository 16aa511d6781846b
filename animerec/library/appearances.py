"""Turn per-frame names into appearance intervals: "gura from 12.0 s to 31.5 s, 18.2 s on screen".

The input is what the JSON Lines file holds, one row per frame: its presentation time and the
names decided for its faces. Consecutive frames where a character is named merge into one
interval; a gap shorter than `gap_s` does not split it, because a skipped detection, a blink of
"unknown" or a cut-away of a few frames is not a new appearance. "unknown" is not a character.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from animerec.library.records import Appearance
from animerec.records import UNKNOWN


@dataclass
class _Open:
    """An interval still growing (mutable on purpose: it changes every frame the name is seen)."""

    start: float
    end: float
    seconds: float


class AppearanceBuilder:
    """Feed frames in order with `add(time, names)`; `finish()` returns the intervals."""

    def __init__(self, fps: float, gap_s: float = 1.0) -> None:
        # A frame lasts one frame period; without a rate (rare), assume 25 fps rather than zero length.
        self.frame_s = 1.0 / fps if fps and fps > 0 else 0.04
        self.gap_s = gap_s
        self._open: dict[str, _Open] = {}
        self._closed: list[Appearance] = []

    def add(self, time: float, names: Iterable[str]) -> None:
        end = time + self.frame_s
        for name in set(names) - {UNKNOWN}:
            current = self._open.get(name)
            if current is not None and time - current.end <= self.gap_s:
                current.end = max(current.end, end)
                current.seconds += self.frame_s
                continue
            if current is not None:
                self._close(name, current)
            self._open[name] = _Open(time, end, self.frame_s)

    def finish(self) -> tuple[Appearance, ...]:
        """Every interval, ordered by start time then name; the builder can not be fed after this."""
        for name, current in self._open.items():
            self._close(name, current)
        self._open.clear()
        return tuple(sorted(self._closed, key=lambda a: (a.start, a.character)))

    def _close(self, name: str, current: _Open) -> None:
        self._closed.append(Appearance(name, round(current.start, 6), round(current.end, 6), round(current.seconds, 6)))


def appearances_from_jsonl(path: Path, fps: float, gap_s: float = 1.0) -> tuple[Appearance, ...]:
    """Rebuild the intervals of a finished JSON Lines file (CONTRACTS.md rows)."""
    builder = AppearanceBuilder(fps, gap_s)
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            builder.add(float(row["time"]), (face["name"] for face in row["faces"]))
    return builder.finish()
