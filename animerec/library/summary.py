"""The end-of-job summary: what was done, what failed and why, and who was seen where."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from animerec.library.records import Appearance, Status, VideoResult, screen_times

MAX_NAMES = 5  # characters listed per video in the table; the index has them all


@dataclass(frozen=True)
class JobSummary:
    """This run's results, plus the videos skipped because an earlier run finished them."""

    results: tuple[VideoResult, ...]
    already_done: tuple[str, ...]
    elapsed_s: float
    runner: str  # "local, 2 processes" or "ray, 8 CPUs"
    detector: str = ""  # the face detector every video ran with, e.g. "cascade (LBP cascade on the CPU)"

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results)

    @property
    def faces(self) -> int:
        return sum(r.faces for r in self.results)

    @property
    def videos_per_hour(self) -> float:
        done = self.count(Status.DONE)
        return done * 3600.0 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "done": self.count(Status.DONE),
            "already_done": list(self.already_done),
            "failed": [{"video": r.key, "error": r.error} for r in self.results if r.status == Status.FAILED],
            "interrupted": [r.key for r in self.results if r.status == Status.INTERRUPTED],
            "frames": self.frames,
            "faces": self.faces,
            "elapsed_s": round(self.elapsed_s, 3),
            "videos_per_hour": round(self.videos_per_hour, 1),
            "runner": self.runner,
            "detector": self.detector,
            "videos": [
                {"video": r.key, "status": r.status.value, "frames": r.frames, "faces": r.faces,
                 "duration": r.duration, "characters": list(r.characters), "error": r.error}
                for r in self.results
            ],
        }


def print_summary(summary: JobSummary, out: TextIO | None = None) -> None:
    """A table of this run's videos, then one `skipped` line per failed input (CONTRACTS.md)."""
    out = out or sys.stderr
    done, failed = summary.count(Status.DONE), summary.count(Status.FAILED)
    interrupted = summary.count(Status.INTERRUPTED)
    head = (f"animerec: library: {done} annotated, {len(summary.already_done)} already done, {failed} failed"
            + (f", {interrupted} interrupted" if interrupted else "")
            + f"; {summary.frames} frames, {summary.faces} faces in {summary.elapsed_s:.1f} s ({summary.runner})")
    print(head, file=out)
    rows = sorted(summary.results, key=lambda r: r.key)
    width = min(40, max((len(r.key) for r in rows), default=0))
    for r in rows:
        if r.status == Status.DONE:
            detail = f"{r.frames:>7} frames {r.faces:>7} faces  {characters_text(r.appearances) or '-'}"
        else:
            detail = r.error or r.status.value
        print(f"  {r.key:<{width}}  {r.status.value:<11} {detail}", file=out)
    for r in rows:
        if r.status == Status.FAILED:
            print(f"animerec: skipped {r.key}: {r.error}", file=out)


def characters_text(appearances: Iterable[Appearance], limit: int = MAX_NAMES) -> str:
    """`gura 12.5 s, ame 3.0 s +2`: the characters seen and their time on screen, most first."""
    times = screen_times(appearances)
    shown = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in list(times.items())[:limit])
    return shown + (f" +{len(times) - limit}" if len(times) > limit else "")


def exit_code(summary: JobSummary, interrupted: bool) -> int:
    """130 after Ctrl-C; when some inputs could not be annotated, 3 if others were (now or by an
    earlier run), 1 if none was: nothing done; else 0 (CONTRACTS.md)."""
    from animerec.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_SKIPPED

    if interrupted:
        return EXIT_INTERRUPTED
    if not summary.count(Status.FAILED):
        return EXIT_OK
    return EXIT_SKIPPED if summary.count(Status.DONE) or summary.already_done else EXIT_FAILURE

