"""What Animerec says to a user: errors that name the file, hints, plain progress off a terminal,
one clear line (not OpenCV's log) for a missing camera, and bench's skipped targets."""

from __future__ import annotations

import argparse
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from media import make_test_video

from animerec import cli
from animerec.api import recognise
from animerec.benchmarks.report import _targets
from animerec.benchmarks.targets import evaluate, summary
from animerec.paths import SAMPLE_FACES_DIR
from animerec.progress import progress, tracked
from animerec.recognition.images import UnreadableImage, load_image

NO_FACE_CROP = SAMPLE_FACES_DIR / "bae.jpg"  # a tight crop: the cascade finds no face in it


@pytest.fixture(autouse=True)
def no_default_gallery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANIMEREC_GALLERY", str(tmp_path / "no-gallery.json"))


def animerec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (stderr a pipe, OpenCV's log level its own)."""
    return subprocess.run([sys.executable, "-m", "animerec", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_an_unreadable_image_names_its_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    with pytest.raises(UnreadableImage) as raised:
        recognise(missing)
    assert str(raised.value) == f"{missing}: file not found" and raised.value.reason == "file not found"
    copy = pickle.loads(pickle.dumps(raised.value))  # library workers send errors between processes
    assert (copy.path, copy.reason) == (missing, "file not found")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(UnreadableImage, match=f"^{tmp_path / 'text.png'}: not an image$"):
        load_image(tmp_path / "text.png")


def test_predict_suggests_crops_for_a_crop_without_a_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wide = tmp_path / "wide.png"
    cv2.imwrite(str(wide), np.full((200, 600, 3), 255, np.uint8))  # no face, and no crop either
    assert cli.main(["predict", str(NO_FACE_CROP), str(wide)]) == 0
    captured = capsys.readouterr()
    assert f"{NO_FACE_CROP}: 0 face(s)" in captured.out
    assert f"{NO_FACE_CROP}: no face found, but it looks like a face crop" in captured.err
    assert "add --crops" in captured.err and str(wide) not in captured.err


def test_enroll_suggests_crops_for_a_crop_without_a_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gallery = tmp_path / "gallery.json"
    code = cli.main(["enroll", "someone", str(NO_FACE_CROP), str(SAMPLE_FACES_DIR / "ame.jpg"),
                     "--gallery", str(gallery)])
    assert code == 3  # one image skipped
    assert f"skipped {NO_FACE_CROP}: no face found, but it looks like a face crop" in capsys.readouterr().err


def test_predict_takes_the_configuration_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = str(tmp_path / "framed.png")  # room around the face for every label line
    face = cv2.imread(str(SAMPLE_FACES_DIR / "ame.jpg"))
    cv2.imwrite(image, cv2.copyMakeBorder(face, 160, 160, 160, 160, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    config = tmp_path / "animerec.toml"
    config.write_text("[overlay]\ntop3 = false\n")
    outputs = [tmp_path / "top3.png", tmp_path / "name-only.png"]
    assert cli.main(["predict", image, "-o", str(outputs[0]), "--set", "overlay.top3=true"]) == 0
    assert cli.main(["predict", image, "-o", str(outputs[1]), "--config", str(config)]) == 0
    top3, name_only = (cv2.imread(str(path)) for path in outputs)
    assert top3.shape == name_only.shape and not np.array_equal(top3, name_only)  # overlay.top3 honoured
    assert cli.main(["predict", image, "--set", "overlay.nope=1"]) == 2
    assert "unknown configuration key overlay.nope" in capsys.readouterr().err


def test_progress_off_a_terminal_is_a_plain_line_every_tenth(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    with progress(20, "clip.mp4", "frame") as bar:
        for _ in range(20):
            bar.update()
    with progress(None, "stream", "frame") as bar:
        bar.update(7)
    with progress(20, "interrupted", "frame") as bar:
        bar.update(9)
    with progress(20, "erased", "frame", leave=False) as bar:  # as tqdm erases it: no closing line
        bar.update(3)
    assert list(tracked(["a", "b"], "listed", "image")) == ["a", "b"]
    assert stderr.getvalue().splitlines() == [
        *(f"clip.mp4: {10 * k}% ({2 * k}/20 frames)" for k in range(1, 11)),
        "stream: 7 frames",
        "interrupted: 40% (9/20 frames)", "interrupted: 9/20 frames",
        "erased: 10% (3/20 frames)",
        "listed: 50% (1/2 images)", "listed: 100% (2/2 images)",
    ]


def test_annotate_to_a_pipe_writes_no_bar_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = make_test_video(tmp_path / "clip.mp4", frames=10, audio=False)
    assert cli.main(["annotate", str(video), "-o", str(tmp_path / "out.mp4")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b[" not in err
    assert "clip.mp4: 100% (10/10 frames)" in err


def test_a_missing_camera_is_one_line_and_not_retried(tmp_path: Path) -> None:
    result = animerec("run", "--source", "9", "--jsonl", str(tmp_path / "x.jsonl"))
    assert result.returncode == 1
    assert "camera 9: cannot be opened" in result.stderr
    assert "[ WARN" not in result.stderr and "[ERROR" not in result.stderr  # OpenCV's own log
    assert "trying again" not in result.stderr
    assert "classifier" not in result.stderr  # the cheap check first: the model was never loaded


def test_doctor_probes_the_camera_without_opencv_log() -> None:
    result = animerec("doctor", "--camera", "9")
    assert "camera 9 not available: cannot be opened" in result.stdout
    assert "[ WARN" not in result.stdout + result.stderr and "[ERROR" not in result.stdout + result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY decides only on Linux")
def test_the_screen_without_a_display_is_not_retried(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = animerec("run", "--source", "screen", "--jsonl", str(tmp_path / "x.jsonl"), env=env)
    assert result.returncode == 1 and "screen 1: no display to capture" in result.stderr
    assert "trying again" not in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY decides only on Linux")
def test_run_without_outputs_and_without_a_display_says_why(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert cli.main(["run", "--source", "0"]) == 2
    assert "no window without a display" in capsys.readouterr().err


def test_run_without_outputs_shows_a_window_where_there_is_a_display(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from animerec.realtime import window

    opened: list[str] = []

    class FakeWindow:
        def __init__(self, title: str) -> None:
            opened.append(title)

        def close(self) -> None:
            pass

    monkeypatch.setattr(window, "display_problem", lambda: None)
    monkeypatch.setattr(window, "Window", FakeWindow)
    missing = tmp_path / "missing.mp4"
    assert cli.main(["run", "--source", str(missing)]) == 1  # the source fails after the choice
    assert "showing the frames in a window (--show)" in capsys.readouterr().err
    assert opened == [f"animerec - {missing}"]


def _report_without_tensorflow() -> dict[str, Any]:
    why = "tensorflow is not installed (it comes with the train extra: pip install -e '.[train]')"
    workload = {"name": "synthetic-720p", "kind": "synthetic", "height": 720, "fps": 30.0,
                "speedup_vs_report_loop": None, "report_loop": {"skipped": why},
                "live": {"latency_ms": {"p95": 50.0}, "dropped_share": 0.0, "seconds": 3}}
    return {"workloads": [workload], "baselines": {"report_loop": {"skipped": why}},
            "memory": {"peak_rss_mb": 500.0}}


def test_bench_counts_unmeasured_targets_as_skipped_and_says_why() -> None:
    rows = {row["name"]: row for row in evaluate(_report_without_tensorflow())}
    speedup = rows["speedup_vs_report_loop[synthetic-720p]"]
    assert speedup["skipped"] and not speedup["met"] and "tensorflow is not installed" in speedup["note"]
    assert rows["onnx_batched_speedup_per_face"]["skipped"]
    assert not rows["live_latency_p95_ms[synthetic-720p]"]["skipped"]
    measured = [row for row in rows.values() if not row["skipped"]]
    text = summary(list(rows.values()))
    assert text.startswith(f"{sum(row['met'] for row in measured)} of {len(measured)} targets met; ")
    assert f"{len(rows) - len(measured)} skipped, not measured here: " in text and "tensorflow" in text


def test_bench_markdown_marks_skipped_targets() -> None:
    report = _report_without_tensorflow()
    report["targets"] = evaluate(report)
    table = "\n".join(_targets(report))
    assert "| speedup_vs_report_loop[synthetic-720p] | – | >= 8 | skipped | report's loop skipped: tensorflow" in table


def _subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(command words, parser) for every subcommand and sub-subcommand."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [((*path, name), sub), *_subcommands(sub, (*path, name))]
    return found


def test_every_command_help_has_a_description_and_examples() -> None:
    commands = _subcommands(cli.build_parser())
    assert len(commands) >= 15
    for words, parser in commands:
        text = parser.format_help()
        assert parser.description and "\n" not in parser.description.strip(), words
        examples = text.split("\nexamples:\n", 1)[1].splitlines()
        assert 1 <= len(examples) <= 3 and all(line.startswith(f"  animerec {words[0]}") for line in examples), words
    annotate = dict(commands)[("annotate",)]
    assert annotate.format_usage().startswith("usage: animerec annotate IN -o OUT")
