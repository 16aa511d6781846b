"""`animerec serve` and the virtual camera sink: flags, refusals, and one real end-to-end run."""

from __future__ import annotations

import argparse
import asyncio
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from media import make_test_video
from test_server_support import background, known_faces

from animerec import cli
from animerec.commands.serve import server_settings
from animerec.config import ServerConfig
from animerec.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from animerec.records import AnnotatedFrame, Frame

pytestmark = pytest.mark.timeout(20)


def forbid_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command gets as far as loading the model or opening the source."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the source or model was opened before the refusal")

    monkeypatch.setattr("animerec.realtime.capture.open_source", refuse)
    monkeypatch.setattr("animerec.api.load_classifier", refuse)


def test_non_loopback_host_without_token_exits_2_before_opening_the_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forbid_work(monkeypatch)
    assert cli.main(["serve", "--source", "missing.mp4", "--host", "0.0.0.0"]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert "--token" in captured.err and captured.out == ""


def test_missing_pyvirtualcam_is_a_usage_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forbid_work(monkeypatch)
    monkeypatch.setitem(sys.modules, "pyvirtualcam", None)  # import fails as if not installed
    assert cli.main(["serve", "--source", "missing.mp4", "--virtualcam"]) == EXIT_USAGE
    assert "pip install animerec[virtualcam]" in capsys.readouterr().err


def test_flags_override_the_configuration_and_are_validated() -> None:
    args = argparse.Namespace(host="0.0.0.0", port=0, token="t")
    assert server_settings(args, ServerConfig()) == ServerConfig("0.0.0.0", 0, "t", 4)
    unchanged = argparse.Namespace(host=None, port=None, token=None)
    assert server_settings(unchanged, ServerConfig(port=9000)).port == 9000
    with pytest.raises(UsageError, match=r"server\.port"):
        server_settings(argparse.Namespace(host=None, port=70000, token=None), ServerConfig())


class FakeCamera:
    def __init__(self, width: int, height: int, fps: float, **kwargs: Any) -> None:
        self.size, self.fps, self.kwargs = (width, height), fps, kwargs
        self.device = "/dev/video9"
        self.frames: list[np.ndarray] = []
        self.closed = False

    def send(self, image: np.ndarray) -> None:
        self.frames.append(image)

    def close(self) -> None:
        self.closed = True


def fake_pyvirtualcam(camera: type) -> types.ModuleType:
    module = types.ModuleType("pyvirtualcam")
    module.Camera = camera  # type: ignore[attr-defined]
    module.PixelFormat = types.SimpleNamespace(BGR="BGR")  # type: ignore[attr-defined]
    return module


def test_virtual_camera_sends_frames_resized_to_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    from animerec.realtime.virtualcam import VirtualCamSink

    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake_pyvirtualcam(FakeCamera))
    sink = VirtualCamSink(320, 180, 0.0)
    frame = Frame(background(), 0, time.monotonic(), 0.0)
    sink.write(AnnotatedFrame(frame, known_faces(), frame.image))
    sink.close()
    camera = sink._camera
    assert camera.kwargs["fmt"] == "BGR" and camera.fps == 30.0 and camera.closed
    assert [f.shape for f in camera.frames] == [(180, 320, 3)]


def test_missing_virtual_camera_backend_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from animerec.realtime.virtualcam import VirtualCamSink

    class NoBackend(FakeCamera):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("'v4l2loopback' backend: v4l2loopback device not found")

    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake_pyvirtualcam(NoBackend))
    with pytest.raises(UsageError, match="v4l2loopback") as error:
        VirtualCamSink(640, 360, 30.0)
    assert "OBS" in str(error.value)


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            raise AssertionError(f"no line on stdout within {timeout} s: {process.stderr!r}")
    return process.stdout.readline()


async def watch(url: str) -> tuple[dict[str, Any], dict[str, Any], int]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "ws") as ws:
        first = await ws.receive_json(timeout=10)
        await asyncio.sleep(1.0)  # longer than the 15-frame video: frames still come (it loops)
        count = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            await ws.receive_json(timeout=5)
            count += 1
        async with session.get(url + "api/stats") as response:
            return first, await response.json(), count


def serve_watch_and_interrupt(tmp_path: Path, *arguments: str) -> tuple[dict[str, Any], dict[str, Any], int,
                                                                    subprocess.CompletedProcess[str]]:
    """Start `animerec ARGUMENTS --source <a 15-frame clip>`, read its one "Serving on" line, watch the
    WebSocket and stats, then Ctrl-C it; the first message, the stats, the message count and the exit."""
    video = make_test_video(tmp_path / "clip.mp4", frames=15, size=(320, 180), fps=30, audio=False)
    command = [sys.executable, "-m", "animerec", *arguments, "--source", str(video)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = read_line(process, timeout=15)
        match = re.fullmatch(r"Serving on (http://127\.0\.0\.1:(\d+)/)\n", line)
        assert match, line
        first, stats, count = asyncio.run(watch(match.group(1)))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    return first, stats, count, subprocess.CompletedProcess(command, process.returncode, out, err)


def test_serve_runs_end_to_end_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    first, stats, count, done = serve_watch_and_interrupt(tmp_path, "serve", "--port", "0")
    assert (first["width"], first["height"]) == (320, 180) and "faces" in first
    assert count >= 10, count  # still streaming after the clip's 0.5 s: the file loops
    assert stats["provider"] and stats["clients"] == 1 and "p95" in stats["latency_ms"]
    assert done.returncode == EXIT_INTERRUPTED, done.stderr
    assert done.stdout == ""  # exactly one line on stdout, and it was read above


def test_run_with_obs_serves_the_same_overlay(tmp_path: Path) -> None:
    first, stats, count, done = serve_watch_and_interrupt(tmp_path, "run", "--loop", "--obs", "--set", "server.port=0")
    assert (first["width"], first["height"]) == (320, 180) and count >= 10
    assert stats["clients"] == 1 and done.returncode == EXIT_INTERRUPTED, done.stderr


def test_run_with_obs_on_a_public_address_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_work(monkeypatch)
    assert cli.main(["run", "--source", "missing.mp4", "--obs", "--set", "server.host=0.0.0.0"]) == EXIT_USAGE


class FakeSource:
    closed = False

    def close(self) -> None:
        self.closed = True


def test_serve_refuses_a_missing_gallery_and_closes_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = FakeSource()
    monkeypatch.setattr("animerec.realtime.capture.open_source", lambda *args, **kwargs: source)
    assert cli.main(["serve", "--source", "0", "--port", "0", "--gallery", str(tmp_path / "none.json")]) == 2
    assert "none.json" in capsys.readouterr().err and source.closed


@pytest.mark.parametrize(("command", "advice"), [
    (lambda port: ["serve", "--source", "missing.mp4", "--port", str(port)], "--port 0"),
    (lambda port: ["run", "--source", "missing.mp4", "--obs", "--set", f"server.port={port}"], "--set server.port=0"),
], ids=["serve", "run --obs"])
def test_a_port_in_use_is_reported_before_the_source_or_model_is_opened(
    command: Any, advice: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    forbid_work(monkeypatch)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(command(port)) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and advice in err  # the way this command sets the port


def test_serve_reports_a_missing_source_before_loading_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was loaded before the source was found missing")

    monkeypatch.setattr("animerec.api.load_classifier", refuse)
    missing = tmp_path / "missing.mp4"
    assert cli.main(["serve", "--source", str(missing), "--port", "0"]) == EXIT_FAILURE
    assert "missing.mp4" in capsys.readouterr().err
