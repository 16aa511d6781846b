"""Baselines (b) and (c) that need no pipeline: what decoding and detection allow on their own,
the full-resolution cascade every recall is compared with, and the classifier's knobs.

Worker role `limits`. Each measurement changes one knob and keeps every other at the run's
configuration. Frames for the detection measurements are decoded first and held in memory, so a
detection timing never includes decoding.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.benchmarks.stage_costs import isolated_stage_ms
from animerec.config import Config, from_dict
from animerec.errors import ModelError
from animerec.realtime.capture import open_source
from animerec.recognition.classifier import BATCH_SIZES, OnnxClassifier
from animerec.recognition.detector import CascadeDetector, CascadeSettings

Image = NDArray[np.uint8]


def decode_frames(path: str, limit: int) -> list[Image]:
    """The first `limit` frames of a clip, decoded through the pipeline's own source."""
    source = open_source(path)
    stop = threading.Event()
    images = []
    try:
        for frame in source.frames(stop):
            images.append(frame.image)
            if len(images) >= limit:
                break
    finally:
        stop.set()
        source.close()
    return images


def decode_only(path: str) -> dict[str, Any]:
    """Decode-only FPS: the source alone, every frame, nothing done with them."""
    source = open_source(path)
    stop = threading.Event()
    frames = 0
    started = time.perf_counter()
    try:
        for _ in source.frames(stop):
            frames += 1
    finally:
        stop.set()
        source.close()
    wall = time.perf_counter() - started
    return {"frames": frames, "fps": round(frames / wall, 2) if wall > 0 else 0.0}


def detect_throughput(images: list[Image], settings: CascadeSettings, threads: int) -> float:
    """Frames per second detection alone sustains with `threads` detector threads (as the
    pipeline runs them: OpenCV's own pool set to one thread when we bring our own)."""
    detector = CascadeDetector(settings)
    previous = cv2.getNumThreads()
    if threads > 1:
        cv2.setNumThreads(1)
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(threads, thread_name_prefix="bench-detect") as pool:
            list(pool.map(detector.detect, images))
        wall = time.perf_counter() - started
    finally:
        cv2.setNumThreads(previous)
    return round(len(images) / wall, 2) if wall > 0 else 0.0


def full_resolution_reference(path: str, frames: int) -> dict[str, Any]:
    """The report's detector (full resolution, report settings) on every frame: the boxes every
    recall is measured against, and its own detection-only FPS (sequential, as in the report)."""
    detector = CascadeDetector(CascadeSettings())
    source = open_source(path)
    stop = threading.Event()
    per_frame: list[list[dict[str, Any]]] = []
    busy = 0.0
    try:
        for frame in source.frames(stop):
            started = time.perf_counter()
            boxes = detector.detect(frame.image)
            busy += time.perf_counter() - started
            per_frame.append([{"box": [int(v) for v in box]} for box in boxes])
            if len(per_frame) >= frames:
                break
    finally:
        stop.set()
        source.close()
    return {"fps": round(len(per_frame) / busy, 2) if busy > 0 else 0.0, "per_frame": per_frame}


def working_height_sweep(images: list[Image], config: Config, heights: list[int]) -> list[dict[str, Any]]:
    """Detection FPS and boxes at each working height, one detector thread, all else as configured;
    the runner scores the boxes against the full-resolution reference."""
    rows = []
    base = config.cascade_settings()
    for height in heights:
        detector = CascadeDetector(replace(base, working_height=height))
        started = time.perf_counter()
        found = [detector.detect(image) for image in images]
        wall = time.perf_counter() - started
        boxes = [[{"box": [int(v) for v in box]} for box in frame] for frame in found]
        rows.append({"working_height": height, "fps": round(len(images) / wall, 2) if wall > 0 else 0.0,
                     "per_frame": boxes})
    return rows


def classifier_sweep(crops: list[Image], model: str, device: str, faces: int) -> dict[str, Any]:
    """Milliseconds per face and per batch at each padded batch size, on one execution provider."""
    try:
        classifier = OnnxClassifier(model, device=device)
    except ModelError as error:
        if device == "cuda":
            return {"skipped": "no GPU: the CUDA execution provider did not load"}
        return {"skipped": str(error)}
    rows = []
    for size in BATCH_SIZES:
        batch = [crops[i % len(crops)] for i in range(size)]
        repeats = max(2, faces // size)
        started = time.perf_counter()
        for _ in range(repeats):
            classifier.classify(batch)
        per_batch = 1000.0 * (time.perf_counter() - started) / repeats
        rows.append({"batch": size, "ms_per_batch": round(per_batch, 3), "ms_per_face": round(per_batch / size, 3)})
    return {"provider": classifier.provider, "rows": rows}


def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Worker role `limits`: every workload's decode/detect limits and full-resolution reference,
    then the sweeps and isolated stage costs on the plan's sweep workload."""
    config = from_dict(plan["config"])
    threads = config.pipeline.detector_threads
    result: dict[str, Any] = {"workloads": {}}
    for workload in plan["workloads"]:
        path, frames = workload["path"], workload["frames"]
        images = decode_frames(path, plan["sweep_frames"])
        entry = {
            "decode_only": decode_only(path),
            "detect_only_fps": detect_throughput(images, config.cascade_settings(), threads),
            "detect_only_threads": threads,
            "working_height": config.pipeline.working_height,
        }
        if workload["name"] in plan["reference_for"]:
            entry["full_resolution"] = full_resolution_reference(path, frames)
        result["workloads"][workload["name"]] = entry
    sweep_names = plan["sweep_workloads"]
    result["working_height_sweep"] = {}
    for workload in plan["workloads"]:
        if workload["name"] in sweep_names:
            images = decode_frames(workload["path"], plan["sweep_frames"])
            result["working_height_sweep"][workload["name"]] = working_height_sweep(
                images, config, plan["working_heights"]
            )
    crops = [np.asarray(cv2.imread(p), np.uint8) for p in plan["face_crops"]]
    model = plan["model"]
    faces = plan["classifier_faces"]
    result["classifier"] = {device: classifier_sweep(crops, model, device, faces) for device in ("cpu", "cuda")}
    stage_workload = next(w for w in plan["workloads"] if w["name"] == plan["stage_workload"])
    stage_images = decode_frames(stage_workload["path"], plan["sweep_frames"])
    decode_fps = result["workloads"][stage_workload["name"]]["decode_only"]["fps"]
    result["stages_ms"] = isolated_stage_ms(stage_images, config, model, decode_fps)
    result["stages_workload"] = stage_workload["name"]
    return result


def default_config_dict(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The configuration the plan carries: the defaults, with the given sections changed."""
    from dataclasses import asdict

    return asdict(from_dict(overrides or {}))
