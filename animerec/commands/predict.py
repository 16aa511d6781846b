"""`animerec predict IMAGE... [-o OUT] [--crops] [--json]`: the report's demo, for still images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.commands import examples
from animerec.config import STILL_IMAGES, add_config_args, add_naming_args, add_overlay_args, config_from_args
from animerec.errors import EXIT_FAILURE, EXIT_OK, EXIT_SKIPPED, AnimerecError, UsageError
from animerec.media import is_animated
from animerec.outputs import IMAGE_SUFFIXES, atomic_output, check_folder, check_output
from animerec.recognition.images import CROP_HINT, UnreadableImage, load_image, looks_like_face_crop
from animerec.records import Faces


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="name the characters in images",
        description="Name the characters in still images: every face's box, name and top 3.",
        epilog=examples("animerec predict shot.png -o named.png",
                        "animerec predict crops/*.jpg --crops --json > faces.json"),
    )
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--out", type=Path, help="annotated image (one input) or folder (several)")
    parser.add_argument("--crops", action="store_true", help="each image is one face crop: no detection")
    parser.add_argument("--json", action="store_true", help="print the face records as JSON on stdout")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output images")
    add_naming_args(parser)
    add_overlay_args(parser)
    add_config_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.api import face_annotator, load_classifier, load_decider
    from animerec.recognition.detectors import make_detector
    from animerec.recognition.recognizer import Recognizer

    targets = _targets(args.images, args.out, args.overwrite)  # every refusal before any output
    config = config_from_args(args, STILL_IMAGES)
    classifier = load_classifier(config, announce=True)
    recognizer = Recognizer(make_detector(config, announce=True), classifier, config.classifier.top_k,
                            load_decider(classifier, config))
    annotator = face_annotator(config)
    results: list[dict[str, Any]] = []
    for path in args.images:
        try:
            image = load_image(path)
        except UnreadableImage as error:
            print(f"animerec: skipped {error}", file=sys.stderr)
            results.append({"image": str(path), "error": error.reason})
            continue
        if is_animated(path):
            print(f"animerec: {path} is animated: using its first frame", file=sys.stderr)
        faces = recognizer.recognise_crop(image) if args.crops else recognizer.recognise(image)
        if not args.crops and not len(faces) and looks_like_face_crop(image):
            print(f"animerec: {path}: {CROP_HINT}", file=sys.stderr)
        results.append({"image": str(path), "faces": faces.to_records()})
        if not args.json:
            print(_describe(path, faces))
        if path in targets:
            _write_image(targets[path], annotator.annotate(image, faces))
    if args.json:
        json.dump(results, sys.stdout, ensure_ascii=False, indent=2)
        print()
    failed = sum("error" in r for r in results)
    return EXIT_OK if not failed else EXIT_SKIPPED if failed < len(results) else EXIT_FAILURE


def _targets(images: list[Path], out: Path | None, overwrite: bool) -> dict[Path, Path]:
    """Where each image's annotated copy goes: `out` itself for one image, `out/<stem>.jpg` when
    `out` is a folder (as it must be for several). Checked, all of them, before any work."""
    if out is None:
        return {}
    if len(images) == 1 and not out.is_dir():
        return {images[0]: check_output(out, overwrite, IMAGE_SUFFIXES, "an image")}
    if out.suffix and not out.is_dir():
        raise UsageError("-o must be a folder when several images are given")
    check_folder(out)
    targets = {image: check_output(out / f"{image.stem}.jpg", overwrite) for image in images}
    if len(set(targets.values())) < len(targets):
        raise UsageError(f"two images would write the same file in {out} (same name, other folder or extension)")
    return targets


def _write_image(path: Path, image: NDArray[np.uint8]) -> None:
    """Write under a temporary name, then rename: a failed write is an error, never a silent no-op."""
    with atomic_output(path) as temporary:
        if not cv2.imwrite(str(temporary), image):
            raise AnimerecError(f"cannot write {path}")


def _describe(path: Path, faces: Faces) -> str:
    """The report demo's text: every face's box, then its top 3 as `Name : 99.37`."""
    lines = [f"{path}: {len(faces)} face(s)"]
    for record in faces.to_records():
        lines.append(f"  face at {record['box']}: {record['name']}")  # the decision: a name or unknown
        lines += [f"    {name} : {100 * p:.2f}" for name, p in record["top"]]
    return "\n".join(lines)
