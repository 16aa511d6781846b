"""The clips every measurement runs on, made once per run in a temporary folder.

- synthetic: the bundled sample faces moving over a drawn background at 480p, 720p and 1080p,
  drawn on twos like real anime, with ground-truth boxes and names for every frame;
- real: the clips of ../shared/data/videos (when present) scaled to each resolution;
- user: any video named with `--video`, at its own size.

Every clip is re-encoded to H.264 at 30 fps with at most `Profile.frames` frames, so that each
baseline and the pipeline decode exactly the same frames, and a live replay of any of them is a
30 fps camera.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.benchmarks.synthetic import PlacedFace, SyntheticScene
from animerec.errors import UsageError
from animerec.media import is_video
from animerec.paths import SAMPLE_FACES_DIR

CLIP_FPS = 30.0
HEIGHTS = {480: 854, 720: 1280, 1080: 1920}  # 16:9 widths for the synthetic clips
SYNTHETIC_FACES = 4  # more would pile up on a 16:9 frame and hide each other
SYNTHETIC_FACE_HEIGHT = 0.25  # face side as a share of the frame height
SYNTHETIC_SEED = 5


@dataclass(frozen=True)
class Profile:
    """How much of everything one run measures: `quick` is the test suite's smoke run."""

    name: str
    frames: int  # frames per clip
    real_heights: tuple[int, ...]  # resolutions the real clips are scaled to
    real_clips: int  # how many of ../shared/data/videos to use (in name order)
    live_seconds: float  # length of the live replay whose latency is measured
    rss_window_s: tuple[float, float]  # RSS growth is measured between these seconds of a live run
    keras_faces: int  # faces timed one at a time through Keras predict
    sweep_frames: int  # frames per setting in the sweeps


QUICK = Profile("quick", 12, (720,), 1, 3.0, (1.0, 3.0), 4, 4)
FULL = Profile("full", 150, (480, 720, 1080), 3, 20.0, (10.0, 40.0), 64, 60)
PROFILES = {p.name: p for p in (QUICK, FULL)}


