"""`animerec eval-enroll DATA_DIR --shots K [--negatives DIR] [--seed S] [--json]`: few-shot enrolment.

For each class folder of DATA_DIR (face crops, one face per image), K random images are enrolled
in a temporary, in-memory gallery and the rest are named beside the model's trained characters.
top1: share of test faces given the right name ("unknown" counts as wrong); known_accept: share
given any name; false_accept: share of the --negatives crops (characters nobody enrolled) given
any name, trained or enrolled. Nothing is written: the user's gallery is never touched.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from animerec.commands import examples
from animerec.commands.calibrate import add_manifest_args
from animerec.config import add_config_args, config_from_args
from animerec.errors import EXIT_OK, InputError, ModelError, UsageError
from animerec.evaluation import class_files, few_shot
from animerec.media import is_image
from animerec.recognition.calibration import VIDEO_STEP, calibration_unknowns
from animerec.recognition.embedding import embed_files
from animerec.recognition.naming import OpenSetDecider


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval-enroll", help="few-shot enrolment accuracy with a temporary gallery",
        description="Few-shot enrolment accuracy and unknown-face rejection, with a temporary gallery.",
        epilog=examples("animerec eval-enroll crops/ --shots 5",
                        "animerec eval-enroll crops/ --shots 5 --negatives others/ --json"),
    )
    parser.add_argument("data_dir", type=Path, help="one folder of face crops per character")
    parser.add_argument("--shots", type=int, required=True, metavar="K", help="images enrolled per character")
    parser.add_argument("--negatives", type=Path, metavar="DIR", help="flat folder of crops of other characters")
    add_manifest_args(parser, "negatives: the identity manifest's calibration unknowns (instead of --negatives)")
    parser.add_argument("--seed", type=int, default=0, help="which K images are drawn (default 0)")
    parser.add_argument("--unknown-threshold", type=float, metavar="T",
                        help="override the model's calibrated threshold (a cosine similarity)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_config_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.api import load_classifier

    if args.negatives is not None and args.manifest is not None:
        raise UsageError("give --negatives or --manifest, not both")
    classes = class_files(args.data_dir, args.shots)
    negative_files: list[Path] = []
    if args.negatives is not None:
        if not args.negatives.is_dir():
            raise InputError(f"--negatives is not a folder: {args.negatives}")
        negative_files = sorted(p for p in args.negatives.iterdir() if p.is_file() and is_image(p))
    config = config_from_args(args)
    classifier = load_classifier(config, announce=True)
    calibration = classifier.info.open_set
    if calibration is None:
        model = config.model_path()
        raise ModelError(f"{model} has no open-set calibration: run `animerec calibrate {model}` first")
    clash = sorted(set(classes) & set(classifier.labels))
    if clash:
        raise InputError(f"class folders {', '.join(clash)} are trained characters of the model: enrol other ones")
    decider = OpenSetDecider.from_calibration(classifier.labels, calibration, args.unknown_threshold)
    embedded = {name: embed_files(classifier, files) for name, files in classes.items()}
    negatives = embed_files(classifier, negative_files) if args.negatives is not None else None
    if args.manifest is not None:
        negatives = calibration_unknowns(classifier, args.manifest, args.data_root, VIDEO_STEP)
    result = few_shot(decider, classifier.model_id, embedded, args.shots, args.seed, negatives)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{len(classes)} characters, {args.shots} shot(s) each, {result['n']} test faces, "
              f"threshold {decider.threshold:.3f}")
        print(f"  top-1 {result['top1']:.2%}   known accepted {result['known_accept']:.2%}")
        if result["false_accept"] is not None:
            print(f"  negatives given a name {result['false_accept']:.2%} of {result['n_negatives']}")
    return EXIT_OK
