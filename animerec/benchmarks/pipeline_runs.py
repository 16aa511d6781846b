"""The pipeline measured as users run it, through its public API only (`api.build_pipeline`,
`capture.open_source`, `video_writer.VideoWriter`), in a process that never imports TensorFlow.

Worker role `pipeline`:
- file mode: every workload end to end, without and with writing the annotated video;
- live mode: a clip replayed as a 30 fps camera, latency from grab to the annotated frame reaching
  the caller, frames dropped, and resident memory growth over a window of the run;
- sweeps on the pipeline: detector threads, and near-duplicate reuse off against on;
- the process's peak resident memory, once everything has run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from animerec.api import build_pipeline
from animerec.benchmarks.machine import UsageClock, current_rss_mb, peak_rss_mb
from animerec.benchmarks.truth_clips import TruthClip, score_clip
from animerec.config import Config, from_dict
from animerec.realtime.capture import open_source
from animerec.realtime.tracker import NameChangeCounter
from animerec.realtime.video_writer import VideoWriter
from animerec.recognition.classifier import Classifier, OnnxClassifier
from animerec.records import AnnotatedFrame

LIVE_WARMUP_S = 0.5  # latencies of the first half second (threads starting) are kept apart


def _faces_json(item: AnnotatedFrame) -> list[dict[str, Any]]:
    return [{"box": [int(v) for v in box], "name": name}
            for box, name in zip(item.faces.boxes, item.faces.names, strict=True)]


def file_run(path: str, config: Config, classifier: Classifier, write_video: bool) -> dict[str, Any]:
    """One pass over a clip as fast as it goes; with `write_video`, each annotated frame is
    encoded to H.264 by the caller's thread, as `animerec annotate` does."""
    source = open_source(path)
    pipeline = build_pipeline(source, config, classifier=classifier)
    per_frame: list[list[dict[str, Any]]] = []
    flicker = NameChangeCounter()
    encode_s = 0.0
    with tempfile.TemporaryDirectory(prefix="animerec-bench-") as folder:
        writer = VideoWriter(Path(folder) / "out.mp4", source.info) if write_video else None
        with UsageClock() as clock:
            try:
                for item in pipeline:
                    per_frame.append(_faces_json(item))
                    flicker.observe(item.faces)
                    if writer is not None:
                        started = time.perf_counter()
                        writer.write(item)
                        encode_s += time.perf_counter() - started
                if writer is not None:
                    started = time.perf_counter()
                    writer.close()
                    encode_s += time.perf_counter() - started
            finally:
                if writer is not None:
                    writer.close()
                source.close()
    snapshot = pipeline.stats.snapshot()
    frames = len(per_frame)
    usage = clock.usage
    return {
        "frames": frames,
        "fps": round(frames / usage.wall_s, 3) if usage.wall_s > 0 else 0.0,
        **usage.to_json(),
        "reuse_rate": snapshot["reuse_rate"],
        "mean_batch": snapshot["mean_batch"],
        "busy_ms": snapshot["busy_ms"],
        "stages_ms": snapshot["stages_ms"],
        "encode_busy_ms": round(1000.0 * encode_s, 1) if write_video else None,
        "detector_threads": config.pipeline.detector_threads,
        "name_changes": flicker.total,
        "name_changes_per_10s": flicker.per_10_seconds(source.info.fps),
        "per_frame": per_frame,
    }


