"""`animerec annotate DIR -o OUTDIR`: plan against the index, run on a pool or Ray, summarise.

    discover -> check OUTDIR -> open index -> plan (skip finished) -> load model once (checks it,
    announces the provider) -> run: a few videos in flight, each result recorded as it arrives
    -> summary and exit code

Everything that can refuse the job (bad folder, unwritable OUTDIR, foreign outputs, bad model
or gallery) does so before the first video starts. Only this process writes the index.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from animerec.config import Config, PipelineConfig
from animerec.library.index import LibraryIndex
from animerec.library.jobs import (
    INDEX_NAME,
    discover,
    plan,
    remove_stale_temporaries,
    usable_cores,
)
from animerec.library.lock import job_lock
from animerec.library.progress import ProgressBoard
from animerec.library.records import JobSettings, ModelSource, Progress, Status, VideoJob, VideoResult
from animerec.library.summary import JobSummary, exit_code, print_summary
from animerec.outputs import check_folder, remove_orphaned_temporaries
from animerec.recognition.detectors import describe as describe_detector
from animerec.recognition.detectors import make_detector

POLL_S = 0.2  # how often the parent looks at results and progress: bars stay live, Ctrl-C prompt
STOP_S = 15.0  # after Ctrl-C, how long workers get to finalise their partial outputs


@dataclass(frozen=True)
class LibraryOptions:
    """What the user asked for (the parsed command line, minus argparse)."""

    source: Path
    out: Path
    config: Config
    jobs: int | None = None  # None: one per core (local) or as many as the cluster has CPUs (Ray)
    ray: str | None = None  # None: this machine; "": Ray's default; "local"; or a cluster address
    overwrite: bool = False
    progress: bool = True
    json: bool = False  # the summary as JSON on standard output, besides the table on standard error


class Runner(Protocol):
    """A place to run videos: LocalRunner (process pool) or RayRunner."""

    capacity: int

    def submit(self, job: VideoJob) -> None: ...
    def wait(self, timeout: float) -> list[VideoResult]: ...
    def retried(self) -> list[str]: ...
    def progress(self) -> list[Progress]: ...
    def interrupt(self, timeout: float) -> list[VideoResult]: ...
    def close(self) -> None: ...


def run_library(options: LibraryOptions) -> int:
    """Annotate every video under `options.source`; returns the exit code of CONTRACTS.md."""
    jobs = discover(options.source, options.out)
    check_folder(options.out)  # exit 2 before any work, not after the first video
    if options.ray is not None:
        from animerec.library.ray_runner import import_ray

        import_ray()  # a missing extra is a usage error now, not after the model loaded
    options.out.mkdir(parents=True, exist_ok=True)
    with job_lock(options.out):
        return _run_locked(options, jobs)


def _run_locked(options: LibraryOptions, jobs: list[VideoJob]) -> int:
    index = LibraryIndex.open(options.out / INDEX_NAME)
    started = time.monotonic()
    try:
        the_plan = plan(jobs, index, options.overwrite)
        remove_stale_temporaries(the_plan.todo)
        remove_orphaned_temporaries(options.out, recursive=True)  # also of videos done since
        if not the_plan.todo:
            return _finish(JobSummary((), the_plan.done, 0.0, "nothing to do"), options, interrupted=False)
        model = _model_source(options)
        detector = describe_detector(make_detector(options.config, announce=True))  # a bad model stops it now
        runner, description = _runner(options, model, len(the_plan.todo))
        board = ProgressBoard(len(the_plan.todo), len(the_plan.done), enabled=options.progress)
        try:
            results, interrupted = dispatch(runner, the_plan.todo, index, board)
        finally:
            board.close()
            runner.close()
            remove_orphaned_temporaries(options.out, recursive=True)  # of workers that died in this run
    finally:
        index.close()
    summary = JobSummary(tuple(results), the_plan.done, time.monotonic() - started, description, detector)
    return _finish(summary, options, interrupted)


def _finish(summary: JobSummary, options: LibraryOptions, interrupted: bool) -> int:
    print_summary(summary)
    if options.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False), flush=True)
    if interrupted:
        print("animerec: interrupted; run the same command again to finish the rest", file=sys.stderr)
    return exit_code(summary, interrupted)


def dispatch(runner: Runner, todo: Sequence[VideoJob], index: LibraryIndex,
             board: ProgressBoard) -> tuple[list[VideoResult], bool]:
    """Keep `runner.capacity` videos in flight and record each result as it arrives.

    A video is marked RUNNING when handed out, so RUNNING in the index means "was in flight" and
    the next run redoes it; at most `capacity` are in flight, so Ctrl-C has no backlog to cancel.
    Returns the results and whether the job was interrupted (Ctrl-C or SIGTERM).
    """
    from animerec.interrupts import sigterm_as_interrupt

    waiting = deque(todo)
    in_flight: set[str] = set()
    results: list[VideoResult] = []
    index.mark([job.key for job in todo], Status.PENDING)
    try:
        with sigterm_as_interrupt():
            while waiting or in_flight:
                while waiting and len(in_flight) < runner.capacity:
                    job = waiting.popleft()
                    index.mark([job.key], Status.RUNNING, attempt=True)
                    runner.submit(job)
                    in_flight.add(job.key)
                for result in runner.wait(POLL_S):
                    _record(result, index, board, results, in_flight)
                if retried := runner.retried():  # their worker died: another worker's try counts too
                    index.mark(retried, Status.RUNNING, attempt=True)
                for message in runner.progress():
                    board.update(message)
    except KeyboardInterrupt:
        board.write("animerec: stopping: finishing the partial outputs of the videos in flight")
        for result in runner.interrupt(STOP_S):
            _record(result, index, board, results, in_flight)
        # Workers that did not answer in time: not finished, whatever they were doing.
        index.mark(sorted(in_flight), Status.INTERRUPTED)
        results += [VideoResult(key, Status.INTERRUPTED, error="interrupted") for key in sorted(in_flight)]
        return results, True
    return results, False


def _record(result: VideoResult, index: LibraryIndex, board: ProgressBoard, results: list[VideoResult],
            in_flight: set[str]) -> None:
    index.record(result)  # after the worker renamed its outputs: DONE is never ahead of the files
    in_flight.discard(result.key)
    results.append(result)
    board.finished(result)


def _model_source(options: LibraryOptions) -> ModelSource:
    """Load the model once here (its errors stop the job before any work; the provider is
    announced once), resolve the gallery the way every command does, and name the bytes."""
    from animerec.api import load_classifier
    from animerec.recognition.gallery import default_gallery_path, open_gallery
    from animerec.recognition.naming import make_decider

    settings = options.config.classifier
    classifier = load_classifier(options.config, announce=True)
    # An explicit gallery must exist and match the model; the default one applies when it matches.
    enrolled = open_gallery(settings.gallery_path(), classifier.info.model_id)
    make_decider(classifier.info, enrolled, settings.threshold(), settings.top_k)  # refusals (exit 2) come now
    gallery = None if enrolled is None else (settings.gallery_path() or default_gallery_path())
    digest = hashlib.sha256(classifier.path.read_bytes())
    if gallery is not None:
        digest.update(gallery.read_bytes())
    return ModelSource(digest.hexdigest()[:32], classifier.path.resolve(), gallery.resolve() if gallery else None)


def worker_config(config: Config, workers: int, cores: int) -> Config:
    """Each worker's pipeline gets cores // workers detector threads (at least one), unless the
    user chose a number. The LBP cascade is the bottleneck and scales with threads (27 fps on one,
    52 on two, ENGINEERING.md), so the detector threads of all workers together should equal the
    cores: more only time-slice the same cores, fewer leave some idle."""
    if config.pipeline.detector_threads != PipelineConfig().detector_threads:
        return config  # chosen with --detector-threads, --set or --config
    threads = max(1, cores // max(1, workers))
    return replace(config, pipeline=replace(config.pipeline, detector_threads=threads))


def _runner(options: LibraryOptions, model: ModelSource, todo: int) -> tuple[Runner, str]:
    if options.ray is not None:
        from animerec.library.ray_runner import RayRunner

        config = worker_config(options.config, 1, 1)  # one CPU per task: Ray packs tasks onto cores
        threads = config.pipeline.detector_threads
        ray_runner = RayRunner(options.ray or None, JobSettings(config), model, cpus_per_task=threads,
                               jobs=options.jobs)
        return ray_runner, f"ray, {ray_runner.capacity} tasks at a time"
    from animerec.library.local import LocalRunner

    workers = options.jobs or max(1, min(usable_cores(), todo))
    config = worker_config(options.config, workers, usable_cores())
    local = LocalRunner(workers, JobSettings(config), model, options.out)
    return local, f"{workers} process(es) x {config.pipeline.detector_threads} detector thread(s)"
