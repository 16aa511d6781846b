"""`animerec eval DATA_DIR [--model PATH] [--json]`: accuracy on a folder-per-class set of crops."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from animerec.commands import examples
from animerec.config import add_config_args, config_from_args
from animerec.errors import EXIT_OK
from animerec.evaluation import format_report, plot_confusion, score
from animerec.progress import progress


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="accuracy on face crops, one folder per character",
        description="A model's top-1, top-3 and per-class accuracy on face crops, one folder per character.",
        epilog=examples("animerec eval data/holoen20/val",
                        "animerec eval data/holoen20/val --model runs/anime/model.onnx --json"),
    )
    parser.add_argument("data_dir", type=Path, help="one folder per character; each image one face")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--plot", type=Path, help="also write the confusion matrix as a PNG here")
    add_config_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.api import load_classifier
    from animerec.labelled import list_labelled
    from animerec.recognition.images import load_image

    config = config_from_args(args)
    classifier = load_classifier(config, announce=True)
    paths, truth, labels = list_labelled(args.data_dir, classifier.labels)
    probs = []
    chunk = 64
    with progress(len(paths), "eval", "face") as bar:
        for start in range(0, len(paths), chunk):
            crops = [load_image(p) for p in paths[start : start + chunk]]
            probs.append(classifier.classify(crops).probs)
            bar.update(len(crops))
    result = score(np.concatenate(probs), truth, labels)
    if args.plot:
        plot_confusion(result, args.plot, f"{config.model_path().name} on {args.data_dir.name}")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(format_report(result))
    return EXIT_OK
