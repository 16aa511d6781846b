"""From the pipeline's thread to the event loop, and from pixels to what clients receive.

`FrameHandoff` is the only place the two threads meet: the pipeline's `write()` appends to a short
locked buffer and wakes the loop at most once per batch, so it never waits for the network and
never floods the loop with callbacks. `JpegEncoder` turns the newest annotated frame into one
MJPEG part that every stream client shares, on a worker thread (cv2 releases the GIL), and only
while someone is watching: the detector needs the two CPU cores more than an empty stream does.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.records import AnnotatedFrame

log = logging.getLogger(__name__)


def frame_message(item: AnnotatedFrame) -> dict[str, Any]:
    """The WebSocket message of CONTRACTS.md: the frame's clocks and its normalised face records."""
    frame = item.frame
    return {
        "index": frame.index,
        "time": round(frame.time, 6),
        "captured_at": round(frame.captured_at, 6),
        "width": frame.width,
        "height": frame.height,
        "faces": item.faces.to_records(frame.width, frame.height),
    }


def encode_jpeg(image: NDArray[np.uint8], quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return buffer.tobytes()


class FrameHandoff:
    """Thread-safe, non-blocking: `push` from any thread, `deliver` runs on the loop, in order."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[AnnotatedFrame], None],
        capacity: int = 8,
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._lock = threading.Lock()
        self._pending: deque[AnnotatedFrame] = deque(maxlen=capacity)
        self._scheduled = False
        self.dropped = 0  # frames replaced before the loop got to them (loop overloaded)

    def push(self, item: AnnotatedFrame) -> None:
        with self._lock:
            if len(self._pending) == self._pending.maxlen:
                self.dropped += 1
            self._pending.append(item)
            if self._scheduled:
                return  # the drain already queued will take this one too
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # loop closed: the server is gone, frames have nowhere to go
            with self._lock:
                self._pending.clear()
                self._scheduled = False

    def _drain(self) -> None:
        with self._lock:
            items = list(self._pending)
            self._pending.clear()
            self._scheduled = False
        for item in items:
            try:
                self._deliver(item)
            except Exception:  # one bad frame must not kill the loop's callback machinery
                log.exception("could not publish frame %d", item.frame.index)


@dataclass(frozen=True)
class JpegPart:
    """One encoded frame: the bare JPEG (snapshot) and the same bytes framed as a multipart part."""

    index: int
    jpeg: bytes
    part: bytes


BOUNDARY = "animerecframe"


class JpegEncoder:
    """Encodes the newest frame once for all MJPEG clients; skips frames it cannot keep up with."""

    def __init__(
        self,
        executor: Executor,
        publish: Callable[[JpegPart], None],
        wanted: Callable[[], bool],
        quality: int = 80,
    ) -> None:
        self._executor = executor
        self._publish = publish
        self._wanted = wanted  # are any stream clients connected?
        self._quality = quality
        self._latest: AnnotatedFrame | None = None
        self._encoded: JpegPart | None = None
        self._fresh = asyncio.Event()
        self._lock = asyncio.Lock()  # a snapshot and the stream asking at once share one encode
        self.encoded = 0

    @property
    def latest(self) -> AnnotatedFrame | None:
        return self._latest

    def offer(self, item: AnnotatedFrame) -> None:
        self._latest = item
        if self._wanted():
            self._fresh.set()

    def kick(self) -> None:
        """A new stream client: send it the current frame without waiting for the next one."""
        if self._latest is not None:
            self._fresh.set()

    async def run(self) -> None:
        """Encode whenever a frame arrives and someone watches; cancelled at shutdown."""
        while True:
            await self._fresh.wait()
            self._fresh.clear()
            try:
                part = await self.current()
            except Exception:  # one odd frame must not end the stream for every viewer
                log.exception("could not encode a frame for the MJPEG stream")
                continue
            if part is not None and self._wanted():
                self._publish(part)

    async def current(self) -> JpegPart | None:
        """The newest frame as JPEG, encoding it now unless that was already done."""
        item = self._latest
        if item is None:
            return None
        async with self._lock:
            if self._encoded is None or self._encoded.index != item.frame.index:
                await self._encode_part(item)
        return self._encoded

    async def _encode_part(self, item: AnnotatedFrame) -> None:
        jpeg = await self.encode(item.annotated)
        header = (
            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
        ).encode()
        self._encoded = JpegPart(item.frame.index, jpeg, header + jpeg + b"\r\n")
        self.encoded += 1

    async def encode(self, image: NDArray[np.uint8]) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, encode_jpeg, image, self._quality)
