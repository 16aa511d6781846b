"""`animerec gallery list|remove NAME [--gallery PATH]`: see and prune the enrolled characters."""

from __future__ import annotations

import argparse
import json
import sys

from animerec.commands.enroll import add_gallery_arg, clean_name
from animerec.errors import EXIT_OK
from animerec.recognition.gallery import default_gallery_path, load_gallery, save_gallery


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gallery", help="list or remove enrolled characters")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the enrolled characters and their number of faces")
    listing.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    add_gallery_arg(listing)
    listing.set_defaults(handler=run_list)
    remove = actions.add_parser("remove", help="forget one enrolled character")
    remove.add_argument("name")
    add_gallery_arg(remove)
    remove.set_defaults(handler=run_remove)


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
