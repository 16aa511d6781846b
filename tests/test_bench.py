"""`animerec bench`: the quick run's report against the schema of CONTRACTS.md (never a speed),
the report's Keras loop for real on two frames, and the pure parts (matching, targets) by table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from animerec.benchmarks.analysis import stage_fps
from animerec.benchmarks.machine import current_rss_mb, machine_info, peak_rss_mb
from animerec.benchmarks.quality import FoundFace, against_reference, against_truth, match, visible
from animerec.benchmarks.report import GPU_BEGIN, GPU_END, gpu_section, with_gpu_section
from animerec.benchmarks.synthetic import PlacedFace
from animerec.benchmarks.targets import evaluate, load_targets

ROOT = Path(__file__).resolve().parent.parent
TOP_KEYS = {"machine", "date", "workloads", "stages_ms", "baselines", "targets"}
TARGET_KEYS = {"name", "value", "op", "threshold", "met"}
MACHINE_KEYS = {"cpu", "cores", "ram_gb", "os", "python", "provider"}
SHARED_DATA = ROOT.parent / "shared" / "data"
SMOKE_CLIP = SHARED_DATA / "videos" / "kon_taoky_report.gif"
GPU_SECTION = f"{GPU_BEGIN}\n## CUDA against the CPU\n\n| detector | 1.90 |\n{GPU_END}\n"
STAGES = {"decode", "detect", "crop_per_face", "classify_per_face", "classify_per_batch", "track", "overlay", "encode"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    """One `animerec bench --quick` for the whole module: JSON on stdout, Markdown and plots in tmp."""
    out = tmp_path_factory.mktemp("bench")
    # The quick run takes the first real clip of its folder: one whose first frames hold faces of
    # 48 px and more, so every target gets a value (digimon's wide shots open with none).
    videos = tmp_path_factory.mktemp("videos")
    (videos / SMOKE_CLIP.name).symlink_to(SMOKE_CLIP)
    # An earlier report with a GPU section: --overwrite replaces the report and keeps that section.
    (out / "RESULTS.md").write_text(f"stale report\n{GPU_SECTION}", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, "-m", "animerec", "bench", "--quick", "--json", "-", "--md", str(out / "RESULTS.md"),
         "--plots", str(out), "--videos-dir", str(videos), "--overwrite"],
        cwd=out, capture_output=True, text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout), out, completed.stderr  # stdout must be the JSON document alone


def test_quick_report_has_every_key_of_the_contract(quick_run: tuple[dict[str, Any], Path, str]) -> None:
    report, _, _ = quick_run
    assert report.keys() >= TOP_KEYS
    assert report["machine"].keys() >= MACHINE_KEYS
    assert report["date"][:4].isdigit()
    assert report["stages_ms"].keys() >= STAGES
    assert {"report_loop", "decode_only_fps", "detect_only_fps", "sweeps"} <= report["baselines"].keys()
    sweeps = report["baselines"]["sweeps"]
    assert {"working_height", "detector_threads", "classifier_batch", "execution_provider",
            "near_duplicate_reuse"} <= sweeps.keys()
    names = {w["name"] for w in report["workloads"]}
    assert {"synthetic-480p", "synthetic-720p", "synthetic-1080p"} <= names
    for workload in report["workloads"]:
        assert {"pipeline", "report_loop", "limits", "origin"} <= workload.keys()
        assert workload["pipeline"]["fps"] > 0
    synthetic = next(w for w in report["workloads"] if w["name"] == "synthetic-720p")
    assert {"recall", "precision", "top1"} <= synthetic["quality"]["pipeline"].keys()
    assert {"p50", "p95", "p99"} <= synthetic["live"]["latency_ms"].keys()


def test_quick_report_gives_every_target_a_value_and_a_verdict(quick_run: tuple[dict[str, Any], Path, str]) -> None:
    report, _, _ = quick_run
    assert len(report["targets"]) >= len(load_targets())
    for target in report["targets"]:
        assert target.keys() >= TARGET_KEYS
        assert isinstance(target["met"], bool)
        if not SHARED_DATA.is_dir() and target["skipped"]:
            # The naming clips are made from ../shared/data: without it (a user's fresh clone) their
            # targets are skipped, and say why; with it (CI) every target must have a value.
            assert target["note"] == "no naming clip (they need ../shared/data)" and not target["met"], target
            continue
        assert isinstance(target["value"], (int, float)), target  # measured, not skipped
        assert target["op"] in (">=", "<=")


def test_quick_run_writes_markdown_and_plots_where_asked(quick_run: tuple[dict[str, Any], Path, str]) -> None:
    _, out, _ = quick_run
    markdown = (out / "RESULTS.md").read_text(encoding="utf-8")
    assert "## Targets" in markdown and "report's loop" in markdown
    assert "stale report" not in markdown and gpu_section(markdown) == GPU_SECTION
    assert markdown.index(GPU_BEGIN) < markdown.index("## How this was measured")
    for name in ("fps_by_resolution.png", "live_latency.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert f"]({name})" in markdown


def test_report_loop_runs_for_real_on_two_frames(tmp_path: Path) -> None:
    """The report's loop with Keras (the CI installs the train extra: no skip without it)."""
    from animerec.benchmarks.report_loop import build_report_model, keras_per_face_ms, report_loop
    from animerec.benchmarks.workloads import synthetic_workload

    workload = synthetic_workload(480, 2, tmp_path)
    labels = ("ame", "bae", "calli", "gura")
    model = build_report_model(len(labels))
    result = report_loop(str(workload.path), model, labels, max_frames=2)
    assert result["frames"] == 2 and result["fps"] > 0
    assert len(result["per_frame"]) == 2
    assert all(face["name"] in labels for frame in result["per_frame"] for face in frame)
    assert keras_per_face_ms(model, 2)["ms_per_face"] > 0


