"""`animerec calibrate MODEL --train DIR --manifest | --unknown PATH...`: measure and store the open-set decision.

From a folder-per-class training set (holoen20 layout) the training files give one prototype per
character (the class mean of centred embeddings); the validation files (name matching
--val-regex, kept to --clean's list) are the known faces. Each crop counts twice, as given and
as the runtime sees it standing in a scene (`embed_as_seen`); the calibration unknowns of the
identity manifest (--manifest: identities never trained on, and the clips' faces) and any
--unknown folders of crops and videos (faces cut by the cascade) are characters the model never
saw. The threshold meets --target-accept (known faces named) and --target-named (unknown faces
named) when it can; when no threshold meets both, --prefer picks the knee of the trade-off curve
(default) or one of the two targets. Everything is written into the model's metadata (in place,
or -o OUT); the weights, and so the model id galleries rely on, are unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.commands import examples
from animerec.commands.enroll import image_files
from animerec.errors import EXIT_OK, InputError, ModelError, UsageError
from animerec.media import MediaKind, media_kind
from animerec.outputs import check_output
from animerec.recognition.calibration import (
    VIDEO_STEP,
    calibration_unknowns,
    choose_threshold,
    embed_as_seen,
    fit_scale,
    prototypes,
    rates,
    split_training,
    video_faces,
)
from animerec.recognition.classifier import OnnxClassifier, announce
from animerec.recognition.detector import CascadeDetector
from animerec.recognition.embedding import embed, embed_files
from animerec.recognition.model_info import OPEN_SET_KEY, OpenSetCalibration
from animerec.recognition.naming import OpenSetDecider
from animerec.train.identities import DEFAULT_DATA_ROOT, DEFAULT_MANIFEST


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="measure the unknown threshold and store it in a model",
        description="Measure the unknown-face threshold and store it in a model's metadata.",
        epilog=examples("animerec calibrate model.onnx --train data/holoen20 --unknown crops/others",
                        "animerec calibrate model.onnx --train data/ --unknown others/ clips/ -o calibrated.onnx"),
    )
    parser.add_argument("model", type=Path, help="the ONNX model to calibrate (rewritten in place unless -o)")
    parser.add_argument("--train", type=Path, required=True, metavar="DIR", help="folder-per-class training crops")
    parser.add_argument("--val-regex", default="^[01]", help="file names of validation posts (default ^[01])")
    parser.add_argument("--clean", type=Path, metavar="FILE", help="'<class>/<file>' lines: validation keeps these")
    parser.add_argument("--unknown", type=Path, nargs="+", default=[], metavar="PATH",
                        help="folders of crops and videos of characters the model never saw")
    add_manifest_args(parser, "draw the unknown faces from the identity manifest's calibration identities")
    parser.add_argument("--video-step", type=int, default=VIDEO_STEP,
                        help=f"use every Nth video frame (default {VIDEO_STEP})")
    parser.add_argument("--target-accept", type=float, default=0.95, help="known faces to name (default 0.95)")
    parser.add_argument("--target-named", type=float, default=0.05, help="unknown faces named at most (0.05)")
    parser.add_argument("--prefer", choices=("balanced", "accept", "reject"), default="balanced",
                        help="when both targets cannot be met: the curve's knee (default), or one target")
    parser.add_argument("--threshold", type=float, help="store this threshold instead of choosing one")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="write the trade-off curve here")
    parser.add_argument("--test-unknown", type=Path, metavar="DIR", help="unseen crops only plotted, never used")
    parser.add_argument("-o", "--out", type=Path, help="write the calibrated model here instead")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing -o file")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--json", action="store_true", help="print the calibration as JSON on stdout")
    parser.add_argument("--tracks", action="store_true",
                        help="also measure the bar for video tracks' mean evidence on the calibration clip made "
                             "from the data beside --train (minutes; animerec/benchmarks/track_calibration.py)")
    parser.add_argument("--clips", type=Path, default=Path(tempfile.gettempdir()) / "animerec-clips", metavar="DIR",
                        help="where the calibration clips are made, and found again next time (default: %(default)s)")
    parser.set_defaults(handler=run)


def unknown_embeddings(classifier: OnnxClassifier, inputs: list[Path], step: int) -> NDArray[np.float32]:
    """Embeddings of the --unknown faces: image files are crops, videos go through the cascade."""
    files: list[Path] = []
    for path in inputs:
        if not path.exists():
            raise InputError(f"not found: {path}")
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    kinds = {p: media_kind(p) for p in files}
    videos = [p for p in files if kinds[p] is MediaKind.VIDEO]
    crops = [p for p in files if kinds[p] is MediaKind.IMAGE]
    detector = CascadeDetector()
    parts = [embed_files(classifier, crops)] if crops else []
    parts += [e for e in (embed(classifier, video_faces(v, step, detector)) for v in videos) if len(e)]
    if not parts:
        raise InputError("no unknown faces found in --unknown")
    return np.concatenate(parts)


def add_manifest_args(parser: argparse.ArgumentParser, purpose: str) -> None:
    parser.add_argument("--manifest", type=Path, nargs="?", const=DEFAULT_MANIFEST, metavar="TOML",
                        help=f"{purpose} (default: the bundled identities.toml)")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT, metavar="DIR",
                        help=f"where the manifest's folders are (default {DEFAULT_DATA_ROOT})")


def plot_tradeoff(known: NDArray[np.float32], unknowns: dict[str, NDArray[np.float32]], threshold: float,
                  path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    everything = np.concatenate([known, *unknowns.values()])
    sweep = np.linspace(everything.min(), everything.max(), 300)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for label, unknown in unknowns.items():
        points = np.array([rates(known, unknown, t) for t in sweep])
        accept, named = rates(known, unknown, threshold)
        line = ax.plot(points[:, 1], points[:, 0], label=f"{label}: {accept:.1%} accepted, {named:.1%} named")[0]
        ax.plot([named], [accept], "o", color=line.get_color())
    ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.axvline(0.05, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("unseen-character faces given a name")
    ax.set_ylabel("known-character faces accepted")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(f"{title}\n(dots: the calibrated threshold {threshold:.3f})", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_calibration(model: Path, calibration: OpenSetCalibration, out: Path) -> None:
    """Replace the open-set entry of the metadata; temporary file, then rename."""
    try:
        import onnx
    except ImportError as error:
        raise ModelError("calibrate needs the onnx package: pip install -e '.[train]'") from error
    proto = onnx.load(str(model))
    entries = [(p.key, p.value) for p in proto.metadata_props if p.key != OPEN_SET_KEY]
    del proto.metadata_props[:]
    for key, value in [*entries, (OPEN_SET_KEY, calibration.to_json())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    fd, temporary = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".onnx", dir=out.parent)
    os.close(fd)
    try:
        onnx.save(proto, temporary)
        os.chmod(temporary, model.stat().st_mode & 0o777)  # mkstemp's 0600 would hide the model from others
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    if not args.unknown and args.manifest is None:
        raise UsageError("calibrate needs unknown faces: --manifest, --unknown PATH..., or both")
    out = check_output(args.out, args.overwrite) if args.out else args.model
    classifier = OnnxClassifier(args.model, device=args.device, warmup=False)
    announce(classifier)
    labels = classifier.labels
    train, train_y, val, val_y = split_training(args.train, labels, args.val_regex, args.clean)
    centre, protos = prototypes(embed_as_seen(classifier, train), np.tile(train_y, 2), len(labels))
    decider = OpenSetDecider(labels, protos, centre, threshold=0.0, scale=1.0, trained=len(labels))
    known_sims = decider.similarities(embed_as_seen(classifier, val))
    val_y = np.tile(val_y, 2)
    unknown_parts = [unknown_embeddings(classifier, args.unknown, args.video_step)] if args.unknown else []
    if args.manifest is not None:
        unknown_parts.append(calibration_unknowns(classifier, args.manifest, args.data_root, args.video_step))
    unknown_sims = decider.similarities(np.concatenate(unknown_parts))
    known, unknown = known_sims.max(axis=1), unknown_sims.max(axis=1)
    threshold = args.threshold
    if threshold is None:
        threshold = choose_threshold(known, unknown, args.target_accept, args.target_named, args.prefer)
    accept, named = rates(known, unknown, threshold)
    right = (known_sims.argmax(axis=1) == val_y) & (known >= threshold)
    stats = {
        "known_accept": round(accept, 4), "unknown_named": round(named, 4), "open_top1": round(float(right.mean()), 4),
        "prototype_top1": round(float(np.mean(known_sims.argmax(axis=1) == val_y)), 4),
        "n_train": len(train), "n_known": len(val), "n_unknown": len(unknown), "date": time.strftime("%Y-%m-%d"),
    }
    calibration = OpenSetCalibration(protos, centre, float(threshold),
                                     fit_scale(known_sims, val_y, unknown_sims, threshold), stats)
    if args.tracks:
        from animerec.benchmarks.track_calibration import calibrate_tracks

        calibration, track_stats = calibrate_tracks(classifier, calibration, labels, args.clips, data=args.train.parent)
        stats.update(track_stats, track_threshold=calibration.track_threshold, track_margin=calibration.track_margin)
    write_calibration(args.model, calibration, out)
    reloaded = OnnxClassifier(out, device="cpu", warmup=False)
    if reloaded.info.open_set is None or reloaded.model_id != classifier.model_id:
        raise ModelError(f"{out} did not keep its calibration or model id")
    if args.plot:
        curves = {"calibration unknowns": unknown}
        if args.test_unknown:
            test = decider.similarities(embed_files(classifier, image_files([args.test_unknown])))
            curves[f"test: {args.test_unknown.name} (not used to calibrate)"] = test.max(axis=1)
        plot_tradeoff(known, curves, threshold, args.plot, f"{args.model.name}: known = validation faces")
    document = {"model": str(out), "threshold": threshold, "scale": calibration.scale, "stats": stats}
    if args.json:
        print(json.dumps(document))
    else:
        print(f"calibrated {out}: threshold {threshold:.4f} (cosine), scale {calibration.scale:.1f}")
        print(f"  validation faces named {accept:.2%}, unknown faces named {named:.2%} "
              f"({len(val)} known, {len(unknown)} unknown; open-set top-1 {stats['open_top1']:.2%})")
    print(f"animerec: wrote the open-set calibration into {out}", file=sys.stderr)
    return EXIT_OK
