"""Sources: order, loss and drop counting for files, live fakes, damaged inputs, images, screen."""

from __future__ import annotations

import functools
import itertools
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest
from media import make_test_video, read_index, synthetic_frame
from numpy.typing import NDArray

from animerec.errors import InputError, UsageError
from animerec.realtime import capture
from animerec.realtime.capture import ImageSource, open_source
from animerec.realtime.live_source import LiveSource
from animerec.realtime.protocols import Source
from animerec.realtime.threaded_source import Backoff, GrabError
from animerec.records import Frame

FPS = 30


def take(source: Source, limit: int = 10_000, delay_s: float = 0.0) -> list[Frame]:
    """Up to `limit` frames, sleeping `delay_s` after each like a slow pipeline would."""
    frames = []
    stop = threading.Event()
    for frame in source.frames(stop):
        frames.append(frame)
        if len(frames) >= limit:
            stop.set()
        time.sleep(delay_s)
    return frames


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    return make_test_video(path, frames=40, fps=FPS)


# --- files -------------------------------------------------------------------------------------
def test_file_source_yields_every_frame_in_order(video: Path) -> None:
    source = open_source(str(video))
    try:
        assert (source.info.live, source.info.width, source.info.height) == (False, 160, 120)
        assert (source.info.fps, source.info.frame_count, source.info.path) == (FPS, 40, video)
        frames = take(source, delay_s=0.002)  # a consumer slower than the decoder loses nothing
    finally:
        source.close()
    assert [f.index for f in frames] == list(range(40))
    assert [read_index(f.image) for f in frames] == list(range(40))
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(40)], abs=1e-3)
    assert all(f.source_id == str(video) for f in frames)
    assert all(a.captured_at <= b.captured_at for a, b in itertools.pairwise(frames))
    assert (source.dropped, source.errors) == (0, 0)


def test_paced_file_source_is_live_and_counts_drops(video: Path) -> None:
    source = open_source(str(video), paced=True)
    started = time.monotonic()
    try:
        assert source.info.live
        frames = take(source, delay_s=0.1)  # about 3 frames' worth of time per frame taken
    finally:
        source.close()
    elapsed = time.monotonic() - started
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)), "newest frames, in order, never one twice"
    assert [read_index(f.image) for f in frames] == indices
    assert source.dropped > 0 and len(frames) + source.dropped == 40
    assert elapsed >= 40 / FPS * 0.9, "played at its native rate"


def test_looping_file_keeps_indices_and_times_rising(tmp_path: Path) -> None:
    path = make_test_video(tmp_path / "short.mp4", frames=10, fps=FPS, audio=False)
    source = open_source(str(path), loop=True)
    try:
        assert source.info.frame_count == 0  # endless
        frames = take(source, limit=25)
    finally:
        source.close()
    assert [f.index for f in frames] == list(range(25))
    assert [read_index(f.image) for f in frames] == [i % 10 for i in range(25)]
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(25)], abs=1e-3)


def test_stop_and_close_end_a_blocked_decoder_promptly(video: Path) -> None:
    source = open_source(str(video))
    frames = take(source, limit=2)  # the decoder is now blocked on a full queue
    started = time.monotonic()
    source.close()
    source.close()
    assert len(frames) == 2 and time.monotonic() - started < 1.0
    assert not any(t.name.startswith("decode-") and t.is_alive() for t in threading.enumerate())


def test_truncated_file_yields_what_decodes(video: Path, tmp_path: Path) -> None:
    data = video.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    source = open_source(str(truncated))
    try:
        frames = take(source)
    finally:
        source.close()
    assert 0 < len(frames) < 40
    assert [read_index(f.image) for f in frames] == list(range(len(frames)))


def test_damaged_middle_is_skipped_without_crashing(video: Path, tmp_path: Path) -> None:
    data = bytearray(video.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = np.random.default_rng(0).integers(0, 256, 3000, np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    source = open_source(str(damaged))
    try:
        frames = take(source)
    finally:
        source.close()
    assert len(frames) >= 10 and source.errors > 0
    assert [f.index for f in frames] == list(range(len(frames)))


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes())


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


@pytest.mark.parametrize(
    ("name", "build", "message"),
    [
        ("random.mp4", _random_bytes, "not a video"),
        ("empty.mp4", lambda p: p.write_bytes(b""), "empty file"),
        ("missing.mp4", lambda p: None, "no such file"),
        ("sound.m4a", _audio_only, "no video stream"),
    ],
)
def test_unusable_files_are_named_in_an_input_error(
    tmp_path: Path, name: str, build: Callable[[Path], None], message: str
) -> None:
    path = tmp_path / name
    build(path)
    with pytest.raises(InputError, match=message) as raised:
        open_source(str(path))
    assert str(path) in str(raised.value)


# --- images ------------------------------------------------------------------------------------
def test_image_folder_yields_sorted_images_and_counts_unreadable(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"{i}.png"), synthetic_frame(i))
    (tmp_path / "0b.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored: not an image")
    source = open_source(str(tmp_path))
    frames = take(source)
    assert isinstance(source, ImageSource) and not source.info.live
    assert (source.info.width, source.info.height, source.info.source_id) == (160, 120, str(tmp_path))
    assert [read_index(f.image) for f in frames] == [0, 1, 2]
    assert [f.index for f in frames] == [0, 1, 2]
    assert source.errors == 1 and source.dropped == 0
    assert open_source(str(tmp_path / "1.png")).info.frame_count == 1


