"""`animerec annotate IN -o OUT [--jsonl OUT.jsonl]` and `animerec annotate DIR -o OUTDIR [--jobs N] [--ray [ADDR]]`.

Every frame of a video, annotated, into an H.264 file with the source's audio, plus (optionally
for one file, always for a folder) one JSON Lines row per frame. Files lose no frame: the
pipeline blocks instead of dropping. Outputs are written under a temporary name and renamed, after
Ctrl-C too, so a file at the output name is always valid. A folder is a library job
(animerec.library): several videos at once, resumable, indexed in OUTDIR/library.sqlite.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from animerec.config import Config, add_config_args, add_naming_args, config_from_args
from animerec.errors import EXIT_OK, EXIT_SKIPPED, InputError, UsageError
from animerec.realtime.protocols import Sink, SourceInfo
from animerec.recognition.classifier import Classifier, OnnxClassifier
from animerec.recognition.naming import Decider


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("annotate", help="annotate a video file, or a folder of them")
    parser.add_argument("input", type=Path, nargs="?", metavar="IN", help="a video file or a folder of videos")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                        help="annotated .mp4 (one file) or output folder (a folder)")
    parser.add_argument("--jsonl", type=Path, metavar="OUT.jsonl", help="face records, one line per frame")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--jobs", type=int, metavar="N",
                        help="a folder: videos annotated at once (default: one per core)")
    parser.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                        help="a folder: run on a Ray cluster (ADDRESS, or 'local' for a local instance; "
                             "needs pip install 'animerec[ray]')")
    parser.add_argument("--json", action="store_true",
                        help="a folder: print the job's summary as JSON on standard output")
    add_naming_args(parser)
    add_config_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.commands.common import check_output

    if args.input is None:
        # `annotate --ray DIR -o OUT`: --ray's optional ADDRESS took the folder. A Ray address is
        # never an existing local path, so the folder is what the user meant.
        if not args.ray or not Path(args.ray).exists():
            raise UsageError("annotate needs IN, a video file or a folder of videos")
        args.input, args.ray = Path(args.ray), ""
    source: Path = args.input
    if not source.exists():
        raise UsageError(f"{source}: no such file or folder")
    config = config_from_args(args)
    if source.is_dir():
        return _run_folder(args, config)
    if args.jobs is not None or args.ray is not None or args.json:
        raise UsageError("--jobs, --ray and --json are for a folder of videos")
    check_output(args.out, args.overwrite)  # every refusal before any work
    if args.jsonl is not None:
        check_output(args.jsonl, args.overwrite)
    classifier = load_announced_classifier(config)
    decider = load_decider(classifier, config)
    try:
        annotate_file(source, args.out, args.jsonl, config, classifier, decider)
    except InputError as error:
        print(f"animerec: skipped {source}: {error}", file=sys.stderr)
        return EXIT_SKIPPED
    return EXIT_OK


def _run_folder(args: argparse.Namespace, config: Config) -> int:
    """A folder is a library job: see animerec.library.job."""
    from animerec.library.job import LibraryOptions, run_library

    if args.jsonl is not None:
        raise UsageError("--jsonl is for one video; a folder writes OUTDIR/<name>.jsonl beside each video")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"-o must be a folder when IN is a folder: {args.out} is a file")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    options = LibraryOptions(args.input, args.out, config, jobs=args.jobs, ray=args.ray,
                             overwrite=args.overwrite, json=args.json)
    return run_library(options)


def load_announced_classifier(config: Config) -> OnnxClassifier:
    from animerec.api import load_classifier
    from animerec.recognition.classifier import announce

    classifier = load_classifier(config)
    announce(classifier)  # the execution provider, on standard error
    return classifier


def load_decider(classifier: OnnxClassifier, config: Config) -> Decider:
    """The naming decision: open-set with the gallery (`classifier.gallery`, else the default one
    when it exists) for a calibrated model, the model's softmax otherwise; the threshold from
    `classifier.unknown_threshold` when set, else the model's calibrated one."""
    from animerec.recognition.naming import decider_for

    settings = config.classifier
    return decider_for(classifier.info, settings.gallery_path(), settings.threshold(), settings.top_k)


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
    from animerec.interrupts import sigterm_as_interrupt
    from animerec.realtime.capture import open_source

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
