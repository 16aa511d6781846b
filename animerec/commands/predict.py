"""`animerec predict IMAGE... [-o OUT] [--crops] [--json]`: the report's demo, for still images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2

from animerec.commands.common import add_model_args, check_output, load_recognizer
from animerec.config import add_naming_args
from animerec.errors import EXIT_OK, EXIT_SKIPPED, UsageError
from animerec.recognition.images import UnreadableImage, load_image
from animerec.recognition.naming import decider_for
from animerec.records import Faces


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("predict", help="name the characters in images")
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--out", type=Path, help="annotated image (one input) or folder (several)")
    parser.add_argument("--crops", action="store_true", help="each image is one face crop: no detection")
    parser.add_argument("--json", action="store_true", help="print the face records as JSON on stdout")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output images")
    add_naming_args(parser)
    add_model_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.realtime.overlay import FaceAnnotator

    if args.out and len(args.images) > 1 and args.out.suffix:
        raise UsageError("-o must be a folder when several images are given")
    recognizer = load_recognizer(args)
    info = recognizer.classifier.info  # type: ignore[attr-defined]  # an OnnxClassifier
    recognizer = recognizer.with_decider(decider_for(info, args.gallery, args.unknown_threshold, recognizer.top_k))
    annotator = FaceAnnotator(show_top3=True)
    results: list[dict[str, Any]] = []
    for path in args.images:
        try:
            image = load_image(path)
        except UnreadableImage as error:
            print(f"animerec: skipped {path}: {error}", file=sys.stderr)
            results.append({"image": str(path), "error": str(error)})
            continue
        faces = recognizer.recognise_crop(image) if args.crops else recognizer.recognise(image)
        results.append({"image": str(path), "faces": faces.to_records()})
        if not args.json:
            print(_describe(path, faces))
        if args.out:
            target = args.out if len(args.images) == 1 else args.out / f"{path.stem}.jpg"
            check_output(target, args.overwrite)
            cv2.imwrite(str(target), annotator.annotate(image, faces))
    if args.json:
        json.dump(results, sys.stdout, ensure_ascii=False, indent=2)
        print()
    return EXIT_SKIPPED if any("error" in r for r in results) else EXIT_OK


def _describe(path: Path, faces: Faces) -> str:
    """The report demo's text: every face's box, then its top 3 as `Name : 99.37`."""
    lines = [f"{path}: {len(faces)} face(s)"]
    for record in faces.to_records():
        lines.append(f"  face at {record['box']}: {record['name']}")  # the decision: a name or unknown
        lines += [f"    {name} : {100 * p:.2f}" for name, p in record["top"]]
    return "\n".join(lines)