@dataclass(frozen=True)
class Workload:
    """One clip on disk and what is known about it."""

    name: str  # e.g. "synthetic-720p", "real-patorn_taki-720p"
    kind: str  # synthetic | real | user
    path: Path
    width: int
    height: int
    frames: int
    origin: str  # how the clip was made, for the report
    truth: tuple[tuple[PlacedFace, ...], ...] | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        """What the worker processes and the report need (the ground truth stays in the parent)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "path": str(self.path),
            "width": self.width,
            "height": self.height,
            "frames": self.frames,
            "fps": CLIP_FPS,
            "origin": self.origin,
        }


def sample_faces() -> list[tuple[str, NDArray[np.uint8]]]:
    faces = []
    for path in sorted(SAMPLE_FACES_DIR.glob("*.jpg")):
        image = cv2.imread(str(path))
        if image is not None:
            faces.append((path.stem, np.asarray(image, np.uint8)))
    return faces


def synthetic_workload(height: int, frames: int, folder: Path) -> Workload:
    """Sample faces walking over a background, drawn on twos, with the truth for every frame."""
    width = HEIGHTS.get(height, round(height * 16 / 9 / 2) * 2)
    scene = SyntheticScene(
        sample_faces()[:SYNTHETIC_FACES],
        width=width,
        height=height,
        fps=CLIP_FPS,
        frame_count=frames,
        seed=SYNTHETIC_SEED,
        face_height=SYNTHETIC_FACE_HEIGHT,
    )
    path = folder / f"synthetic-{height}p.mp4"
    scene.write(path, audio=False)
    truth = tuple(scene.placements(i) for i in range(frames))
    side = max(32, int(height * SYNTHETIC_FACE_HEIGHT))
    origin = f"{SYNTHETIC_FACES} sample faces of {side} px over a drawn background, drawn on twos"
    return Workload(f"synthetic-{height}p", "synthetic", path, width, height, frames, origin, truth)


def real_videos(folder: Path | None) -> list[Path]:
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and is_video(p))


def scaled_workload(source: Path, height: int | None, frames: int, folder: Path, kind: str) -> Workload:
    """The first `frames` frames of `source`, scaled to `height` (None: its own size), in H.264."""
    stem = source.stem.replace(" ", "_")
    name = f"{kind}-{stem}-{height}p" if height else f"{kind}-{stem}"
    path = folder / f"{name}.mp4"
    written, size, native = _reencode(source, path, height, frames)
    width, out_height = size
    native_text = f"{native[0]}x{native[1]}"
    how = f"scaled from {native_text} to {width}x{out_height}" if height else f"at its own {native_text}"
    origin = f"{source.name} {how}, first {written} frames re-encoded to H.264 at {CLIP_FPS:g} fps"
    return Workload(name, kind, path, width, out_height, written, origin)


def _decoded_frames(source: Path) -> Iterator[NDArray[np.uint8]]:
    with av.open(str(source)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format="bgr24"), np.uint8)


def _reencode(
    source: Path, target: Path, height: int | None, limit: int
) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """Write up to `limit` frames of `source` to `target`; returns (frames, size, native size)."""
    written, size, native = 0, (0, 0), (0, 0)
    with av.open(str(target), "w") as container:
        stream: Any = None
        for image in _decoded_frames(source):
            if written >= limit:
                break
            if stream is None:
                native = (image.shape[1], image.shape[0])
                size = _even_size(native, height)
                stream = container.add_stream("libx264", rate=Fraction(int(CLIP_FPS)))
                stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
                stream.options = {"preset": "veryfast", "crf": "18"}  # near-lossless: the cascade sees the source
            if (image.shape[1], image.shape[0]) != size:
                growing = size[1] > image.shape[0]
                interpolation = cv2.INTER_LINEAR if growing else cv2.INTER_AREA
                image = np.asarray(cv2.resize(image, size, interpolation=interpolation), np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = written
            container.mux(stream.encode(frame))
            written += 1
        if stream is None:
            raise ValueError(f"{source}: no decodable video frames")
        container.mux(stream.encode())
    return written, size, native


def _even_size(native: tuple[int, int], height: int | None) -> tuple[int, int]:
    """H.264 in yuv420p wants even sides; scaling keeps the aspect ratio."""
    width, native_height = native
    if height is None:
        return width + width % 2, native_height + native_height % 2
    scaled_width = round(width * height / native_height)
    return scaled_width + scaled_width % 2, height + height % 2


def build_workloads(
    profile: Profile, folder: Path, videos_dir: Path | None, user_videos: list[Path]
) -> tuple[list[Workload], list[str]]:
    """Every clip of this run, and notes for the report (what was absent and therefore skipped)."""
    notes: list[str] = []
    users = []
    for source in user_videos:  # first: a video the user named that cannot be read ends the run at once
        try:
            users.append(scaled_workload(source, None, profile.frames, folder, "user"))
        except (ValueError, OSError, av.error.FFmpegError) as error:
            raise UsageError(f"--video {source}: cannot be decoded ({error})") from error
    workloads = [synthetic_workload(height, profile.frames, folder) for height in HEIGHTS]
    available = real_videos(videos_dir)
    reals = available[: profile.real_clips]
    if not reals:
        notes.append(f"real anime clips: skipped ({videos_dir or 'no folder given'} has no videos)")
    else:
        heights = ", ".join(f"{h}p" for h in profile.real_heights)
        notes.append(f"real anime clips: {len(reals)} of the {len(available)} in {videos_dir} "
                     f"({', '.join(p.name for p in reals)}), scaled to {heights} (none is that size) "
                     f"and re-timed to {CLIP_FPS:g} fps; the report's loop and the full-resolution reference "
                     "run on them at 720p only (at 1080p they cost seconds per frame)")
    if profile.name == "quick":
        notes.append(f"quick profile: {profile.frames} frames per clip, the report's loop at 720p only, "
                     f"{profile.live_seconds:g} s of live replay: a smoke test of the benchmark, not results")
    for source in reals:
        try:
            for height in profile.real_heights:
                workloads.append(scaled_workload(source, height, profile.frames, folder, "real"))
        except (ValueError, OSError, av.error.FFmpegError) as error:
            notes.append(f"real clip {source.name}: skipped, it cannot be decoded ({error})")
    return workloads + users, notes
