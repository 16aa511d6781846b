"""The pipeline's speed with each detector setting (issue 12): annotation FPS against the report's
loop on the same clip, and live latency at 30 fps, for `cascade`, `learned` and `both`.

The default detector is chosen by these figures: `both` (or `learned`) only if, at 720p, the
pipeline stays at least 8x the report's loop and the live p95 at most 100 ms, on the synthetic
clip and on the hardest real clip (the most faces per frame: digimon_a4kml_720p.mp4).

    python -m animerec.benchmarks.detector_speed [--frames 150] [--live-seconds 20] [--videos-dir DIR]

The report's loop runs in its own process (the bench's `keras` worker), so this process never
imports TensorFlow while it times the pipeline. JSON on standard output, a table on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from animerec.benchmarks.pipeline_runs import file_run, live_run
from animerec.benchmarks.runner import run_worker
from animerec.benchmarks.truth_clips import SHARED_DATA
from animerec.benchmarks.workloads import Workload, scaled_workload, synthetic_workload
from animerec.config import Config, from_dict, load_config
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.recognition.classifier import OnnxClassifier

KINDS = ("cascade", "learned", "both")
HARDEST_REAL = "digimon_a4kml_720p.mp4"  # the most faces per frame of the shared clips
SPEEDUP_TARGET, P95_TARGET_MS = 8.0, 100.0


def workloads(folder: Path, frames: int, videos: Path) -> list[Workload]:
    clips = [synthetic_workload(720, frames, folder)]
    if (videos / HARDEST_REAL).is_file():
        clips.append(scaled_workload(videos / HARDEST_REAL, 720, frames, folder, "real"))
    return clips


def report_loop_fps(clips: list[Workload], model: Path, labels: tuple[str, ...], folder: Path) -> dict[str, float]:
    """The report's loop FPS on each clip, measured by the bench's own worker process."""
    plan = {"labels": list(labels), "workloads": [c.to_json() for c in clips],
            "baseline_workloads": [c.name for c in clips], "keras_faces": 4, "model": str(model)}
    result = run_worker("keras", plan, folder)
    if "error" in result or "skipped" in result:
        raise SystemExit(f"the report's loop could not run: {result.get('error') or result.get('skipped')}")
    return {name: float(run["fps"]) for name, run in result["workloads"].items()}


def measure(clips: list[Workload], config: Config, classifier: OnnxClassifier, baseline: dict[str, float],
            live_seconds: float) -> list[dict[str, Any]]:
    rows = []
    for clip in clips:
        for kind in KINDS:
            settings = from_dict({"detector": {"kind": kind}}, config)  # validated, as any override
            ran = file_run(str(clip.path), settings, classifier, write_video=False)
            live = live_run(str(clip.path), settings, classifier, live_seconds, (live_seconds, live_seconds))
            speedup = ran["fps"] / baseline[clip.name] if baseline[clip.name] else None
            rows.append({
                "clip": clip.name, "detector": kind, "fps": ran["fps"], "report_loop_fps": baseline[clip.name],
                "speedup_vs_report_loop": None if speedup is None else round(speedup, 2),
                "faces": sum(len(frame) for frame in ran["per_frame"]),
                "live_p95_ms": live["latency_ms"]["p95"], "live_dropped_share": live["dropped_share"],
                "meets_targets": bool(speedup is not None and speedup >= SPEEDUP_TARGET
                                      and (live["latency_ms"]["p95"] or 1e9) <= P95_TARGET_MS),
            })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| clip | detector | faces | FPS | report's loop FPS | speedup | live p95 ms | dropped | targets |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['clip']} | {r['detector']} | {r['faces']} | {r['fps']:.1f} | {r['report_loop_fps']:.2f} | "
                     f"{r['speedup_vs_report_loop']} | {r['live_p95_ms']} | {r['live_dropped_share']} | "
                     f"{'met' if r['meets_targets'] else 'missed'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m animerec.benchmarks.detector_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150, help="frames per clip (default 150)")
    parser.add_argument("--live-seconds", type=float, default=20.0, help="live replay per setting (default 20)")
    parser.add_argument("--videos-dir", type=Path, default=SHARED_DATA / "videos")
    parser.add_argument("--config", type=Path)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    classifier = OnnxClassifier(config.classifier.model or DEFAULT_MODEL_PATH)
    with tempfile.TemporaryDirectory(prefix="animerec-detector-speed-") as name:
        folder = Path(name)
        clips = workloads(folder, args.frames, args.videos_dir)
        baseline = report_loop_fps(clips, Path(config.classifier.model or DEFAULT_MODEL_PATH), classifier.labels,
                                   folder)
        rows = measure(clips, config, classifier, baseline, args.live_seconds)
    print(table(rows), file=sys.stderr)
    print(json.dumps({"frames": args.frames, "live_seconds": args.live_seconds, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
