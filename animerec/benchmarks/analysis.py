"""Turn the workers' raw measurements into the report: per-workload rows, quality, baselines,
sweeps, memory and, when measured (`--library`), library-job scaling. Pure functions over plain
dicts; nothing here measures or imports a model.
"""

from __future__ import annotations

from typing import Any

from animerec.benchmarks.quality import MATCH_RULE, against_reference, against_truth, faces_from_json
from animerec.benchmarks.workloads import Workload

REPORT_LOOP = (
    "sequential: OpenCV VideoCapture, the cascade on every full-resolution frame at the report's "
    "settings, the report's crop, Keras model.predict(x[None], verbose=0) one face at a time after a "
    "warm-up; the report's seed CNN (untrained weights: same speed)"
)


def _fps_ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 3) if numerator and denominator else None


def stage_fps(run: dict[str, Any], decode_fps: float | None, detector_threads: int) -> dict[str, float]:
    """FPS each stage allows on its own: frames / (its busy seconds / its worker threads)."""
    frames = run["frames"]
    rates: dict[str, float] = {}
    if decode_fps:
        rates["decode"] = decode_fps
    busy = dict(run.get("busy_ms") or {})
    if run.get("encode_busy_ms"):
        busy["encode"] = run["encode_busy_ms"]
    for stage, ms in busy.items():
        workers = detector_threads if stage == "detect" else 1
        if ms > 0:
            rates[stage] = round(frames / (ms / 1000.0 / workers), 2)
    return rates


def _pipeline_entry(runs: dict[str, Any], decode_fps: float | None) -> dict[str, Any]:
    plain, video = runs["file"], runs["file_with_video"]
    rates = stage_fps(plain, decode_fps, plain["detector_threads"])
    slowest = min(rates, key=rates.__getitem__) if rates else None
    return {
        "fps": plain["fps"],
        "fps_with_video": video["fps"],
        "cpu_per_wall": plain["cpu_per_wall"],
        "cpu_share": plain["cpu_share"],
        "cpu_per_wall_with_video": video["cpu_per_wall"],
        "reuse_rate": plain["reuse_rate"],
        "name_changes": plain.get("name_changes"),
        "name_changes_per_10s": plain.get("name_changes_per_10s"),
        "mean_batch": plain["mean_batch"],
        "stages_ms": plain["stages_ms"],
        "stage_fps": rates,
        "encode_fps": stage_fps(video, None, 1).get("encode"),
        "slowest_stage": slowest,
        "share_of_slowest_stage_fps": _fps_ratio(plain["fps"], rates[slowest]) if slowest else None,
    }


def _report_loop_entry(keras: dict[str, Any], name: str) -> dict[str, Any]:
    if "skipped" in keras or "error" in keras:
        return {"skipped": keras.get("skipped") or keras["error"]}
    loop = keras["workloads"].get(name)
    if loop is None:
        return {"skipped": "not run on this clip (real clips and the quick run: 720p only)"}
    return {key: loop[key] for key in ("fps", "frames", "faces", "cpu_per_wall")}


def _quality(workload: Workload, found: list[Any], reference: list[Any] | None) -> dict[str, Any]:
    quality: dict[str, Any] = {}
    if workload.truth is not None:
        quality["pipeline"] = against_truth(found, workload.truth)
        if reference is not None:
            quality["full_resolution_cascade"] = against_truth(reference, workload.truth)
    return quality


def _reuse_entry(sweep: dict[str, Any], on: dict[str, Any], workload: Workload,
                 reference: list[Any] | None) -> dict[str, Any]:
    """Near-duplicate reuse on (the configuration) against off: how often it fires, what it saves
    and what it costs in recall."""
    off = sweep["reuse_off"]
    entry: dict[str, Any] = {"reuse_rate": on["reuse_rate"], "fps_on": on["fps"], "fps_off": off["fps"]}
    for label, run in (("on", on), ("off", off)):
        found = faces_from_json(run["per_frame"])
        if reference is not None:
            entry[f"recall_ge48_{label}"] = against_reference(found, reference)["recall_ge48"]
        if workload.truth is not None:
            truth = against_truth(found, workload.truth)
            entry[f"recall_truth_{label}"], entry[f"top1_{label}"] = truth["recall"], truth["top1"]
    return entry


def _workload_entry(workload: Workload, results: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[float]]:
    name = workload.name
    entry = {k: v for k, v in workload.to_json().items() if k != "path"}
    limits = results["limits"].get("workloads", {}).get(name, {})
    runs = results["pipeline"].get("workloads", {}).get(name)
    decode_fps = (limits.get("decode_only") or {}).get("fps")
    reference_run = limits.get("full_resolution")
    reference = faces_from_json(reference_run["per_frame"]) if reference_run else None
    entry["limits"] = {
        "decode_only_fps": decode_fps,
        "detect_only_fps": limits.get("detect_only_fps"),
        "detect_only_threads": limits.get("detect_only_threads"),
        "working_height": limits.get("working_height"),
        "full_resolution_detect_fps": reference_run["fps"] if reference_run else None,
    }
    entry["report_loop"] = _report_loop_entry(results["keras"], name)
    latencies: list[float] = []
    if runs is None:
        entry["pipeline"] = {"skipped": results["pipeline"].get("error", "not measured")}
        return entry, latencies
    entry["pipeline"] = _pipeline_entry(runs, decode_fps)
    entry["speedup_vs_report_loop"] = _fps_ratio(entry["pipeline"]["fps"], entry["report_loop"].get("fps"))
    found = faces_from_json(runs["file"]["per_frame"])
    entry["quality"] = _quality(workload, found, reference)
    if reference is not None:
        entry["recall_vs_full_resolution"] = against_reference(found, reference)
    sweep = results["pipeline"].get("sweeps", {}).get(name)
    if sweep is not None:
        entry["near_duplicate_reuse"] = _reuse_entry(sweep, runs["file"], workload, reference)
    if "live" in runs:
        entry["live"] = dict(runs["live"])
        latencies = entry["live"].pop("latencies_ms")
    return entry, latencies


