"""`animerec serve --source SRC [--host H] [--port P] [--token T] [--virtualcam]`: stream to OBS.

Runs the live pipeline and serves its results for OBS: an overlay page for a Browser Source, an
MJPEG stream, snapshots, stats and a WebSocket (routes in animerec/server/app.py). Video files
play at their native rate and loop until Ctrl-C. Prints one line, `Serving on http://HOST:PORT/`,
on standard output once the server listens and the pipeline is built.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from dataclasses import replace
from typing import TYPE_CHECKING

from animerec.commands import examples
from animerec.config import Config, ServerConfig, add_config_args, add_naming_args, add_overlay_args, config_from_args
from animerec.errors import EXIT_OK

if TYPE_CHECKING:
    from animerec.realtime.protocols import Sink, SourceInfo

FALLBACK_CAMERA_SIZE = (1280, 720)  # for sources that cannot tell their size up front


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="stream recognition to OBS (overlay page, MJPEG, WebSocket)",
        description="Stream recognition to OBS: a transparent overlay page, MJPEG and a WebSocket of face records.",
        epilog=examples("animerec serve --source screen",
                        "animerec serve --source 0 --port 0"),
    )
    parser.add_argument("--source", required=True, metavar="SRC",
                        help="camera number, screen[:N], a URL, a video file (loops), or images")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1: this machine "
                        "only; any other address needs --token)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8765; 0 = any free port)")
    parser.add_argument("--token", help="secret every client must send, as ?token=T in URLs or "
                        "an 'Authorization: Bearer T' header")
    parser.add_argument("--virtualcam", action="store_true",
                        help="also send the annotated frames to a virtual camera "
                        "(needs pip install animerec[virtualcam])")
    add_naming_args(parser)
    add_overlay_args(parser)
    add_config_args(parser)
    parser.set_defaults(handler=run)


def server_settings(args: argparse.Namespace, section: ServerConfig) -> ServerConfig:
    """The configuration's `server` section with the command line's flags on top (re-validated)."""
    flags = {"host": args.host, "port": args.port, "token": args.token}
    return replace(section, **{key: value for key, value in flags.items() if value is not None})


def run(args: argparse.Namespace) -> int:
    from animerec.server import check_bind, check_port

    config = config_from_args(args)
    settings = server_settings(args, config.server)
    # The cheap checks first, so that a mistake is reported before the model loads: who may
    # connect, then the port (exit code 2, suggesting --port 0), then the extras; the source is
    # opened next, before the model.
    check_bind(settings.host, settings.token)
    check_port(settings.host, settings.port)
    if args.virtualcam:
        from animerec.realtime.virtualcam import require_pyvirtualcam

        require_pyvirtualcam()  # a missing extra is reported before anything starts
    return _serve(args, config, settings)


def _serve(args: argparse.Namespace, config: Config, settings: ServerConfig) -> int:
    from animerec.api import build_pipeline, load_classifier, load_decider
    from animerec.interrupts import sigterm_as_interrupt
    from animerec.realtime.capture import open_source
    from animerec.recognition.detectors import make_detector
    from animerec.server import start_server

    source = open_source(args.source, paced=True, loop=True)  # a missing file fails here, at once
    try:
        classifier = load_classifier(config, announce=True)
        make_detector(config, announce=True)  # a bad detector model fails now; the pipeline reuses it
        decider = load_decider(classifier, config)
        with ExitStack() as stack, sigterm_as_interrupt():
            pipeline = stack.enter_context(
                build_pipeline(source, config, classifier=classifier, decider=decider, status=True)
            )
            server, url = start_server(settings, pipeline.stats.snapshot)
            stack.callback(server.close)  # runs before the pipeline's close: clients see 1001 first
            sinks: list[Sink] = [server]
            if args.virtualcam:
                camera = _virtual_camera(source.info)
                stack.callback(camera.close)
                sinks.append(camera)
            print(f"Serving on {url}", flush=True)
            for item in pipeline:
                for sink in sinks:
                    sink.write(item)
            print("animerec: the source ended", file=sys.stderr)
    finally:
        source.close()
    return EXIT_OK


def _virtual_camera(info: SourceInfo) -> Sink:
    from animerec.realtime.virtualcam import VirtualCamSink

    width, height = (info.width, info.height) if info.width and info.height else FALLBACK_CAMERA_SIZE
    camera = VirtualCamSink(width, height, info.fps)
    print(f"animerec: virtual camera: {camera.device} ({width}x{height})", file=sys.stderr)
    return camera
