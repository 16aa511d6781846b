"""Builders shared by the library tests: tiny folders of videos, and a look into the index."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
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


def _status(out: Path, key: str) -> str | None:
    """`key`'s status, None while the job has not made its index yet (the file comes first,
    its tables a moment later)."""
    try:
        return statuses(out).get(key) if (out / "library.sqlite").exists() else None
    except sqlite3.OperationalError:
        return None


def attempts(out: Path) -> dict[str, int]:
    """path -> how many workers have tried that video, over every run."""
    with sqlite3.connect(out / "library.sqlite") as db:
        return dict(db.execute("SELECT path, attempts FROM videos").fetchall())


def jsonl_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _has_written_a_frame(out: Path, stem: str) -> bool:
    """Whether `stem`'s JSON Lines temporary (`.STEM.tmp-...jsonl`) holds a line yet."""
    for path in out.glob(f".{stem}.*.jsonl"):
        try:
            if path.stat().st_size > 0:
                return True
        except FileNotFoundError:  # renamed into place a moment ago
            pass
    return False


def interrupt_job(videos: Path, out: Path, gallery: Path, *flags: str, start_s: float = 20) -> tuple[int, str]:
    """Start `animerec annotate VIDEOS -o OUT FLAGS` in a process, wait (up to `start_s`) until
    a_short.mp4 is done and b_long.mp4 has written a frame, press Ctrl-C, and return the exit code
    and standard error. (Interrupted before its first frame, a video leaves no file at all.)"""
    env = {**os.environ, "ANIMEREC_GALLERY": str(gallery)}
    job = subprocess.Popen([sys.executable, "-m", "animerec", "annotate", str(videos), "-o", str(out), *flags],
                           env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + start_s
    while time.monotonic() < deadline and job.poll() is None:
        if _status(out, "a_short.mp4") == "done" and _has_written_a_frame(out, "b_long"):
            break
        time.sleep(0.2)
    assert job.poll() is None, "the long video finished before it could be interrupted"
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=60)
    return job.returncode, err
