"""`animerec export MODEL -o OUT.onnx`: Keras -> ONNX with labels in the metadata and a parity check."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.commands import examples
from animerec.errors import EXIT_OK, UsageError
from animerec.outputs import check_output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained Keras model to ONNX (pip install animerec[train])",
        description="MODEL is model.keras or the folder `train` wrote (with metrics.json beside it).",
        epilog=examples("animerec export runs/anime -o anime.onnx",
                        "animerec export runs/anime -o animerec/models/default.onnx --overwrite"),
    )
    parser.add_argument("model", type=Path, help="model.keras or its training folder")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the ONNX file to write")
    parser.add_argument(
        "--parity-data",
        type=Path,
        help="a folder-per-class set of crops (e.g. DATA/val) for the parity check on real inputs",
    )
    parser.add_argument("--mirrored", action="store_true",
                        help="name each face from itself and its mirror image (the mean of both looks): "
                             "fewer unseen faces named, twice the classifier's work")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    try:
        from animerec.export.onnx_export import export
    except ImportError as error:
        raise UsageError(f"export needs TensorFlow and tf2onnx: pip install 'animerec[train]' ({error})") from error
    check_output(args.out, args.overwrite)
    real = _real_crops(args.parity_data) if args.parity_data else None
    info, parity = export(args.model, args.out, real, args.mirrored)
    print(
        f"parity with Keras: max |diff| {parity.random_max_diff:.1e} on random inputs, "
        f"{parity.real_max_diff:.1e} on real ones",
        file=sys.stderr,
    )
    looks = ", mirrored looks" if info.mirrored else ""
    print(f"wrote {args.out}: {info.arch}, {len(info.labels)} classes, {info.input_size}px{looks}, id {info.model_id}")
    return EXIT_OK


def _real_crops(data_dir: Path) -> list[NDArray[np.uint8]]:
    """Up to 64 crops of a folder-per-class set, a fixed sample so parity is reproducible."""
    from animerec.labelled import list_labelled
    from animerec.recognition.images import load_image

    paths, _, _ = list_labelled(data_dir)
    chosen = np.random.default_rng(0).choice(len(paths), size=min(64, len(paths)), replace=False)
    return [load_image(paths[i]) for i in sorted(chosen)]