@pytest.mark.parametrize(
    ("found", "truth", "pairs"),
    [
        ([(10, 10, 20, 20)], [(0, 0, 50, 50)], [(0, 0)]),  # centre inside
        ([(60, 60, 20, 20)], [(0, 0, 50, 50)], []),  # centre outside
        ([(10, 10, 20, 20), (12, 12, 20, 20)], [(0, 0, 50, 50)], [(1, 0)]),  # one-to-one: closest wins
        ([], [(0, 0, 50, 50)], []),
    ],
)
def test_match_is_centre_inside_and_one_to_one(found: list[Any], truth: list[Any], pairs: list[Any]) -> None:
    assert match(found, truth) == pairs


def test_quality_counts_recall_precision_and_names() -> None:
    truth = [[PlacedFace("ame", (0, 0, 100, 100)), PlacedFace("gura", (200, 0, 100, 100))]]
    found = [[FoundFace((10, 10, 80, 80), "ame"), FoundFace((210, 10, 80, 80), "ina"), FoundFace((500, 0, 9, 9), "x")]]
    quality = against_truth(found, truth)
    assert (quality["recall"], quality["precision"], quality["top1"]) == (1.0, round(2 / 3, 4), 0.5)
    reference = [[FoundFace((10, 10, 80, 80)), FoundFace((400, 10, 30, 30))]]
    recall = against_reference(found, reference)
    assert (recall["recall_ge48"], recall["recall_lt48"], recall["reference_faces_lt48"]) == (1.0, 0.0, 1)


def test_a_face_mostly_hidden_by_a_later_one_is_not_expected() -> None:
    placed = [PlacedFace("ame", (0, 0, 100, 100)), PlacedFace("gura", (10, 10, 100, 100))]
    assert [p.name for p in visible(placed)] == ["gura"]


def _report(speedup: float | None, p95: float) -> dict[str, Any]:
    workload = {"name": "synthetic-720p", "kind": "synthetic", "height": 720, "fps": 30.0,
                "speedup_vs_report_loop": speedup, "report_loop": {"fps": 1.0},
                "live": {"latency_ms": {"p95": p95}, "dropped_share": 0.0, "seconds": 3}}
    return {"workloads": [workload], "baselines": {}, "memory": {"peak_rss_mb": 500.0}}


@pytest.mark.parametrize(("speedup", "met"), [(9.0, True), (8.0, True), (7.9, False), (None, False)])
def test_targets_compare_with_their_threshold(speedup: float | None, met: bool) -> None:
    rows = {row["name"]: row for row in evaluate(_report(speedup, 50.0))}
    row = rows["speedup_vs_report_loop[synthetic-720p]"]
    assert (row["value"], row["met"]) == (speedup, met)
    assert rows["live_latency_p95_ms[synthetic-720p]"]["met"] is True
    assert rows["peak_rss_mb"]["met"] is True
    assert rows["onnx_batched_speedup_per_face"]["value"] is None  # not measured: never met


