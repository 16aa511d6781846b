"""`animerec annotate IN -o OUT [--jsonl OUT.jsonl]` and `animerec annotate DIR -o OUTDIR`.

Every frame of a video, annotated, into an H.264 file with the source's audio, plus (optionally
for one file, always for a folder) one JSON Lines row per frame. Files lose no frame: the
pipeline blocks instead of dropping. Outputs are written under a temporary name and renamed, after
Ctrl-C too, so a file at the output name is always valid.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from animerec.config import Config, add_config_args, config_from_args
from animerec.errors import EXIT_OK, EXIT_SKIPPED, InputError, UsageError
from animerec.realtime.protocols import Sink, SourceInfo
from animerec.recognition.classifier import Classifier, OnnxClassifier
from animerec.recognition.naming import Decider

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".m2ts", ".flv", ".wmv", ".gif"}
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("annotate", help="annotate a video file, or a folder of them")
    parser.add_argument("input", type=Path, metavar="IN", help="a video file or a folder of videos")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                        help="annotated .mp4 (one file) or output folder (a folder)")
    parser.add_argument("--jsonl", type=Path, metavar="OUT.jsonl", help="face records, one line per frame")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_gallery_args(parser)
    add_config_args(parser)
    parser.set_defaults(handler=run)


def add_gallery_args(parser: argparse.ArgumentParser) -> None:
    from animerec.commands.enroll import add_gallery_arg

    add_gallery_arg(parser)


def run(args: argparse.Namespace) -> int:
    from animerec.commands.common import check_output

    config = config_from_args(args)
    jobs = _jobs(args)
    for video, jsonl in ((v, j) for _, v, j in jobs):
        check_output(video, args.overwrite)  # every refusal before any work
        if jsonl is not None:
            check_output(jsonl, args.overwrite)
    classifier = load_announced_classifier(config)
    decider = load_decider(classifier, args.gallery, config)
    skipped = 0
    for source_path, video, jsonl in jobs:
        try:
            annotate_file(source_path, video, jsonl, config, classifier, decider)
        except InputError as error:
            print(f"animerec: skipped {source_path}: {error}", file=sys.stderr)
            skipped += 1
    return EXIT_SKIPPED if skipped else EXIT_OK


def _jobs(args: argparse.Namespace) -> list[tuple[Path, Path, Path | None]]:
    """(input, video output, JSON Lines output or None) for each video to annotate."""
    source: Path = args.input
    if not source.exists():
        raise UsageError(f"{source}: no such file or folder")
    if not source.is_dir():
        return [(source, args.out, args.jsonl)]
    if args.jsonl is not None:
        raise UsageError("--jsonl is for one video; a folder writes OUTDIR/<name>.jsonl beside each video")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"-o must be a folder when IN is a folder: {args.out} is a file")
    jobs = []
    out_root = args.out.resolve()
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        hidden = any(part.startswith(".") for part in relative.parts)
        if hidden or not path.is_file() or path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        if out_root in path.resolve().parents:
            continue  # an earlier run's outputs inside the input folder are not inputs
        base = args.out / relative.with_suffix("")
        jobs.append((path, base.with_name(base.name + ".mp4"), base.with_name(base.name + ".jsonl")))
    outputs = [video for _, video, _ in jobs]
    if len(set(outputs)) != len(outputs):
        raise UsageError("two inputs would write the same output (same name, other extension)")
    if not jobs:
        raise UsageError(f"{source}: no video files found")
    return jobs


def load_announced_classifier(config: Config) -> OnnxClassifier:
    from animerec.api import load_classifier
    from animerec.recognition.classifier import announce

    classifier = load_classifier(config)
    announce(classifier)  # the execution provider, on standard error
    return classifier


def load_decider(classifier: OnnxClassifier, gallery: Path | None, config: Config) -> Decider:
    """The naming decision: open-set with the gallery (`--gallery`, else the default one when it
    exists) for a calibrated model, the model's softmax otherwise."""
    from animerec.recognition.naming import decider_for

    return decider_for(classifier.info, gallery, top_k=config.classifier.top_k)


def attach_sinks(stack: ExitStack, info: SourceInfo, video: Path | None, jsonl: Path | None,
                 audio_from: Path | None) -> list[Sink]:
    """Open the writers under temporary names; `stack` closes each writer, then renames it
    (also after Ctrl-C, when the partial output is finalised and kept)."""
    from animerec.commands.common import atomic_output
    from animerec.realtime.jsonl import JsonLinesWriter
    from animerec.realtime.video_writer import VideoWriter

    sinks: list[Sink] = []
    if video is not None:
        temporary = stack.enter_context(atomic_output(video))
        writer = VideoWriter(temporary, info, audio_from=audio_from)
        stack.callback(writer.close)
        sinks.append(writer)
    if jsonl is not None:
        temporary = stack.enter_context(atomic_output(jsonl))
        lines = JsonLinesWriter(temporary)
        stack.callback(lines.close)
        sinks.append(lines)
    return sinks


def annotate_file(path: Path, video: Path, jsonl: Path | None, config: Config,
                  classifier: Classifier, decider: Decider | None = None) -> int:
    """Annotate one video file; returns the number of frames written."""
    from tqdm import tqdm

    from animerec.api import build_pipeline
    from animerec.realtime.capture import open_source
    from animerec.realtime.pipeline import sigterm_as_interrupt

    source = open_source(str(path))
    written = 0
    try:
        with ExitStack() as stack, sigterm_as_interrupt():
            sinks = attach_sinks(stack, source.info, video, jsonl, audio_from=source.info.path or path)
            total = source.info.frame_count or None
            progress = stack.enter_context(
                tqdm(total=total, unit="frame", desc=path.name, file=sys.stderr, dynamic_ncols=True)
            )
            with build_pipeline(source, config, classifier=classifier, decider=decider) as pipeline:
                for item in pipeline:
                    for sink in sinks:
                        sink.write(item)
                    written += 1
                    progress.update(1)
    finally:
        source.close()
    if source.errors:
        print(f"animerec: {path}: {source.errors} unreadable packet(s) skipped", file=sys.stderr)
    return written
