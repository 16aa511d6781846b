"""Run a library job on this machine: a process pool, one video per process at a time.

Processes, not threads, because decoding, tracking, drawing and encoding each hold the GIL for
part of every frame; one process per video keeps every core busy with no coordination beyond
"next video, please". The "spawn" start method behaves the same on Linux, macOS and Windows and
does not fork a parent that holds threads and an ONNX Runtime session.

Workers ignore SIGINT: Ctrl-C reaches the parent, which sets one shared stop event; each worker
then finalises its partial outputs and reports INTERRUPTED, so every process takes the same
clean path whether the signal came from a terminal (whole process group) or `kill -INT parent`.
A worker that dies (killed, out of memory) breaks the pool: the runner builds a new one and
gives the videos that were in flight another attempt, up to MAX_ATTEMPTS.

A parent that dies (kill -9, out of memory) takes its workers with it (animerec.lifeline), and
each worker holds one of the job lock's worker bytes while it lives (lock.py): a new run on the
same folder waits for them, so no orphan writes beside it.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

from animerec.library.lock import hold_worker_lock
from animerec.library.records import JobSettings, ModelSource, Progress, Status, VideoJob, VideoResult
from animerec.library.worker import annotate_video
from animerec.lifeline import exit_with_parent

MAX_ATTEMPTS = 3  # a video whose worker dies three times is reported FAILED, not retried forever

_progress: Any = None  # the worker process's end of the progress queue (set by _init_worker)
_stop: Any = None  # the job's stop event, shared by every worker


def _init_worker(progress: Any, stop: Any, library: Path) -> None:
    global _progress, _stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop (see above)
    hold_worker_lock(library)  # first: the lock must be held before the parent check, see lock.py
    exit_with_parent()
    _progress, _stop = progress, stop


def _pool_task(job: VideoJob, settings: JobSettings, model: ModelSource) -> VideoResult:
    return annotate_video(job, settings, model, progress=_progress, stop=_stop)


class LocalRunner:
    """`jobs` worker processes; submit VideoJobs, collect VideoResults as they finish."""

    def __init__(self, jobs: int, settings: JobSettings, model: ModelSource, library: Path) -> None:
        self.capacity = jobs
        self.settings, self.model, self.library = settings, model, library
        self._context = multiprocessing.get_context("spawn")
        self._progress = self._context.Queue()
        self._stop = self._context.Event()
        self._pool = self._new_pool()
        self._running: dict[Future[VideoResult], VideoJob] = {}
        self._retried: list[str] = []

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.capacity, mp_context=self._context, initializer=_init_worker,
                                   initargs=(self._progress, self._stop, self.library))

    def submit(self, job: VideoJob) -> None:
        future = self._pool.submit(_pool_task, job, self.settings, self.model)
        self._running[future] = job

    def wait(self, timeout: float) -> list[VideoResult]:
        """Results of the videos that finished within `timeout` seconds (maybe none)."""
        if not self._running:
            return []
        finished, _ = wait(list(self._running), timeout=timeout, return_when=FIRST_COMPLETED)
        results = []
        broken: list[VideoJob] = []
        for future in finished:
            job = self._running.pop(future)
            error = future.exception()
            if error is None:
                results.append(future.result())
            elif isinstance(error, BrokenProcessPool):
                broken.append(job)
            else:  # a bug in the worker, not a dead process: retrying would fail the same way
                results.append(VideoResult(job.key, Status.FAILED, error=f"worker error: {error!r}"))
        if broken:
            results += self._restart(broken)
        return results

    def _restart(self, broken: list[VideoJob]) -> list[VideoResult]:
        """A dead worker takes the whole pool down: resubmit every unfinished video to a new one."""
        broken += list(self._running.values())  # their futures fail too, a moment later
        self._running.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        given_up = []
        for job in broken:
            if job.attempt >= MAX_ATTEMPTS:
                given_up.append(VideoResult(job.key, Status.FAILED,
                                            error=f"the worker died {job.attempt} times on this video"))
            else:
                self.submit(replace(job, attempt=job.attempt + 1))
                self._retried.append(job.key)
        return given_up

    def retried(self) -> list[str]:
        """The videos given to a new worker since the last call, because theirs died."""
        retried, self._retried = self._retried, []
        return retried

    def progress(self) -> list[Progress]:
        """Every progress message waiting in the queue (never blocks)."""
        messages = []
        while True:
            try:
                messages.append(self._progress.get_nowait())
            except queue.Empty:
                return messages

    def interrupt(self, timeout: float) -> list[VideoResult]:
        """Stop every worker; the results of the videos in flight (mostly INTERRUPTED) that
        arrive within `timeout` seconds."""
        self._stop.set()
        results: list[VideoResult] = []
        if self._running:
            finished, _ = wait(list(self._running), timeout=timeout)
            for future in finished:
                del self._running[future]
                if future.exception() is None:
                    results.append(future.result())
        return results

    def close(self) -> None:
        """Shut the pool down; workers still running (after a timeout) finish on their own."""
        self._pool.shutdown(wait=not self._running, cancel_futures=True)
        self._progress.close()
        self._progress.cancel_join_thread()  # unread progress messages must not block exit
