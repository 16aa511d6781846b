"""Live sources: a webcam, the screen or a network stream, grabbed in a thread that keeps only the
newest frame, and reconnected with exponential backoff when the device goes away.

Camera backends ignore CAP_PROP_BUFFERSIZE and queue seconds of old frames; grabbing as fast as
the device delivers and keeping only the newest is the reliable way to low latency. Every device
call happens in the grab thread, which some backends (and mss on Windows) require.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Protocol

import cv2
import mss
import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError
from animerec.realtime.protocols import SourceInfo
from animerec.realtime.queues import BoundedQueue, DropPolicy
from animerec.realtime.threaded_source import Backoff, GrabError, ThreadedSource
from animerec.realtime.window import display_problem

log = logging.getLogger(__name__)


class Grabber(Protocol):
    """A device that gives pictures; all of its methods are called from the grab thread only."""

    name: str  # for messages: "camera 0", "screen 1", a URL
    errors: int  # bad packets the device skipped on its own (streams); failed grabs are counted apart

    def open(self) -> tuple[int, int, float]:
        """Connect; return (width, height, nominal fps or 0). Raises GrabError."""
        ...

    def read(self, stop: threading.Event) -> NDArray[np.uint8] | None:
        """The next BGR picture; None when `stop` was set while waiting. Raises GrabError."""
        ...

    def close(self) -> None:
        """Release the device; safe to call when not open."""
        ...


class LiveSource(ThreadedSource):
    """Frames from a Grabber, newest kept. The device is opened before the constructor returns
    (`start_attempts` tries, then InputError); afterwards a failure means waiting with backoff and
    reconnecting until it works or the source is closed."""

    def __init__(
        self,
        grabber: Grabber,
        source_id: str,
        *,
        max_fps: float = 0.0,
        start_attempts: int = 3,
        backoff: Backoff | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        info = SourceInfo(source_id=source_id, live=True, width=0, height=0, fps=0.0)
        super().__init__(info, BoundedQueue("grabbed", 1, DropPolicy.DROP_OLDEST), f"grab-{grabber.name}")
        self._grabber = grabber
        self._max_fps = max_fps
        self._start_attempts = max(1, start_attempts)
        self._backoff = backoff or Backoff()
        self._ready = threading.Event()
        self._start_error: str | None = None
        self._failed_grabs = 0
        self.start()
        if not self._ready.wait(start_timeout_s):
            self.close()
            raise InputError(f"{grabber.name}: no answer within {start_timeout_s:.0f} s")
        if self._start_error is not None:
            self.close()
            raise InputError(self._start_error)

    @property
    def errors(self) -> int:
        return self._failed_grabs + self._grabber.errors

    def _produce(self) -> None:
        try:
            if not self._open_at_start():
                return
        finally:
            self._ready.set()
        try:
            self._grab_loop()
        finally:
            self._grabber.close()

    def _open_at_start(self) -> bool:
        for attempt in range(1, self._start_attempts + 1):
            try:
                width, height, fps = self._grabber.open()
            except GrabError as error:
                self._start_error = f"{self._grabber.name}: {error}"
                self._grabber.close()
                if error.permanent or attempt == self._start_attempts:
                    return False
                log.warning("%s; trying again (%d of %d)", self._start_error, attempt + 1,
                            self._start_attempts)
                if self._stop.wait(self._backoff.next_delay()):
                    return False
                continue
            self._backoff.reset()
            self._start_error = None
            fps = fps or self._max_fps
            self.info = replace(self.info, width=width, height=height, fps=fps)
            return True
        return False

    def _grab_loop(self) -> None:
        origin = time.monotonic()
        period = 1.0 / self._max_fps if self._max_fps else 0.0
        due = origin
        while not self._stop.is_set():
            try:
                image = self._grabber.read(self._stop)
            except GrabError as error:
                if not self._reconnect(str(error)):
                    return
                continue
            if image is None or not self._emit(image, time.monotonic() - origin):
                continue
            if period:  # a screen has no frame rate of its own: do not spin a core on it
                due = max(due + period, time.monotonic())
                self._stop.wait(max(0.0, due - time.monotonic()))

    def _reconnect(self, reason: str) -> bool:
        """Wait and reopen until it works (True) or the source is stopped (False)."""
        self._failed_grabs += 1
        self._grabber.close()
        while True:
            delay = self._backoff.next_delay()
            log.warning("%s: %s; reconnecting in %.1f s", self._grabber.name, reason, delay)
            if self._stop.wait(delay):
                return False
            try:
                self._grabber.open()
            except GrabError as error:
                reason = str(error)
                self._grabber.close()
                continue
            log.warning("%s: reconnected", self._grabber.name)
            self._backoff.reset()
            return True


class CameraGrabber:
    """A webcam through OpenCV."""

    def __init__(self, device: int) -> None:
        self.name = f"camera {device}"
        self.errors = 0
        self._device = device
        self._capture: cv2.VideoCapture | None = None
        self._first: NDArray[np.uint8] | None = None

    def open(self) -> tuple[int, int, float]:
        capture = cv2.VideoCapture(self._device)
        self._capture = capture
        if not capture.isOpened():
            # No backend knows this camera: trying again a moment later finds it no more. A busy
            # camera opens and then gives no picture, below, and that can come back.
            raise GrabError("cannot be opened (none connected with this number?)", permanent=True)
        ok, image = capture.read()
        if not ok or image is None:  # opened but silent: typically busy elsewhere
            raise GrabError("opened but gives no picture (in use by another program?)")
        self._first = np.asarray(image, np.uint8)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        return int(image.shape[1]), int(image.shape[0]), fps if 0 < fps < 1000 else 0.0

    def read(self, stop: threading.Event) -> NDArray[np.uint8] | None:
        if self._first is not None:  # the picture open() read to prove the camera works
            first, self._first = self._first, None
            return first
        if self._capture is None:
            raise GrabError("not open")
        ok, image = self._capture.read()
        if not ok or image is None:
            raise GrabError("stopped giving pictures (unplugged?)")
        return np.asarray(image, np.uint8)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._first = None


Region = tuple[int, int, int, int]  # x, y, width, height


class ScreenGrabber:
    """A monitor, or a region of one, through mss (Windows, macOS and X11).

    Monitors are numbered as mss numbers them: 1, 2, ... each screen, 0 all of them together.
    The region is in the monitor's own pixels, from its top-left corner.
    """

    def __init__(self, monitor: int = 1, region: Region | None = None) -> None:
        self.name = f"screen {monitor}"
        self.errors = 0
        self._monitor = monitor
        self._region = region
        self._screen: mss.base.MSS | None = None
        self._area: dict[str, int] = {}

    def open(self) -> tuple[int, int, float]:
        why = display_problem()
        if why:
            raise GrabError(f"no display to capture ({why})", permanent=True)
        try:
            # mss >= 10.2 names the class MSS and deprecates the mss() factory.
            factory = getattr(mss, "MSS", None) or mss.mss
            self._screen = factory()
            monitors = self._screen.monitors
        except Exception as error:  # mss raises its own ScreenShotError, ctypes and OS errors
            raise GrabError(f"cannot capture the screen ({error})") from error
        if not 0 <= self._monitor < len(monitors):
            raise GrabError(
                f"no such monitor; this display has {len(monitors) - 1} "
                "(screen:1 onwards, screen:0 for all of them)",
                permanent=True,
            )
        self._area = _area(monitors[self._monitor], self._region)
        return self._area["width"], self._area["height"], 0.0

    def read(self, stop: threading.Event) -> NDArray[np.uint8] | None:
        if self._screen is None:
            raise GrabError("not open")
        try:
            shot = self._screen.grab(self._area)
        except Exception as error:
            raise GrabError(f"screen capture failed ({error})") from error
        return np.asarray(cv2.cvtColor(np.asarray(shot), cv2.COLOR_BGRA2BGR), np.uint8)

    def close(self) -> None:
        if self._screen is not None:
            self._screen.close()
            self._screen = None


def _area(monitor: dict[str, int], region: Region | None) -> dict[str, int]:
    if region is None:
        return {key: int(monitor[key]) for key in ("left", "top", "width", "height")}
    x, y, width, height = region
    if x < 0 or y < 0 or width <= 0 or height <= 0 \
            or x + width > monitor["width"] or y + height > monitor["height"]:
        raise GrabError(
            f"region {region} does not fit the monitor ({monitor['width']}x{monitor['height']})",
            permanent=True,
        )
    return {"left": monitor["left"] + x, "top": monitor["top"] + y, "width": width, "height": height}
