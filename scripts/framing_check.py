"""Does the model see at run time the framing it was trained on?

The holoen20 crops are tight crops from an unknown detector; at run time faces are cut with the
report's crop around the LBP cascade's box. For each validation crop this puts the crop on a margin,
runs the cascade, cuts the report's crop, and compares accuracy with the crop as given, on the same
faces.

    .venv/bin/python scripts/framing_check.py DATA_DIR/val [--model M] [--margin 64]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from animerec.labelled import list_labelled
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.recognition.classifier import OnnxClassifier
from animerec.recognition.crop import report_crop
from animerec.recognition.detector import CascadeDetector
from animerec.recognition.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("val_dir", type=Path)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument("--margin", type=int, default=64)
    args = parser.parse_args()
    classifier = OnnxClassifier(args.model, device="cpu")
    detector = CascadeDetector()
    paths, truth, _ = list_labelled(args.val_dir, classifier.labels)
    tight, framed, kept = [], [], []
    for path, label in tqdm(list(zip(paths, truth, strict=True)), desc="framing", unit="face"):
        crop = load_image(path)
        m = args.margin * crop.shape[0] // 150
        canvas = cv2.copyMakeBorder(crop, m, m, m, m, cv2.BORDER_REPLICATE)
        boxes = detector.detect(canvas)
        if not len(boxes):
            continue
        largest = boxes[int(np.argmax(boxes[:, 2] * boxes[:, 3]))]
        tight.append(crop)
        framed.append(report_crop(canvas, largest))
        kept.append(label)
    labels = np.asarray(kept)
    tight_top1 = (classifier.classify(tight).probs.argmax(1) == labels).mean()
    framed_top1 = (classifier.classify(framed).probs.argmax(1) == labels).mean()
    print(f"cascade found a face in {len(kept)} of {len(paths)} validation crops (margin {args.margin}px at 150px)")
    print(
        f"top-1 on those faces: tight crop as trained {tight_top1:.2%}, "
        f"report crop around the cascade box {framed_top1:.2%}"
    )


if __name__ == "__main__":
    main()
