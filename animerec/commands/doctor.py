"""`animerec doctor`: what this machine offers Animerec, in one screen."""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys

from animerec import __version__
from animerec.commands import examples
from animerec.errors import EXIT_FAILURE, EXIT_OK, AnimerecError
from animerec.paths import CASCADE_PATH, CASCADE_SHA256, DEFAULT_MODEL_PATH
from animerec.recognition.gallery import default_gallery_path, load_gallery
from animerec.recognition.model_info import OpenSetCalibration


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "doctor", help="check versions, execution provider, model, display and camera",
        description="Versions, the execution provider that really loads, model, cascade, display and camera.",
        epilog=examples("animerec doctor",
                        "animerec doctor --camera 1"),
    )
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
                f"{DEFAULT_MODEL_PATH} id {classifier.model_id}, {classifier.info.arch}, {classifier.input_size}px"
                + (", mirrored looks" if classifier.info.mirrored else ""),
            )
        )
        rows.append(("labels", ", ".join(classifier.labels)))
        rows.append(("unknown faces", _calibration(classifier.info.open_set)))
        rows.append(("gallery", _gallery(classifier.info.model_id)))
    except AnimerecError as error:
        healthy = False
        rows.append(("default model", f"PROBLEM: {error}"))
    digest = hashlib.sha256(CASCADE_PATH.read_bytes()).hexdigest() if CASCADE_PATH.is_file() else "missing"
    cascade_ok = digest == CASCADE_SHA256
    healthy &= cascade_ok
    rows.append(
        ("cascade", f"{CASCADE_PATH} sha256 {digest}" + ("" if cascade_ok else " (EXPECTED " + CASCADE_SHA256 + ")"))
    )
    try:
        rows.append(("detector", _detector()))
    except AnimerecError as error:
        healthy = False
        rows.append(("detector", f"PROBLEM: {error}"))
    rows.append(("display", _display()))
    rows.append(("camera", _camera(args.camera)))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return EXIT_OK if healthy else EXIT_FAILURE


def _detector() -> str:
    """The detector commands use by default, and the learned one's model id and provider."""
    from animerec.config import Config
    from animerec.recognition.learned_detector import LearnedDetector

    detector = Config().detector
    learned = LearnedDetector(warmup=False)
    return (f"{detector.kind} by default (--detector cascade|learned|both); learned: "
            f"{learned.path} id {learned.model_id} on {learned.provider}, its boxes confirmed by a second "
            f"look at {detector.confirm_side} px from {detector.confirm_threshold:g}")


def _calibration(open_set: OpenSetCalibration | None) -> str:
    if open_set is None:
        return "not calibrated: every face gets a trained name (run `animerec calibrate`)"
    stats = open_set.stats
    measured = ""
    if "known_accept" in stats:
        measured = (f", measured {stats.get('date', '')}: {100 * stats['known_accept']:.1f}% of known faces "
                    f"accepted, {100 * stats['unknown_named']:.1f}% of unknown ones named")
    return f"open set, threshold {open_set.threshold:.3f} (cosine){measured}"


def _gallery(model_id: str) -> str:
    path = default_gallery_path()
    if not path.is_file():
        return f"{path}: none yet (`animerec enroll NAME IMAGES...` makes it)"
    try:
        gallery = load_gallery(path)
        gallery.check_model(model_id, path)
    except AnimerecError as error:
        return f"{path}: not used: {error}"
    return f"{path}: {len(gallery)} enrolled character(s): {', '.join(gallery.names) or '-'}"


def _display() -> str:
    from animerec.realtime.window import display_problem

    why = display_problem()
    if why:
        return f"none ({why}): --show is unavailable; use --record, --jsonl or serve"
    return "available"


def _camera(index: int) -> str:
    """Probed the way `run --source N` opens a camera, so both say the same."""
    from animerec.realtime.live_source import CameraGrabber
    from animerec.realtime.threaded_source import GrabError

    camera = CameraGrabber(index)
    try:
        width, height, _ = camera.open()
        return f"camera {index} delivers {width}x{height} frames"
    except GrabError as error:
        return f"camera {index} not available: {error}"
    finally:
        camera.close()
