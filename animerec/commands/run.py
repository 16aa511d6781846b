"""`animerec run --source SRC [--show] [--record OUT.mp4] [--jsonl OUT.jsonl]`: live recognition.

A camera, screen, stream or (played at its native rate) a video file, through the pipeline, to a
window and/or files. Live sources keep the newest frame and count the ones they drop. q or Esc in
the window, Ctrl-C or SIGTERM stop it cleanly; recorded files are finalised either way.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from animerec.commands import examples
from animerec.config import Config, add_config_args, add_naming_args, add_overlay_args, config_from_args
from animerec.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from animerec.realtime.protocols import Sink, Source
    from animerec.realtime.window import Window
    from animerec.recognition.classifier import Classifier
    from animerec.recognition.naming import Decider


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run", help="recognise characters live (camera, screen, stream, file)",
        description="Recognise characters live from a camera, the screen, a stream or a file played at its rate.",
        epilog=examples("animerec run --source 0 --show",
                        "animerec run --source screen --record live.mp4 --jsonl live.jsonl"),
    )
    parser.add_argument("--source", required=True, metavar="SRC",
                        help="camera number, screen[:N], a URL, a video file, or images")
    parser.add_argument("--show", action="store_true", help="show the annotated frames in a window")
    parser.add_argument("--record", type=Path, metavar="OUT.mp4", help="write the annotated video")
    parser.add_argument("--jsonl", type=Path, metavar="OUT.jsonl", help="face records, one line per frame")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--loop", action="store_true", help="restart a video file at its end")
    parser.add_argument("--stats", action="store_true", help="print the final statistics as JSON on stderr")
    parser.add_argument("--obs", action="store_true",
                        help="also serve the OBS overlay (address from the config's server section)")
    add_naming_args(parser)
    add_overlay_args(parser)
    add_config_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from animerec.api import load_classifier, load_decider
    from animerec.outputs import VIDEO_CONTAINERS, check_output
    from animerec.realtime.capture import open_source
    from animerec.realtime.window import Window
    from animerec.recognition.detectors import make_detector

    config = config_from_args(args)
    show = args.show or _window_by_default(args)
    if args.obs:
        from animerec.server import check_bind, check_port

        check_bind(config.server.host, config.server.token)  # exit 2 before the source is opened
        check_port(config.server.host, config.server.port, "--set server.port=")  # in use: said before the model loads
    if args.record is not None:
        check_output(args.record, args.overwrite, VIDEO_CONTAINERS, "a video")
    if args.jsonl is not None:
        check_output(args.jsonl, args.overwrite)
    window = Window(f"animerec - {args.source}") if show else None  # fails early without a display
    source = None
    try:
        # The source before the model: a missing camera or file is said at once, not after loading.
        source = open_source(args.source, paced=True, loop=args.loop)
        classifier = load_classifier(config, announce=True)
        make_detector(config, announce=True)  # a bad detector model fails now; the pipeline reuses it
        return _run(args, config, source, window, classifier, load_decider(classifier, config))
    finally:
        if source is not None:
            source.close()
        if window is not None:
            window.close()


def _window_by_default(args: argparse.Namespace) -> bool:
    """With no output flag, a window where there is a display (and say so); else nothing to do."""
    from animerec.realtime.window import display_problem

    if args.record or args.jsonl or args.obs:
        return False
    why = display_problem()
    if why:
        raise UsageError(f"nothing to do: no window without a display ({why}); "
                         "add --record OUT.mp4, --jsonl OUT.jsonl and/or --obs")
    print("animerec: no output given: showing the frames in a window (--show); q or Esc stops", file=sys.stderr)
    return True


def _run(args: argparse.Namespace, config: Config, source: Source, window: Window | None,
         classifier: Classifier, decider: Decider) -> int:
    from animerec.api import build_pipeline
    from animerec.interrupts import sigterm_as_interrupt
    from animerec.outputs import AnnotationOutputs

    pipeline = None
    try:
        with ExitStack() as stack, sigterm_as_interrupt():
            # A paced file's audio is copied; not when it loops (the sound would end while the
            # picture went round again), and a camera or screen has none.
            audio = None if args.loop else source.info.path
            files = AnnotationOutputs(source.info, args.record, args.jsonl, audio_from=audio)
            sinks: list[Sink] = [stack.enter_context(files)]  # closed (and renamed) after the pipeline stops
            pipeline = stack.enter_context(build_pipeline(source, config, classifier=classifier, decider=decider,
                                                       status=True))
            if window is not None:
                window.stop = pipeline.stop_event
            if args.obs:
                from animerec.server import start_server

                server, url = start_server(config.server, pipeline.stats.snapshot)
                stack.callback(server.close)
                sinks.append(server)
                print(f"Serving on {url}", flush=True)
            for item in pipeline:
                if window is not None:
                    window.write(item)
                for sink in sinks:
                    sink.write(item)
    finally:
        if pipeline is not None:
            _report(pipeline.stats.snapshot(), as_json=args.stats)
    return EXIT_OK


def _report(snapshot: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(snapshot), file=sys.stderr)
        return
    latency = snapshot["latency_ms"]
    print(
        f"animerec: {snapshot['frames_out']} frames, {snapshot['mean_fps']:.1f} fps, latency p50 "
        f"{latency['p50']:.0f} ms p95 {latency['p95']:.0f} ms, dropped {snapshot['dropped']}, "
        f"near-duplicates {snapshot['reused']}",
        file=sys.stderr,
    )
