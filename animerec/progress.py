"""Progress on standard error: a live bar on a terminal, a plain line every 10% anywhere else.

A bar redraws itself with carriage returns and cursor moves (`\\r`, ESC [A), which turn a log
file or a pipe into noise. So when standard error is not a terminal, the same calls print lines
such as `kon.mp4: 30% (321/1070 frames)` at each tenth of the total, and one when it closes.
Every progress display in Animerec comes from `progress` or `tracked`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
STEPS = 10  # plain lines per run: one at each tenth of the total


class Progress(Protocol):
    """What callers use of a bar: tqdm's names, so a tqdm bar is one."""

    n: int
    total: int | None

    def update(self, n: int = 1) -> bool | None: ...

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Progress: ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None: ...


def progress(total: int | None, desc: str, unit: str, *, position: int | None = None, leave: bool = True,
             enabled: bool = True) -> Progress:
    """A bar on standard error, or plain lines when it is not a terminal; nothing when not
    `enabled`. `position` is the bar's line below the first (tqdm's, for several at once)."""
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        bar: Progress = tqdm(total=total, desc=desc, unit=unit, position=position, leave=leave,
                             file=sys.stderr, dynamic_ncols=True)
        return bar
    return PlainProgress(total, desc, unit, leave=leave, enabled=enabled)


def tracked(items: Sequence[T], desc: str, unit: str, *, leave: bool = True) -> Iterator[T]:
    """Each item of `items`, counted on a `progress` display."""
    with progress(len(items), desc, unit, leave=leave) as bar:
        for item in items:
            yield item
            bar.update()


def note(text: str) -> None:
    """A line on standard error that does not break the bars being drawn (tqdm redraws them)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        tqdm.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr, flush=True)


class PlainProgress:
    """Progress for a log file or a pipe: one line per tenth of the total, and one at the end
    unless it already said 100% or is not to be left (`leave=False`, as tqdm erases such bars)."""

    def __init__(self, total: int | None, desc: str, unit: str, *, leave: bool = True, enabled: bool = True) -> None:
        self.n = 0
        self.total = total
        self._desc, self._unit, self._leave, self._enabled = desc, unit, leave, enabled
        self._steps_shown = 0
        self._postfix = ""
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.total:
            return  # no tenths without a total: the closing line says how many
        steps = min(STEPS, self.n * STEPS // self.total)
        if steps > self._steps_shown:
            self._steps_shown = steps
            self._print(f"{100 * steps // STEPS}% ({self.n}/{self.total} {self._unit}s)")

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True) -> None:
        parts = ordered_dict or {}
        self._postfix = "".join(f", {key.replace('_', ' ')} {value}" for key, value in parts.items())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._leave and (self._steps_shown < STEPS or self._postfix):
            of_total = f"/{self.total}" if self.total else ""
            self._print(f"{self.n}{of_total} {self._unit}s{self._postfix}")

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _print(self, text: str) -> None:
        if self._enabled:
            print(f"{self._desc}: {text}", file=sys.stderr, flush=True)
