"""Library jobs under faults: a parent killed with SIGKILL takes its workers with it, a new job
waits for an earlier job's workers, and the index counts every try. Real processes, real locks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
from library_helpers import attempts, jsonl_lines, make_library, statuses

from animerec import cli
from animerec.errors import UsageError
from animerec.library.lock import job_lock
from animerec.library.worker import CRASH_FLAGS_ENV
from animerec.paths import DEFAULT_MODEL_PATH

needs_model = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="bundled model not built yet")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads processes from /proc")
GONE_S = 10.0  # how long orphaned workers may take to exit: the watchdog looks twice a second


@pytest.fixture(autouse=True)
def no_default_gallery(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMEREC_GALLERY", str(tmp_path / "no-gallery.json"))


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (state, ppid, pgrp, ...), None for no process."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running, not a zombie: an orphan's zombie waits for init to reap it, which in a container
    may never happen, and a zombie writes nothing."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def group(pgid: int) -> set[int]:
    """The live processes of process group `pgid`."""
    members = set()
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(entry.name))
    return members


def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    """Whether `condition` held within `timeout` seconds (looked at ten times a second)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def writing(out: Path, videos: int) -> bool:
    """Each of `videos` videos is RUNNING and has a temporary output being written."""
    if not (out / "library.sqlite").exists() or list(statuses(out).values()).count("running") < videos:
        return False
    temporaries = [p for p in out.iterdir() if p.name.startswith(".") and "library" not in p.name]
    return len(temporaries) >= videos


@needs_model
@linux_only
def test_workers_exit_when_the_parent_is_killed_and_a_rerun_finishes_the_job(tmp_path):
    videos = make_library(tmp_path / "in", {"a.mp4": 300, "b.mp4": 300})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "animerec", "annotate", str(videos), "-o", str(out), "--jobs", "2"]
    # Its own session, as `setsid animerec ...`: the group names every process the job started.
    parent = subprocess.Popen(command, start_new_session=True, stderr=subprocess.DEVNULL)
    rerun = None
    try:
        assert eventually(lambda: writing(out, 2), 120), "the workers never started writing"
        assert parent.poll() is None, "the job finished before it could be killed"
        started = group(parent.pid) - {parent.pid}  # two workers and multiprocessing's resource tracker
        assert len(started) >= 3
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        rerun = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)  # at once, as a user would

        assert eventually(lambda: not any(alive(pid) for pid in started), GONE_S), \
            f"still alive after the parent was killed: {sorted(p for p in started if alive(p))}"
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        assert statuses(out) == {"a.mp4": "done", "b.mp4": "done"}
        assert jsonl_lines(out / "a.jsonl") == 300 and jsonl_lines(out / "b.jsonl") == 300
    finally:  # whatever failed, leave no orphan behind
        with suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)
        if rerun is not None and rerun.poll() is None:
            rerun.kill()
            rerun.wait()


def _holder(folder: Path, what: str) -> subprocess.Popen[str]:
    """Another process holding `folder`'s job lock ("job") or a worker byte ("worker")."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from animerec.library.lock import hold_worker_lock, job_lock
        folder = Path(sys.argv[1])
        if {what!r} == "worker":
            hold_worker_lock(folder)
        else:
            lock = job_lock(folder, wait_s=0)  # kept: a collected generator would let go
            lock.__enter__()
        print("held", flush=True)
        time.sleep(120)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


@pytest.mark.parametrize("what", ["job", "worker"])
def test_a_new_job_waits_until_the_lock_holder_is_gone(tmp_path, what):
    holder = _holder(tmp_path, what)
    try:
        message = "another job is running" if what == "job" else "workers of an earlier job"
        with pytest.raises(UsageError, match=message), job_lock(tmp_path, wait_s=0.3):
            pass
    finally:
        holder.kill()  # SIGKILL: no clean-up in the holder; the OS releases its locks
        holder.wait()
    with job_lock(tmp_path, wait_s=5.0), pytest.raises(UsageError, match="another job is running"), \
            job_lock(tmp_path):
        pass  # the same process cannot take it twice either


_ORPHAN_SCRIPT = """
import multiprocessing, sys, time
from animerec import lifeline

def child(kernel):
    if not kernel:  # only the watchdog thread, as on macOS and Windows
        lifeline._ask_kernel_to_kill_us_with_parent = lambda: None
    lifeline.exit_with_parent()
    time.sleep(120)

if __name__ == "__main__":
    worker = multiprocessing.get_context("spawn").Process(target=child, args=(sys.argv[1] == "kernel",))
    worker.start()
    print(worker.pid, flush=True)
    time.sleep(120)
"""


@linux_only
@pytest.mark.parametrize("mechanism", ["kernel", "watchdog"])
def test_a_child_exits_when_its_parent_is_killed(tmp_path, mechanism):
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script), mechanism], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        time.sleep(0.5)  # let the child arm its lifeline before the parent goes
        assert alive(child)
        parent.kill()
        parent.wait()
        assert eventually(lambda: not alive(child), GONE_S)
    finally:
        with suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@needs_model
def test_attempts_count_every_worker_that_tried_a_video(tmp_path, monkeypatch):
    videos = make_library(tmp_path / "in", {"a.mp4": 4, "b.mp4": 4})
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "a.mp4.crash").touch()  # the first worker to take a.mp4 dies at once, as if killed
    monkeypatch.setenv(CRASH_FLAGS_ENV, str(flags))
    out = tmp_path / "out"
    # One at a time: b is not in flight when a's worker dies, so only a is tried again.
    assert cli.main(["annotate", str(videos), "-o", str(out), "--jobs", "1"]) == 0
    assert not (flags / "a.mp4.crash").exists()
    assert attempts(out) == {"a.mp4": 2, "b.mp4": 1}
    assert cli.main(["annotate", str(videos), "-o", str(out), "--jobs", "1", "--overwrite"]) == 0
    assert attempts(out) == {"a.mp4": 3, "b.mp4": 2}  # counted across runs too