def _sweeps(entries: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    limits, pipeline = results["limits"], results["pipeline"]
    references = {
        name: faces_from_json(entry["full_resolution"]["per_frame"])
        for name, entry in limits.get("workloads", {}).items() if "full_resolution" in entry
    }
    heights: dict[str, list[dict[str, Any]]] = {}
    for name, rows in limits.get("working_height_sweep", {}).items():
        heights[name] = []
        for row in rows:
            recall = against_reference(faces_from_json(row["per_frame"]), references.get(name, []))
            heights[name].append({"working_height": row["working_height"], "detect_fps": row["fps"],
                                  "recall_ge48": recall["recall_ge48"], "recall_lt48": recall["recall_lt48"]})
    threads = {
        name: [{"detector_threads": int(n), "fps": run["fps"], "cpu_per_wall": run["cpu_per_wall"]}
               for n, run in sweep["detector_threads"].items()]
        for name, sweep in pipeline.get("sweeps", {}).items()
    }
    classifier = limits.get("classifier", {})
    reuse = {e["name"]: e["near_duplicate_reuse"] for e in entries if "near_duplicate_reuse" in e}
    return {
        "working_height": heights,
        "detector_threads": threads,
        "classifier_batch": classifier.get("cpu", {"skipped": limits.get("error", "not measured")}),
        "execution_provider": {device: _provider_row(classifier.get(device)) for device in ("cpu", "cuda")},
        "near_duplicate_reuse": reuse,
    }


def _provider_row(sweep: dict[str, Any] | None) -> dict[str, Any]:
    if not sweep or "skipped" in sweep:
        return {"skipped": (sweep or {}).get("skipped", "not measured")}
    best = min(sweep["rows"], key=lambda row: row["ms_per_face"])
    return {"provider": sweep["provider"], "best_ms_per_face": best["ms_per_face"], "at_batch": best["batch"]}


def _onnx_per_face(results: dict[str, dict[str, Any]], batch: int) -> dict[str, Any] | None:
    stages = results["limits"].get("stages_ms") or {}
    if stages.get("classify_per_face") is None:
        return None
    return {"ms_per_face": stages["classify_per_face"], "batch": batch,
            "provider": results["pipeline"].get("provider") or "CPUExecutionProvider"}


def assemble(workloads: list[Workload], plan: dict[str, Any], results: dict[str, dict[str, Any]],
             notes: list[str]) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """The report (without machine, date and targets) and the live latencies for the plots."""
    entries, latencies = [], {}
    for workload in workloads:
        entry, samples = _workload_entry(workload, results)
        entries.append(entry)
        if samples:
            latencies[workload.name] = samples
    keras = results["keras"]
    report_loop: dict[str, Any] = {"description": REPORT_LOOP}
    if "skipped" in keras or "error" in keras:
        report_loop["skipped"] = keras.get("skipped") or keras["error"]
    else:
        report_loop.update(model=keras["model"], tensorflow=keras["tensorflow"],
                           keras_ms_per_face=keras["per_face"]["ms_per_face"],
                           fps={name: loop["fps"] for name, loop in keras["workloads"].items()},
                           process_peak_rss_mb=keras.get("process_peak_rss_mb"))
    pipeline = results["pipeline"]
    soak = pipeline.get("soak")
    live_rows = [e["live"] for e in entries if "live" in e]
    growth_source = soak or (live_rows[0] if live_rows else {})
    baselines = {
        "report_loop": report_loop,
        "decode_only_fps": {e["name"]: e["limits"]["decode_only_fps"] for e in entries},
        "detect_only_fps": {e["name"]: e["limits"]["detect_only_fps"] for e in entries},
        "full_resolution_detect_fps": {e["name"]: e["limits"]["full_resolution_detect_fps"] for e in entries
                                       if e["limits"]["full_resolution_detect_fps"] is not None},
        "onnx_per_face": _onnx_per_face(results, plan["config"]["pipeline"]["max_batch"]),
        "sweeps": _sweeps(entries, results),
    }
    report = {
        "notes": notes,
        "matching": MATCH_RULE,
        "config": plan["config"],
        "workloads": entries,
        "naming_clips": pipeline.get("naming", []),  # quality.naming_against_truth on truth_clips.py's clips
        "stages_ms": results["limits"].get("stages_ms") or {},
        "stages_workload": results["limits"].get("stages_workload"),
        "baselines": baselines,
        "memory": {
            "peak_rss_mb": pipeline.get("peak_rss_mb"),
            "rss_growth_mb": growth_source.get("rss_growth_mb"),
            "rss_window_s": growth_source.get("rss_window_s"),
            "rss_window_kind": "soak" if soak else "live run",
            "soak": soak,
            "limits_process_peak_rss_mb": results["limits"].get("process_peak_rss_mb"),
        },
    }
    if "library" in results:
        report["library"] = _library_entry(results["library"])
    return report, latencies


def _library_entry(library: dict[str, Any]) -> dict[str, Any]:
    """The library role's layouts as measured (or its error); its own peak RSS says nothing here."""
    return {key: value for key, value in library.items() if key != "process_peak_rss_mb"}
