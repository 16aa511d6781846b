"""Each stage's cost measured on its own, on frames already in memory: decode, detect, crop,
classify (per face and per batch), track, overlay, encode, in milliseconds.

These are the stages the pipeline chains; measured one at a time they show where a frame's time
goes without the threads' overlap. The pipeline's own per-stage busy times (from its Stats) are
reported beside them for the runs themselves.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from animerec.config import Config
from animerec.realtime.overlay import FaceAnnotator
from animerec.realtime.protocols import SourceInfo
from animerec.realtime.tracker import Tracker
from animerec.realtime.video_writer import VideoWriter
from animerec.recognition.classifier import OnnxClassifier
from animerec.recognition.crop import report_crop
from animerec.recognition.detectors import make_detector
from animerec.recognition.recognizer import name_faces
from animerec.records import AnnotatedFrame, Faces, Frame

Image = NDArray[np.uint8]


def _mean_ms(calls: Sequence[Callable[[], object]]) -> float:
    """Mean milliseconds per call, after one untimed call: first calls fill caches (glyphs,
    allocators) that a running pipeline has long filled."""
    if calls:
        calls[0]()
    started = time.perf_counter()
    for call in calls:
        call()
    return round(1000.0 * (time.perf_counter() - started) / max(1, len(calls)), 3)


def isolated_stage_ms(images: list[Image], config: Config, model: str, decode_fps: float) -> dict[str, Any]:
    """Per-frame costs (crop per face, classify per face and per batch) on `images`."""
    detector = make_detector(config)  # detector.kind: the cascade, the learned one, or both
    detect_ms = _mean_ms([partial(detector.detect, image) for image in images])
    boxes = [detector.detect(image) for image in images]

    pairs = [(image, box) for image, frame_boxes in zip(images, boxes, strict=True) for box in frame_boxes]
    crops = [report_crop(image, box) for image, box in pairs]
    crop_calls = [partial(report_crop, image, box) for image, box in pairs]
    crop_ms = _mean_ms(crop_calls) if crop_calls else None

    classifier = OnnxClassifier(model, device=config.classifier.device)
    batch_size = config.pipeline.max_batch
    batch = [crops[i % len(crops)] for i in range(batch_size)] if crops else []
    batch_ms = _mean_ms([partial(classifier.classify, batch)] * 8) if batch else None

    tracker = Tracker(config.tracker)
    track_ms = _mean_ms([partial(tracker.update, frame_boxes, index) for index, frame_boxes in enumerate(boxes)])

    faces = [_named(classifier, image, frame_boxes) for image, frame_boxes in zip(images, boxes, strict=True)]
    overlay = config.overlay
    annotator = FaceAnnotator(show_top3=overlay.top3, show_track=overlay.show_track,
                              font_size=overlay.font_size, thickness=overlay.thickness, font=overlay.font)
    overlay_ms = _mean_ms([partial(annotator.annotate, image, f) for image, f in zip(images, faces, strict=True)])
    return {
        "decode": round(1000.0 / decode_fps, 3) if decode_fps else None,
        "detect": detect_ms,
        "crop_per_face": crop_ms,
        "classify_per_face": round(batch_ms / batch_size, 3) if batch_ms is not None else None,
        "classify_per_batch": batch_ms,
        "classify_batch_size": batch_size,
        "track": track_ms,
        "overlay": overlay_ms,
        "encode": _encode_ms(images, faces),
        "faces_per_frame": round(len(crops) / max(1, len(images)), 2),
        "frames": len(images),
        "working_height": config.pipeline.working_height,
    }


def _named(classifier: OnnxClassifier, image: Image, boxes: NDArray[np.int32]) -> Faces:
    if not len(boxes):
        return Faces.empty()
    scores = classifier.classify([report_crop(image, box) for box in boxes])
    return name_faces(np.asarray(boxes, np.int32), scores, classifier.labels)


def _encode_ms(images: list[Image], faces: list[Faces]) -> float | None:
    """H.264 encoding through the project's writer, into a throw-away file."""
    if not images:
        return None
    height, width = images[0].shape[:2]
    info = SourceInfo("bench", live=False, width=width, height=height, fps=30.0)
    with tempfile.TemporaryDirectory(prefix="animerec-bench-") as folder:
        writer = VideoWriter(Path(folder) / "encode.mp4", info)
        items = [
            AnnotatedFrame(Frame(image, i, 0.0, i / 30.0, "bench"), named, image)
            for i, (image, named) in enumerate(zip(images, faces, strict=True))
        ]
        try:
            started = time.perf_counter()
            for item in items:
                writer.write(item)
            writer.close()  # flushing the encoder is part of encoding
            elapsed = time.perf_counter() - started
        finally:
            writer.close()
    return round(1000.0 * elapsed / len(images), 3)
