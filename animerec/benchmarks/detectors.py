"""Detectors side by side (issue 12): the cascade, the learned detector and both merged, each at
the pipeline's settings (detectors.make_detector's), measured three ways:

- recall against the ground truth of the naming clips (truth_clips.py: a and b, plain and filmed
  from a screen), by face side in source pixels (quality.recall_by_size);
- the boxes `both` adds to the cascade's on the real clips of ../shared/data/videos (held aside:
  the learned detector never trained on them): every one is cut into a contact sheet, to be
  counted by eye, since those clips have no truth and most added boxes are faces the cascade missed;
- milliseconds per frame with the cascade's working height and the learned detector's input
  height at 360, 540 and 720 (wall and CPU time of one thread, OpenCV limited to one thread).

    python -m animerec.benchmarks.detectors [--step N] [--sheets DIR] [--thresholds 0.5,0.7,0.9]

With --thresholds, the recall of `both` and the boxes it adds are also given at each learned
score threshold (one pass: the learned detector runs at the lowest, its boxes filtered by score;
greedy NMS makes that the same as running at each). JSON on standard output. The sheets hold
artwork: they go to DIR (default /tmp), never the repository.
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
from animerec.recognition.detectors import merge
from animerec.recognition.learned_detector import LearnedDetector

KINDS = ("cascade", "learned", "both")
HEIGHTS = (360, 540, 720)
SPEED_FRAMES = 24
TILE = 96  # contact-sheet tile side in pixels
SHEET_COLUMNS = 12
MARGIN = 0.25  # context around a box on its tile, as a share of its side


@dataclasses.dataclass(frozen=True)
class Detections:
    """Both detectors' boxes on one frame; `both` is their merge (detectors.merge)."""

    cascade: ScoredBoxes
    learned: ScoredBoxes

    def boxes(self, kind: str) -> list[tuple[int, int, int, int]]:
        if kind == "cascade":
            found = self.cascade
        elif kind == "learned":
            found = self.learned
        else:
            found = merge(self.cascade, self.learned)
        return [(int(x), int(y), int(w), int(h)) for x, y, w, h in found.boxes]

    def at(self, threshold: float) -> Detections:
        """The same detections with the learned boxes scoring under `threshold` dropped."""
        keep = self.learned.scores >= threshold
        return Detections(self.cascade, ScoredBoxes(self.learned.boxes[keep], self.learned.scores[keep]))

    def learned_only(self) -> ScoredBoxes:
        """The boxes `both` adds to the cascade's (merge keeps every cascade box first)."""
        merged = merge(self.cascade, self.learned)
        return ScoredBoxes(merged.boxes[len(self.cascade):], merged.scores[len(self.cascade):])


class SideBySide:
    """The cascade and the learned detector as the pipeline sets them up, run on the same frames."""

    def __init__(self, config: Config, thresholds: tuple[float, ...] = ()) -> None:
        """`thresholds`: learned score thresholds measured besides the configured one; the
        learned detector runs at the lowest of them, `detect` filters back to the configured one."""
        settings = config.learned_settings()
        self.threshold = settings.score_threshold
        self.cascade = CascadeDetector(config.cascade_settings())
        lowest = min((self.threshold, *thresholds))
        self.learned = LearnedDetector(dataclasses.replace(settings, score_threshold=lowest))

    def detect_all(self, frame: NDArray[np.uint8]) -> Detections:
        """Both detectors' boxes, the learned ones down to the lowest threshold asked for."""
        return Detections(self.cascade.detect_scored(frame), self.learned.detect_scored(frame))

    def detect(self, frame: NDArray[np.uint8]) -> Detections:
        """Both detectors' boxes at the configured settings."""
        return self.detect_all(frame).at(self.threshold)


def recall_on_clip(clip: TruthClip, detectors: SideBySide, step: int, thresholds: tuple[float, ...] = (),
                   ) -> dict[str, Any]:
    """Recall by face size for each kind on every `step`-th frame of a naming clip, and of `both`
    at each of `thresholds`."""
    found: dict[str, list[list[tuple[int, int, int, int]]]] = {kind: [] for kind in KINDS}
    swept: dict[float, list[list[tuple[int, int, int, int]]]] = {t: [] for t in thresholds}
    truth = []
    for index, frame in every_nth_frame(clip.path, step):
        everything = detectors.detect_all(frame)
        detections = everything.at(detectors.threshold)
        for kind in KINDS:
            found[kind].append(detections.boxes(kind))
        for threshold in thresholds:
            swept[threshold].append(everything.at(threshold).boxes("both"))
        truth.append(clip.truth[index])
    result = {"clip": clip.name, "frames": len(truth), **{kind: recall_by_size(found[kind], truth) for kind in KINDS}}
    if thresholds:
        result["both_by_threshold"] = {str(t): recall_by_size(swept[t], truth) for t in thresholds}
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
                    thresholds: tuple[float, ...] = ()) -> dict[str, Any]:
    """The boxes `both` adds to the cascade's on a real clip, and their contact sheet; how many it
    adds at each of `thresholds`."""
    tiles, added, sampled = [], 0, 0
    swept = dict.fromkeys(thresholds, 0)
    for index, frame in every_nth_frame(video, step):
        sampled += 1
        everything = detectors.detect_all(frame)
        for threshold in thresholds:
            swept[threshold] += len(everything.at(threshold).learned_only())
        extra = everything.at(detectors.threshold).learned_only()
        added += len(extra)
        tiles += [_tile(frame, box, f"{index} {score:.2f}")
                  for box, score in zip(extra.boxes, extra.scores, strict=True)]
    sheet = sheets / f"learned_only_{video.stem}.png"
    if tiles:
        contact_sheet(tiles, sheet)
    result = {"clip": video.name, "frames": sampled, "learned_only_boxes": added,
              "per_100_frames": round(100 * added / sampled, 2) if sampled else None,
              "sheet": str(sheet) if tiles else None}
    if thresholds and sampled:
        result["per_100_frames_by_threshold"] = {str(t): round(100 * n / sampled, 2) for t, n in swept.items()}
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
    """ms per frame of each kind with both detectors working at each of HEIGHTS, on one thread."""
    cv2.setNumThreads(1)
    sample = [frame for _, frame in every_nth_frame(clip.path, 1)][:SPEED_FRAMES]
    rows = []
    for height in HEIGHTS:
        pipeline = dataclasses.replace(config.pipeline, working_height=height)
        detector = dataclasses.replace(config.detector, learned_height=height, learned_threads=1)
        detectors = SideBySide(dataclasses.replace(config, pipeline=pipeline, detector=detector))
        kinds = {"cascade": detectors.cascade.detect_scored, "learned": detectors.learned.detect_scored,
                 "both": detectors.detect}
        for kind, detect in kinds.items():
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
        "recall": [recall_on_clip(clip, detectors, args.step, args.thresholds) for clip in clips],
        "learned_only": [learned_only_on(video, detectors, args.step, args.sheets, args.thresholds)
                         for video in sorted((args.data / "videos").iterdir())],
        "speed": speed(config, clips[0]),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
