"""Detectors side by side (issue 12): the cascade, the learned detector and both merged, each at
the pipeline's settings (detectors.make_detector's), measured three ways:

- recall against the ground truth of the naming clips (truth_clips.py: a and b, plain and filmed
  from a screen), by face side in source pixels (quality.recall_by_size);
- the boxes `both` adds to the cascade's on the real clips of ../shared/data/videos (held aside:
  the learned detector never trained on them): every one is cut into a contact sheet, to be
  counted by eye, since those clips have no truth and most added boxes are faces the cascade
  missed; the boxes the second look (second_look.py) turns away get a sheet of their own;
- milliseconds per frame with the cascade's working height and the learned detector's input
  height at 360, 540 and 720 (wall and CPU time of one thread, OpenCV limited to one thread).

    python -m animerec.benchmarks.detectors [--step N] [--sheets DIR] [--thresholds 0.5,0.7,0.9] \
        [--looks 0.5,0.7,0.9]

With --thresholds, the recall of `both` and the boxes it adds are also given at each learned
score threshold (one pass: the learned detector runs at the lowest, its boxes filtered by score;
greedy NMS makes that the same as running at each); with --looks, at each second look threshold.
Each tile of a sheet reads: frame, learned score, second look score. JSON on standard output. The
sheets hold artwork: they go to DIR (default /tmp), never the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.benchmarks.quality import recall_by_size
from animerec.benchmarks.truth_clips import CLIPS, TruthClip, add_clip_args, config_for_clips, make_clip
from animerec.config import Config
from animerec.media import every_nth_frame
from animerec.recognition.detector import CascadeDetector, ScoredBoxes
from animerec.recognition.detectors import added, make_detector, merge
from animerec.recognition.learned_detector import LearnedDetector
from animerec.recognition.second_look import SecondLook, kept

KINDS = ("cascade", "learned", "both")
HEIGHTS = (360, 540, 720)
SPEED_FRAMES = 24
TILE = 96  # contact-sheet tile side in pixels
SHEET_COLUMNS = 12
MARGIN = 0.25  # context around a box on its tile, as a share of its side


@dataclasses.dataclass(frozen=True)
class Detections:
    """Both detectors' boxes on one frame, and the second look's score of each learned box (none:
    no second look); `both` is their merge (detectors.merge)."""

    cascade: ScoredBoxes
    learned: ScoredBoxes
    looks: NDArray[np.float32] | None = None

    def boxes(self, kind: str) -> list[tuple[int, int, int, int]]:
        if kind == "cascade":
            found = self.cascade
        elif kind == "learned":
            found = self.learned
        else:
            found = merge(self.cascade, self.learned)
        return [(int(x), int(y), int(w), int(h)) for x, y, w, h in found.boxes]

    def at(self, threshold: float, look: float = 0.0) -> Detections:
        """The same detections with the learned boxes scoring under `threshold`, or under `look`
        when looked at again, dropped."""
        keep = self.learned.scores >= threshold
        if self.looks is not None:
            keep &= kept(self.learned.scores, self.looks, look)
        looks = None if self.looks is None else self.looks[keep]
        return Detections(self.cascade, self.learned.where(keep), looks)

    def learned_only(self) -> Detections:
        """The learned boxes `both` adds to the cascade's (merge keeps every cascade box first)."""
        new = added(self.cascade, self.learned)
        looks = None if self.looks is None else self.looks[new]
        none = ScoredBoxes(np.zeros((0, 4), np.int32), np.zeros(0, np.float32))
        return Detections(none, self.learned.where(new), looks)


class SideBySide:
    """The cascade and the learned detector as the pipeline sets them up, run on the same frames,
    with the second look's score of every learned box."""

    def __init__(self, config: Config, thresholds: tuple[float, ...] = ()) -> None:
        """`thresholds`: learned score thresholds measured besides the configured one; the
        learned detector runs at the lowest of them, `detect` filters back to the configured one."""
        settings = config.learned_settings()
        self.threshold = settings.score_threshold
        self.look_threshold = config.detector.confirm_threshold
        self.cascade = CascadeDetector(config.cascade_settings())
        lowest = min((self.threshold, *thresholds))
        self.learned = LearnedDetector(dataclasses.replace(settings, score_threshold=lowest))
        look = config.second_look_settings()
        self.second_look = SecondLook(self.learned, look) if look.threshold > 0 else None

    def detect_all(self, frame: NDArray[np.uint8]) -> Detections:
        """Both detectors' boxes, the learned ones down to the lowest threshold asked for."""
        learned = self.learned.detect_scored(frame)
        looks = None if self.second_look is None else self.second_look.looks(frame, learned)
        return Detections(self.cascade.detect_scored(frame), learned, looks)

    def detect(self, frame: NDArray[np.uint8]) -> Detections:
        """Both detectors' boxes at the configured settings."""
        return self.detect_all(frame).at(self.threshold, self.look_threshold)


