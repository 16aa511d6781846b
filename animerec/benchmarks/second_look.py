"""The second look (recognition/second_look.py) on frames made for it, apart from the held-aside clips
the detector card counts by eye: how many of the boxes the learned detector puts on lettering it
confirms, and how many faces of characters the detector never trained on it loses.

    python -m animerec.benchmarks.second_look [--frames 300] [--sides 200,256,320] [--json]

Each frame is a sky (fractal clouds) or a two-colour gradient, 1280x720. Lettering frames carry one
to three words (2-5 letters and digits, 40-260 px high, white or any colour, often outlined); every
box the detector (at its shipped threshold) finds on them is false. Face frames carry one face crop
(a holoen20 validation post or a danbooru6 face: never in the detector's training) at 40-300 px;
the detector's boxes on it are faces. A third of all frames are pixelated (shrunk 2-5x and enlarged
again), as subtitles in a small video are. Each box is then looked at again at each zoom side and
counted at each threshold, kept as the detector keeps it (boxes it scores SURE or more stay). One
seed, one set: the same frames for every setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import string
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.benchmarks.detectors import thresholds_list
from animerec.config import Config
from animerec.recognition.detector import ScoredBoxes
from animerec.recognition.faceboxes import iou_matrix
from animerec.recognition.images import load_image
from animerec.recognition.learned_detector import LearnedDetector
from animerec.recognition.second_look import SecondLook, SecondLookSettings, kept
from animerec.train.detector_data import FONTS, clouds
from animerec.train.identities import DEFAULT_DATA_ROOT, load_identity_split

WIDTH, HEIGHT = 1280, 720
LETTERS = string.ascii_letters + string.digits + ".!"
THRESHOLDS = (0.5, 0.6, 0.7, 0.8)
SIDES = (200, 256, 320)


@dataclasses.dataclass(frozen=True)
class Proposal:
    frame: NDArray[np.uint8]
    box: ScoredBoxes  # one box, with the detector's score
    face: bool


class Frames:
    """The frames of one seed."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def background(self) -> NDArray[np.uint8]:
        if self.rng.random() < 0.5:
            return np.ascontiguousarray(clouds(WIDTH, self.rng)[:HEIGHT])
        top, bottom = self.rng.integers(0, 256, 3), self.rng.integers(0, 256, 3)
        t = np.linspace(0, 1, HEIGHT)[:, None, None]
        return np.broadcast_to((top * (1 - t) + bottom * t).astype(np.uint8), (HEIGHT, WIDTH, 3)).copy()

    def lettering(self) -> NDArray[np.uint8]:
        frame = self.background()
        for _ in range(int(self.rng.integers(1, 4))):
            font = FONTS[int(self.rng.integers(len(FONTS)))]
            text = "".join(self.rng.choice(list(LETTERS), int(self.rng.integers(2, 6))))
            scale = self.rng.uniform(40, 260) / cv2.getTextSize("H", font, 1.0, 1)[0][1]
            thickness = max(1, int(scale * self.rng.uniform(0.8, 2.5)))
            (width, height), base = cv2.getTextSize(text, font, scale, thickness)
            if width >= WIDTH - 10 or height + base >= HEIGHT:
                continue
            origin = (int(self.rng.integers(0, WIDTH - width)), int(self.rng.integers(height, HEIGHT - base)))
            fill = (255, 255, 255) if self.rng.random() < 0.5 else tuple(int(v) for v in self.rng.integers(0, 256, 3))
            if self.rng.random() < 0.6:  # an outline
                outline = thickness + max(2, thickness // 2)
                cv2.putText(frame, text, origin, font, scale, (0, 0, 0), outline, cv2.LINE_AA)
            cv2.putText(frame, text, origin, font, scale, fill, thickness, cv2.LINE_AA)
        return self.pixelated(frame)

    def face(self, crop: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        frame = self.background()
        side = int(np.exp(self.rng.uniform(np.log(40), np.log(300))))
        x, y = int(self.rng.integers(0, WIDTH - side)), int(self.rng.integers(0, HEIGHT - side))
        frame[y : y + side, x : x + side] = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        return self.pixelated(frame), np.array([x, y, side, side], np.float32)

    def pixelated(self, frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        if self.rng.random() >= 1 / 3:
            return frame
        factor = self.rng.uniform(2, 5)
        small = cv2.resize(frame, (int(WIDTH / factor), int(HEIGHT / factor)), interpolation=cv2.INTER_AREA)
        blocky = self.rng.random() < 0.5
        return np.asarray(cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST if blocky
                                     else cv2.INTER_LINEAR), np.uint8)


def unseen_faces(data: Path, count: int) -> list[Path]:
    """`count` face files spread evenly over the holoen20 validation posts and danbooru6."""
    split = load_identity_split(root=data)
    files = sorted(f for identity in split.named_val for f in identity.files)
    files += sorted(f for folder in split.test for f in folder.rglob("*") if f.is_file())
    return [files[int(k)] for k in np.linspace(0, len(files) - 1, count)]


def _each(found: ScoredBoxes) -> list[ScoredBoxes]:
    return [ScoredBoxes(box, score) for box, score in zip(found.boxes, found.scores, strict=True)]


def proposals(detector: LearnedDetector, data: Path, frames: int, seed: int) -> list[Proposal]:
    """The detector's boxes on `frames` lettering frames and `frames` face frames."""
    made = Frames(seed)
    found: list[Proposal] = []
    for _ in range(frames):
        frame = made.lettering()
        boxes = detector.detect_scored(frame)
        found += [Proposal(frame, one, False) for one in _each(boxes)]
    for path in unseen_faces(data, frames):
        frame, truth = made.face(load_image(path))
        boxes = detector.detect_scored(frame)
        if len(boxes):
            on_face = iou_matrix(boxes.boxes.astype(np.float32), truth[np.newaxis])[:, 0] > 0.3
            found += [Proposal(frame, one, True) for one in _each(boxes.where(on_face))]
    return found


def measure(detector: LearnedDetector, found: list[Proposal], sides: tuple[int, ...],
            thresholds: tuple[float, ...]) -> list[dict[str, Any]]:
    faces = np.array([p.face for p in found])
    rows = []
    for side in sides:
        look = SecondLook(detector, SecondLookSettings(side=side))
        looks = np.array([look.looks(p.frame, p.box)[0] for p in found], np.float32)
        scores = np.array([p.box.scores[0] for p in found], np.float32)
        for threshold in thresholds:
            confirmed = kept(scores, looks, threshold)  # as the detector keeps them: sure boxes stay
            rows.append({"side": side, "threshold": threshold,
                         "false_confirmed": int((confirmed & ~faces).sum()), "false_boxes": int((~faces).sum()),
                         "faces_lost": int((~confirmed & faces).sum()), "faces": int(faces.sum())})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m animerec.benchmarks.second_look", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_ROOT)
    parser.add_argument("--frames", type=int, default=300, help="lettering frames, and as many face frames")
    parser.add_argument("--sides", type=lambda text: tuple(int(v) for v in text.split(",")), default=SIDES)
    parser.add_argument("--thresholds", type=thresholds_list, default=THRESHOLDS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"no shared data at {args.data}: nothing to do", file=sys.stderr)
        return 1
    detector = LearnedDetector(dataclasses.replace(Config().learned_settings(), device="cpu"), warmup=False)
    rows = measure(detector, proposals(detector, args.data, args.frames, args.seed), args.sides, args.thresholds)
    if args.json:
        print(json.dumps(rows))
        return 0
    print("side  threshold  lettering boxes confirmed  faces lost")
    for row in rows:
        print(f"{row['side']:>4}  {row['threshold']:>9}  {row['false_confirmed']:>11} of {row['false_boxes']:<11}"
              f"  {row['faces_lost']} of {row['faces']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
