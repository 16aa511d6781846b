"""Pieces every command shares: model flags, output-path rules, and atomic writes."""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from animerec.errors import UsageError
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.recognition.classifier import OnnxClassifier, announce
from animerec.recognition.detector import CascadeDetector, CascadeSettings
from animerec.recognition.recognizer import Recognizer


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="ONNX model (default: the bundled one)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run the classifier")


def load_classifier(args: argparse.Namespace) -> OnnxClassifier:
    classifier = OnnxClassifier(args.model, device=args.device)
    announce(classifier)
    return classifier


def load_recognizer(args: argparse.Namespace, detector: CascadeSettings | None = None) -> Recognizer:
    return Recognizer(CascadeDetector(detector), load_classifier(args))


def check_output(path: Path, overwrite: bool) -> Path:
    """Refuse to clobber, and fail before any work when the folder cannot be written."""
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")
    parent = path.parent if str(path.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write to {parent}")
    return path


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary name beside `path`; rename it to `path` when the block ends, even on
    Ctrl-C, so a file at the output name is always complete and valid."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent or ".")
    os.close(fd)
    # mkstemp makes the file private (0600); outputs get the mode any new file would get.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        yield Path(temporary)
    except KeyboardInterrupt:
        os.replace(temporary, path)  # the writer finalised what it had: keep it
        raise
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    os.replace(temporary, path)