def recall_on_clip(clip: TruthClip, detectors: SideBySide, step: int, thresholds: tuple[float, ...] = (),
                   looks: tuple[float, ...] = ()) -> dict[str, Any]:
    """Recall by face size for each kind on every `step`-th frame of a naming clip, and of `both`
    at each of `thresholds` (learned scores) and of `looks` (second look scores)."""
    found: dict[str, list[list[tuple[int, int, int, int]]]] = {kind: [] for kind in KINDS}
    swept: dict[float, list[list[tuple[int, int, int, int]]]] = {t: [] for t in thresholds}
    looked: dict[float, list[list[tuple[int, int, int, int]]]] = {c: [] for c in looks}
    truth = []
    for index, frame in every_nth_frame(clip.path, step):
        everything = detectors.detect_all(frame)
        detections = everything.at(detectors.threshold, detectors.look_threshold)
        for kind in KINDS:
            found[kind].append(detections.boxes(kind))
        for threshold in thresholds:
            swept[threshold].append(everything.at(threshold, detectors.look_threshold).boxes("both"))
        for look in looks:
            looked[look].append(everything.at(detectors.threshold, look).boxes("both"))
        truth.append(clip.truth[index])
    result = {"clip": clip.name, "frames": len(truth), **{kind: recall_by_size(found[kind], truth) for kind in KINDS}}
    if thresholds:
        result["both_by_threshold"] = {str(t): recall_by_size(swept[t], truth) for t in thresholds}
    if looks:
        result["both_by_look"] = {str(c): recall_by_size(looked[c], truth) for c in looks}
    return result


