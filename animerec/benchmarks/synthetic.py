"""Deterministic synthetic clips: known face crops moving over a drawn background, with ground truth.

Used by the benchmarks (workloads with known boxes and names), the tests, and to make the bundled
sample video. Like real anime, the picture changes only every `hold` frames ("drawn on twos").
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class PlacedFace:
    """Where a known face was pasted: the crop's rectangle in frame pixels, and who it is."""

    name: str
    box: tuple[int, int, int, int]  # x, y, w, h of the pasted crop


@dataclass(frozen=True)
class _Walker:
    name: str
    crop: NDArray[np.uint8]
    start: NDArray[np.float64]  # top-left at t=0, in pixels
    velocity: NDArray[np.float64]  # pixels per drawn picture


class SyntheticScene:
    """`frame(i)` draws picture i; the same arguments always give the same pixels."""

    def __init__(
        self,
        faces: list[tuple[str, NDArray[np.uint8]]],
        width: int = 1280,
        height: int = 720,
        fps: float = 24.0,
        frame_count: int = 96,
        seed: int = 0,
        hold: int = 2,
        face_height: float = 0.3,
    ) -> None:
        if not faces:
            raise ValueError("a synthetic scene needs at least one face crop")
        self.width, self.height, self.fps, self.frame_count, self.hold = width, height, fps, frame_count, hold
        rng = np.random.default_rng(seed)
        self._background = _background(width, height, rng)
        side = max(32, int(height * face_height))
        self._walkers = []
        for name, crop in faces:
            start = rng.uniform((0, 0), (width - side, height - side))
            speed = rng.uniform(0.004, 0.012) * width
            angle = rng.uniform(0, 2 * np.pi)
            velocity = speed * np.array([np.cos(angle), np.sin(angle)])
            resized = np.asarray(cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA), np.uint8)
            self._walkers.append(_Walker(name, resized, start, velocity))

    def placements(self, index: int) -> tuple[PlacedFace, ...]:
        picture = index // self.hold
        placed = []
        for walker in self._walkers:
            side = walker.crop.shape[0]
            limits = np.array([self.width - side, self.height - side], np.float64)
            x, y = (
                _bounce(p, limit) for p, limit in zip(walker.start + walker.velocity * picture, limits, strict=True)
            )
            placed.append(PlacedFace(walker.name, (int(x), int(y), side, side)))
        return tuple(placed)

    def frame(self, index: int) -> NDArray[np.uint8]:
        image = self._background.copy()
        for walker, place in zip(self._walkers, self.placements(index), strict=True):
            x, y, w, h = place.box
            image[y : y + h, x : x + w] = walker.crop
        return image

    def write(self, path: Path, audio: bool = True) -> None:
        """An H.264 MP4 (and a 440 Hz AAC tone when `audio`), like a real episode file."""
        import av

        rate = Fraction(self.fps).limit_denominator(1001)
        with av.open(str(path), "w") as container:
            video = container.add_stream("libx264", rate=rate)
            video.width, video.height, video.pix_fmt = self.width, self.height, "yuv420p"
            video.options = {"preset": "veryfast", "crf": "23"}
            sound = container.add_stream("aac", rate=48000) if audio else None
            for index in range(self.frame_count):
                frame = av.VideoFrame.from_ndarray(self.frame(index), format="bgr24")
                frame.pts = index
                container.mux(video.encode(frame))
            container.mux(video.encode())
            if sound is not None:
                _write_tone(container, sound, self.frame_count / self.fps)


def _bounce(position: float, limit: float) -> float:
    """Reflect a straight path off the frame's edges."""
    period = 2 * limit
    folded = position % period if period else 0.0
    return folded if folded <= limit else period - folded


def _background(width: int, height: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """Flat-coloured shapes over a gradient: cheap, and busy enough to tempt the cascade."""
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform(80, 230, 3), rng.uniform(40, 200, 3)
    image = (top * (1 - ramp) + bottom * ramp).repeat(width, axis=1).astype(np.uint8)
    for _ in range(12):
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        radius = int(rng.uniform(0.03, 0.15) * height)
        colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
        cv2.circle(image, centre, radius, colour, -1, lineType=cv2.LINE_AA)
    return np.ascontiguousarray(image)


def _write_tone(container: object, stream: object, seconds: float) -> None:
    import av

    sample_rate = 48000
    samples = int(seconds * sample_rate)
    t = np.arange(samples) / sample_rate
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    chunk = 1024
    for start in range(0, samples, chunk):
        piece = tone[start : start + chunk]
        frame = av.AudioFrame.from_ndarray(np.stack([piece, piece]), format="fltp", layout="stereo")
        frame.sample_rate = sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))  # type: ignore[attr-defined]
    container.mux(stream.encode())  # type: ignore[attr-defined]
