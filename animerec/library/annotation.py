"""Annotate one video into its output files, counting frames and faces and who appeared when.

The single-file `annotate` command and a library job's workers both run this, so a video comes
out the same either way, and both can say what was seen (summary.py). Ctrl-C, SIGTERM or the
`stop` flag end the video early: the outputs keep the frames written so far (AnnotationOutputs)
and the result says it was interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from animerec.config import Config
from animerec.interrupts import interrupts_deferred
from animerec.library.appearances import AppearanceBuilder
from animerec.library.records import Appearance
from animerec.outputs import AnnotationOutputs
from animerec.realtime.protocols import Source
from animerec.recognition.classifier import Classifier
from animerec.recognition.naming import Decider


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class VideoAnnotation:
    """What annotating one video gave."""

    frames: int  # frames written: the video's decodable frames, the JSON Lines' lines
    faces: int
    duration: float  # seconds: the end of the last frame written
    appearances: tuple[Appearance, ...]
    interrupted: bool  # stopped early: the outputs, if any frame was written, are partial


def annotate_source(source: Source, video: Path | None, jsonl: Path | None, config: Config,
                    classifier: Classifier, decider: Decider | None = None, *, audio_from: Path | None = None,
                    gap_s: float = 1.0, on_frame: Callable[[int], object] | None = None,
                    stop: StopFlag | None = None) -> VideoAnnotation:
    """Every frame of `source` through the pipeline into `video` and/or `jsonl` (renamed into
    place when done or interrupted, nothing at their names when no frame was written).
    `on_frame(frames)` is called after each frame; `stop` ends the run early, as Ctrl-C does."""
    from animerec.api import build_pipeline

    builder = AppearanceBuilder(source.info.fps, gap_s)
    frames = faces = 0
    end = 0.0
    interrupted = False
    try:
        with AnnotationOutputs(source.info, video, jsonl, audio_from=audio_from) as outputs, \
                build_pipeline(source, config, classifier=classifier, decider=decider) as pipeline:
            for item in pipeline:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt  # the same clean path as Ctrl-C in one process
                with interrupts_deferred():  # the counts stay those of the frames written
                    outputs.write(item)
                    builder.add(item.frame.time, item.faces.names)
                    frames, faces = frames + 1, faces + len(item.faces)
                    end = item.frame.time + builder.frame_s
                if on_frame is not None:
                    on_frame(frames)
    except KeyboardInterrupt:
        interrupted = True
    return VideoAnnotation(frames, faces, round(end, 6), builder.finish(), interrupted)
