"""Video through PyAV: files decoded frame by frame (none lost, or paced and looping for a live
show) and network streams (RTSP, HTTP, SRT), which `live_source.LiveSource` reconnects.

Decoding runs in the source's own thread with FFmpeg's frame/slice threading on top, so the
pipeline never waits on the decoder while frames are queued.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError
from animerec.realtime.protocols import SourceInfo
from animerec.realtime.queues import BoundedQueue, DropPolicy
from animerec.realtime.threaded_source import GrabError, ThreadedSource
from animerec.records import Frame

log = logging.getLogger(__name__)

FILE_QUEUE_FRAMES = 8  # decoded frames waiting for the pipeline; 8 full-HD frames are ~50 MB
MAX_DEMUX_FAILURES = 20  # consecutive unreadable packets after which a file is taken as ended
STREAM_TIMEOUT_S = (10.0, 5.0)  # network open and read timeouts, so a dead server cannot hang us

Decoded = tuple[NDArray[np.uint8], float]  # a BGR image and its presentation time in seconds


class VideoDecoder:
    """One pass over the first video stream of a file or URL; bad packets are skipped and counted."""

    def __init__(self, target: str, *, options: dict[str, str] | None = None, timeout: Any = None):
        self.target = target
        self.errors = 0
        try:
            self._container = av.open(target, options=options or {}, timeout=timeout)
        except (av.error.FFmpegError, OSError) as error:
            raise InputError(describe_open_error(target, error)) from error
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{target}: has no video stream")
        self.stream = self._container.streams.video[0]
        self.stream.thread_type = "AUTO"  # FFmpeg picks frame or slice threads for the codec
        start, base = self.stream.start_time, self.stream.time_base
        self._start_s = float(start * base) if start is not None and base is not None else None

    @property
    def width(self) -> int:
        return int(self.stream.codec_context.width)

    @property
    def height(self) -> int:
        return int(self.stream.codec_context.height)

    @property
    def fps(self) -> float:
        rate = self.stream.average_rate or self.stream.guessed_rate
        return float(rate) if rate else 0.0

    @property
    def frame_count(self) -> int:
        return int(self.stream.frames or 0)

    def images(self) -> Iterator[Decoded]:
        """Decoded frames in presentation order, with times relative to the stream's start."""
        step = 1.0 / self.fps if self.fps else 0.0
        previous = -step
        for frame in self._frames():
            if frame.time is None:  # raw streams without timestamps: count frames instead
                seconds = previous + step
            else:
                if self._start_s is None:
                    self._start_s = float(frame.time)
                seconds = float(frame.time) - self._start_s
            previous = seconds
            yield np.asarray(frame.to_ndarray(format="bgr24"), np.uint8), seconds

    def _frames(self) -> Iterator[av.VideoFrame]:
        packets = self._container.demux(self.stream)
        failures = 0
        while True:
            try:
                packet = next(packets)
            except (StopIteration, av.error.EOFError):
                return
            except (av.error.FFmpegError, OSError) as error:
                # A damaged container: skip what cannot be read and carry on from the next packet.
                self.errors += 1
                failures += 1
                log.debug("%s: unreadable packet (%s)", self.target, error)
                if failures >= MAX_DEMUX_FAILURES:
                    return
                packets = self._container.demux(self.stream)
                continue
            failures = 0
            try:
                decoded = packet.decode()
            except (av.error.FFmpegError, OSError) as error:
                self.errors += 1
                log.debug("%s: undecodable packet (%s)", self.target, error)
                continue
            yield from decoded

    def close(self) -> None:
        self._container.close()


def describe_open_error(target: str, error: BaseException) -> str:
    """One sentence for a file or URL that FFmpeg would not open."""
    if isinstance(error, FileNotFoundError):
        return f"{target}: no such file"
    if isinstance(error, PermissionError):
        return f"{target}: permission denied"
    if isinstance(error, av.error.ProtocolNotFoundError):
        scheme = target.partition("://")[0]
        return f"{target}: the FFmpeg inside PyAV was built without {scheme}:// support"
    if isinstance(error, av.error.InvalidDataError):
        return f"{target}: not a video, or too damaged to read"
    return f"{target}: cannot be opened ({getattr(error, 'strerror', None) or error})"


