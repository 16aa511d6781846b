"""Baseline (a): the report's loop, measured in its own process so TensorFlow never inflates the
pipeline's memory.

The loop is the report's, step for step: read a frame with OpenCV, run the cascade on the full
frame, and for each face cut the report's crop and call Keras `model.predict(x[None], verbose=0)`
on it alone. The model is the report's `seed` CNN with untrained weights: weights do not change
its speed, and the names it gives are only there so that both sides "produce names for every
frame". Without TensorFlow this baseline is reported as skipped, never estimated.
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

import numpy as np

SEED_INPUT = 150  # the report's crop size
WARMUP_CALLS = 3  # Keras builds its predict function on the first calls


def tensorflow_missing() -> str | None:
    """Why the Keras baseline cannot run here, or None when it can."""
    for module in ("tensorflow", "keras"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (it comes with the train extra: pip install -e '.[train]')"
    return None


def build_report_model(classes: int) -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from animerec.train.archs import build_seed

    model = build_seed(classes, SEED_INPUT)
    for _ in range(WARMUP_CALLS):
        model.predict(np.zeros((1, SEED_INPUT, SEED_INPUT, 3), np.float32), verbose=0)
    return model


def report_loop(path: str, model: Any, labels: tuple[str, ...], max_frames: int = 0) -> dict[str, Any]:
    """The report's loop over the video at `path`: FPS, and the names it gave on every frame."""
    import cv2

    from animerec.recognition.crop import report_crop, to_model_input
    from animerec.recognition.detector import CascadeDetector, CascadeSettings

    detector = CascadeDetector(CascadeSettings())  # the report's settings, full resolution
    capture = cv2.VideoCapture(path)
    frames: list[list[dict[str, Any]]] = []
    faces = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    try:
        while not max_frames or len(frames) < max_frames:
            ok, read = capture.read()
            if not ok:
                break
            image = np.asarray(read, np.uint8)
            named = []
            for box in detector.detect(image):
                x = to_model_input([report_crop(image, box)], SEED_INPUT)[0]
                probs = model.predict(x[None], verbose=0)[0]
                named.append({"box": [int(v) for v in box], "name": labels[int(np.argmax(probs))]})
            faces += len(named)
            frames.append(named)
    finally:
        capture.release()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "frames": len(frames),
        "faces": faces,
        "wall_s": round(wall, 4),
        "fps": round(len(frames) / wall, 3) if wall > 0 else 0.0,
        "cpu_per_wall": round(cpu / wall, 3) if wall > 0 else 0.0,
        "per_frame": frames,
    }


def keras_per_face_ms(model: Any, faces: int) -> dict[str, Any]:
    """Keras predict on one face at a time, after the warm-up: milliseconds per face."""
    rng = np.random.default_rng(0)
    crops = rng.random((faces, 1, SEED_INPUT, SEED_INPUT, 3), dtype=np.float32)
    started = time.perf_counter()
    for crop in crops:
        model.predict(crop, verbose=0)
    elapsed = time.perf_counter() - started
    return {"faces": faces, "ms_per_face": round(1000.0 * elapsed / faces, 3), "batch": 1}


def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Worker role `keras`: the report's loop on every workload, and Keras per-face timing."""
    reason = tensorflow_missing()
    if reason is not None:
        return {"skipped": reason}
    import keras
    import tensorflow as tf

    labels = tuple(plan["labels"])
    model = build_report_model(len(labels))
    result: dict[str, Any] = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "model": "seed (build_seed, untrained weights: same speed)",
        "per_face": keras_per_face_ms(model, int(plan["keras_faces"])),
        "workloads": {},
    }
    for workload in plan["workloads"]:
        result["workloads"][workload["name"]] = report_loop(workload["path"], model, labels, workload["frames"])
    return result
