"""The report's two figures: FPS against resolution (pipeline and baselines), and the live
latency distribution. Matplotlib's Agg backend: no display needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

FPS_PLOT = "fps_by_resolution.png"
LATENCY_PLOT = "live_latency.png"


def _series(report: dict[str, Any], kind: str) -> dict[str, list[tuple[int, float]]]:
    """FPS per method at each height, averaged over the workloads of `kind` at that height."""
    methods = {
        "pipeline": lambda w: w.get("pipeline", {}).get("fps"),
        "pipeline + video": lambda w: w.get("pipeline", {}).get("fps_with_video"),
        "report's loop": lambda w: w["report_loop"].get("fps"),
        "decode only": lambda w: w["limits"]["decode_only_fps"],
        "detect only": lambda w: w["limits"]["detect_only_fps"],
    }
    series: dict[str, list[tuple[int, float]]] = {}
    for label, value in methods.items():
        by_height: dict[int, list[float]] = {}
        for workload in report["workloads"]:
            fps = value(workload) if workload["kind"] == kind else None
            if fps:
                by_height.setdefault(workload["height"], []).append(fps)
        points = sorted((height, sum(v) / len(v)) for height, v in by_height.items())
        if points:
            series[label] = points
    return series


def write_plots(report: dict[str, Any], latencies: dict[str, list[float]], folder: Path) -> list[str]:
    """Write the PNGs into `folder`; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, kind in zip(axes, ("synthetic", "real"), strict=True):
        for label, points in _series(report, kind).items():
            heights, fps = zip(*points, strict=True)
            axis.plot(heights, fps, marker="o", label=label)
        axis.set_title(f"{kind} clips")
        axis.set_xlabel("frame height (px)")
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("frames per second (log)")
    axes[0].legend(fontsize=8)
    figure.suptitle(f"FPS by resolution ({report['machine']['cpu']}, {report['machine']['cores']} cores)", fontsize=9)
    figure.tight_layout()
    figure.savefig(folder / FPS_PLOT, dpi=110)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, 4.2))
    for number, (name, samples) in enumerate(latencies.items()):
        colour = f"C{number}"  # the same colour for a clip's histogram and its p95 line
        axis.hist(samples, bins=40, alpha=0.6, color=colour, label=name)
        p95 = float(np.percentile(samples, 95))
        axis.axvline(p95, color=colour, linewidth=1.5, label=f"{name} p95 {p95:.0f} ms")
    axis.axvline(100.0, color="red", linestyle="--", linewidth=1, label="target p95 100 ms")
    axis.set_xlabel("grab to annotated frame (ms)")
    axis.set_ylabel("frames")
    axis.set_title("Live latency, clip replayed as a 30 fps camera")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(folder / LATENCY_PLOT, dpi=110)
    plt.close(figure)
    return [FPS_PLOT, LATENCY_PLOT]
