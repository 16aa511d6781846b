"""`animerec annotate` and `animerec run` end to end, on the real parts: PyAV in and out, the
cascade, the bundled ONNX model, the pipeline's threads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import decode_audio, decode_video, make_test_video, read_index

from animerec import cli
from animerec.paths import DEFAULT_MODEL_PATH, SAMPLE_FACES_DIR
from animerec.realtime import jsonl

FACES = SAMPLE_FACES_DIR
# Two fixture faces the cascade finds on every frame of the generated video, at known places.
PLACED = (("gura", (40, 100)), ("kiara", (380, 120)))
FRAMES = 45
# One label line per face keeps the labels clear of the index drawn in the top rows.
ONE_LINE = ["--set", "overlay.top3=false"]

needs_model = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="bundled model not built yet")


@pytest.fixture(autouse=True)
def no_default_gallery(tmp_path, monkeypatch):
    """A gallery someone enrolled on this machine must not change what these tests see."""
    monkeypatch.setenv("ANIMEREC_GALLERY", str(tmp_path / "no-gallery.json"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    faces = [(cv2.imread(str(FACES / f"{name}.jpg")), place) for name, place in PLACED]
    path = tmp_path_factory.mktemp("clip") / "faces.mp4"
    return make_test_video(path, frames=FRAMES, size=(640, 360), faces=faces, audio=True)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@needs_model
def test_annotate_one_video(clip, tmp_path, capsys):
    out, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    assert cli.main(["annotate", str(clip), "-o", str(out), "--jsonl", str(lines), *ONE_LINE]) == 0
    err = capsys.readouterr().err
    assert "classifier default.onnx on" in err  # the execution provider, on stderr
    assert "45/45" in err  # the progress bar reached the end

    frames = decode_video(out)
    assert [read_index(image) for image, _ in frames] == list(range(FRAMES))  # all, in order
    samples, rate = decode_audio(out)
    assert samples.shape[1] / rate == pytest.approx(FRAMES / 30, abs=0.1)  # the audio came along

    rows = read_jsonl(lines)
    assert [row["index"] for row in rows] == list(range(FRAMES))
    assert rows[1]["time"] == pytest.approx(1 / 30, abs=1e-3)
    for row in rows:
        boxes = sorted(face["box"] for face in row["faces"])
        assert len(boxes) == 2, row
        for (x, y, w, _h), (_, (px, py)) in zip(boxes, PLACED, strict=True):
            assert abs(x - px) < 30 and abs(y - py) < 30 and abs(w - 192) < 40
        for face in row["faces"]:
            assert face["track"] is not None and len(face["top"]) == 3
            assert face["name"] in (face["top"][0][0], "unknown") and 0 < face["confidence"] <= 1
    tracks = {face["track"] for row in rows for face in row["faces"]}
    assert len(tracks) == 2  # one track per face for the whole clip
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind

    # The summary, as folder mode gives it: frames, faces, and each character's time on screen.
    assert f"animerec: faces.mp4: {FRAMES} frames, {2 * FRAMES} faces, 1.5 s of video" in err
    named = {face["name"] for row in rows for face in row["faces"]} - {"unknown"}
    seen = err.split("animerec: on screen: ")[1].splitlines()[0]  # "gura 1.5 s, kiara 1.2 s"
    on_screen = [] if seen == "no named character" else [part.rsplit(" ", 2)[0] for part in seen.split(", ")]
    assert sorted(on_screen) == sorted(named)
    assert "partial" not in err


@needs_model
def test_annotate_takes_the_gallery_and_threshold_from_flags_or_configuration(clip, tmp_path, capsys):
    """An enrolled character is named in a video with no retraining; the unknown threshold comes
    from --unknown-threshold or classifier.unknown_threshold; a foreign gallery is refused."""
    gallery = tmp_path / "mine.json"
    first_frame = decode_video(clip)[0][0]
    left_half = tmp_path / "left.png"  # holds the first face only, framed as in the video
    cv2.imwrite(str(left_half), first_frame[:, :320])
    assert cli.main(["enroll", "初音ミク", str(left_half), "--gallery", str(gallery)]) == 0
    runs = {
        "gallery": ["--gallery", str(gallery)],
        "configured": ["--set", f"classifier.gallery='{gallery}'", "--set", "classifier.unknown_threshold=1.0"],
        "flag": ["--unknown-threshold", "1"],
    }
    names = {}
    for label, extra in runs.items():
        lines = tmp_path / f"{label}.jsonl"
        assert cli.main(["annotate", str(clip), "-o", str(tmp_path / f"{label}.mp4"), "--jsonl", str(lines),
                         *extra]) == 0
        names[label] = {face["name"] for row in read_jsonl(lines) for face in row["faces"]}
    assert "初音ミク" in names["gallery"]
    assert names["configured"] == names["flag"] == {"unknown"}
    capsys.readouterr()
    missing = str(tmp_path / "none.json")
    assert cli.main(["annotate", str(clip), "-o", str(tmp_path / "x.mp4"), "--gallery", missing]) == 2
    assert cli.main(["annotate", str(clip), "-o", str(tmp_path / "y.mp4"),
                     "--set", "classifier.unknown_threshold=2"]) == 2
    assert "classifier.unknown_threshold must be between" in capsys.readouterr().err


@needs_model
def test_annotate_a_folder_names_unreadable_videos_and_exits_3(tmp_path, capsys):
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    make_test_video(videos / "a.mp4", frames=8, audio=False)
    make_test_video(videos / "sub" / "b.mkv", frames=5, audio=True)
    (videos / "broken.mp4").write_bytes(b"this is not a video" * 100)
    out = tmp_path / "annotated"
    assert cli.main(["annotate", str(videos), "-o", str(out)]) == 3
    err = capsys.readouterr().err
    assert "broken.mp4" in err
    assert len(decode_video(out / "a.mp4")) == 8 and len(read_jsonl(out / "a.jsonl")) == 8
    assert len(decode_video(out / "sub" / "b.mp4")) == 5 and len(read_jsonl(out / "sub" / "b.jsonl")) == 5
    names = sorted(p.name for p in out.rglob("*"))
    assert names == [".library.lock", "a.jsonl", "a.mp4", "b.jsonl", "b.mp4", "library.sqlite", "sub"]

    # Outputs the library index does not know are never replaced without --overwrite, and the
    # refusal comes first. (With the index, a second run resumes: see test_library_local.py.)
    (out / "library.sqlite").unlink()
    assert cli.main(["annotate", str(videos), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@needs_model
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_finalises_the_partial_output_and_exits_130(clip, tmp_path, monkeypatch, capsys):
    write = jsonl.JsonLinesWriter.write

    def ctrl_c_while_writing_frame_10(self, item):
        if item.frame.index == 10:  # after the video got the frame, before its line is written
            os.kill(os.getpid(), signal.SIGINT)
        write(self, item)

    monkeypatch.setattr(jsonl.JsonLinesWriter, "write", ctrl_c_while_writing_frame_10)
    out, lines = tmp_path / "partial.mp4", tmp_path / "partial.jsonl"
    assert cli.main(["annotate", str(clip), "-o", str(out), "--jsonl", str(lines), *ONE_LINE]) == 130
    # The frame being written when Ctrl-C came went to both files: they stay in step.
    assert [row["index"] for row in read_jsonl(lines)] == list(range(11))
    assert [read_index(image) for image, _ in decode_video(out)] == list(range(11))  # a valid, playable file
    assert not list(tmp_path.glob(".*"))
    err = capsys.readouterr().err
    assert "faces.mp4: 11 frames, 22 faces" in err and "(partial: interrupted)" in err


@needs_model
def test_a_single_video_that_cannot_be_read_exits_1(tmp_path, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    assert cli.main(["annotate", str(broken), "-o", str(tmp_path / "out.mp4")]) == 1  # nothing was done
    assert "broken.mp4" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_annotate_refuses_missing_input_and_bad_config(tmp_path, capsys):
    assert cli.main(["annotate", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "o.mp4")]) == 2
    clip = make_test_video(tmp_path / "c.mp4", frames=2, audio=False)
    args = ["annotate", str(clip), "-o", str(tmp_path / "o.mp4"), "--set", "pipeline.max_batch=0"]
    assert cli.main(args) == 2
    assert "pipeline.max_batch must be between 1 and 256, got 0" in capsys.readouterr().err


def test_run_show_without_a_display_is_a_clear_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert cli.main(["run", "--source", "0", "--show"]) == 2
    assert "--show needs a display" in capsys.readouterr().err


@needs_model
def test_run_a_paced_file_to_json_lines(tmp_path, capsys):
    clip = make_test_video(tmp_path / "live.mp4", frames=20, size=(320, 180), audio=False)
    lines = tmp_path / "live.jsonl"
    assert cli.main(["run", "--source", str(clip), "--jsonl", str(lines), "--stats"]) == 0
    indices = [row["index"] for row in read_jsonl(lines)]
    assert indices == sorted(indices) and len(set(indices)) == len(indices) and indices[-1] == 19
    stats = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert {"fps", "latency_ms", "dropped", "provider"} <= stats.keys()
    assert stats["frames_out"] == len(indices)
    assert np.isfinite(stats["latency_ms"]["p95"])


@needs_model
def test_python_api(clip):
    from animerec.api import annotate_frames, recognise

    face = cv2.imread(str(FACES / "gura.jpg"))
    image = cv2.copyMakeBorder(face, 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    faces = recognise(image)
    assert len(faces) == 1 and faces.names[0] in faces.top_names[0] + ("unknown",)
    items = list(annotate_frames(clip))
    assert [item.frame.index for item in items] == list(range(FRAMES))
    assert all(len(item.faces) == 2 for item in items)
    assert items[0].annotated.shape == (360, 640, 3)


@needs_model
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_stops_run_within_two_seconds_and_keeps_the_recording(clip, tmp_path):
    lines = tmp_path / "live.jsonl"
    command = [sys.executable, "-m", "animerec", "run", "--source", str(clip), "--loop",
               "--jsonl", str(lines)]
    env = {**os.environ, "ANIMEREC_GALLERY": str(tmp_path / "none.json")}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _has_lines(tmp_path):  # running, writing
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = process.wait(timeout=10)
        assert time.monotonic() - sent < 2.5  # 2 s to stop, plus interpreter exit
    finally:
        process.kill()
    assert code == 130, process.stderr.read() if process.stderr else ""
    rows = read_jsonl(lines)  # renamed to its final name, every line complete
    assert rows and [row["index"] for row in rows] == sorted(row["index"] for row in rows)


def _has_lines(folder: Path) -> bool:
    return any(path.stat().st_size > 0 for path in folder.glob(".live.*.jsonl"))
