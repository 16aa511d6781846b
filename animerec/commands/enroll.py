"""`animerec enroll NAME IMAGE_OR_DIR... [--crops] [--append] [--gallery PATH]`: teach a new character.

Each image gives one face (the largest the cascade finds, cut with the report's crop, or the
whole image with --crops); their embeddings go into the gallery under NAME. Nothing is written
unless at least one face was found, and an existing name is only extended with --append.

The helpers here (listing images, cutting faces) are shared by `gallery` and `calibrate`, which
read faces the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.commands import examples
from animerec.config import STILL_IMAGES, add_config_args, config_from_args
from animerec.errors import EXIT_OK, EXIT_SKIPPED, InputError, UsageError
from animerec.media import is_image
from animerec.outputs import check_output
from animerec.recognition.crop import report_crop
from animerec.recognition.detector import Detector
from animerec.recognition.detectors import make_detector
from animerec.recognition.embedding import embed
from animerec.recognition.gallery import (
    CROP,
    DETECTED,
    Character,
    Gallery,
    clean_name,
    default_gallery_path,
    load_gallery,
    save_gallery,
)
from animerec.recognition.images import CROP_HINT, UnreadableImage, load_image, looks_like_face_crop


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "enroll", help="add a character to the gallery from a few images",
        description="Add a character to the gallery from a few images, without retraining.",
        epilog=examples("animerec enroll Kon kon/*.png",
                        "animerec enroll Kon crops/kon/ --crops --append"),
    )
    parser.add_argument("name", help="the character's name, in any script")
    parser.add_argument("images", type=Path, nargs="+", metavar="IMAGE_OR_DIR", help="images, or folders of them")
    parser.add_argument("--crops", action="store_true", help="each image is already a face crop: no detection")
    parser.add_argument("--append", action="store_true", help="add faces to a character already enrolled")
    add_gallery_arg(parser)
    add_config_args(parser)
    parser.set_defaults(handler=run)


def add_gallery_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gallery", type=Path, metavar="PATH",
                        help=f"gallery file (default: {default_gallery_path()})")


def image_files(inputs: Iterable[Path]) -> list[Path]:
    """Files as given, folders expanded (recursively, sorted) to the images inside them."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and is_image(p))
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"not found: {path}")
    return files


def largest_face(image: NDArray[np.uint8], detector: Detector) -> NDArray[np.uint8] | None:
    boxes = detector.detect(image)
    if not len(boxes):
        return None
    return report_crop(image, boxes[int(np.argmax(boxes[:, 2] * boxes[:, 3]))])


def face_crops(files: list[Path], detector: Detector | None
               ) -> Iterator[tuple[Path, NDArray[np.uint8] | None, str]]:
    """(file, face crop or None, reason when None) for each file, one at a time; without a
    detector each image is taken as a crop."""
    for path in files:
        try:
            image = load_image(path)
        except UnreadableImage as error:
            yield path, None, error.reason
            continue
        if detector is None:
            yield path, image, ""
        else:
            face = largest_face(image, detector)
            hint = CROP_HINT if looks_like_face_crop(image) else "no face found"
            yield path, face, "" if face is not None else hint


def open_for_enrolment(path: Path, model_id: str) -> Gallery:
    gallery = load_gallery(path) if path.exists() else Gallery(model_id)
    gallery.check_model(model_id, path)
    return gallery


def run(args: argparse.Namespace) -> int:
    from animerec.api import load_classifier

    name = clean_name(args.name)
    path = check_output(args.gallery or default_gallery_path(), overwrite=True)  # updated in place
    files = image_files(args.images)
    config = config_from_args(args, STILL_IMAGES)
    detector = None if args.crops else make_detector(config, announce=True)
    classifier = load_classifier(config, announce=True)
    if name in classifier.labels:
        raise UsageError(f"{name!r} is one of the model's trained characters; enrol it under another name")
    gallery = open_for_enrolment(path, classifier.model_id)
    gallery.check_can_enrol(name, args.append)  # before any slow work
    found: list[NDArray[np.uint8]] = []
    sources: list[str] = []
    skipped = 0
    for file, crop, reason in face_crops(files, detector):
        if crop is None:
            print(f"animerec: skipped {file}: {reason}", file=sys.stderr)
            skipped += 1
        else:
            found.append(crop)
            sources.append(str(file.resolve()))  # absolute: `gallery migrate` may run from anywhere
    if not found:
        hint = "" if args.crops else " (pass --crops if they are face crops already)"
        raise InputError(f"no face in any of the {len(files)} image(s); nothing was enrolled{hint}")
    framing = CROP if args.crops else DETECTED
    gallery = gallery.enrol(Character(name, embed(classifier, found), tuple(sources), framing), append=args.append)
    save_gallery(gallery, path)
    total = gallery.get(name)
    print(f"enrolled {name}: {len(found)} face(s) added, {total.count if total else 0} in all, gallery {path}")
    return EXIT_SKIPPED if skipped else EXIT_OK
