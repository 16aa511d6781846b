"""`animerec gallery list|remove NAME|migrate [--gallery PATH]`: see, prune and carry over the
enrolled characters.

`migrate` embeds a gallery's faces again with the current model (after a model update the old
embeddings cannot be compared with the new ones): each face is cut again from its source image
the way it was enrolled. The old file is kept beside the new one, named after its model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.commands import examples
from animerec.commands.enroll import add_gallery_arg, largest_face
from animerec.config import STILL_IMAGES, add_config_args, config_from_args
from animerec.errors import EXIT_FAILURE, EXIT_OK, EXIT_SKIPPED
from animerec.recognition.classifier import Classifier
from animerec.recognition.detector import CascadeDetector
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
from animerec.recognition.images import UnreadableImage, load_image


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gallery", help="list or remove enrolled characters",
        description="List, remove or re-embed the characters enrolled with `animerec enroll`.",
        epilog=examples("animerec gallery list",
                        "animerec gallery remove Kon"),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="the enrolled characters and their number of faces",
        description="The enrolled characters and their number of faces.",
        epilog=examples("animerec gallery list --json"),
    )
    listing.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    add_gallery_arg(listing)
    listing.set_defaults(handler=run_list)
    remove = actions.add_parser(
        "remove", help="forget one enrolled character",
        description="Forget one enrolled character.",
        epilog=examples("animerec gallery remove Kon"),
    )
    remove.add_argument("name")
    add_gallery_arg(remove)
    remove.set_defaults(handler=run_remove)
    migrate = actions.add_parser(
        "migrate", help="embed the enrolled faces again with the current model",
        description="Embed the enrolled faces again with the current model (after a model update).",
        epilog=examples("animerec gallery migrate"),
    )
    add_gallery_arg(migrate)
    add_config_args(migrate)
    migrate.set_defaults(handler=run_migrate)


def run_list(args: argparse.Namespace) -> int:
    path = args.gallery or default_gallery_path()
    if not path.exists() and args.gallery is None:
        # No default gallery yet is the normal state before the first `enroll`.
        characters, model_id = [], None
    else:
        gallery = load_gallery(path)
        characters = [{"name": c.name, "faces": c.count} for c in gallery.characters]
        model_id = gallery.model_id
    if args.json:
        document = {"gallery": str(path), "model_id": model_id, "characters": characters}
        print(json.dumps(document, ensure_ascii=False))
        return EXIT_OK
    print(f"gallery {path}" + (f" (model {model_id})" if model_id else " (empty)"))
    for entry in characters:
        print(f"  {entry['name']}  {entry['faces']} face(s)")
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    path = args.gallery or default_gallery_path()
    gallery = load_gallery(path).remove(clean_name(args.name))
    save_gallery(gallery, path)
    print(f"removed {clean_name(args.name)} from {path}; {len(gallery)} character(s) left", file=sys.stderr)
    return EXIT_OK


def recut(source: Path, framing: str, detector: CascadeDetector) -> NDArray[np.uint8] | None:
    """The face `source` gave at enrolment: the whole image for a crop, else the largest face the
    cascade finds; when the framing was not recorded (older galleries), the largest face, or the
    whole image when none is found (tight crops rarely show the cascade a face)."""
    image = load_image(source)
    if framing == CROP:
        return image
    face = largest_face(image, detector)
    return image if face is None and framing != DETECTED else face


def reembed(gallery: Gallery, classifier: Classifier, model_id: str,
            detector: CascadeDetector) -> tuple[Gallery, list[str]]:
    """The gallery with every face embedded again by `classifier`, and what could not be (a
    source gone or without a face; a character with no face left is dropped)."""
    characters, problems = [], []
    for character in gallery.characters:
        crops, sources = [], []
        for source in character.sources:
            try:
                crop = recut(Path(source), character.framing, detector)
            except UnreadableImage as error:
                problems.append(f"{character.name}: {error}")
                continue
            if crop is None:
                problems.append(f"{character.name}: no face found in {source}")
                continue
            crops.append(crop)
            sources.append(source)
        if len(character.sources) < character.count:
            problems.append(f"{character.name}: {character.count - len(character.sources)} face(s) have no "
                            "source image to embed again")
        if crops:
            characters.append(Character(character.name, embed(classifier, crops), tuple(sources), character.framing))
        else:
            problems.append(f"{character.name}: dropped, no face of it could be embedded again")
    return Gallery(model_id, tuple(characters)), problems


def run_migrate(args: argparse.Namespace) -> int:
    from animerec.api import load_classifier

    path = args.gallery or default_gallery_path()
    gallery = load_gallery(path)
    config = config_from_args(args, STILL_IMAGES)
    classifier = load_classifier(config, announce=True)
    model_id = classifier.model_id
    if gallery.model_id == model_id:
        print(f"{path} is already for model {model_id}: nothing to do", file=sys.stderr)
        return EXIT_OK
    migrated, problems = reembed(gallery, classifier, model_id, CascadeDetector(config.cascade_settings()))
    for problem in problems:
        print(f"animerec: {problem}", file=sys.stderr)
    if not len(migrated):
        print(f"animerec: no face could be embedded again; {path} is unchanged", file=sys.stderr)
        return EXIT_FAILURE
    kept = path.with_name(f"{path.stem}.model-{gallery.model_id or 'unknown'}{path.suffix}")
    shutil.copy2(path, kept)
    save_gallery(migrated, path)
    faces = sum(c.count for c in migrated.characters)
    print(f"migrated {path} from model {gallery.model_id} to {model_id}: {len(migrated)} character(s), "
          f"{faces} face(s); the old gallery is kept as {kept}", file=sys.stderr)
    return EXIT_SKIPPED if problems else EXIT_OK
