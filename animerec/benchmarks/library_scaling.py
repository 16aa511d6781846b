"""Library jobs: videos per hour with 1, 2 and all cores, in local processes and on a local Ray instance.

Worker role `library`, run only with `animerec bench --library` (it takes minutes). It writes
`plan["library"]["clips"]` synthetic 720p clips of `plan["library"]["frames"]` frames into a
temporary folder, then runs each layout as a user would, one command per layout on a fresh
output folder:

    python -m animerec annotate CLIPS -o OUT --json [--jobs K --detector-threads 1] [--ray local]

and reads the job's summary (JSON, standard output). K cores means `--jobs K --detector-threads 1`
with the command pinned to K cores (`os.sched_setaffinity`, where the OS has it); all cores is the
product's default layout (no `--jobs`), unpinned. Core counts are 1, 2 and every usable core,
without repeats: on a 2-core machine 2 cores is every core and is measured once, as the default.
The wall time is taken around the whole command (interpreter, model check, worker start-up,
`ray.init`, shutdown); the CPU time is what the finished command and its waited-for children used
(`getrusage(RUSAGE_CHILDREN)`): for Ray a lower bound, as Ray's own processes may go unwaited.
Speed-up is videos per hour over the same runner's 1-core run; efficiency is speed-up / cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from animerec.benchmarks.synthetic import SyntheticScene
from animerec.benchmarks.workloads import sample_faces
from animerec.library.jobs import usable_cores

WIDTH, HEIGHT, FPS = 1280, 720, 24.0  # as in docs/LIBRARY.md's hand-run measurement
RUNNERS = ("local", "ray")
LAYOUT_TIMEOUT_S = 3600.0  # one command; a hung job must still end
CAN_PIN = hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


@dataclass(frozen=True)
class Layout:
    runner: str  # "local" or "ray"
    cores: int
    default: bool  # the product's own layout (no --jobs): every usable core

    def arguments(self) -> list[str]:
        flags = ["--ray", "local"] if self.runner == "ray" else []
        if not self.default:
            flags += ["--jobs", str(self.cores), "--detector-threads", "1"]
        return flags

    @property
    def name(self) -> str:
        return f"{self.runner}, {self.cores} core(s)" + (" (all: the default layout)" if self.default else "")


def core_counts(usable: int) -> list[int]:
    """1, 2 and every core, each once."""
    return sorted({1, min(2, usable), usable})


def layouts(runner: str, usable: int) -> list[Layout]:
    return [Layout(runner, cores, default=cores == usable) for cores in core_counts(usable)]


def make_clips(folder: Path, clips: int, frames: int) -> list[Path]:
    """`clips` synthetic 720p clips (the sample faces walking over a drawn background, with audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    faces = sample_faces()
    paths = []
    for seed in range(clips):
        path = folder / f"clip-{seed + 1:02d}.mp4"
        SyntheticScene(faces, width=WIDTH, height=HEIGHT, fps=FPS, frame_count=frames, seed=seed).write(path)
        paths.append(path)
    return paths


def _children_cpu_s() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _pin(cores: int) -> Callable[[], None] | None:
    if not CAN_PIN:
        return None
    chosen = sorted(os.sched_getaffinity(0))[:cores]
    return lambda: os.sched_setaffinity(0, chosen)


def _parallelism(layout: Layout, description: str) -> tuple[int | None, int | None]:
    """Videos at once and detector threads each: as asked, or as the job's summary says it ran."""
    if not layout.default:
        return layout.cores, 1
    local = re.match(r"(\d+) process\(es\) x (\d+) detector thread", description)
    if local:
        return int(local.group(1)), int(local.group(2))
    ray = re.match(r"ray, (\d+) tasks", description)
    return (int(ray.group(1)), 1) if ray else (None, None)


def measure(layout: Layout, clips: Path, out: Path, env: dict[str, str], extra: list[str]) -> dict[str, Any]:
    """Run one layout's command; its summary, wall and CPU seconds, or the reason it failed."""
    command = [sys.executable, "-m", "animerec", "annotate", str(clips), "-o", str(out), "--json",
               *layout.arguments(), *extra]
    pin = None if layout.default else _pin(layout.cores)
    row: dict[str, Any] = {"runner": layout.runner, "cores": layout.cores, "default": layout.default,
                           "pinned": pin is not None, "flags": " ".join(layout.arguments())}
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True, errors="replace",
                                   timeout=LAYOUT_TIMEOUT_S, preexec_fn=pin, check=False)
    except subprocess.TimeoutExpired:
        return {**row, "error": f"ran longer than {LAYOUT_TIMEOUT_S:.0f} s and was stopped"}
    wall = time.perf_counter() - started
    cpu_after = _children_cpu_s()
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-5:]
        return {**row, "error": f"exit code {completed.returncode}: {' / '.join(tail)}"}
    # The summary is the last line of standard output (a Ray worker's prints could come before it).
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {**row, "error": "no JSON summary on standard output"}
    summary = json.loads(lines[-1])
    jobs, threads = _parallelism(layout, summary["runner"])
    return {
        **row,
        "jobs": jobs,
        "detector_threads": threads,
        "description": summary["runner"],
        "wall_s": round(wall, 2),
        "elapsed_s": summary["elapsed_s"],
        "videos_per_hour": summary["videos_per_hour"],
        "done": summary["done"],
        "failed": len(summary["failed"]),
        "frames": summary["frames"],
        "faces": summary["faces"],
        "cpu_s": None if cpu_before is None or cpu_after is None else round(cpu_after - cpu_before, 2),
    }


