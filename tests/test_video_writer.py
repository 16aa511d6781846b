"""The video sink: H.264 MP4 with the source's timing, frames and audio, and clear failures."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from media import decode_audio, decode_video, make_test_video, read_index, synthetic_frame

from animerec.errors import AnimerecError, InputError
from animerec.realtime.capture import open_source
from animerec.realtime.protocols import SourceInfo
from animerec.realtime.video_writer import VideoWriter
from animerec.records import AnnotatedFrame, Faces, Frame


def transcode(source_path: Path, out: Path, *, audio: bool = True, limit: int = 0) -> int:
    """Copy a video through open_source and VideoWriter, as `annotate` does; frames written."""
    source = open_source(str(source_path))
    writer = VideoWriter(out, source.info, audio_from=source.info.path if audio else None)
    try:
        for frame in source.frames(threading.Event()):
            writer.write(AnnotatedFrame(frame, Faces.empty(), frame.image))
            if writer.frames_written == limit:
                break
    finally:
        writer.close()
        source.close()
    return writer.frames_written


def streams(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name) for s in container.streams]


def assert_same_audio(source: Path, copy: Path) -> None:
    expected, expected_rate = decode_audio(source)
    actual, actual_rate = decode_audio(copy)
    assert actual_rate == expected_rate and actual.shape[0] == expected.shape[0]
    assert abs(actual.shape[1] - expected.shape[1]) / expected_rate < 0.05  # duration within 50 ms
    n = min(actual.shape[1], expected.shape[1])
    for channel in range(expected.shape[0]):
        assert np.corrcoef(expected[channel, :n], actual[channel, :n])[0, 1] > 0.9


def test_copies_frames_timing_and_aac_audio(tmp_path: Path) -> None:
    source = make_test_video(tmp_path / "in.mp4", frames=45, fps=25)
    out = tmp_path / "out.mp4"
    assert transcode(source, out) == 45
    frames = decode_video(out)
    assert [read_index(image) for image, _ in frames] == list(range(45))
    assert [t for _, t in frames] == pytest.approx([i / 25 for i in range(45)], abs=1e-3)
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    assert_same_audio(source, out)


def test_reencodes_audio_mp4_does_not_take_and_drops_data_tracks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # MPEG-TS starts its clock at 1.4 s: the audio must still line up with the video's start.
    source = make_test_video(
        tmp_path / "in.ts", frames=30, audio_codec="mp2", sample_rate=48000, data_track=True
    )
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO):
        assert transcode(source, out) == 30
    assert streams(out) == [("video", "h264"), ("audio", "aac")]
    assert "re-encoding mp2 audio track" in caplog.text and "dropping data track" in caplog.text
    assert_same_audio(source, out)


def test_pads_odd_sizes_to_even(tmp_path: Path) -> None:
    source = make_test_video(tmp_path / "odd.mkv", frames=8, size=(161, 121), audio=False)
    out = tmp_path / "out.mp4"
    assert transcode(source, out) == 8
    frames = decode_video(out)
    assert len(frames) == 8 and frames[0][0].shape == (122, 162, 3)
    image = frames[0][0].astype(int)
    assert np.abs(image[:, -1] - image[:, -2]).mean() < 8, "the new column repeats the edge"
    assert [read_index(image[:, :160]) for image, _ in frames] == list(range(8))


def test_video_without_audio(tmp_path: Path) -> None:
    source = make_test_video(tmp_path / "silent.mp4", frames=10, audio=False)
    out = tmp_path / "out.mp4"
    assert transcode(source, out) == 10
    assert streams(out) == [("video", "h264")]


def test_interrupted_run_leaves_a_valid_file_with_audio_cut_to_match(tmp_path: Path) -> None:
    source = make_test_video(tmp_path / "in.mp4", frames=60, fps=30)
    out = tmp_path / "out.mp4"
    assert transcode(source, out, limit=15) == 15  # as if Ctrl-C came after 15 frames
    assert len(decode_video(out)) == 15
    samples, rate = decode_audio(out)
    assert abs(samples.shape[1] / rate - 0.5) < 0.05


def frame_item(index: int, time: float, size: tuple[int, int] = (160, 120)) -> AnnotatedFrame:
    image = synthetic_frame(index, size)
    return AnnotatedFrame(Frame(image, index, 0.0, time), Faces.empty(), image)


def test_timestamps_follow_frame_times_and_close_is_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "gaps.mp4"
    writer = VideoWriter(out, SourceInfo("live", True, 160, 120, 0.0))  # unknown rate: 30
    times = [0.0, 0.1, 0.5, 1.0]  # a live source that dropped frames
    for index, time in enumerate(times):
        writer.write(frame_item(index, time))
    writer.close()
    writer.close()
    assert [t for _, t in decode_video(out)] == pytest.approx(times, abs=1e-3)
    with pytest.raises(AnimerecError, match="after close"):
        writer.write(frame_item(9, 2.0))


def test_frames_of_another_size_are_scaled_and_no_frames_still_make_a_file(tmp_path: Path) -> None:
    info = SourceInfo("x", False, 160, 120, 30.0)
    resized = tmp_path / "resized.mp4"
    with_frames = VideoWriter(resized, info)
    with_frames.write(frame_item(0, 0.0, size=(320, 240)))
    with_frames.close()
    assert decode_video(resized)[0][0].shape == (120, 160, 3)
    empty = tmp_path / "empty.mp4"
    VideoWriter(empty, info).close()
    assert streams(empty) == []  # a valid MP4, not a missing or broken file


@pytest.mark.parametrize("where", ["missing folder", "a folder", "full disk"])
def test_unwritable_outputs_fail_clearly_at_once(tmp_path: Path, where: str) -> None:
    path = {
        "missing folder": tmp_path / "nowhere" / "out.mp4",
        "a folder": tmp_path / "folder.mp4",
        "full disk": tmp_path / "full.mp4",  # /dev/full under a name the writer accepts
    }[where]
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "full.mp4").symlink_to("/dev/full")
    with pytest.raises(InputError, match=f"cannot write {path}"):
        VideoWriter(path, SourceInfo("x", False, 160, 120, 30.0))


DISK_FILLS_UP = """
import resource, signal, sys
from pathlib import Path
import numpy as np
from animerec.errors import AnimerecError
from animerec.realtime.protocols import SourceInfo
from animerec.realtime.video_writer import VideoWriter
from animerec.records import AnnotatedFrame, Faces, Frame

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (30_000, 30_000))
writer = VideoWriter(Path(sys.argv[1]), SourceInfo("x", False, 160, 120, 30.0))
noise = np.random.default_rng(0)
try:  # noise does not compress: the limit is reached while frames are still being written
    for index in range(100):
        image = noise.integers(0, 256, (120, 160, 3), np.uint8)
        writer.write(AnnotatedFrame(Frame(image, index, 0.0, index / 30), Faces.empty(), image))
except AnimerecError as error:
    print(error)
writer.close()
writer.close()
print("closed")
"""


def test_a_disk_filling_up_mid_write_is_a_clear_error_not_a_crash(tmp_path: Path) -> None:
    out = tmp_path / "big.mp4"
    run = subprocess.run(
        [sys.executable, "-c", DISK_FILLS_UP, str(out)],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [f"cannot write {out}: File too large", "closed"]
