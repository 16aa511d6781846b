"""`animerec bench` end to end: make the workloads, run each measuring process in turn, assemble
the report and check the targets.

The runner itself measures nothing: three worker processes do, one at a time, on the same clips,
with the same configuration, so every comparison is between numbers of one run, and each process's
memory is its own: the pipeline's peak RSS is never inflated by TensorFlow, which only the `keras`
role imports. With `library` (`animerec bench --library`, minutes) a fourth runs last: library jobs
with 1, 2 and all cores, locally and on a local Ray instance (library_scaling.py). Everything they
write goes to a temporary folder, never into the repository.

    python -m animerec.benchmarks.runner ROLE PLAN.json RESULT.json   (one worker; the runner's job)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from animerec.benchmarks.analysis import assemble
from animerec.benchmarks.machine import machine_info, now_utc, peak_rss_mb
from animerec.benchmarks.targets import evaluate
from animerec.benchmarks.truth_clips import bench_clips
from animerec.benchmarks.workloads import Profile, Workload, build_workloads
from animerec.config import Config
from animerec.paths import SAMPLE_FACES_DIR

ROLES = ("limits", "pipeline", "keras")  # keras last: TensorFlow's import is the slowest start
LIBRARY_ROLE = "library"  # only when asked (--library): it runs whole library jobs, for minutes
WORKER_TIMEOUT_S = 6 * 3600.0  # a soak run may be long; a hung worker must still end


@dataclass(frozen=True)
class BenchOptions:
    profile: Profile
    config: Config
    model: Path
    videos_dir: Path | None
    user_videos: list[Path] = field(default_factory=list)
    soak_minutes: float = 0.0
    library: bool = False  # also measure library-job scaling (the `library` role)

    @property
    def roles(self) -> tuple[str, ...]:
        return (*ROLES, LIBRARY_ROLE) if self.library else ROLES


@dataclass
class BenchResult:
    report: dict[str, Any]  # the JSON document of CONTRACTS.md
    latencies_ms: dict[str, list[float]]  # per live workload, for the plots only
    failed: list[str]  # worker roles that did not finish


def say(message: str) -> None:
    print(f"animerec bench: {message}", file=sys.stderr, flush=True)


def _model_labels(model: Path) -> tuple[str, ...]:
    from animerec.recognition.classifier import OnnxClassifier

    return OnnxClassifier(model, device="cpu", warmup=False).labels


def make_plan(options: BenchOptions, workloads: list[Workload]) -> dict[str, Any]:
    """What every worker needs: the clips, the configuration, and which measurement runs where."""
    profile = options.profile
    at_720 = [w.name for w in workloads if w.height == 720 and w.kind != "user"]
    synthetic_720 = next(w.name for w in workloads if w.kind == "synthetic" and w.height == 720)
    real_720 = [name for name in at_720 if name != synthetic_720]
    # The full-resolution reference costs what the report's loop costs: only where a recall needs it.
    quick = profile.name == "quick"
    reference_for = at_720 if quick else [w.name for w in workloads if w.name in at_720 or w.kind != "real"]
    # The report's loop costs seconds per frame at 1080p: real clips get it at 720p (the target) only.
    baseline_for = [w.name for w in workloads if w.name in at_720 or (not quick and w.kind != "real")]
    plan: dict[str, Any] = {
        "profile": profile.name,
        "config": asdict(options.config),
        "model": str(options.model),
        "labels": list(_model_labels(options.model)),
        "workloads": [w.to_json() for w in workloads],
        "reference_for": reference_for,
        "sweep_workloads": at_720,
        "sweep_frames": profile.sweep_frames,
        "working_heights": [0, 360] if quick else [0, 240, 360, 480],
        "detector_threads": [1, 2] if quick else [1, 2, 3, 4],
        "classifier_faces": 32 if quick else 256,
        "stage_workload": synthetic_720,
        "face_crops": [str(p) for p in sorted(SAMPLE_FACES_DIR.glob("*.jpg"))],
        "keras_faces": profile.keras_faces,
        "baseline_workloads": baseline_for,
        "live": {
            "workloads": [synthetic_720, *real_720[: 0 if quick else 1]],
            "seconds": profile.live_seconds,
            "rss_window_s": list(profile.rss_window_s),
        },
        "soak_minutes": options.soak_minutes,
    }
    if options.library:  # 720p clips like docs/LIBRARY.md's hand-run measurement
        plan["library"] = {"clips": 2 if quick else 6, "frames": 24 if quick else 144, "runners": ["local", "ray"]}
    return plan


def run_worker(role: str, plan: dict[str, Any], folder: Path) -> dict[str, Any]:
    """One measuring process; its failure is recorded, not hidden, and the run goes on."""
    plan_path, result_path = folder / f"{role}-plan.json", folder / f"{role}-result.json"
    if role == "keras":
        keep = set(plan["baseline_workloads"])
        plan = {**plan, "workloads": [w for w in plan["workloads"] if w["name"] in keep]}
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "animerec.benchmarks.runner", role, str(plan_path), str(result_path)]
    started = time.monotonic()
    try:
        # Its standard output is passed on to our standard error: ours may carry the JSON report only.
        completed = subprocess.run(command, env=env, timeout=WORKER_TIMEOUT_S, check=False,
                                   stdout=subprocess.PIPE, text=True, errors="replace")
    except subprocess.TimeoutExpired:
        return {"error": f"the {role} worker ran longer than {WORKER_TIMEOUT_S:.0f} s and was stopped"}
    if completed.stdout:
        sys.stderr.write(completed.stdout)
    say(f"{role} measured in {time.monotonic() - started:.1f} s")
    if completed.returncode != 0 or not result_path.is_file():
        return {"error": f"the {role} worker failed (exit code {completed.returncode}); see its messages above"}
    result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    return result


def run_bench(options: BenchOptions) -> BenchResult:
    """Every measurement of one run, assembled into the report of CONTRACTS.md."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="animerec-bench-") as temporary:
        folder = Path(temporary)
        say(f"{options.profile.name} run: making the clips in {folder}")
        workloads, notes = build_workloads(options.profile, folder, options.videos_dir, options.user_videos)
        plan = make_plan(options, workloads)
        naming_clips, naming_note = bench_clips(folder, quick=options.profile.name == "quick")
        plan["naming_clips"] = [clip.to_json() for clip in naming_clips]
        notes.append(naming_note)
        results = {}
        for role in options.roles:
            say(f"measuring: {role}")
            results[role] = run_worker(role, plan, folder)
    failed = [role for role, result in results.items() if "error" in result]
    notes += [f"{role}: {results[role]['error']}" for role in failed]
    provider = results["pipeline"].get("provider", "")
    report, latencies = assemble(workloads, plan, results, notes)
    report = {
        "machine": machine_info(provider),
        "date": now_utc(),
        "profile": options.profile.name,
        "duration_s": round(time.monotonic() - started, 1),
        **report,
    }
    report["machine"]["tensorflow"] = results["keras"].get("tensorflow")
    report["targets"] = evaluate(report)
    return BenchResult(report, latencies, failed)


def _role(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    # Imported on demand: the keras role must not load the pipeline, nor the pipeline TensorFlow.
    if name == "pipeline":
        from animerec.benchmarks import pipeline_runs

        return pipeline_runs.run
    if name == "limits":
        from animerec.benchmarks import limits

        return limits.run
    if name == "keras":
        from animerec.benchmarks import report_loop

        return report_loop.run
    if name == LIBRARY_ROLE:
        from animerec.benchmarks import library_scaling

        return library_scaling.run
    raise SystemExit(f"unknown worker role {name!r} (one of {', '.join((*ROLES, LIBRARY_ROLE))})")


def worker_main(argv: list[str]) -> int:
    """One measuring process: run ROLE on the plan, write its result with its own peak RSS."""
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    role, plan_path, result_path = argv
    logging.basicConfig(level=logging.WARNING, format=f"animerec bench {role}: %(message)s", stream=sys.stderr)
    plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    result = _role(role)(plan)
    result["process_peak_rss_mb"] = peak_rss_mb()
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