class Pacer:
    """Waits so that media time t is shown at (first frame's wall time + t): native speed."""

    MAX_AHEAD_S = 1.0  # a timestamp further ahead is a jump in the stream, not a reason to sleep
    MAX_BEHIND_S = 0.5  # when decoding falls further behind, restart the clock instead of racing

    def __init__(self) -> None:
        self._origin: float | None = None

    def wait(self, media_time: float, stop: threading.Event) -> bool:
        """Sleep until `media_time` is due; False when `stop` was set meanwhile."""
        now = time.monotonic()
        if self._origin is None:
            self._origin = now - media_time
        due = self._origin + media_time
        if due - now > self.MAX_AHEAD_S or now - due > self.MAX_BEHIND_S:
            self._origin = now - media_time
            return not stop.is_set()
        return not stop.wait(max(0.0, due - now))


class VideoFileSource(ThreadedSource):
    """A video file: every frame in order (blocking queue), or with `paced` at its native rate as
    a live source (newest kept, older dropped and counted); `loop` starts again at the end, with
    indices and times still increasing."""

    def __init__(self, path: Path, *, paced: bool = False, loop: bool = False) -> None:
        if path.is_file() and path.stat().st_size == 0:
            raise InputError(f"{path}: empty file (0 bytes)")
        self.path = path
        self._paced = paced
        self._loop = loop
        self._decoder = VideoDecoder(str(path))
        self._past_errors = 0
        images = self._decoder.images()
        first = next(images, None)
        if first is None:
            self._decoder.close()
            raise InputError(f"{path}: contains no decodable video frames")
        self._first_pass = itertools.chain([first], images)
        height, width = first[0].shape[:2]
        info = SourceInfo(
            source_id=str(path),
            live=paced,
            width=width,
            height=height,
            fps=self._decoder.fps,
            frame_count=0 if loop else self._decoder.frame_count,
            path=path,
        )
        policy = DropPolicy.DROP_OLDEST if paced else DropPolicy.BLOCK
        buffer: BoundedQueue[Frame] = BoundedQueue("decoded", 1 if paced else FILE_QUEUE_FRAMES, policy)
        super().__init__(info, buffer, f"decode-{path.name}")

    @property
    def errors(self) -> int:
        return self._past_errors + self._decoder.errors

    def close(self) -> None:
        super().close()
        if not self._thread.is_alive():
            self._decoder.close()  # normally closed by the thread; covers a never-started source

    def _produce(self) -> None:
        pacer = Pacer() if self._paced else None
        offset = 0.0
        images: Iterator[Decoded] = self._first_pass
        step = 1.0 / self.info.fps if self.info.fps else 0.04
        try:
            while True:
                last = 0.0
                for image, seconds in images:
                    if pacer is not None and not pacer.wait(offset + seconds, self._stop):
                        return
                    if not self._emit(image, offset + seconds) or self._stop.is_set():
                        return
                    last = seconds
                if not self._loop or self._stop.is_set():
                    return
                offset += last + step  # the next pass starts one frame after this one ended
                self._past_errors += self._decoder.errors
                self._decoder.close()
                self._decoder = VideoDecoder(str(self.path))
                images = self._decoder.images()
        finally:
            self._decoder.close()


class StreamGrabber:
    """A network stream (RTSP, HTTP, SRT, ...) as a `live_source.Grabber`, paced by its timestamps
    so that a file served over HTTP plays at its native rate rather than as fast as it downloads."""

    def __init__(self, url: str) -> None:
        self.name = url
        self.errors = 0
        self._decoder: VideoDecoder | None = None
        self._images: Iterator[Decoded] = iter(())
        self._pacer = Pacer()

    def open(self) -> tuple[int, int, float]:
        options = {"rtsp_transport": "tcp"} if self.name.startswith("rtsp") else {}
        try:
            self._decoder = VideoDecoder(self.name, options=options, timeout=STREAM_TIMEOUT_S)
        except InputError as error:
            # A protocol FFmpeg lacks will not appear on a retry; anything else might.
            permanent = isinstance(error.__cause__, av.error.ProtocolNotFoundError)
            message = str(error).removeprefix(f"{self.name}: ")
            raise GrabError(message, permanent=permanent) from error
        images = self._decoder.images()
        # The first picture, not the stream header, gives the size: RTSP headers often lack it.
        first = next(images, None)
        if first is None:
            raise GrabError("connected, but no picture arrived")
        self._images = itertools.chain([first], images)
        self._pacer = Pacer()
        height, width = first[0].shape[:2]
        return width, height, self._decoder.fps

    def read(self, stop: threading.Event) -> NDArray[np.uint8] | None:
        decoded = next(self._images, None)
        if decoded is None:
            raise GrabError("the stream ended or broke off")
        image, seconds = decoded
        return image if self._pacer.wait(seconds, stop) else None

    def close(self) -> None:
        if self._decoder is not None:
            self.errors += self._decoder.errors
            self._decoder.close()
            self._decoder = None
        self._images = iter(())
