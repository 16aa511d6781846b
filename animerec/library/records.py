"""The immutable records a library job passes around: what to annotate, how, and what came back.

Workers (another process, or another machine on Ray) receive a `VideoJob` and `JobSettings` and
return a `VideoResult`; they never touch the index. Everything here pickles, so the same records
cross a process pool and a Ray cluster unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from animerec.config import Config


class Status(str, Enum):
    """A video's state in the index. Only DONE means the outputs are complete."""

    PENDING = "pending"  # planned, not yet handed to a worker
    RUNNING = "running"  # handed to a worker; a crash leaves it here, and the next run redoes it
    DONE = "done"  # outputs renamed into place and recorded, in that order
    FAILED = "failed"  # unreadable input, or a worker that failed every retry; `error` says why
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C; partial outputs were finalised, not trusted


@dataclass(frozen=True)
class VideoJob:
    """One video to annotate: absolute input path, its key in the index, and where outputs go."""

    source: Path
    key: str  # the path relative to the input folder, POSIX style: stable across machines
    video_out: Path
    jsonl_out: Path
    attempt: int = 1


@dataclass(frozen=True)
class ModelSource:
    """How a worker gets the model (and the gallery) without loading it once per video.

    `key` identifies the bytes (sha256); a worker keeps one loaded classifier per key. `path` is
    used as is on the machine that planned the job; on a cluster `fetch` returns the bytes instead
    (e.g. a `ray.get` of an object put once), called only by a worker that has not loaded them yet.
    """

    key: str
    model_path: Path
    gallery_path: Path | None = None
    fetch: Callable[[], tuple[bytes, bytes | None]] | None = None


@dataclass(frozen=True)
class JobSettings:
    """What every worker of one job shares."""

    config: Config
    gap_s: float = 1.0  # appearances further apart than this are separate intervals
    crash_flags: Path | None = None  # tests only: see worker.maybe_crash


@dataclass(frozen=True)
class Appearance:
    """One interval during which a character is named on screen."""

    character: str
    start: float  # seconds, the first frame's presentation time
    end: float  # seconds, the end of the last frame (its time plus one frame's duration)
    seconds: float  # time actually on screen within [start, end]: gaps excluded


def screen_times(appearances: Iterable[Appearance]) -> dict[str, float]:
    """Each character's seconds on screen, most first (then by name)."""
    totals: dict[str, float] = {}
    for item in appearances:
        totals[item.character] = totals.get(item.character, 0.0) + item.seconds
    return {name: totals[name] for name in sorted(totals, key=lambda name: (-totals[name], name))}


@dataclass(frozen=True)
class VideoResult:
    """What a worker reports for one video; the parent writes it to the index."""

    key: str
    status: Status
    checksum: str = ""
    size: int = 0
    mtime_ns: int = 0
    frames: int = 0
    duration: float = 0.0
    faces: int = 0
    appearances: tuple[Appearance, ...] = ()
    error: str = ""
    elapsed_s: float = 0.0

    @property
    def characters(self) -> tuple[str, ...]:
        """The characters seen, most screen time first."""
        return tuple(screen_times(self.appearances))


@dataclass(frozen=True)
class Progress:
    """A worker's progress message for the per-video bars (sent a few times a second, not per frame)."""

    key: str
    frames: int
    total: int  # 0 when the container does not say
    finished: bool = False


@dataclass(frozen=True)
class Plan:
    """The outcome of planning: what to run, and what the index already has finished."""

    todo: tuple[VideoJob, ...]
    done: tuple[str, ...] = ()  # keys skipped because the index has them finished
