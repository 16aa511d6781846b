"""The job's progress bars on standard error: one for the whole job, one per video in flight.

Workers never draw: they send `Progress` messages and the parent draws every bar from one
thread, so bars from several processes (or machines) do not overwrite each other. Per-video
bars take the lowest free line under the job's bar (tqdm `position=`) and give it back when
their video ends. Off a terminal they are plain lines (animerec.progress).
"""

from __future__ import annotations

from animerec.library.records import Progress, Status, VideoResult
from animerec.progress import Progress as Bar
from animerec.progress import note, progress


class ProgressBoard:
    """Draws the bars; `update` for worker messages, `finished` for results."""

    def __init__(self, videos: int, already_done: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self._job = progress(videos, "library", "video", position=0, enabled=enabled)
        self._bars: dict[str, tuple[int, Bar]] = {}  # key -> (line, bar)
        self._ended: set[str] = set()  # late messages of a finished video must not open a new bar
        self._failed = 0
        self._already_done = already_done
        self._postfix()

    def update(self, message: Progress) -> None:
        if message.key in self._ended:
            return
        if message.finished:
            self._close(message.key)
            return
        entry = self._bars.get(message.key)
        if entry is None:
            line = min(set(range(1, len(self._bars) + 2)) - {line for line, _ in self._bars.values()})
            bar = progress(message.total or None, _short(message.key), "frame", position=line, leave=False,
                           enabled=self.enabled)
            entry = self._bars[message.key] = (line, bar)
        bar = entry[1]
        if bar.total is None and message.total:
            bar.total = message.total
        bar.update(message.frames - bar.n)

    def finished(self, result: VideoResult) -> None:
        self._ended.add(result.key)
        self._close(result.key)
        if result.status != Status.DONE:
            self._failed += 1
        self._job.update(1)
        self._postfix()

    def write(self, text: str) -> None:
        """A line above the bars (tqdm keeps them intact)."""
        note(text)

    def close(self) -> None:
        for key in list(self._bars):
            self._close(key)
        self._job.close()

    def _close(self, key: str) -> None:
        entry = self._bars.pop(key, None)
        if entry is not None:
            entry[1].close()

    def _postfix(self) -> None:
        parts = {}
        if self._already_done:
            parts["already_done"] = self._already_done
        if self._failed:
            parts["failed"] = self._failed
        if parts:
            self._job.set_postfix(parts, refresh=False)


def _short(key: str, width: int = 28) -> str:
    """A video's name fit for a bar label: the end of the path, which tells videos apart."""
    return key if len(key) <= width else "…" + key[-(width - 1):]
