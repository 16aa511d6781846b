"""Builders shared by the library tests: tiny folders of videos, and a look into the index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from media import make_test_video


def make_library(folder: Path, names: dict[str, int], corrupt: tuple[str, ...] = ()) -> Path:
    """`folder` with one tiny silent video per `names` entry (relative path -> frame count) and
    a file of garbage for each `corrupt` name."""
    for name, frames in names.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        make_test_video(path, frames=frames, audio=False)
    for name in corrupt:
        (folder / name).write_bytes(b"this is not a video" * 100)
    return folder


def statuses(out: Path) -> dict[str, str]:
    with sqlite3.connect(out / "library.sqlite") as db:
        return dict(db.execute("SELECT path, status FROM videos").fetchall())


def jsonl_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())
