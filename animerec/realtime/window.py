"""A window that shows annotated frames: a sink, used on the main thread (OpenCV's GUI must be).

q or Esc, or closing the window, requests a stop. Without a display the constructor raises a
UsageError that says so, instead of letting the GUI toolkit abort the process.
"""

from __future__ import annotations

import os
import sys
import threading

import cv2

from animerec.errors import UsageError
from animerec.records import AnnotatedFrame

QUIT_KEYS = (ord("q"), ord("Q"), 27)  # 27: Esc
NO_DISPLAY = "--show needs a display, and {why}; use --record or --jsonl instead"


def display_problem() -> str | None:
    """Why no window can open here, or None when one probably can."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        # Qt and GTK abort the whole process when they cannot reach a display: check first.
        return "neither DISPLAY nor WAYLAND_DISPLAY is set"
    return None


class Window:
    """Shows each frame with cv2.imshow; `stop_requested` turns true on q, Esc or close."""

    def __init__(self, title: str = "animerec", stop: threading.Event | None = None) -> None:
        why = display_problem()
        if why:
            raise UsageError(NO_DISPLAY.format(why=why))
        self.title, self.stop = title, stop
        self.stop_requested = False
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as error:  # a build without GUI support (opencv-python-headless)
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else "no GUI support"
            raise UsageError(NO_DISPLAY.format(why=f"OpenCV cannot open a window ({reason})")) from error
        self._shown = False

    def write(self, item: AnnotatedFrame) -> None:
        cv2.imshow(self.title, item.annotated)
        # waitKey(1) also runs the GUI event loop: without it the window never paints.
        key = cv2.waitKey(1)
        closed = self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        self._shown = True
        if (key & 0xFF) in QUIT_KEYS or closed:
            self.stop_requested = True
            if self.stop is not None:
                self.stop.set()

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass  # already closed by the user
