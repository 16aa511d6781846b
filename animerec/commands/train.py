"""`animerec train DATA_DIR --arch ARCH`: needs the training extra (TensorFlow).

DATA_DIR is a set built by `dataset build`, or for the identity architectures the data root that
the identity manifest's folders are relative to (`../shared/data`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from animerec.commands import examples
from animerec.errors import EXIT_OK, UsageError
from animerec.train import ARCH_NAMES, DEFAULT_ARCH
from animerec.train.identities import DEFAULT_MANIFEST


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a classifier on a built dataset (pip install animerec[train])",
        description="Writes OUT/model.keras, metrics.json, curves.png and confusion.png.",
        epilog=examples("animerec train data/holoen20 --arch anime -o runs/anime",
                        "animerec train data/holoen20 --arch seed --epochs 2 --limit-per-class 20"),
    )
    parser.add_argument("data_dir", type=Path,
                        help="a folder with train/ and val/ made by `dataset build`; for the identity "
                             "architectures, the root of the manifest's folders (../shared/data)")
    parser.add_argument(
        "--arch",
        choices=ARCH_NAMES,
        default=DEFAULT_ARCH,
        help=f"architecture (default {DEFAULT_ARCH}; 'seed' is the report's)",
    )
    parser.add_argument("-o", "--out", type=Path, default=None, help="output folder (default runs/<arch>)")
    parser.add_argument("--epochs", type=int, help="override the architecture's epochs")
    parser.add_argument("--batch-size", type=int, help="override the architecture's batch size")
    parser.add_argument("--input-size", type=int, help="override the architecture's input size")
    parser.add_argument("--steps-per-epoch", type=int, help="identity architectures: override the batches per epoch")
    parser.add_argument("--renders", type=int,
                        help="identity architectures: degraded renders made per training face (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--limit-per-class", type=int, default=0, help="use at most N images per class (quick runs)")
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST,
                        help="identity architectures: which identities train (default: the bundled split)")
    parser.add_argument("--init", type=Path, metavar="RUN",
                        help="start from an earlier run's weights (its folder or model.keras; same --arch)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.outputs import check_folder

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    try:
        from animerec.train.trainer import TrainOptions, train
    except ImportError as error:
        raise UsageError(f"training needs TensorFlow: pip install 'animerec[train]' ({error})") from error
    options = TrainOptions(
        arch=args.arch,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        input_size=args.input_size,
        steps_per_epoch=args.steps_per_epoch,
        renders=args.renders,
        limit_per_class=args.limit_per_class,
        manifest=args.manifest,
        init=args.init,
    )
    out = check_folder(args.out or Path("runs") / args.arch)  # refused now, not after the first epoch
    train(args.data_dir, out, options)
    print(f"model and metrics written to {out}")
    return EXIT_OK
