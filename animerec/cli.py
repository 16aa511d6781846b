"""The `animerec` command: one subcommand per module in animerec.commands.

Each command module has `register(subparsers)` (cheap: heavy imports happen inside the command)
and sets `handler` to a function `(args) -> exit code`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any

from animerec import __version__
from animerec.errors import EXIT_INTERRUPTED, AnimerecError

COMMANDS = ("predict", "eval", "dataset", "train", "export", "doctor", "annotate", "library", "run", "serve",
            "enroll", "gallery", "eval_enroll", "calibrate", "bench")


class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: its --help keeps the line breaks of its examples (the epilog)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="animerec", description="Real-time anime character recognition.",
                                     epilog="`animerec COMMAND --help` describes each command, with examples.")
    parser.add_argument("--version", action="version", version=f"animerec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=CommandParser)
    for name in COMMANDS:
        importlib.import_module(f"animerec.commands.{name}").register(subparsers)
    return parser


def _quiet_opencv() -> None:
    """OpenCV logs every capture backend it tries ("[ WARN:0@0.4] global cap_v4l.cpp ... can't open
    camera by index", several lines each time); our own one-line error already says what matters.
    -v leaves OpenCV's log on."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="animerec: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        _quiet_opencv()
    try:
        return int(args.handler(args))
    except AnimerecError as error:
        print(f"animerec: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("animerec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ImportError as error:
        if not _caused_by_interrupt(error):
            raise
        # Ctrl-C while a compiled module (ONNX Runtime, cv2) initialises surfaces as its ImportError.
        print("animerec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _caused_by_interrupt(error: BaseException) -> bool:
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
