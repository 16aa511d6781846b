"""Both ONNX models (the classifier and the learned detector) on CUDA against the CPU: per-frame
and per-face milliseconds, and the largest difference between the two providers' outputs.

Run it through scripts/gpu_check.sh. On a machine where ONNX Runtime's CUDA provider does not
load it says so and exits with status 1, having measured nothing. Inputs are the bundled samples
(demo.mp4 frames, the eight face crops), so it needs nothing from ../shared. The Markdown it
prints goes into benchmarks/RESULTS.md: `--results benchmarks/RESULTS.md` writes it there.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.benchmarks.report import GPU_BEGIN, GPU_END, with_gpu_section
from animerec.errors import ModelError
from animerec.paths import DEFAULT_MODEL_PATH, FACEBOXES_PATH, SAMPLE_FACES_DIR, SAMPLE_VIDEO
from animerec.recognition.classifier import CPU, CUDA, OnnxClassifier
from animerec.recognition.crop import to_model_input
from animerec.recognition.learned_detector import LearnedDetector, LearnedSettings

HEIGHTS = (360, 540, 720, 1080)
FRAMES = 24
REPEATS = 3  # each input is timed this many times; the median is reported


def median_ms(call: Callable[[], object], inputs: int) -> float:
    call()  # the first call at a shape is slow on CUDA (cuDNN's algorithm choice)
    times = []
    for _ in range(REPEATS * inputs):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def video_frames(path: Path, count: int) -> list[NDArray[np.uint8]]:
    capture = cv2.VideoCapture(str(path))
    frames: list[NDArray[np.uint8]] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(np.asarray(frame, np.uint8))
    capture.release()
    return frames


def raw_difference(model: Path, feed: dict[str, NDArray[np.generic]]) -> float:
    """Max |CUDA - CPU| over every output of `model` for one input."""
    import onnxruntime as ort

    outputs = [ort.InferenceSession(str(model), providers=[p]).run(None, feed) for p in (CUDA, CPU)]
    return max(float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
               for a, b in zip(*outputs, strict=True))


def detector_rows(frames: list[NDArray[np.uint8]]) -> list[str]:
    rows = []
    for height in HEIGHTS:
        times = {}
        for device in ("cpu", "cuda"):
            detector = LearnedDetector(LearnedSettings(input_height=height, threads=2, device=device))
            frame_cycle = iter(frames * (REPEATS + 1))
            times[device] = median_ms(partial(lambda d, f: d.detect_scored(next(f)), detector, frame_cycle),
                                      len(frames))
        resized = cv2.resize(frames[0], (height * 16 // 9, height))
        parity = raw_difference(FACEBOXES_PATH, {"image": resized[np.newaxis]})
        rows.append(f"| detector, {height * 16 // 9}x{height} frame | {times['cpu']:.2f} | {times['cuda']:.2f} | "
                    f"{times['cpu'] / times['cuda']:.1f}x | {parity:.1e} |")
    return rows


def classifier_rows(crops: list[NDArray[np.uint8]]) -> list[str]:
    rows = []
    classifiers = {device: OnnxClassifier(DEFAULT_MODEL_PATH, device=device) for device in ("cpu", "cuda")}
    for batch in (1, 16):
        faces = (crops * batch)[:batch]
        times = {device: median_ms(partial(c.classify, faces), 8) / batch for device, c in classifiers.items()}
        size = classifiers["cpu"].input_size
        parity = raw_difference(DEFAULT_MODEL_PATH, {"image": to_model_input(faces, size)})
        rows.append(f"| classifier, per face in batches of {batch} | {times['cpu']:.2f} | {times['cuda']:.2f} | "
                    f"{times['cpu'] / times['cuda']:.1f}x | {parity:.1e} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="Both ONNX models on CUDA against the CPU.")
    parser.add_argument("--results", type=Path, metavar="MD",
                        help="also write the table into this RESULTS.md (its gpu_check section)")
    args = parser.parse_args()
    try:
        detector = LearnedDetector(LearnedSettings(device="cuda"), warmup=False)  # raises unless CUDA loads
    except ModelError as error:
        print(f"gpu_check: no usable CUDA GPU here ({error}); nothing was measured.", file=sys.stderr)
        return 1
    frames = [np.asarray(cv2.resize(f, (1280, 720)), np.uint8) for f in video_frames(SAMPLE_VIDEO, FRAMES)]
    crops = [np.asarray(cv2.imread(str(p)), np.uint8) for p in sorted(SAMPLE_FACES_DIR.glob("*.jpg"))]
    import onnxruntime as ort

    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip().replace(", ", ", driver ")
    lines = [f"## CUDA against the CPU (`scripts/gpu_check.sh`, {datetime.date.today()})", "",
             f"{gpu}; ONNX Runtime {ort.__version__}, both models on {CUDA} (confirmed per session): "
             f"classifier {DEFAULT_MODEL_PATH.name} {OnnxClassifier(DEFAULT_MODEL_PATH, warmup=False).model_id}, "
             f"detector {FACEBOXES_PATH.name} {detector.model_id}; "
             f"{len(frames)} demo.mp4 frames (scaled to each row's size), {len(crops)} sample crops. "
             "The detector's CPU runs use 2 ONNX Runtime threads (the pipeline's budget), the classifier's "
             "its default; milliseconds are medians; parity is the largest |CUDA - CPU| over the raw outputs.",
             "", "| model and input | CPU ms | CUDA ms | speed-up | parity |", "|---|---|---|---|---|"]
    for line in lines:
        print(line)
    for row in detector_rows(frames) + classifier_rows(crops):
        print(row, flush=True)
        lines.append(row)
    if args.results:
        section = "\n".join([GPU_BEGIN, *lines, "", GPU_END]) + "\n"
        args.results.write_text(with_gpu_section(args.results.read_text(encoding="utf-8"), section), encoding="utf-8")
        print(f"gpu_check: written into {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