def test_stage_fps_divides_detection_busy_time_among_its_threads() -> None:
    run = {"frames": 100, "busy_ms": {"detect": 4000.0, "track": 100.0}, "encode_busy_ms": 2000.0}
    assert stage_fps(run, 500.0, detector_threads=2) == {"decode": 500.0, "detect": 50.0, "track": 1000.0,
                                                          "encode": 50.0}


def test_machine_info_and_memory_are_measured_here() -> None:
    info = machine_info("CPUExecutionProvider")
    assert info["cores"] >= 1 and info["python"]
    assert (peak_rss_mb() or 0) > 0
    if sys.platform.startswith("linux"):
        assert (current_rss_mb() or 0) > 0


def _library_entry() -> dict[str, Any]:
    """A `library` role result as the worker writes it (numbers made up, shapes real)."""
    rows = [
        {"runner": "local", "cores": 1, "default": False, "pinned": True, "jobs": 1, "detector_threads": 1,
         "description": "1 process(es) x 1 detector thread(s)", "wall_s": 31.25, "elapsed_s": 27.0,
         "videos_per_hour": 800.0, "done": 6, "failed": 0, "frames": 864, "faces": 1630, "cpu_s": 41.6},
        {"runner": "local", "cores": 2, "default": True, "pinned": False, "jobs": 2, "detector_threads": 1,
         "description": "2 process(es) x 1 detector thread(s)", "wall_s": 17.5, "elapsed_s": 14.4,
         "videos_per_hour": 1500.0, "done": 6, "failed": 0, "frames": 864, "faces": 1630, "cpu_s": 42.0},
        {"runner": "ray", "cores": 1, "default": False, "error": "exit code 1: boom"},
        {"runner": "ray", "cores": 2, "default": True, "pinned": False, "jobs": 2, "detector_threads": 1,
         "description": "ray, 2 tasks at a time", "wall_s": 28.75, "elapsed_s": 26.0,
         "videos_per_hour": 830.0, "done": 6, "failed": 0, "frames": 864, "faces": 1630, "cpu_s": 50.0},
    ]
    from animerec.benchmarks.library_scaling import add_speedups

    add_speedups(rows)
    return {"clips": 6, "frames_per_clip": 144, "width": 1280, "height": 720, "fps": 24.0, "usable_cores": 2,
            "notes": ["2 usable core(s) here: 2 cores is every core, measured once, as the default layout"],
            "layouts": rows, "process_peak_rss_mb": 80.0}


def _assembled(results_library: dict[str, Any] | None) -> dict[str, Any]:
    """`analysis.assemble` over empty measurements (plus the library role when given), with the
    header fields the runner adds: enough for `to_markdown`."""
    from animerec.benchmarks.analysis import assemble

    results: dict[str, dict[str, Any]] = {"limits": {}, "pipeline": {}, "keras": {"skipped": "not installed"}}
    if results_library is not None:
        results["library"] = results_library
    report, _ = assemble([], {"config": {"pipeline": {"max_batch": 16}}}, results, [])
    machine = {"cpu": "test cpu", "cores": 2, "ram_gb": 4, "os": "Linux", "python": "3.11", "opencv": "4",
               "provider": "CPUExecutionProvider"}
    return {"machine": machine, "date": "2026-11-27", "profile": "full", "duration_s": 1.0, **report,
            "targets": []}


def test_speedup_is_over_the_same_runners_one_core_run() -> None:
    rows = {(r["runner"], r["cores"]): r for r in _library_entry()["layouts"]}
    assert (rows["local", 1]["speedup"], rows["local", 1]["efficiency"]) == (1.0, 1.0)
    assert (rows["local", 2]["speedup"], rows["local", 2]["efficiency"]) == (1.88, 0.94)  # 1500 / 800
    assert rows["ray", 2]["speedup"] is None  # its 1-core run failed: nothing to compare with
    assert rows["ray", 1]["speedup"] is None


