"""Worker processes that end with their parent: `exit_with_parent()` in a worker's initializer.

A worker must never outlive the process that started it: with nobody left to collect its result
it would only keep writing into folders that a new run believes are its own, and hold hundreds of
megabytes forever (`kill -9` of the parent, an out-of-memory kill, a crashed terminal). Two
mechanisms, because neither covers every case alone:

- Linux: the kernel sends SIGKILL the moment the parent dies (prctl PR_SET_PDEATHSIG), so the
  worker stops within microseconds, before it can write another frame. The signal follows the
  parent *thread* that started the worker; the process pools here start workers from the thread
  that submits work, which lives as long as the job.
- Everywhere (macOS, Windows, and as a second guard on Linux): a daemon thread that looks at the
  parent every WATCH_S seconds and ends the process once it is gone.

Either way the worker exits at once, without finalising anything: its temporary outputs are
removed by the next run, and its video, still RUNNING in the index, is done again.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from multiprocessing.process import BaseProcess

WATCH_S = 0.5  # how often the watchdog looks; the Linux signal needs no polling
EXIT_CODE = 75  # distinct from a crash or a signal, for whoever still looks (EX_TEMPFAIL)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_parent() -> None:
    """Make this process (a multiprocessing child) exit as soon as its parent process dies.
    Does nothing in a process that multiprocessing did not start."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    if sys.platform.startswith("linux"):
        _ask_kernel_to_kill_us_with_parent()
    if _parent_gone(parent):  # it died before we could arm anything: the signal never comes
        os._exit(EXIT_CODE)
    threading.Thread(target=_watch, args=(parent,), name="lifeline", daemon=True).start()


def _ask_kernel_to_kill_us_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:  # never fails on Linux >= 2.1.57
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _watch(parent: BaseProcess) -> None:
    while not _parent_gone(parent):
        time.sleep(WATCH_S)
    os._exit(EXIT_CODE)


def _parent_gone(parent: BaseProcess) -> bool:
    if sys.platform == "win32":
        # The sentinel is a handle on the parent process, signalled when it exits; Windows does
        # not re-parent orphans, so the parent pid would not change.
        return bool(multiprocessing.connection.wait([parent.sentinel], timeout=0))
    # POSIX hands an orphan to init (or a subreaper) at once: the parent pid changes.
    return os.getppid() != parent.pid
