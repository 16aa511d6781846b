"""`animerec eval DATA_DIR [--model PATH] [--json]`: accuracy on a folder-per-class set of crops."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from animerec.commands.common import add_model_args, load_classifier
from animerec.errors import EXIT_OK
from animerec.evaluation import format_report, plot_confusion, score


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="accuracy on face crops, one folder per character")
    parser.add_argument("data_dir", type=Path, help="one folder per character; each image one face")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.add_argument("--plot", type=Path, help="also write the confusion matrix as a PNG here")
    add_model_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.labelled import list_labelled
    from animerec.recognition.images import load_image

    classifier = load_classifier(args)
    paths, truth, labels = list_labelled(args.data_dir, classifier.labels)
    probs = []
    chunk = 64
    with tqdm(total=len(paths), desc="eval", unit="face", file=sys.stderr, disable=None) as bar:
        for start in range(0, len(paths), chunk):
            crops = [load_image(p) for p in paths[start : start + chunk]]
            probs.append(classifier.classify(crops).probs)
            bar.update(len(crops))
    result = score(np.concatenate(probs), truth, labels)
    if args.plot:
        plot_confusion(result, args.plot, f"{args.model.name} on {args.data_dir.name}")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(format_report(result))
    return EXIT_OK
