"""The per-video task: what a worker process (pool or Ray) runs for one video.

It hashes the input, annotates it through the usual pipeline into temporary outputs that are
renamed when complete, derives the appearance intervals on the way, and returns a `VideoResult`.
It never writes the index: the parent does, after the rename, so DONE is never ahead of the files.
Expected failures (an unreadable video) come back as a FAILED result; anything raised is a
worker fault, which the runner retries.

The classifier is loaded once per worker process and kept for the next video (`_LOADED`), so a
worker pays the model load (and, on a cluster, the model transfer) once, not once per video.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Protocol

from animerec.config import Config
from animerec.errors import AnimerecError, InputError
from animerec.library.annotation import StopFlag, VideoAnnotation
from animerec.library.jobs import file_checksum
from animerec.library.records import JobSettings, ModelSource, Progress, Status, VideoJob, VideoResult
from animerec.recognition.classifier import Classifier
from animerec.recognition.naming import Decider

PROGRESS_EVERY_S = 0.25  # bars move four times a second; a message per frame would flood the queue
CRASH_FLAGS_ENV = "ANIMEREC_LIBRARY_CRASH_FLAGS"  # fault injection for tests, see maybe_crash

_LOADED: dict[str, tuple[Classifier, Decider]] = {}


class ProgressSink(Protocol):
    def put_nowait(self, item: Progress) -> None: ...


class _Reporter:
    """Sends a `Progress` at most every PROGRESS_EVERY_S; a broken queue never fails a video."""

    def __init__(self, sink: ProgressSink | None, key: str) -> None:
        self.sink, self.key, self.total, self._sent_at = sink, key, 0, 0.0

    def send(self, frames: int, finished: bool = False, force: bool = False) -> None:
        now = time.monotonic()
        if self.sink is None or (not (finished or force) and now - self._sent_at < PROGRESS_EVERY_S):
            return
        self._sent_at = now
        try:
            self.sink.put_nowait(Progress(self.key, frames, self.total, finished))
        except Exception:  # a full or closed queue: only the bar suffers
            self.sink = None


def annotate_video(job: VideoJob, settings: JobSettings, model: ModelSource,
                   progress: ProgressSink | None = None, stop: StopFlag | None = None) -> VideoResult:
    """Annotate `job.source` into `job.video_out` and `job.jsonl_out`; see the module docstring.

    `stop` (set by the parent on Ctrl-C) ends the video early: its partial outputs are finalised
    (CONTRACTS.md) and the result is INTERRUPTED, so the index does not take them as finished.
    """
    started = time.monotonic()
    maybe_crash(job)
    if stop is not None and stop.is_set():
        return VideoResult(job.key, Status.INTERRUPTED, error="interrupted")
    reporter = _Reporter(progress, job.key)
    try:
        stat = job.source.stat()
        checksum = file_checksum(job.source)
        classifier, decider = _load(model, settings.config)
        job.video_out.parent.mkdir(parents=True, exist_ok=True)
        annotation = _annotate(job, settings, classifier, decider, reporter, stop)
    except AnimerecError as error:  # an unreadable video, a full disk: retrying would not help
        return VideoResult(job.key, Status.FAILED, error=str(error), elapsed_s=_since(started))
    except OSError as error:  # unreadable file, or an output folder that went away mid-job
        return VideoResult(job.key, Status.FAILED, error=f"{error.strerror or error}", elapsed_s=_since(started))
    except KeyboardInterrupt:
        return VideoResult(job.key, Status.INTERRUPTED, error="interrupted", elapsed_s=_since(started))
    finally:
        reporter.send(0, finished=True)
    if annotation.interrupted:
        return VideoResult(job.key, Status.INTERRUPTED, error="interrupted", elapsed_s=_since(started))
    return VideoResult(
        job.key, Status.DONE, checksum=checksum, size=stat.st_size, mtime_ns=stat.st_mtime_ns,
        frames=annotation.frames, duration=annotation.duration, faces=annotation.faces,
        appearances=annotation.appearances, elapsed_s=_since(started),
    )


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


def _annotate(job: VideoJob, settings: JobSettings, classifier: Classifier, decider: Decider,
              reporter: _Reporter, stop: StopFlag | None) -> VideoAnnotation:
    from animerec.library.annotation import annotate_source
    from animerec.realtime.capture import open_source

    source = open_source(str(job.source))
    reporter.total = source.info.frame_count
    reporter.send(0, force=True)  # the bar appears when the video starts, with its length
    try:
        annotation = annotate_source(source, job.video_out, job.jsonl_out, settings.config, classifier, decider,
                                     audio_from=source.info.path or job.source, gap_s=settings.gap_s,
                                     on_frame=reporter.send, stop=stop)
    finally:
        source.close()
    if not (annotation.frames or annotation.interrupted):
        raise InputError(f"{job.source}: no frame could be decoded")
    return annotation


def _load(model: ModelSource, config: Config) -> tuple[Classifier, Decider]:
    """The classifier and naming decision for `model`, loaded on this worker's first video only."""
    cached = _LOADED.get(model.key)
    if cached is not None:
        return cached
    import cv2

    from animerec.recognition.classifier import OnnxClassifier
    from animerec.recognition.gallery import load_gallery
    from animerec.recognition.naming import make_decider

    # Processes are the parallelism here: OpenCV's own pool in every process would oversubscribe.
    cv2.setNumThreads(1)
    model_path, gallery_path = model.model_path, model.gallery_path
    if model.fetch is not None:
        model_path, gallery_path = _materialise(model)
    classifier = OnnxClassifier(model_path, device=config.classifier.device)
    gallery = load_gallery(gallery_path) if gallery_path is not None else None
    naming_log = logging.getLogger("animerec.recognition.naming")
    level = naming_log.level
    naming_log.setLevel(logging.ERROR)  # its warnings were shown once by the parent, not once per worker
    try:
        decider = make_decider(classifier.info, gallery, config.classifier.threshold(), config.classifier.top_k)
    finally:
        naming_log.setLevel(level)
    _LOADED.clear()  # one model per job: do not keep an earlier job's in memory
    _LOADED[model.key] = (classifier, decider)
    return classifier, decider


def _materialise(model: ModelSource) -> tuple[Path, Path | None]:
    """Write fetched model (and gallery) bytes to this machine's temporary folder, named by
    their hash, so workers on one node share one copy and a half-written file is never loaded."""
    assert model.fetch is not None
    folder = Path(tempfile.gettempdir()) / f"animerec-{os.getuid() if hasattr(os, 'getuid') else 0}"
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / f"{model.key}.onnx"
    gallery_path = folder / f"{model.key}.gallery.json"
    model_bytes, gallery_bytes = model.fetch()
    _write_once(model_path, model_bytes)
    if gallery_bytes is None:
        return model_path, None
    _write_once(gallery_path, gallery_bytes)
    return model_path, gallery_path


def _write_once(path: Path, data: bytes) -> None:
    if path.is_file() and path.stat().st_size == len(data):
        return
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def maybe_crash(job: VideoJob) -> None:
    """Fault injection for tests: when $ANIMEREC_LIBRARY_CRASH_FLAGS names a folder holding
    `<video file name>.crash`, the first worker to see it deletes it and dies at once, as a
    killed worker would (no exception, no result). Does nothing otherwise."""
    folder = os.environ.get(CRASH_FLAGS_ENV)
    if not folder:
        return
    try:
        (Path(folder) / f"{job.source.name}.crash").unlink()
    except FileNotFoundError:
        return
    os._exit(70)
