"""Where a learned detector's boxes lie around the cascade's box for the same face: the geometry
`animerec.export.faceboxes_port --geometry` stores in a model (learned_detector.HeadGeometry).

    python -m animerec.benchmarks.detector_geometry --set detector.learned_model=MODEL [--step 3]

On every STEP-th frame of the naming clips a and b and of the real clips, each cascade box is paired
with the learned head box overlapping it most (IoU of the mapped box > 0.3, so the pairing does not
depend much on the geometry it measures); prints the medians, with their quartiles, as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.benchmarks.truth_clips import CLIPS, add_clip_args, config_for_clips, make_clip
from animerec.media import every_nth_frame
from animerec.recognition.detector import CascadeDetector
from animerec.recognition.faceboxes import iou_matrix
from animerec.recognition.learned_detector import HeadGeometry, LearnedDetector

PAIRED_IOU = 0.3


def paired_geometry(cascade: NDArray[np.int32], heads: NDArray[np.int32],
                    geometry: HeadGeometry) -> list[tuple[float, float]]:
    """(head width / cascade width, head centre's height above the cascade's in cascade widths)
    for each cascade box and the head whose box, mapped by the model's `geometry`, overlaps it most."""
    if not len(cascade) or not len(heads):
        return []
    overlap = iou_matrix(cascade.astype(np.float64), geometry.to_cascade(heads).astype(np.float64))
    pairs = []
    for i, j in enumerate(overlap.argmax(axis=1)):
        if overlap[i, j] > PAIRED_IOU:
            (_, cy, cw, ch), (_, hy, hw, hh) = cascade[i].astype(np.float64), heads[j].astype(np.float64)
            pairs.append((hw / cw, ((cy + ch / 2) - (hy + hh / 2)) / cw))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m animerec.benchmarks.detector_geometry", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", type=int, default=3, help="every STEP-th frame (default 3)")
    add_clip_args(parser)
    args = parser.parse_args(argv)
    config = config_for_clips(args)
    if config is None:
        return 1
    cascade, learned = CascadeDetector(config.cascade_settings()), LearnedDetector(config.learned_settings())
    videos: list[Path] = [make_clip(CLIPS[name], args.folder, data=args.data).path for name in ("a", "b")]
    videos += sorted((args.data / "videos").iterdir())
    pairs = []
    for video in videos:
        for _, frame in every_nth_frame(video, args.step):
            heads = learned.detect_heads(frame).boxes
            pairs += paired_geometry(cascade.detect(frame), heads, learned.geometry)
    if not pairs:
        print(json.dumps({"model": str(learned.path), "pairs": 0}))
        return 1
    result: dict[str, object] = {"model": str(learned.path), "pairs": len(pairs)}
    for name, values in zip(("width_ratio", "centre_above"), np.array(pairs).T, strict=True):
        result[name] = round(float(np.median(values)), 3)
        result[f"{name}_quartiles"] = np.percentile(values, [25, 75]).round(3).tolist()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
