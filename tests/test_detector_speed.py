"""The per-detector speed benchmark runs the real pipeline with each detector setting."""

from pathlib import Path

from animerec.benchmarks.detector_speed import KINDS, measure, table
from animerec.benchmarks.workloads import synthetic_workload
from animerec.config import Config
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.recognition.classifier import OnnxClassifier


def test_each_detector_setting_is_timed_against_the_same_baseline(tmp_path: Path) -> None:
    clip = synthetic_workload(720, 8, tmp_path)
    rows = measure([clip], Config(), OnnxClassifier(DEFAULT_MODEL_PATH), {clip.name: 0.5}, live_seconds=1.0)
    assert [r["detector"] for r in rows] == list(KINDS)
    for row in rows:
        assert row["fps"] > 0 and row["speedup_vs_report_loop"] == round(row["fps"] / 0.5, 2)
        assert row["live_p95_ms"] is not None and row["live_p95_ms"] > 0
    by_kind = {r["detector"]: r["faces"] for r in rows}
    assert by_kind["both"] >= by_kind["cascade"]  # both keeps every cascade box
    assert table(rows).count("| synthetic-720p |") == len(KINDS)
