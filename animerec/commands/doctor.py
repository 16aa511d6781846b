"""`animerec doctor`: what this machine offers Animerec, in one screen."""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys

from animerec import __version__
from animerec.errors import EXIT_FAILURE, EXIT_OK, AnimerecError
from animerec.paths import CASCADE_PATH, CASCADE_SHA256, DEFAULT_MODEL_PATH


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check versions, execution provider, model, display and camera")
    parser.add_argument("--camera", type=int, default=0, help="camera index to probe (default 0)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import av
    import cv2
    import onnxruntime as ort

    from animerec.recognition.classifier import OnnxClassifier

    rows = [
        ("animerec", __version__),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", platform.platform()),
        (
            "OpenCV",
            f"{cv2.__version__} (CascadeClassifier: {'yes' if hasattr(cv2, 'CascadeClassifier') else 'MISSING'})",
        ),
        ("ONNX Runtime", f"{ort.__version__}, providers listed: {', '.join(ort.get_available_providers())}"),
        ("PyAV", f"{av.__version__} (FFmpeg {av.ffmpeg_version_info})"),
    ]
    healthy = True
    try:
        classifier = OnnxClassifier(DEFAULT_MODEL_PATH, warmup=False)
        rows.append(("provider in use", classifier.provider))
        rows.append(
            (
                "default model",
                f"{DEFAULT_MODEL_PATH} id {classifier.model_id}, {classifier.info.arch}, {classifier.input_size}px",
            )
        )
        rows.append(("labels", ", ".join(classifier.labels)))
    except AnimerecError as error:
        healthy = False
        rows.append(("default model", f"PROBLEM: {error}"))
    digest = hashlib.sha256(CASCADE_PATH.read_bytes()).hexdigest() if CASCADE_PATH.is_file() else "missing"
    cascade_ok = digest == CASCADE_SHA256
    healthy &= cascade_ok
    rows.append(
        ("cascade", f"{CASCADE_PATH} sha256 {digest}" + ("" if cascade_ok else " (EXPECTED " + CASCADE_SHA256 + ")"))
    )
    rows.append(("display", _display()))
    rows.append(("camera", _camera(args.camera)))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return EXIT_OK if healthy else EXIT_FAILURE


def _display() -> str:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "none (no DISPLAY): --show is unavailable; use --record, --jsonl or serve"
    return "available"


def _camera(index: int) -> str:
    import cv2

    capture = cv2.VideoCapture(index)
    try:
        if capture.isOpened() and capture.read()[0]:
            return f"camera {index} delivers frames"
        return f"camera {index} not available"
    finally:
        capture.release()
