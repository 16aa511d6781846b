"""A camera pointed at a screen: what a clip looks like when someone films it with a phone.

The degradations are written here, apart from any training augmentation, on purpose: a test that
applies the very transforms the model learnt from would flatter it. In the order light meets
them: the screen seen at an angle (a perspective warp that sways slowly, as a hand-held camera
does), a dark room around it, moiré (the screen's pixel grid beating against the sensor's),
vignetting, a colour cast and washed-out contrast, defocus, and sensor noise. The truth boxes go
through the same warp, so the one matching rule still applies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.benchmarks.synthetic import PlacedFace, Scene

MIN_VISIBLE_SIDE = 8  # a face warped almost out of the picture is no longer in the truth
SHADE_ONE = 128  # a brightness gain of 1 in the 8-bit fixed point of the shading


@dataclass(frozen=True)
class ScreenCamera:
    """One camera set-up; `seed` fixes the angle, the moiré and the noise of every frame."""

    seed: int
    screen_share: float = 0.9  # the screen's width as a share of the picture
    tilt: float = 0.05  # how far each corner of the screen moves, as a share of the picture
    sway_px: float = 4.0  # hand shake: amplitude of the slow drift of the whole screen
    moire: float = 0.06  # depth of the moiré stripes (0.06 = 6% of brightness)
    vignette: float = 0.25  # brightness lost in the corners
    cast: tuple[float, float, float] = (1.08, 1.0, 0.86)  # B, G, R gains: a bluish screen
    contrast: float = 0.82  # a filmed screen never shows deep blacks
    lift: float = 22.0  # grey levels added to black
    defocus_px: int = 2  # radius of the blur disk
    noise: float = 4.0  # standard deviation of sensor noise, grey levels

    def screen_corners(self, width: int, height: int, index: int) -> NDArray[np.float32]:
        """Where the screen's four corners land in the picture at frame `index`."""
        rng = np.random.default_rng(self.seed)
        margin_x = (1 - self.screen_share) / 2 * width
        margin_y = (1 - self.screen_share) / 2 * height
        corners = np.array([[margin_x, margin_y], [width - margin_x, margin_y],
                            [width - margin_x, height - margin_y], [margin_x, height - margin_y]], np.float64)
        corners += rng.uniform(-1, 1, (4, 2)) * self.tilt * np.array([width, height])
        phase = rng.uniform(0, 2 * np.pi, 2)
        drift = self.sway_px * np.sin(2 * np.pi * index / np.array([97.0, 131.0]) + phase)
        return np.asarray(corners + drift, np.float32)

    def homography(self, width: int, height: int, index: int) -> NDArray[np.float64]:
        source = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
        return np.asarray(cv2.getPerspectiveTransform(source, self.screen_corners(width, height, index)))

    def shading(self, width: int, height: int) -> NDArray[np.float32]:
        """Moiré stripes (slightly curved, as on a real screen) times vignetting, (h, w, 3)."""
        rng = np.random.default_rng(self.seed + 1)
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        period, angle = rng.uniform(9.0, 22.0), rng.uniform(0, np.pi)
        along = x * np.cos(angle) + y * np.sin(angle) + 2e-4 * (x - width / 2) ** 2
        stripes = 1 + self.moire * np.cos(2 * np.pi * along / period)
        radius = ((x - width / 2) / (width / 2)) ** 2 + ((y - height / 2) / (height / 2)) ** 2
        return np.asarray(np.repeat((stripes * (1 - self.vignette * radius / 2))[..., None], 3, axis=2), np.float32)

    def box(self, box: tuple[int, int, int, int], width: int, height: int,
            index: int) -> tuple[int, int, int, int] | None:
        """The box around a warped truth box, cut to the picture; None when too little is left."""
        x, y, w, h = box
        points = np.array([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]], np.float32)
        warped = cv2.perspectiveTransform(points, self.homography(width, height, index))[0]
        left, top = np.clip(warped.min(axis=0), 0, (width, height))
        right, bottom = np.clip(warped.max(axis=0), 0, (width, height))
        if min(right - left, bottom - top) < MIN_VISIBLE_SIDE:
            return None
        return int(left), int(top), int(right - left), int(bottom - top)


class FilmedScene:
    """A scene as the camera sees it: the same truth, warped with the picture."""

    def __init__(self, scene: Scene, camera: ScreenCamera) -> None:
        self.scene, self.camera = scene, camera
        self.width, self.height, self.fps, self.frame_count = scene.width, scene.height, scene.fps, scene.frame_count

    def placements(self, index: int) -> tuple[PlacedFace, ...]:
        placed = []
        for face in self.scene.placements(index):
            box = self.camera.box(face.box, self.width, self.height, index)
            if box is not None:
                placed.append(PlacedFace(face.name, box))
        return tuple(placed)

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        camera, size = self.camera, (self.width, self.height)
        # 8-bit fixed point (1/128 steps) throughout: float arithmetic on every 720p frame made
        # a 30 s clip take minutes.
        shading = camera.shading(*size) * np.array(camera.cast, np.float32) * camera.contrast
        gain = np.clip(np.rint(shading * SHADE_ONE), 0, 255).astype(np.uint8)
        radius = camera.defocus_px
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)).astype(np.float32)
        disk /= disk.sum()
        # Fresh noise for every frame costs more than the rest together: each frame takes its own
        # window of one larger field instead (sensor noise has no pattern a viewer could follow).
        rng = np.random.default_rng(camera.seed + 2)
        spare = 64
        grain = rng.standard_normal((self.height + spare, self.width + spare, 3)) * camera.noise + camera.lift
        grain16 = np.rint(grain).astype(np.int16)
        room = (12, 12, 14)  # the dark room around the screen
        for index, image in enumerate(self.scene.frames()):
            warped = cv2.warpPerspective(image, camera.homography(*size, index), size,
                                         flags=cv2.INTER_LINEAR, borderValue=room)
            shaded = cv2.multiply(cv2.filter2D(warped, -1, disk), gain, scale=1.0 / SHADE_ONE)
            dy, dx = rng.integers(0, spare, 2)
            yield np.asarray(cv2.add(shaded, grain16[dy : dy + self.height, dx : dx + self.width], dtype=cv2.CV_8U),
                             np.uint8)