def _tile(frame: NDArray[np.uint8], box: NDArray[np.int32], label: str) -> NDArray[np.uint8]:
    x, y, w, h = (int(v) for v in box)
    pad = int(MARGIN * max(w, h))
    top, left = max(0, y - pad), max(0, x - pad)
    crop = frame[top : y + h + pad, left : x + w + pad]
    tile = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_AREA) if crop.size else np.zeros((TILE, TILE, 3))
    tile = np.ascontiguousarray(tile, np.uint8)
    cv2.putText(tile, label, (2, TILE - 4), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(tiles: list[NDArray[np.uint8]], path: Path) -> None:
    rows = [tiles[k : k + SHEET_COLUMNS] for k in range(0, len(tiles), SHEET_COLUMNS)]
    blank = np.zeros((TILE, TILE, 3), np.uint8)
    sheet = np.vstack([np.hstack(row + [blank] * (SHEET_COLUMNS - len(row))) for row in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)


def learned_only_on(video: Path, detectors: SideBySide, step: int, sheets: Path,
                    thresholds: tuple[float, ...] = (), looks: tuple[float, ...] = ()) -> dict[str, Any]:
    """The boxes `both` adds to the cascade's on a real clip, and their contact sheet; how many it
    adds at each of `thresholds` and `looks`. The boxes the second look drops get a sheet of their
    own, so that both can be counted by eye."""
    kept_tiles: list[NDArray[np.uint8]] = []
    dropped: list[NDArray[np.uint8]] = []
    added_boxes = sampled = 0
    swept = dict.fromkeys(thresholds, 0)
    looked = dict.fromkeys(looks, 0)
    for index, frame in every_nth_frame(video, step):
        sampled += 1
        everything = detectors.detect_all(frame)
        for threshold in thresholds:
            swept[threshold] += len(everything.at(threshold, detectors.look_threshold).learned_only().learned)
        for look in looks:
            looked[look] += len(everything.at(detectors.threshold, look).learned_only().learned)
        extra = everything.at(detectors.threshold).learned_only()
        again = extra.looks if extra.looks is not None else np.ones(len(extra.learned), np.float32)
        stays = kept(extra.learned.scores, again, detectors.look_threshold)
        added_boxes += int(stays.sum())
        for box, score, look, stay in zip(extra.learned.boxes, extra.learned.scores, again, stays, strict=True):
            (kept_tiles if stay else dropped).append(_tile(frame, box, f"{index} {score:.2f} {look:.2f}"))
    result: dict[str, Any] = {"clip": video.name, "frames": sampled, "learned_only_boxes": added_boxes,
                              "per_100_frames": round(100 * added_boxes / sampled, 2) if sampled else None}
    for name, prefix, tiles in (("sheet", "learned_only", kept_tiles), ("unconfirmed_sheet", "unconfirmed", dropped)):
        path = sheets / f"{prefix}_{video.stem}.png"
        if tiles:
            contact_sheet(tiles, path)
        result[name] = str(path) if tiles else None
    result["unconfirmed_boxes"] = len(dropped)
    if thresholds and sampled:
        result["per_100_frames_by_threshold"] = {str(t): round(100 * n / sampled, 2) for t, n in swept.items()}
    if looks and sampled:
        result["per_100_frames_by_look"] = {str(c): round(100 * n / sampled, 2) for c, n in looked.items()}
    return result


def _median_ms(detect: Any, sample: list[NDArray[np.uint8]]) -> tuple[float, float]:
    """Median wall and CPU (this thread's) milliseconds of `detect` over the frames."""
    wall, cpu = [], []
    for frame in sample:
        started, started_cpu = time.perf_counter(), time.thread_time()
        detect(frame)
        wall.append(1000 * (time.perf_counter() - started))
        cpu.append(1000 * (time.thread_time() - started_cpu))
    return round(statistics.median(wall), 1), round(statistics.median(cpu), 1)


def speed(config: Config, clip: TruthClip) -> list[dict[str, Any]]:
    """ms per frame of each kind as the pipeline builds it (detectors.make_detector: `both` with the
    second look on the boxes it adds), both detectors working at each of HEIGHTS, on one thread."""
    cv2.setNumThreads(1)
    sample = [frame for _, frame in every_nth_frame(clip.path, 1)][:SPEED_FRAMES]
    rows = []
    for height in HEIGHTS:
        pipeline = dataclasses.replace(config.pipeline, working_height=height)
        for kind in KINDS:
            detector = dataclasses.replace(config.detector, kind=kind, learned_height=height, learned_threads=1)
            detect = make_detector(dataclasses.replace(config, pipeline=pipeline, detector=detector)).detect_scored
            wall, cpu = _median_ms(detect, sample)
            rows.append({"height": height, "kind": kind, "wall_ms": wall, "cpu_ms": cpu})
    return rows


def thresholds_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not all(0.0 < value < 1.0 for value in values):
        raise argparse.ArgumentTypeError(f"thresholds are probabilities between 0 and 1, got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m animerec.benchmarks.detectors", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", type=int, default=3, help="measure every STEP-th frame (default 3)")
    parser.add_argument("--sheets", type=Path, default=Path("/tmp"), help="folder for the contact sheets")
    parser.add_argument("--thresholds", type=thresholds_list, default=(), metavar="T,T,...",
                        help="also measure `both` at these learned score thresholds")
    parser.add_argument("--looks", type=thresholds_list, default=(), metavar="C,C,...",
                        help="also measure `both` at these second look thresholds (scores of the box found again)")
    add_clip_args(parser)
    args = parser.parse_args(argv)
    config = config_for_clips(args)
    if config is None:
        return 1
    detectors = SideBySide(config, args.thresholds)
    clips = [make_clip(CLIPS[name], args.folder, camera=camera, data=args.data)
             for camera in (False, True) for name in ("a", "b")]
    result = {
        "settings": {"working_height": config.pipeline.working_height, **dataclasses.asdict(config.detector)},
        "step": args.step,
        "recall": [recall_on_clip(clip, detectors, args.step, args.thresholds, args.looks) for clip in clips],
        "learned_only": [learned_only_on(video, detectors, args.step, args.sheets, args.thresholds, args.looks)
                         for video in sorted((args.data / "videos").iterdir())],
        "speed": speed(config, clips[0]),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
