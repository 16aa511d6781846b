"""OUTDIR/.library.lock: one job per output folder, and no job beside an earlier job's workers.

    byte 0                 the job: its parent holds it from planning to the summary
    bytes 1..MAX_WORKERS   the workers: each worker process holds one for its whole life

The operating system releases a process's locks when it dies, however it dies (kill -9
included), so the locks always describe the processes that are really alive, which a file of
pids cannot (pids are reused). A new job takes byte 0, or refuses: another job is running. It
then waits until no worker byte is held: the workers of a job whose parent was killed exit on
their own within a second (animerec.lifeline) and must not write beside the new job's workers.

Byte-range locks are what the standard library offers on every platform: fcntl.lockf on POSIX,
msvcrt.locking on Windows. POSIX record locks belong to a process, not to an open file, so a
second job in the same process would not be refused by the OS (`_held` refuses it), and closing
any other descriptor of the file would drop them (only this module opens it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from animerec.errors import UsageError

LOCK_NAME = ".library.lock"
MAX_WORKERS = 4096  # worker bytes; a pool replacing dead workers briefly needs more than --jobs
WORKERS_EXIT_S = 10.0  # how long a new job waits for an earlier job's orphaned workers to exit
_JOB = 0  # the job's byte
_POLL_S = 0.1

_held: set[Path] = set()  # folders whose job lock this process holds
_worker_lock: IO[bytes] | None = None  # a worker's open lock file, kept open for its whole life


@contextmanager
def job_lock(folder: Path, wait_s: float = WORKERS_EXIT_S) -> Iterator[None]:
    """Hold `folder`'s job lock for the whole job. Raises UsageError when another job holds it,
    or when an earlier job's workers are still alive after `wait_s` seconds."""
    key = folder.resolve()
    with open(folder / LOCK_NAME, "a+b") as handle:
        if key in _held or not _try_lock(handle, _JOB, 1):
            raise UsageError(f"another job is running on {folder} (it holds {LOCK_NAME})")
        _held.add(key)
        try:
            _wait_for_workers(handle, folder, wait_s)
            yield
        finally:
            _held.discard(key)
            _unlock(handle, _JOB, 1)


def hold_worker_lock(folder: Path) -> None:
    """In a worker process: hold one of `folder`'s worker bytes until this process exits, so no
    new job starts while it may still write. Call it before the first write."""
    global _worker_lock
    handle = open(folder / LOCK_NAME, "a+b")  # noqa: SIM115 (open for the process's life, on purpose)
    for byte in range(_JOB + 1, _JOB + 1 + MAX_WORKERS):
        if _try_lock(handle, byte, 1):
            _worker_lock = handle
            return
    handle.close()
    raise RuntimeError(f"all {MAX_WORKERS} worker locks of {folder / LOCK_NAME} are held")


def _wait_for_workers(handle: IO[bytes], folder: Path, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    told = False
    while not _try_lock(handle, _JOB + 1, MAX_WORKERS):
        if time.monotonic() >= deadline:
            raise UsageError(f"workers of an earlier job on {folder} are still running (they hold "
                             f"{LOCK_NAME}); wait for them to exit, or end them")
        if not told:
            print("animerec: waiting for the workers of an earlier job to exit", file=sys.stderr, flush=True)
            told = True
        time.sleep(_POLL_S)
    _unlock(handle, _JOB + 1, MAX_WORKERS)  # free for this job's own workers


if sys.platform == "win32":
    import msvcrt

    def _try_lock(handle: IO[bytes], start: int, length: int) -> bool:
        handle.seek(start)  # msvcrt locks `length` bytes from the current position
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, length)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes], start: int, length: int) -> None:
        handle.seek(start)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, length)

else:
    import fcntl

    def _try_lock(handle: IO[bytes], start: int, length: int) -> bool:
        try:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes], start: int, length: int) -> None:
        fcntl.lockf(handle.fileno(), fcntl.LOCK_UN, length, start)
