"""The naming clips: holoen20 validation faces moving over real anime frames, with ground truth.

Three fixed clips, each with its own faces (disjoint thirds of the validation posts) and its own
backgrounds (the shared clips): `a` and `b` are reported on, `calibration` tunes the per-track
decision and also carries faces of characters the model never saw (keima3), whose truth is
"unknown". Each also exists as filmed by a camera pointed at a screen (screen_camera.py). Faces
drawn in the background videos are not in the truth: they are neither found nor missed.

The clips are made from ../shared/data (never shipped) into a folder of the caller's choosing,
never the repository. From the command line, make a clip and score the pipeline on it:

    python -m animerec.benchmarks.truth_clips a [--camera] [--frames N] [--folder /tmp/animerec-clips]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from animerec.benchmarks.quality import FoundFace, naming_against_truth, recall_by_size
from animerec.benchmarks.screen_camera import FilmedScene, ScreenCamera
from animerec.benchmarks.synthetic import FacePath, PastedScene, PlacedFace, Scene, VideoBackdrop, write_clip
from animerec.config import Config, load_config
from animerec.recognition.classifier import Classifier
from animerec.recognition.naming import Decider
from animerec.records import UNKNOWN

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
WIDTH, HEIGHT, FPS = 1280, 720, 24.0
DEFAULT_FRAMES = 720  # 30 s
SIDES = (40, 260)  # face sides in pixels, log-uniform
ON_SCREEN = (0.15, 0.3)  # how long each face stays, as a share of the clip
FACE_GROUPS = 3  # the validation posts are dealt into this many disjoint groups, one per clip
GROUPING_SEED = 2026


@dataclass(frozen=True)
class ClipSpec:
    name: str
    backgrounds: tuple[str, ...]  # files of ../shared/data/videos, played one after another
    face_group: int
    seed: int
    unknown_faces: int = 0  # keima3 crops added, whose truth is "unknown"
    faces_per_character: int = 1
    frames: int = DEFAULT_FRAMES
    on_screen: tuple[float, float] = ON_SCREEN


CLIPS = {
    "a": ClipSpec("a", ("digimon_a4kml_720p.mp4",), 0, 11),
    "b": ClipSpec("b", ("patorn_taki.mp4",), 1, 12),
    # Calibration estimates rates of rare mistakes: three faces of each character over 60 s (each
    # face on screen for a shorter while, so as many are on screen at once as in a and b).
    "calibration": ClipSpec(
        "calibration", ("konobi_s01e007__000282_input.mp4", "kon_taoky_report.gif", "jjk_gojo_tas_1080p.mp4"), 2, 13,
        unknown_faces=12, faces_per_character=3, frames=2 * DEFAULT_FRAMES, on_screen=(0.05, 0.1)),
}


QUICK_FRAMES = 48  # `bench --quick`: a smoke run of the naming clips, not a result


@dataclass(frozen=True)
class TruthClip:
    """A clip on disk and the faces pasted into each of its frames."""

    name: str
    path: Path
    fps: float
    truth: tuple[tuple[PlacedFace, ...], ...]
    camera: bool = False

    def to_json(self) -> dict[str, Any]:
        """For the benchmark's worker processes: the truth travels with the clip."""
        truth = [[[p.name, *p.box] for p in placed] for placed in self.truth]
        return {"name": self.name, "path": str(self.path), "fps": self.fps, "camera": self.camera, "truth": truth}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TruthClip:
        truth = tuple(tuple(PlacedFace(str(n), (int(x), int(y), int(w), int(h))) for n, x, y, w, h in placed)
                      for placed in data["truth"])
        return cls(str(data["name"]), Path(data["path"]), float(data["fps"]), truth, bool(data["camera"]))


def shared_data_present(data: Path = SHARED_DATA) -> bool:
    return (data / "holoen20" / "clean.txt").is_file() and (data / "videos").is_dir()


def validation_faces(data: Path, group: int) -> dict[str, list[Path]]:
    """The clean files of the validation posts (md5 starting with 0 or 1) in one of the
    FACE_GROUPS disjoint groups of posts, by character."""
    lines = (data / "holoen20" / "clean.txt").read_text(encoding="utf-8").split()
    entries = sorted(line for line in lines if line.split("/", 1)[1][:1] in ("0", "1"))
    posts = sorted({line.split("/", 1)[1].split(".", 1)[0] for line in entries})
    order = np.random.default_rng(GROUPING_SEED).permutation(len(posts))
    chosen = {posts[i] for k, i in enumerate(order) if k % FACE_GROUPS == group}
    faces: dict[str, list[Path]] = defaultdict(list)
    for line in entries:
        character, file = line.split("/", 1)
        if file.split(".", 1)[0] in chosen:
            faces[character].append(data / "holoen20" / line)
    return dict(faces)


def _face_path(name: str, file: Path, frames: int, on_screen: tuple[float, float],
               rng: np.random.Generator) -> FacePath:
    image = cv2.imread(str(file))
    if image is None:
        raise ValueError(f"cannot read {file}")
    crop = np.asarray(image, np.uint8)
    low, high = np.log(SIDES[0]), np.log(SIDES[1])
    first_side = float(np.exp(rng.uniform(low, high)))
    last_side = float(np.clip(first_side * rng.uniform(0.7, 1.4), *SIDES))
    stay = max(2, int(frames * rng.uniform(*on_screen)))
    first = int(rng.integers(0, max(1, frames - stay)))
    speed, angle = rng.uniform(0.002, 0.008) * WIDTH, rng.uniform(0, 2 * np.pi)
    start = (float(rng.uniform(0, WIDTH - first_side)), float(rng.uniform(0, HEIGHT - first_side)))
    return FacePath(name, crop, start, (speed * np.cos(angle), speed * np.sin(angle)),
                    (round(first_side), round(last_side)), first, first + stay)


