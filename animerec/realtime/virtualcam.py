"""A sink that shows the annotated frames as a webcam: OBS Virtual Camera, v4l2loopback, etc.

Any program that takes a camera (OBS's Video Capture Device, Discord, Zoom) can then pick up the
annotated picture. pyvirtualcam is an optional extra (`pip install animerec[virtualcam]`) and
needs a backend on the machine; when either is missing the user gets one message saying exactly
what to install, before any frame is read.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from animerec.errors import UsageError
from animerec.records import AnnotatedFrame

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with: pip install animerec[virtualcam]  (or: pip install pyvirtualcam)"
BACKEND_HINT = (
    "a virtual camera backend is needed: on Windows and macOS install OBS Studio (28 or later) and "
    "start its Virtual Camera once, then stop it again (only one program can feed it at a time); "
    "on Linux load v4l2loopback: sudo apt install v4l2loopback-dkms && "
    'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="Animerec"'
)


def require_pyvirtualcam() -> Any:
    """The pyvirtualcam module, or a UsageError saying how to install it."""
    try:
        import pyvirtualcam
    except ImportError as error:
        raise UsageError(f"--virtualcam needs the pyvirtualcam package: {INSTALL_HINT}") from error
    return pyvirtualcam


class VirtualCamSink:
    """Sends each annotated frame to a virtual camera of a fixed size (frames are resized to it).

    The pipeline paces the frames, so `write` sends at once instead of sleeping until the
    camera's next frame time; pyvirtualcam copies the frame into shared memory and returns.
    """

    def __init__(self, width: int, height: int, fps: float, device: str | None = None) -> None:
        if width <= 0 or height <= 0:
            raise UsageError(f"the virtual camera needs a frame size, got {width}x{height}")
        pyvirtualcam = require_pyvirtualcam()
        try:
            self._camera = pyvirtualcam.Camera(
                width, height, fps if fps > 0 else 30.0,
                fmt=pyvirtualcam.PixelFormat.BGR, device=device, print_fps=False,
            )
        except (RuntimeError, ValueError) as error:
            raise UsageError(f"cannot start a virtual camera ({error}); {BACKEND_HINT}") from error
        self.size = (width, height)
        self.device = str(getattr(self._camera, "device", "virtual camera"))
        self.sent = 0
        log.info("sending annotated frames to %s (%dx%d)", self.device, width, height)

    def write(self, item: AnnotatedFrame) -> None:
        image = item.annotated
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA).astype(np.uint8)
        self._camera.send(np.ascontiguousarray(image))
        self.sent += 1

    def close(self) -> None:
        self._camera.close()
