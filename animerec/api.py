"""The Python API: name the characters in an image, or in every frame of a video or camera.

    from animerec.api import recognise, annotate_frames

    faces = recognise("screenshot.png")          # a Faces record
    for record in faces.to_records():
        print(record["name"], record["confidence"], record["box"])

    for item in annotate_frames("episode.mkv"):  # AnnotatedFrame, in order
        print(item.frame.index, item.faces.names)  # item.annotated has the overlay drawn

Both take an optional `Config` (see animerec.config); the model loads once per `Recognizer` or
per `annotate_frames` call. Benchmarks and commands build pipelines with `build_pipeline`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.config import Config
from animerec.realtime.overlay import FaceAnnotator, StatusAnnotator
from animerec.realtime.pipeline import Pipeline
from animerec.realtime.protocols import Source
from animerec.recognition.classifier import Classifier, OnnxClassifier
from animerec.recognition.classifier import announce as announce_provider
from animerec.recognition.detector import Detector
from animerec.recognition.detectors import make_detector
from animerec.recognition.images import load_image
from animerec.recognition.naming import Decider, decider_for
from animerec.recognition.recognizer import Recognizer
from animerec.records import AnnotatedFrame, Faces

__all__ = [
    "Config",
    "Recognizer",
    "annotate_frames",
    "build_pipeline",
    "face_annotator",
    "load_classifier",
    "load_decider",
    "load_recognizer",
    "recognise",
]


def load_classifier(config: Config | None = None, *, announce: bool = False) -> OnnxClassifier:
    """The ONNX classifier the configuration names (the bundled model by default); with
    `announce`, one line on standard error says where it runs (the execution provider)."""
    config = config or Config()
    classifier = OnnxClassifier(config.model_path(), device=config.classifier.device)
    if announce:
        announce_provider(classifier)
    return classifier


def load_decider(classifier: OnnxClassifier, config: Config | None = None) -> Decider:
    """The naming decision: open-set with the gallery (`classifier.gallery`, else the default one
    when it exists) for a calibrated model, the model's softmax otherwise; the threshold from
    `classifier.unknown_threshold` when set, else the model's calibrated one."""
    settings = (config or Config()).classifier
    return decider_for(classifier.info, settings.gallery_path(), settings.threshold(), settings.top_k)


def load_recognizer(config: Config | None = None, *, full_resolution: bool = True) -> Recognizer:
    """A `Recognizer` for still images: `.recognise(image) -> Faces`.

    Still images are detected at full resolution by default, as `animerec predict` does; pass
    `full_resolution=False` to use the configuration's working height instead.
    """
    config = config or Config()
    if full_resolution:
        config = replace(config, pipeline=replace(config.pipeline, working_height=0))
    return Recognizer(make_detector(config), load_classifier(config), config.classifier.top_k)


@lru_cache(maxsize=1)
def _default_recognizer() -> Recognizer:
    return load_recognizer()


def recognise(image: NDArray[np.uint8] | str | Path, recognizer: Recognizer | None = None) -> Faces:
    """The named faces of one image: a BGR uint8 array or a path to an image file.

    The default recognizer (bundled model, default settings) is built on the first call and
    kept; pass your own to use another model or settings. Raises
    `animerec.recognition.images.UnreadableImage` (an `InputError` whose message names the file;
    `.reason` says why) for a file that is not a usable image.
    """
    if isinstance(image, (str, Path)):
        image = load_image(image)
    return (recognizer or _default_recognizer()).recognise(image)


def face_annotator(config: Config | None = None) -> FaceAnnotator:
    """The face boxes and labels as the configuration's overlay section styles them."""
    overlay = (config or Config()).overlay
    return FaceAnnotator(show_top3=overlay.top3, show_track=overlay.show_track, font_size=overlay.font_size,
                         thickness=overlay.thickness, font=overlay.font)


def build_pipeline(source: Source, config: Config | None = None, *,
                   classifier: Classifier | None = None, decider: Decider | None = None,
                   annotate: bool = True, status: bool = False, detector: Detector | None = None) -> Pipeline:
    """A `Pipeline` for `source` with each stage given its own part of `config`.

    `decider` turns a track's voted scores into a name (see animerec.recognition.naming; e.g.
    `decider_for(classifier.info, gallery_path)` for enrolled characters); by default the model's
    own decision. `annotate=False` skips drawing (`AnnotatedFrame.annotated` is then the frame
    itself); `status=True` adds the status line (FPS, latency, provider, drops) when the
    configuration's `overlay.status_line` allows it. `detector`: by default the one
    `config.detector.kind` names (`make_detector`), built here.
    """
    config = config or Config()
    overlay = config.overlay
    annotator = status_annotator = None
    if annotate:
        annotator = face_annotator(config)
        if status and overlay.status_line:
            status_annotator = StatusAnnotator(font_size=max(6, overlay.font_size - 2), font=overlay.font)
    return Pipeline(
        source,
        detector or make_detector(config),
        classifier or load_classifier(config),
        settings=config.pipeline,
        tracker=config.tracker,
        annotator=annotator,
        status=status_annotator,
        decider=decider,
        top_k=config.classifier.top_k,
    )


def annotate_frames(source: Source | str | Path | int, config: Config | None = None, *,
                    classifier: Classifier | None = None, decider: Decider | None = None,
                    paced: bool = False, loop: bool = False) -> Iterator[AnnotatedFrame]:
    """Every frame of a video, camera, screen or URL, with its named faces, in order.

    `source` is an open `Source` or anything `animerec.realtime.capture.open_source` accepts
    (a file path, a camera number, "screen", a URL). Files play as fast as they decode unless
    `paced`; live sources drop stale frames (counted in the pipeline's stats). A source opened
    here is closed when the iteration ends or is abandoned.
    """
    opened = None
    if not hasattr(source, "frames"):
        from animerec.realtime.capture import open_source

        opened = source = open_source(str(source), paced=paced, loop=loop)
    assert not isinstance(source, (str, Path, int))
    try:
        with build_pipeline(source, config, classifier=classifier, decider=decider) as pipeline:
            yield from pipeline
    finally:
        if opened is not None:
            opened.close()
