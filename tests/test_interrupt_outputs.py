"""After Ctrl-C or SIGTERM at any moment, an output name holds nothing or a whole, playable file.

The real command runs in a subprocess and is interrupted at a sweep of moments: while it starts,
as its temporary files appear, while it writes, and while it finalises. Each time, either no file
is at the output names (nothing was done) or both are, the video playable with exactly as many
decodable frames as the JSON Lines file has lines, in order (CONTRACTS.md, issue 14).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from media import make_test_video, read_index

from animerec.paths import DEFAULT_MODEL_PATH

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="bundled model not built yet"),
]

# Seconds after the first temporary output appears: at once (the writers are being opened), while
# the pipeline starts, around the first keyframe (the encoder holds the first frames back), mid-run.
AFTER_TEMPORARY_S = (0.0, 0.05, 0.25, 0.5)
BEFORE_OUTPUTS_S = 0.3  # after the start: still importing, no output opened yet


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_test_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=90, size=(320, 180), audio=True)


def start(arguments: list[str], folder: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "ANIMEREC_GALLERY": str(folder / "no-gallery.json")}
    return subprocess.Popen([sys.executable, "-m", "animerec", *arguments], stderr=subprocess.PIPE, text=True,
                            env=env)


def interrupt_when(process: subprocess.Popen[str], appeared: Path | None, delay_s: float,
                   signum: int) -> tuple[int, str]:
    """Send `signum` `delay_s` after a hidden file appears in `appeared` (or after the start),
    then wait for the command to finish; returns its exit code and standard error."""
    deadline = time.monotonic() + 60
    while appeared is not None and process.poll() is None and time.monotonic() < deadline:
        if any(path.name.startswith(".") and path.suffix in (".mp4", ".jsonl") for path in appeared.iterdir()):
            break
        time.sleep(0.005)
    time.sleep(delay_s)
    if process.poll() is None:
        process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return process.returncode, err


def check_outputs(video: Path, lines: Path) -> int:
    """Nothing at either name, or a playable video whose frames match the lines one to one;
    returns the number of frames (0 for nothing)."""
    assert video.exists() == lines.exists(), (video.exists(), lines.exists())
    if not video.exists():
        return 0
    rows = [json.loads(line) for line in lines.read_text(encoding="utf-8").splitlines()]
    with av.open(str(video)) as container:
        assert container.streams.video, "a file without a video stream"
        indices = [read_index(frame.to_ndarray(format="bgr24")) for frame in container.decode(video=0)]
    assert len(indices) == len(rows) > 0
    assert indices == [row["index"] for row in rows] == list(range(len(rows)))
    return len(rows)


def test_single_file_annotate_keeps_a_valid_output_after_ctrl_c_at_any_moment(clip: Path, tmp_path: Path) -> None:
    moments = [(None, BEFORE_OUTPUTS_S)] + [(tmp_path, delay) for delay in AFTER_TEMPORARY_S]
    outcomes = []
    for attempt, (watch, delay) in enumerate(moments):
        video, lines = tmp_path / f"out{attempt}.mp4", tmp_path / f"out{attempt}.jsonl"
        process = start(["annotate", str(clip), "-o", str(video), "--jsonl", str(lines)], tmp_path)
        code, err = interrupt_when(process, watch, delay, signal.SIGINT)
        assert code in (0, 130, -signal.SIGINT), err  # killed by the signal: still importing
        frames = check_outputs(video, lines)
        assert (code == 0) <= (frames == 90), err
        assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], err  # no temporary left
        outcomes.append(frames)
    assert outcomes[0] == 0  # interrupted before any output was opened: nothing at the names
    assert any(0 < frames < 90 for frames in outcomes), outcomes  # the sweep did hit the writing


def test_library_job_leaves_no_empty_outputs_after_sigterm_before_the_first_frame(clip: Path,
                                                                                   tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    os.link(clip, videos / "a.mp4")
    for attempt, delay in enumerate((0.0, 0.1)):
        out = tmp_path / f"library{attempt}"
        out.mkdir()
        process = start(["annotate", str(videos), "-o", str(out), "--jobs", "1"], tmp_path)
        code, err = interrupt_when(process, out, delay, signal.SIGTERM)
        assert code in (0, 130), err
        check_outputs(out / "a.mp4", out / "a.jsonl")