def live_run(path: str, config: Config, classifier: Classifier, seconds: float,
             rss_window: tuple[float, float]) -> dict[str, Any]:
    """Replay `path` at its native rate (30 fps), looping, for `seconds`; the newest frame wins
    and stale ones are dropped, as with a camera. Latency is measured when the caller receives
    the annotated frame (where a window or the OBS server would take it)."""
    source = open_source(path, paced=True, loop=True)
    pipeline = build_pipeline(source, config, classifier=classifier, status=True)
    latencies: list[float] = []
    warmup: list[float] = []
    rss: dict[str, float | None] = {}
    last_index = -1
    start = time.monotonic()
    with UsageClock() as clock:
        try:
            for item in pipeline:
                now = time.monotonic()
                elapsed = now - start
                (warmup if elapsed < LIVE_WARMUP_S else latencies).append(1000.0 * (now - item.frame.captured_at))
                last_index = max(last_index, item.frame.index)
                for label, at in zip(("start", "end"), rss_window, strict=True):
                    if label not in rss and elapsed >= at:
                        rss[label] = current_rss_mb()
                if elapsed >= seconds:
                    pipeline.stop()
        finally:
            source.close()
    snapshot = pipeline.stats.snapshot()
    delivered = len(latencies) + len(warmup)
    emitted = max(last_index + 1, delivered)
    p50, p95, p99 = (np.percentile(latencies, (50, 95, 99)) if latencies else (None, None, None))
    growth = None
    if rss.get("start") is not None and rss.get("end") is not None:
        growth = round(float(rss["end"]) - float(rss["start"]), 2)  # type: ignore[arg-type]
    return {
        "seconds": round(clock.usage.wall_s, 2),
        "fps_in": round(emitted / clock.usage.wall_s, 2),
        "fps_out": round(delivered / clock.usage.wall_s, 2),
        "frames_emitted": emitted,
        "frames_delivered": delivered,
        "dropped_share": round(1.0 - delivered / emitted, 4) if emitted else None,
        "dropped_by": snapshot["dropped_by"],
        "late_share": round(snapshot["late"] / delivered, 4) if delivered else None,
        "latency_ms": {
            "p50": _round(p50), "p95": _round(p95), "p99": _round(p99),
            "max": _round(max(latencies) if latencies else None),
            "samples": len(latencies), "warmup_excluded_s": LIVE_WARMUP_S,
        },
        "latencies_ms": [round(v, 2) for v in latencies],
        "reuse_rate": snapshot["reuse_rate"],
        **clock.usage.to_json(),
        "rss_mb": {k: _round(v) for k, v in rss.items()},
        "rss_window_s": list(rss_window),
        "rss_growth_mb": growth,
    }


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def _with(config: Config, section: str, **values: Any) -> Config:
    return from_dict({section: values}, config)


def run(plan: dict[str, Any]) -> dict[str, Any]:
    config = from_dict(plan["config"])
    classifier = OnnxClassifier(plan["model"], device=config.classifier.device)
    result: dict[str, Any] = {"provider": classifier.provider, "workloads": {}, "sweeps": {}}
    for workload in plan["workloads"]:
        path = workload["path"]
        result["workloads"][workload["name"]] = {
            "file": file_run(path, config, classifier, write_video=False),
            "file_with_video": file_run(path, config, classifier, write_video=True),
        }
    for name in plan["sweep_workloads"]:
        path = next(w["path"] for w in plan["workloads"] if w["name"] == name)
        no_reuse = _with(config, "pipeline", dedup_threshold=0.0)
        configured = config.pipeline.detector_threads
        threads = {  # the configured count was measured already, as the workload's own run
            str(n): result["workloads"][name]["file"] if n == configured
            else file_run(path, _with(config, "pipeline", detector_threads=n), classifier, False)
            for n in plan["detector_threads"]
        }
        result["sweeps"][name] = {"reuse_off": file_run(path, no_reuse, classifier, False), "detector_threads": threads}
    result["naming"] = [score_clip(TruthClip.from_json(clip), config, classifier)
                        for clip in plan.get("naming_clips", [])]
    live = plan["live"]
    for name in live["workloads"]:
        path = next(w["path"] for w in plan["workloads"] if w["name"] == name)
        window = live["rss_window_s"]
        seconds = max(live["seconds"], window[1] + 0.5)
        result["workloads"][name]["live"] = live_run(path, config, classifier, seconds, (window[0], window[1]))
    if plan.get("soak_minutes"):
        minutes = float(plan["soak_minutes"])
        path = next(w["path"] for w in plan["workloads"] if w["name"] == live["workloads"][0])
        soak = live_run(path, config, classifier, minutes * 60.0, (60.0, minutes * 60.0 - 1.0))
        soak.pop("latencies_ms")
        result["soak"] = soak
    result["peak_rss_mb"] = peak_rss_mb()
    return result