def test_folder_without_readable_images_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no images"):
        open_source(str(tmp_path))
    (tmp_path / "bad.jpg").write_bytes(b"junk")
    with pytest.raises(InputError, match="could be read"):
        open_source(str(tmp_path))


# --- live: a fake camera drives the grab thread ------------------------------------------------
class FakeCamera:
    """A camera producing numbered frames every `period_s`; it can fail to open `refuse` times
    and can break once after `break_after` frames, as an unplugged camera does."""

    def __init__(self, period_s: float = 0.002, refuse: int = 0, break_after: int = -1) -> None:
        self.name = "fake camera"
        self.errors = 0
        self.period_s = period_s
        self.refuse = refuse
        self.break_after = break_after
        self.grabbed = 0
        self.opens = 0

    def open(self) -> tuple[int, int, float]:
        self.opens += 1
        if self.refuse > 0:
            self.refuse -= 1
            raise GrabError("busy")
        return 160, 120, 500.0

    def read(self, stop: threading.Event) -> NDArray[np.uint8] | None:
        if self.grabbed == self.break_after:
            self.break_after = -1
            raise GrabError("unplugged")
        time.sleep(self.period_s)
        self.grabbed += 1
        return synthetic_frame(self.grabbed - 1)

    def close(self) -> None:
        pass


def fast_live(camera: FakeCamera, **kwargs: int) -> LiveSource:
    return LiveSource(camera, "fake", backoff=Backoff(0.01, 0.05), **kwargs)


def test_live_source_keeps_newest_and_counts_drops() -> None:
    source = fast_live(FakeCamera())
    try:
        assert source.info.live and (source.info.width, source.info.fps) == (160, 500.0)
        frames = take(source, limit=5, delay_s=0.03)
    finally:
        source.close()
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)) and [read_index(f.image) for f in frames] == indices
    assert indices[-1] - indices[0] > 4, "older frames were skipped for newer ones"
    assert source.dropped >= indices[-1] - len(frames)


def test_live_source_reconnects_after_unplugging(caplog: pytest.LogCaptureFixture) -> None:
    camera = FakeCamera(break_after=3)
    with caplog.at_level(logging.WARNING):
        source = fast_live(camera)
        try:
            frames = take(source, limit=8, delay_s=0.005)
        finally:
            source.close()
    assert len(frames) == 8 and camera.opens == 2
    assert source.errors == 1
    assert "unplugged; reconnecting" in caplog.text


def test_live_source_retries_at_start_then_gives_up() -> None:
    source = fast_live(FakeCamera(refuse=1), start_attempts=2)  # second try works
    source.close()
    camera = FakeCamera(refuse=5)
    with pytest.raises(InputError, match="fake camera: busy"):
        fast_live(camera, start_attempts=3)
    assert camera.opens == 3


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "FIRST_RETRY_S", 0.01)


def test_missing_webcam_is_an_input_error(quick_retries: None) -> None:
    with pytest.raises(InputError, match="camera 37"):
        open_source("37")


@pytest.mark.parametrize(
    ("spec", "error"),
    [("ftp://example.invalid/x", UsageError), ("rtsp://127.0.0.1:9/none", InputError)],
)
def test_bad_stream_urls(quick_retries: None, spec: str, error: type[Exception]) -> None:
    with pytest.raises(error, match=spec.split("/")[0]):
        open_source(spec)


def test_http_stream_is_live_and_paced(video: Path) -> None:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(video.parent))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, name="test-http", daemon=True).start()
    try:
        source = open_source(f"http://127.0.0.1:{server.server_address[1]}/{video.name}")
        started = time.monotonic()
        try:
            assert source.info.live and (source.info.width, source.info.height) == (160, 120)
            frames = take(source, limit=8, delay_s=0.05)
        finally:
            source.close()
    finally:
        server.shutdown()
        server.server_close()
    indices = [f.index for f in frames]
    assert indices == sorted(set(indices)) and [read_index(f.image) for f in frames] == indices
    assert source.dropped > 0 and time.monotonic() - started >= indices[-1] / FPS * 0.9


# --- the screen, on a real X server ------------------------------------------------------------
@pytest.fixture
def xvfb(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A throwaway X display (640x480) for this test only."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed: `apt-get install -y xvfb` (the CI setup does this)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as announced:
            number = announced.readline().strip()  # written once the server is ready
        if not number:
            pytest.fail(f"Xvfb did not start (exit code {server.poll()})")
        monkeypatch.setenv("DISPLAY", f":{number}")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(5)


def test_screen_capture_grabs_the_whole_screen_and_a_region(xvfb: str) -> None:
    source = open_source("screen")
    try:
        assert source.info.live and (source.info.width, source.info.height) == (640, 480)
        frames = take(source, limit=2)
    finally:
        source.close()
    assert [f.image.shape for f in frames] == [(480, 640, 3)] * 2 and frames[0].index < frames[1].index
    region = open_source("screen:1", screen_region=(10, 20, 100, 50))
    try:
        assert take(region, limit=1)[0].image.shape == (50, 100, 3)
    finally:
        region.close()
    with pytest.raises(InputError, match="no such monitor"):
        open_source("screen:3")
    with pytest.raises(InputError, match="does not fit"):
        open_source("screen", screen_region=(600, 0, 100, 100))
