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


def jsonl_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def interrupt_job(videos: Path, out: Path, gallery: Path, *flags: str, start_s: float = 20) -> tuple[int, str]:
    """Start `animerec annotate VIDEOS -o OUT FLAGS` in a process, wait (up to `start_s`) until
    a_short.mp4 is done, press Ctrl-C, and return the exit code and standard error."""
    env = {**os.environ, "ANIMEREC_GALLERY": str(gallery)}
    job = subprocess.Popen([sys.executable, "-m", "animerec", "annotate", str(videos), "-o", str(out), *flags],
                           env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + start_s
    while time.monotonic() < deadline and job.poll() is None:
        if (out / "library.sqlite").exists() and statuses(out).get("a_short.mp4") == "done":
            break
        time.sleep(0.2)
    assert job.poll() is None, "the long video finished before it could be interrupted"
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=60)
    return job.returncode, err
