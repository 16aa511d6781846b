"""`animerec annotate IN -o OUT [--jsonl OUT.jsonl]` and `animerec annotate DIR -o OUTDIR [--jobs N] [--ray [ADDR]]`.

Every frame of a video, annotated, into an H.264 file with the source's audio, plus (optionally
for one file, always for a folder) one JSON Lines row per frame. Files lose no frame: the
pipeline blocks instead of dropping. Outputs are written under a temporary name and renamed, after
Ctrl-C too, so a file at the output name is always valid (and none appears when no frame was
written: see animerec.outputs). One file ends with a summary on standard error: frames, faces,
and each character's time on screen. A folder is a library job (animerec.library): several
videos at once, resumable, indexed in OUTDIR/library.sqlite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from animerec.commands import examples
from animerec.config import Config, add_config_args, add_naming_args, add_overlay_args, config_from_args
from animerec.errors import EXIT_INTERRUPTED, EXIT_OK, InputError, UsageError
from animerec.library.annotation import VideoAnnotation
from animerec.recognition.classifier import Classifier
from animerec.recognition.naming import Decider


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "annotate", help="annotate a video file, or a folder of them",
        description="Annotate every frame of a video (H.264, audio kept), or of every video in a folder.",
        usage="%(prog)s IN -o OUT [--jsonl OUT.jsonl] [options]",
        epilog=examples("animerec annotate episode.mkv -o named.mp4 --jsonl named.jsonl",
                        "animerec annotate videos/ -o annotated/ --jobs 2"),
    )
    parser.add_argument("input", type=Path, nargs="?", metavar="IN", help="a video file or a folder of videos")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT",
                        help="annotated .mp4, .mkv or .mov (one file), or output folder (a folder)")
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
    add_overlay_args(parser)
    add_config_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.api import load_classifier, load_decider
    from animerec.outputs import VIDEO_CONTAINERS, check_output, remove_orphaned_temporaries
    from animerec.recognition.detectors import make_detector

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
    outputs = [check_output(args.out, args.overwrite, VIDEO_CONTAINERS, "a video")]  # every refusal before any work
    if args.jsonl is not None:
        if args.jsonl.resolve() == args.out.resolve():
            raise UsageError(f"-o and --jsonl are both {args.out}: give the JSON Lines another name")
        outputs.append(check_output(args.jsonl, args.overwrite))
    classifier = load_classifier(config, announce=True)
    make_detector(config, announce=True)  # a bad detector model fails now; the pipeline reuses it
    decider = load_decider(classifier, config)
    for folder in {path.parent for path in outputs}:
        remove_orphaned_temporaries(folder)  # a killed run's leftovers
    result = annotate_file(source, args.out, args.jsonl, config, classifier, decider)
    if not (result.frames or result.interrupted):
        raise InputError(f"{source}: no frame could be decoded; nothing was written")
    print_video_summary(source, outputs, result)
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


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


def annotate_file(path: Path, video: Path, jsonl: Path | None, config: Config,
                  classifier: Classifier, decider: Decider | None = None) -> VideoAnnotation:
    """Annotate one video file into `video` and `jsonl`, with a progress bar; see annotate_source."""
    from animerec.interrupts import sigterm_as_interrupt
    from animerec.library.annotation import annotate_source
    from animerec.progress import progress
    from animerec.realtime.capture import open_source

    source = open_source(str(path))
    try:
        with progress(source.info.frame_count or None, path.name, "frame") as bar, sigterm_as_interrupt():
            result = annotate_source(source, video, jsonl, config, classifier, decider,
                                     audio_from=source.info.path or path, on_frame=lambda _: bar.update(1))
    finally:
        source.close()
    if source.errors:
        print(f"animerec: {path}: {source.errors} unreadable packet(s) skipped", file=sys.stderr)
    return result


def print_video_summary(path: Path, outputs: list[Path], result: VideoAnnotation) -> None:
    """What one video gave, on standard error: frames, faces, who was on screen and for how long,
    and whether the outputs are partial."""
    from animerec.library.summary import characters_text

    names = " and ".join(str(output) for output in outputs)
    if result.interrupted and not result.frames:
        print(f"animerec: interrupted before the first frame: nothing written to {names}", file=sys.stderr)
        return
    partial = " (partial: interrupted)" if result.interrupted else ""
    print(f"animerec: {path.name}: {result.frames} frames, {result.faces} faces, "
          f"{result.duration:.1f} s of video in {names}{partial}", file=sys.stderr)
    print(f"animerec: on screen: {characters_text(result.appearances) or 'no named character'}", file=sys.stderr)
