"""Run a library job on a Ray cluster: one Ray task per video, the model shipped once.

`--ray` connects to the cluster on this machine (`ray start --head`) or starts a local one;
`--ray local` always starts a fresh local instance; `--ray ADDRESS` connects to that cluster
(`HOST:6379`, `ray://HOST:10001`, `auto`). Inputs and OUTDIR must be at the same path on every
node (a shared folder); only this process, the driver, writes OUTDIR/library.sqlite.

How the model travels: the driver `ray.put`s the model (and gallery) bytes once. Tasks carry a
`RayFetch` holding that object's reference inside a tuple, which Ray does not resolve
automatically; a worker calls it only when its process has not loaded that model yet (see
worker._load), so the bytes cross the network once per node (the object store caches them)
and are deserialised and loaded once per worker process, not once per video. Ray reuses worker
processes between tasks, which is what makes the per-process cache pay off. An actor per worker
would pin CPUs for the whole job; plain tasks go wherever a CPU is free.

Failures: a task that fails (its worker died, its node was lost, or it raised: unreadable videos
return a FAILED result instead) is submitted again by this runner, not by Ray (`max_retries=0`),
so every try is seen and counted in the index's `attempts`, as on the local pool; after
MAX_ATTEMPTS tries the video is FAILED with Ray's reason. Ctrl-C cancels the tasks in flight
(KeyboardInterrupt in the worker, which finalises its partial outputs and reports INTERRUPTED).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from animerec.errors import UsageError
from animerec.library.local import MAX_ATTEMPTS
from animerec.library.records import JobSettings, ModelSource, Progress, Status, VideoJob, VideoResult
from animerec.library.worker import annotate_video


def import_ray() -> Any:
    """The `ray` module, or a UsageError naming the extra that installs it."""
    try:
        import ray
    except ImportError as error:
        raise UsageError("--ray needs Ray: pip install 'animerec[ray]' (or pip install 'ray>=2.9')") from error
    return ray


@dataclass(frozen=True)
class RayFetch:
    """Picklable: returns the (model, gallery) bytes from the object store, in the worker."""

    refs: tuple[Any, ...]  # one ObjectRef, wrapped so Ray passes the reference, not the value

    def __call__(self) -> tuple[bytes, bytes | None]:
        import ray

        model, gallery = ray.get(self.refs[0])
        return model, gallery


class _QueueSink:
    """Progress into a Ray queue actor (one RPC per message; the reporter sends 4 a second)."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def put_nowait(self, item: Progress) -> None:
        self.queue.put_nowait(item)


def _ray_task(job: VideoJob, settings: JobSettings, model: ModelSource, progress: Any) -> VideoResult:
    return annotate_video(job, settings, model, progress=_QueueSink(progress))


class RayRunner:
    """Submit VideoJobs as Ray tasks, collect VideoResults; same interface as LocalRunner."""

    def __init__(self, address: str | None, settings: JobSettings, model: ModelSource, *,
                 cpus_per_task: int = 1, jobs: int | None = None) -> None:
        ray = self._ray = import_ray()
        self._owns_ray = False
        if not ray.is_initialized():  # an application that already called ray.init keeps its own
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
            if address == "local":
                options["num_cpus"] = jobs * cpus_per_task if jobs else None  # None: every core
            ray.init(address=address, **options)
            self._owns_ray = True
        from ray.util.queue import Queue

        self.settings = settings
        model_bytes = model.model_path.read_bytes()
        gallery_bytes = model.gallery_path.read_bytes() if model.gallery_path is not None else None
        reference = ray.put((model_bytes, gallery_bytes))  # once per job, whatever the video count
        self.model = ModelSource(model.key, model.model_path, model.gallery_path, fetch=RayFetch((reference,)))
        self._queue = Queue(actor_options={"num_cpus": 0})
        self._task = ray.remote(_ray_task).options(num_cpus=cpus_per_task, max_retries=0)  # we retry
        # Tasks in flight: --jobs, else as many as the cluster has CPUs for right now. More would
        # only wait in Ray's queue while the index calls them RUNNING.
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = jobs or max(1, cpus // cpus_per_task)
        self._running: dict[Any, VideoJob] = {}
        self._retried: list[str] = []

    def submit(self, job: VideoJob) -> None:
        self._running[self._task.remote(job, self.settings, self.model, self._queue)] = job

    def wait(self, timeout: float) -> list[VideoResult]:
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=1, timeout=timeout)
        if ready:  # and whatever else is ready already, without waiting again
            ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
        results = [self._result(ref, retry=True) for ref in ready]
        return [result for result in results if result is not None]

    def _result(self, ref: Any, *, retry: bool) -> VideoResult | None:
        """The task's result. A failed task's video goes to a new task while tries are left and
        `retry` is on (None: no result yet); else it is FAILED, or INTERRUPTED after Ctrl-C."""
        job = self._running.pop(ref)
        try:
            result: VideoResult = self._ray.get(ref)
            return result
        except self._ray.exceptions.TaskCancelledError:
            return VideoResult(job.key, Status.INTERRUPTED, error="interrupted")
        except self._ray.exceptions.RayError as error:
            if retry and job.attempt < MAX_ATTEMPTS:
                self.submit(replace(job, attempt=job.attempt + 1))
                self._retried.append(job.key)
                return None
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            status = Status.FAILED if retry else Status.INTERRUPTED
            return VideoResult(job.key, status, error=f"failed {job.attempt} time(s): {reason}")

    def retried(self) -> list[str]:
        """The videos given to a new task since the last call, because theirs failed."""
        retried, self._retried = self._retried, []
        return retried

    def progress(self) -> list[Progress]:
        try:
            waiting = self._queue.qsize()
            return list(self._queue.get_nowait_batch(waiting)) if waiting else []
        except Exception:  # the bars are best effort; a lost queue actor must not end the job
            return []

    def interrupt(self, timeout: float) -> list[VideoResult]:
        for ref in self._running:
            self._ray.cancel(ref)  # not force: KeyboardInterrupt in the task, outputs finalised
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=timeout)
        results = [self._result(ref, retry=False) for ref in ready]
        return [result for result in results if result is not None]

    def close(self) -> None:
        try:
            self._queue.shutdown(force=True)
        finally:
            if self._owns_ray:
                self._ray.shutdown()
