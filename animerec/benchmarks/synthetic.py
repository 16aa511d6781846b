"""Deterministic clips with ground truth: known face crops moving over a backdrop.

Used by the benchmarks (workloads with known boxes and names), the tests, the bundled sample video
and the naming clips of animerec/benchmarks/truth_clips.py. Like real anime, the faces move only
every `hold` frames ("drawn on twos"). A backdrop is either drawn shapes (`DrawnBackdrop`) or the
frames of real videos (`VideoBackdrop`); faces drawn in a real backdrop are not in the truth.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.recognition.images import cover

FOREVER = 1 << 62  # the last frame of a face that never leaves


@dataclass(frozen=True)
class PlacedFace:
    """Where a known face was pasted: the crop's rectangle in frame pixels, and who it is."""

    name: str
    box: tuple[int, int, int, int]  # x, y, w, h of the pasted crop


@dataclass(frozen=True, eq=False)
class FacePath:
    """One pasted face's way across the clip: on screen for frames [first, last), moving in a
    straight line that bounces off the frame's edges, its side changing linearly (a slow zoom)."""

    name: str
    crop: NDArray[np.uint8]
    start: tuple[float, float]  # top-left at its first frame, in pixels
    velocity: tuple[float, float]  # pixels per drawn picture
    sides: tuple[int, int]  # side at the first frame and at the last
    first: int = 0
    last: int = FOREVER

    def side(self, index: int) -> int:
        if self.sides[0] == self.sides[1] or self.last == FOREVER:
            return self.sides[0]
        share = (index - self.first) / max(1, self.last - 1 - self.first)
        return round(self.sides[0] + share * (self.sides[1] - self.sides[0]))


class Backdrop(Protocol):
    def frames(self) -> Iterator[NDArray[np.uint8]]:
        """Pictures at the scene's size, one per frame, without end."""
        ...


class Scene(Protocol):
    """A clip with the truth of every frame: what `write_clip` and the evaluations take."""

    width: int
    height: int
    fps: float
    frame_count: int

    def frames(self) -> Iterator[NDArray[np.uint8]]: ...

    def placements(self, index: int) -> tuple[PlacedFace, ...]: ...


class PastedScene:
    """Faces pasted over a backdrop along their paths; the same arguments give the same pixels."""

    def __init__(self, paths: Sequence[FacePath], backdrop: Backdrop, width: int, height: int,
                 fps: float, frame_count: int, hold: int = 2) -> None:
        self.paths, self.backdrop = tuple(paths), backdrop
        self.width, self.height, self.fps, self.frame_count, self.hold = width, height, fps, frame_count, hold

    def placements(self, index: int) -> tuple[PlacedFace, ...]:
        """The faces on screen at frame `index`, in pasting order (later ones on top)."""
        placed = []
        for path in self.paths:
            if not path.first <= index < path.last:
                continue
            side = path.side(index)
            pictures = index // self.hold - path.first // self.hold
            limits = (self.width - side, self.height - side)
            x, y = (_bounce(p + v * pictures, limit)
                    for p, v, limit in zip(path.start, path.velocity, limits, strict=True))
            placed.append(PlacedFace(path.name, (int(x), int(y), side, side)))
        return tuple(placed)

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        pictures = self.backdrop.frames()
        for index in range(self.frame_count):
            image = next(pictures).copy()
            on_screen = [p for p in self.paths if p.first <= index < p.last]
            for path, place in zip(on_screen, self.placements(index), strict=True):
                x, y, w, h = place.box
                image[y : y + h, x : x + w] = cv2.resize(path.crop, (w, h), interpolation=cv2.INTER_AREA)
            yield image

    def write(self, path: Path, audio: bool = True) -> None:
        write_clip(self, path, audio)


class SyntheticScene(PastedScene):
    """Every face on screen all the time, all of one size, over drawn shapes: the benchmarks'
    synthetic clip and the bundled sample video."""

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
        rng = np.random.default_rng(seed)
        backdrop = DrawnBackdrop(width, height, rng)
        side = max(32, int(height * face_height))
        paths = []
        for name, crop in faces:
            start = rng.uniform((0, 0), (width - side, height - side))
            speed = rng.uniform(0.004, 0.012) * width
            angle = rng.uniform(0, 2 * np.pi)
            velocity = (speed * np.cos(angle), speed * np.sin(angle))
            paths.append(FacePath(name, crop, (float(start[0]), float(start[1])), velocity, (side, side)))
        super().__init__(paths, backdrop, width, height, fps, frame_count, hold)


class DrawnBackdrop:
    """Flat-coloured shapes over a gradient: cheap, and busy enough to tempt the cascade."""

    def __init__(self, width: int, height: int, rng: np.random.Generator) -> None:
        ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        top, bottom = rng.uniform(80, 230, 3), rng.uniform(40, 200, 3)
        image = (top * (1 - ramp) + bottom * ramp).repeat(width, axis=1).astype(np.uint8)
        for _ in range(12):
            centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
            radius = int(rng.uniform(0.03, 0.15) * height)
            colour = tuple(int(c) for c in rng.uniform(0, 255, 3))
            cv2.circle(image, centre, radius, colour, -1, lineType=cv2.LINE_AA)
        self.image = np.ascontiguousarray(image)

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        return itertools.repeat(self.image)


class VideoBackdrop:
    """The frames of real videos one after another, looping, each scaled to cover the scene and
    cut to its size. Decoded as they are needed: a 720p clip held in memory would take gigabytes."""

    def __init__(self, videos: Sequence[Path], width: int, height: int) -> None:
        if not videos:
            raise ValueError("a video backdrop needs at least one video")
        self.videos, self.width, self.height = tuple(videos), width, height

    def frames(self) -> Iterator[NDArray[np.uint8]]:
        import av

        while True:
            for video in self.videos:
                with av.open(str(video)) as container:
                    for frame in container.decode(video=0):
                        yield cover(np.asarray(frame.to_ndarray(format="bgr24"), np.uint8), self.width, self.height)


def write_clip(scene: Scene, path: Path, audio: bool = False) -> None:
    """An H.264 MP4 (and a 440 Hz AAC tone when `audio`), like a real episode file."""
    import av

    rate = Fraction(scene.fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = scene.width, scene.height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        sound = container.add_stream("aac", rate=48000) if audio else None
        for index, image in enumerate(scene.frames()):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            _write_tone(container, sound, scene.frame_count / scene.fps)


def _bounce(position: float, limit: float) -> float:
    """Reflect a straight path off the frame's edges."""
    period = 2 * limit
    folded = position % period if period else 0.0
    return folded if folded <= limit else period - folded


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