def add_speedups(rows: list[dict[str, Any]]) -> None:
    """Speed-up over the same runner's 1-core run (videos per hour), and efficiency = speed-up / cores."""
    for row in rows:
        base = next((r for r in rows if r["runner"] == row["runner"] and r.get("cores") == 1
                     and r.get("videos_per_hour")), None)
        if base is None or not row.get("videos_per_hour"):
            row["speedup"] = row["efficiency"] = None
            continue
        speedup = row["videos_per_hour"] / base["videos_per_hour"]
        row["speedup"], row["efficiency"] = round(speedup, 2), round(speedup / row["cores"], 2)


def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Worker role `library`: every layout of every runner on the same clips."""
    settings = plan["library"]
    clips, frames = int(settings["clips"]), int(settings["frames"])
    usable = usable_cores()
    extra = ["--model", str(plan["model"])] if plan.get("model") else []
    device = plan.get("config", {}).get("classifier", {}).get("device")
    if device:
        extra += ["--device", device]
    notes = []
    if usable <= 2:
        notes.append(f"{usable} usable core(s) here: {usable} cores is every core, "
                     "measured once, as the default layout")
    notes.append("cpu_s (JSON only): CPU seconds of the command and the children it waited for; "
                 "for Ray a lower bound")
    if not CAN_PIN:
        notes.append("no os.sched_setaffinity here: k-core layouts are --jobs k --detector-threads 1, not pinned")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="animerec-bench-library-") as temporary:
        folder = Path(temporary)
        print(f"animerec bench library: making {clips} clips of {frames} frames", file=sys.stderr, flush=True)
        make_clips(folder / "clips", clips, frames)
        env = {**os.environ, "ANIMEREC_GALLERY": str(folder / "no-gallery.json"), "PYTHONUNBUFFERED": "1"}
        for runner in settings.get("runners", RUNNERS):
            if runner == "ray" and importlib.util.find_spec("ray") is None:
                rows.append({"runner": "ray", "skipped": "ray not installed"})
                continue
            for layout in layouts(runner, usable):
                print(f"animerec bench library: {layout.name}", file=sys.stderr, flush=True)
                row = measure(layout, folder / "clips", folder / f"out-{runner}-{layout.cores}", env, extra)
                rows.append(row)
                print(f"animerec bench library: {layout.name}: "
                      + (row["error"] if "error" in row else
                         f"{row['wall_s']} s, {row['videos_per_hour']} videos/hour"), file=sys.stderr, flush=True)
    add_speedups([row for row in rows if "skipped" not in row])
    return {"clips": clips, "frames_per_clip": frames, "width": WIDTH, "height": HEIGHT, "fps": FPS,
            "usable_cores": usable, "notes": notes, "layouts": rows}
