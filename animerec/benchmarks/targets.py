"""The targets of targets.toml, evaluated on a finished report.

Each metric reads numbers the report already holds, so a target can never use a measurement
the report does not show. A value that could not be measured here (no TensorFlow for the
report's baseline, no face large enough, a failed worker) is None: the target is `skipped`,
neither met nor missed, with a note saying why; `met` stays false.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from importlib import resources
from typing import Any

import tomllib

Report = dict[str, Any]
Workload = dict[str, Any]
OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}
TARGETS_FILE = "targets.toml"  # package data: animerec/benchmarks/targets.toml
NAMING_SCOPES = ("naming", "naming-camera", "naming-all")


def load_targets() -> list[dict[str, Any]]:
    text = resources.files("animerec.benchmarks").joinpath(TARGETS_FILE).read_text(encoding="utf-8")
    targets = tomllib.loads(text)["target"]
    for target in targets:
        if target["op"] not in OPS:
            raise ValueError(f"{TARGETS_FILE}: target {target['name']}: op must be >= or <=")
        if target["metric"] not in {**WORKLOAD_METRICS, **NAMING_METRICS, **RUN_METRICS}:
            raise ValueError(f"{TARGETS_FILE}: target {target['name']}: unknown metric {target['metric']!r}")
    return targets


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or data.get(key) is None:
            return None
        data = data[key]
    return data


def _speedup(workload: Workload) -> tuple[float | None, str]:
    reason = _get(workload, "report_loop", "skipped")
    if reason:
        return None, f"report's loop skipped: {reason}"
    pipeline_fps = (workload.get("pipeline") or {}).get("fps")
    loop_fps = _get(workload, "report_loop", "fps")
    return workload.get("speedup_vs_report_loop"), f"pipeline {pipeline_fps} FPS, report's loop {loop_fps} FPS"


def _stage_share(workload: Workload) -> tuple[float | None, str]:
    pipeline = workload.get("pipeline") or {}
    if pipeline.get("skipped"):
        return None, f"pipeline not measured: {pipeline['skipped']}"
    return pipeline.get("share_of_slowest_stage_fps"), f"slowest stage: {pipeline.get('slowest_stage')}"


def _live(key: str) -> Callable[[Workload], tuple[float | None, str]]:
    def metric(workload: Workload) -> tuple[float | None, str]:
        live = workload.get("live") or {}
        value = _get(live, "latency_ms", "p95") if key == "p95" else live.get("dropped_share")
        return value, f"{live.get('seconds')} s replay at {workload.get('fps')} fps"

    return metric


def _flicker(workload: Workload) -> tuple[float | None, str]:
    pipeline = workload.get("pipeline") or {}
    if pipeline.get("name_changes_per_10s") is None:
        return None, "no face was tracked in this clip"
    return pipeline["name_changes_per_10s"], f"{pipeline.get('name_changes')} name changes in all"


def _onnx_speedup(report: Report) -> tuple[float | None, str]:
    keras_ms = _get(report, "baselines", "report_loop", "keras_ms_per_face")
    onnx = _get(report, "baselines", "onnx_per_face")
    if keras_ms is None or onnx is None:
        return None, _get(report, "baselines", "report_loop", "skipped") or "not measured"
    return round(keras_ms / onnx["ms_per_face"], 2), f"ONNX batch {onnx['batch']} on {onnx['provider']}"


def _peak_rss(report: Report) -> tuple[float | None, str]:
    return _get(report, "memory", "peak_rss_mb"), "pipeline process, TensorFlow not loaded"


def _rss_growth(report: Report) -> tuple[float | None, str]:
    memory = report.get("memory") or {}
    window = memory.get("rss_window_s")
    return memory.get("rss_growth_mb"), f"window {window} s of a live run" if window else "not measured"


WORKLOAD_METRICS: dict[str, Callable[[Workload], tuple[float | None, str]]] = {
    "speedup_vs_report_loop": _speedup,
    "share_of_slowest_stage_fps": _stage_share,
    "live_latency_p95_ms": _live("p95"),
    "live_dropped_share": _live("dropped"),
    "name_changes_per_10s": _flicker,
}
def _naming(key: str) -> Callable[[Workload], tuple[float | None, str]]:
    def metric(clip: Workload) -> tuple[float | None, str]:
        note = f"{clip['true_faces']} true faces, {clip['found_share']} of them found; shares are of those found"
        return clip.get(key), note

    return metric


def _recall(bucket: str) -> Callable[[Workload], tuple[float | None, str]]:
    """Detection recall against the truth for faces in one of quality.SIZE_BUCKETS."""
    def metric(clip: Workload) -> tuple[float | None, str]:
        recall = _get(clip, "recall_by_size", bucket)
        if not recall or not recall["faces"]:
            return None, f"no true face in size bucket {bucket} px"
        return recall["recall"], f"{recall['faces']} true faces of side {bucket} px (face-frames, source pixels)"

    return metric


NAMING_METRICS: dict[str, Callable[[Workload], tuple[float | None, str]]] = {  # truth_clips.py's clips
    "recall_ge48": _recall(">=48"),
    "recall_lt48": _recall("<48"),
    "recall_all": _recall("all"),
    "named_right": _naming("named_right"),
    "named_wrong": _naming("named_wrong"),
    "character_changes_per_10s": _naming("character_changes_per_10s"),
}
RUN_METRICS: dict[str, Callable[[Report], tuple[float | None, str]]] = {
    "onnx_batched_speedup_per_face": _onnx_speedup,
    "peak_rss_mb": _peak_rss,
    "rss_growth_mb": _rss_growth,
}


def _in_scope(workload: Workload, scope: str) -> bool:
    if scope == "720p":
        return workload["height"] == 720 and workload["kind"] != "user"
    if scope == "live-720p":
        return workload["height"] == 720 and "live" in workload
    if scope in NAMING_SCOPES:  # a naming clip, plain or filmed from a screen
        return scope == "naming-all" or workload["camera"] == (scope == "naming-camera")
    raise ValueError(f"unknown target scope {scope!r}")


def _row(target: dict[str, Any], name: str, value: float | None, note: str) -> dict[str, Any]:
    skipped = value is None
    met = value is not None and OPS[target["op"]](value, target["threshold"])
    return {
        "name": name,
        "value": value,
        "op": target["op"],
        "threshold": target["threshold"],
        "met": bool(met),
        "skipped": skipped,
        "description": target["description"],
        "note": note,
    }


def summary(rows: list[dict[str, Any]]) -> str:
    """"7 of 11 targets met; 2 skipped: <why>": skipped targets count neither way."""
    measured = [row for row in rows if not row.get("skipped")]
    text = f"{sum(row['met'] for row in measured)} of {len(measured)} targets met"
    reasons = sorted({row["note"] for row in rows if row.get("skipped")})
    if reasons:
        text += f"; {len(rows) - len(measured)} skipped, not measured here: {'; '.join(reasons)}"
    return text


def evaluate(report: Report, targets: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per target (per workload for scoped targets): name, value, op, threshold, met."""
    rows = []
    for target in targets if targets is not None else load_targets():
        metric = target["metric"]
        if metric in RUN_METRICS:
            rows.append(_row(target, target["name"], *RUN_METRICS[metric](report)))
            continue
        scope = target.get("scope", "720p")
        naming = scope in NAMING_SCOPES
        entries = report.get("naming_clips", []) if naming else report["workloads"]
        scoped = [w for w in entries if _in_scope(w, scope)]
        if not scoped:
            why = "no naming clip (they need ../shared/data)" if naming else f"no workload in scope {scope}"
            rows.append(_row(target, target["name"], None, why))
        measure = NAMING_METRICS if naming else WORKLOAD_METRICS
        for workload in scoped:
            rows.append(_row(target, f"{target['name']}[{workload['name']}]", *measure[metric](workload)))
    return rows
