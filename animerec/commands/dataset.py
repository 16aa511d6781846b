"""`animerec dataset build RAW_DIR OUT_DIR`: the report's "scrape and clean up" step."""

from __future__ import annotations

import argparse
from pathlib import Path

from animerec.commands import examples
from animerec.config import add_detector_arg
from animerec.errors import EXIT_OK, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset", help="build a training set of face crops",
        description="Build a training set of face crops from raw illustrations, one folder per character.",
        epilog=examples("animerec dataset build raw/ data/mine",
                        "animerec dataset build crops/ data/mine --crops --val-fraction 0.1"),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build",
        help="detect, crop and split raw illustrations (one folder per character)",
        description="Writes OUT_DIR/train/<class>/, OUT_DIR/val/<class>/ and a per-class report.",
        epilog=examples("animerec dataset build raw/ data/mine",
                        "animerec dataset build crops/ data/mine --crops --all-faces"),
    )
    build.add_argument("raw_dir", type=Path, help="one folder per character of raw images")
    build.add_argument("out_dir", type=Path, help="where the train/val crops go (must be empty or new)")
    build.add_argument("--size", type=int, default=150, help="crop side in pixels (default 150)")
    build.add_argument("--val-fraction", type=float, default=1 / 8, help="share of groups for validation (default 1/8)")
    build.add_argument("--seed", type=int, default=0, help="seed of the random split")
    build.add_argument("--all-faces", action="store_true", help="keep every face of an image, not only the largest")
    build.add_argument("--crops", action="store_true", help="inputs are ready face crops: no detection")
    # The bundled model's training and validation crops were cut with the cascade: keep them reproducible.
    add_detector_arg(build, default="cascade, as the bundled model's sets were built")
    build.add_argument(
        "--group-regex",
        default="",
        help="files with the same match are one group, never split (e.g. '^([0-9a-f]{32})' for Danbooru md5)",
    )
    build.add_argument(
        "--val-groups", default="", help="groups matching this regex go to validation instead of a random split"
    )
    build.add_argument("--clean-list", type=Path, help="validation keeps only files listed as <class>/<file>")
    build.add_argument("--overwrite", action="store_true", help="allow a non-empty OUT_DIR")
    build.set_defaults(handler=run_build)


def run_build(args: argparse.Namespace) -> int:
    from animerec.outputs import check_folder
    from animerec.train.dataset import BuildOptions, build_dataset, summary

    if args.out_dir.is_dir() and any(args.out_dir.iterdir()) and not args.overwrite:
        raise UsageError(f"{args.out_dir} is not empty; pass --overwrite to build into it")
    check_folder(args.out_dir)
    options = BuildOptions(
        size=args.size,
        val_fraction=args.val_fraction,
        seed=args.seed,
        all_faces=args.all_faces,
        crops=args.crops,
        detector=args.detector or "cascade",
        group_regex=args.group_regex,
        val_groups=args.val_groups,
        clean_list=args.clean_list,
    )
    reports = build_dataset(args.raw_dir, args.out_dir, options)
    print(f"{summary(reports)}; report in {args.out_dir / 'report.md'}")
    return EXIT_OK