def test_library_section_renders_the_layouts_only_when_measured() -> None:
    from animerec.benchmarks.report import to_markdown

    report = _assembled(_library_entry())
    assert "process_peak_rss_mb" not in report["library"] and len(report["library"]["layouts"]) == 4
    markdown = to_markdown(report)
    section = markdown.split("## Library jobs (videos per hour)", 1)[1].split("## How this was measured", 1)[0]
    assert "6 synthetic 720p clips of 144 frames each" in section
    assert "wall time includes start-up" in section
    header = ("| runner | cores | layout (processes x threads) | wall s | videos/hour | speed-up vs 1 core "
              "| efficiency |")
    assert header in section
    assert "| local | 1 | 1 x 1 | 31.25 | 800 | 1.00 | 1.00 |" in section
    assert "| local | 2 (all) | 2 x 1 | 17.50 | 1500 | 1.88 | 0.94 |" in section
    assert "| ray | 1 | failed: exit code 1: boom | – | – | – | – |" in section
    assert "| ray | 2 (all) | 2 x 1 | 28.75 | 830 | – | – |" in section
    assert "measured once, as the default layout" in section
    assert "## Library jobs" not in to_markdown(_assembled(None))
    assert "library" not in _assembled(None)


def test_library_role_is_asked_for_not_default() -> None:
    from animerec.benchmarks.library_scaling import core_counts, layouts
    from animerec.benchmarks.runner import ROLES, BenchOptions
    from animerec.benchmarks.workloads import QUICK
    from animerec.config import Config

    options = BenchOptions(QUICK, Config(), ROOT / "animerec" / "models" / "default.onnx", None)
    assert options.roles == ROLES and "library" not in ROLES
    assert BenchOptions(QUICK, Config(), options.model, None, library=True).roles == (*ROLES, "library")
    assert (core_counts(1), core_counts(2), core_counts(16)) == ([1], [1, 2], [1, 2, 16])
    assert [(la.cores, la.default, la.arguments()) for la in layouts("ray", 2)] == [
        (1, False, ["--ray", "local", "--jobs", "1", "--detector-threads", "1"]), (2, True, ["--ray", "local"])]


def test_library_role_measures_local_jobs_for_real() -> None:
    """The `library` role on two 12-frame clips: real `animerec annotate` commands, the bundled model."""
    from animerec.benchmarks.library_scaling import core_counts, run
    from animerec.library.jobs import usable_cores

    result = run({"library": {"clips": 2, "frames": 12, "runners": ["local"]}})
    rows = result["layouts"]
    assert [row["cores"] for row in rows] == core_counts(usable_cores())
    for row in rows:
        assert row["runner"] == "local" and "error" not in row, row
        assert (row["done"], row["failed"], row["frames"]) == (2, 0, 24)
        assert row["videos_per_hour"] > 0 and row["wall_s"] >= row["elapsed_s"] > 0
        if sys.platform.startswith("linux"):
            assert row["cpu_s"] > 0
            assert row["pinned"] is (not row["default"])
    one = rows[0]
    assert (one["cores"], one["jobs"], one["detector_threads"]) == (1, 1, 1)
    assert one["description"] == "1 process(es) x 1 detector thread(s)"  # the flags reached the job
    assert (one["speedup"], one["efficiency"]) == (1.0, 1.0)
    assert rows[-1]["default"] is True and rows[-1]["flags"] == ""


@pytest.mark.slow
def test_library_layout_runs_on_a_local_ray_instance(tmp_path: Path) -> None:
    """One Ray layout (a local instance starts in about 10 s): one core, pinned, two tiny clips."""
    pytest.importorskip("ray")
    import os

    from animerec.benchmarks.library_scaling import Layout, make_clips, measure

    make_clips(tmp_path / "clips", 2, 12)
    env = {**os.environ, "ANIMEREC_GALLERY": str(tmp_path / "no-gallery.json")}
    row = measure(Layout("ray", 1, default=False), tmp_path / "clips", tmp_path / "out", env, [])
    assert "error" not in row, row
    assert (row["done"], row["frames"], row["jobs"]) == (2, 24, 1)
    assert row["description"] == "ray, 1 tasks at a time"
    assert row["videos_per_hour"] > 0 and row["wall_s"] >= row["elapsed_s"] > 0


def test_the_gpu_section_is_replaced_in_place_or_added_before_the_method() -> None:
    report = "# Results\n\n## Memory\n\n## How this was measured\n\nmethod\n"
    added = with_gpu_section(report, GPU_SECTION)
    assert added == f"# Results\n\n## Memory\n\n{GPU_SECTION}\n## How this was measured\n\nmethod\n"
    newer = GPU_SECTION.replace("1.90", "2.10")
    replaced = with_gpu_section(added, newer)
    assert gpu_section(replaced) == newer and replaced.count(GPU_BEGIN) == 1 and "1.90" not in replaced
    assert gpu_section(report) == ""