def scene_for(spec: ClipSpec, frames: int | None = None, camera: bool = False, data: Path = SHARED_DATA) -> Scene:
    """Faces of every character (in a seeded order, from the clip's group), plus the unknown
    faces, each crossing the screen for a while; several are on screen at any time. `frames`
    shortens or lengthens the spec's clip (the paths scale with it)."""
    frames = frames or spec.frames
    rng = np.random.default_rng(spec.seed)
    faces = validation_faces(data, spec.face_group)
    paths = []
    for character in rng.permutation(sorted(faces)):
        files = faces[str(character)]
        for _ in range(spec.faces_per_character):
            paths.append(_face_path(str(character), files[int(rng.integers(len(files)))], frames, spec.on_screen, rng))
    strangers = sorted((data / "keima3" / "crops").rglob("*.jpg")) if spec.unknown_faces else []
    for k in rng.permutation(len(strangers))[: spec.unknown_faces]:
        paths.append(_face_path(UNKNOWN, strangers[int(k)], frames, spec.on_screen, rng))
    backdrop = VideoBackdrop([data / "videos" / name for name in spec.backgrounds], WIDTH, HEIGHT)
    scene: Scene = PastedScene(paths, backdrop, WIDTH, HEIGHT, FPS, frames)
    return FilmedScene(scene, ScreenCamera(seed=spec.seed)) if camera else scene


def make_clip(spec: ClipSpec, folder: Path, frames: int | None = None, camera: bool = False,
              data: Path = SHARED_DATA) -> TruthClip:
    """The clip's video in `folder` (made once; the same arguments always give the same clip)."""
    frames = frames or spec.frames
    scene = scene_for(spec, frames, camera, data)
    name = f"{spec.name}{'-camera' if camera else ''}-{frames}"
    path = folder / f"truth-{name}.mp4"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        write_clip(scene, partial)
        partial.replace(path)
    truth = tuple(scene.placements(i) for i in range(frames))
    return TruthClip(name, path, FPS, truth, camera)


def bench_clips(folder: Path, quick: bool, data: Path = SHARED_DATA) -> tuple[list[TruthClip], str]:
    """The clips `animerec bench` names faces on (`a` and `b`, plain and filmed), and a note for
    its report; none, said so, when ../shared/data is absent."""
    if not shared_data_present(data):
        return [], f"naming clips: skipped ({data} is absent)"
    frames = QUICK_FRAMES if quick else DEFAULT_FRAMES
    clips = [make_clip(CLIPS[name], folder, frames, camera, data) for camera in (False, True) for name in ("a", "b")]
    return clips, (f"naming clips: a and b ({frames} frames at {WIDTH}x{HEIGHT}, {FPS:g} fps), plain and filmed "
                   "from a screen: holoen20 validation faces over the shared clips (benchmarks/truth_clips.py)")


def run_pipeline(clip: TruthClip, config: Config | None = None, classifier: Classifier | None = None,
                 decider: Decider | None = None) -> list[list[FoundFace]]:
    """Every frame's faces (box, name, track) as the real pipeline gives them."""
    from animerec.api import build_pipeline
    from animerec.realtime.capture import open_source

    source = open_source(clip.path)
    found = []
    try:
        with build_pipeline(source, config, classifier=classifier, decider=decider, annotate=False) as pipeline:
            for item in pipeline:
                rows = zip(item.faces.boxes.tolist(), item.faces.names, item.faces.tracks.tolist(), strict=True)
                found.append([FoundFace((x, y, w, h), name, track) for (x, y, w, h), name, track in rows])
    finally:
        source.close()
    return found


def score_clip(clip: TruthClip, config: Config | None = None, classifier: Classifier | None = None,
               decider: Decider | None = None) -> dict[str, Any]:
    """The naming measures of quality.naming_against_truth for the pipeline on this clip, and its
    detection recall by face size (quality.recall_by_size)."""
    found = run_pipeline(clip, config, classifier, decider)
    recall = recall_by_size([[face.box for face in faces] for faces in found], clip.truth)
    return {"name": clip.name, "camera": clip.camera, **naming_against_truth(found, clip.truth, clip.fps),
            "recall_by_size": recall}


def add_clip_args(parser: argparse.ArgumentParser) -> None:
    """The flags of every tool that measures on these clips: where they go, the data they are
    made from, and configuration overrides."""
    parser.add_argument("--folder", type=Path, default=Path("/tmp/animerec-clips"), help="folder for the clips")
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a configuration override, as for the other commands")


def config_for_clips(args: argparse.Namespace) -> Config | None:
    """The configuration add_clip_args describes; None (said on standard error) without the data."""
    if not shared_data_present(args.data):
        print(f"no shared data at {args.data}: nothing to do", file=sys.stderr)
        return None
    return load_config(None, args.set)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m animerec.benchmarks.truth_clips", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", choices=sorted(CLIPS))
    parser.add_argument("--camera", action="store_true", help="the version filmed from a screen")
    parser.add_argument("--frames", type=int, help="the clip's length (default: its own, 720 for a and b)")
    add_clip_args(parser)
    args = parser.parse_args(argv)
    config = config_for_clips(args)
    if config is None:
        return 1
    clip = make_clip(CLIPS[args.clip], args.folder, args.frames, args.camera, args.data)
    print(json.dumps(score_clip(clip, config)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
