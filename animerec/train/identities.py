"""The identity split (`identities.toml`): which characters train, which calibrate, which test.

The manifest names folders under a data root (`../shared/data` from the repository). The named
characters are trained and shipped; the other training identities only teach the embedding; the
calibration identities are never trained on, so they stand for characters nobody has seen.
Reading the manifest needs no TensorFlow: `calibrate` and `eval-enroll` use it too.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError
from animerec.media import is_image
from animerec.recognition.crop import report_crop
from animerec.recognition.detector import CascadeDetector
from animerec.recognition.images import UnreadableImage, load_image

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

DEFAULT_MANIFEST = Path(__file__).with_name("identities.toml")
DEFAULT_DATA_ROOT = Path("../shared/data")


@dataclass(frozen=True)
class Identity:
    """One character's images. `detect`: whole illustrations, whose faces the cascade cuts."""

    name: str
    files: tuple[Path, ...]
    detect: bool = False


@dataclass(frozen=True)
class IdentitySplit:
    named: tuple[Identity, ...]  # trained and named: their training files
    named_val: tuple[Identity, ...]  # the same characters' validation files (test data)
    extra: tuple[Identity, ...]  # trained, never named
    calibration: tuple[Identity, ...]  # never trained: the unknowns of calibration
    calibration_videos: tuple[Path, ...]
    test: tuple[Path, ...]  # never trained, never calibrated

    @property
    def labels(self) -> tuple[str, ...]:
        """Every training identity, the named ones first (so their indices are 0..named-1)."""
        return tuple(i.name for i in (*self.named, *self.extra))


def _images(folder: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in folder.iterdir() if p.is_file() and is_image(p)))


def _folders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"identity folder not found: {folder} (is the data root right?)")
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_identity_split(manifest: Path = DEFAULT_MANIFEST, root: Path = DEFAULT_DATA_ROOT) -> IdentitySplit:
    """Resolve the manifest against `root`; missing folders are errors, never silently skipped."""
    try:
        spec = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise InputError(f"cannot read the identity manifest {manifest}: {error}") from error
    held_out = set(spec["calibration"]["identities"])
    detect_patterns = {t["folder"]: t.get("detect", []) for t in spec["train"]}

    def detects(key: str) -> bool:
        folder, _, name = key.rpartition("/")
        return any(fnmatch.fnmatch(name, p) for p in detect_patterns.get(folder, []))

    named_spec = spec["named"]
    val_pattern = re.compile(named_spec["val_regex"])
    clean = set((root / named_spec["clean"]).read_text(encoding="utf-8").split())
    named, named_val = [], []
    for folder in _folders(root / named_spec["folder"]):
        files = _images(folder)
        named.append(Identity(folder.name, tuple(f for f in files if not val_pattern.match(f.name))))
        val = tuple(f for f in files if val_pattern.match(f.name) and f"{folder.name}/{f.name}" in clean)
        named_val.append(Identity(folder.name, val))
    extra = [
        Identity(f"{entry['folder']}/{folder.name}", _images(folder), detects(f"{entry['folder']}/{folder.name}"))
        for entry in spec["train"]
        for folder in _folders(root / entry["folder"])
        if f"{entry['folder']}/{folder.name}" not in held_out
    ]
    calibration = []
    for key in sorted(held_out):
        if not (root / key).is_dir():
            raise InputError(f"calibration identity not found: {root / key}")
        calibration.append(Identity(key, _images(root / key), detects(key)))
    return IdentitySplit(
        named=tuple(named),
        named_val=tuple(named_val),
        extra=tuple(extra),
        calibration=tuple(calibration),
        calibration_videos=tuple(root / v for v in spec["calibration"].get("videos", [])),
        test=tuple(root / t for t in spec["test"]["folders"]),
    )


def identity_faces(identity: Identity, detector: CascadeDetector | None = None) -> Iterator[NDArray[np.uint8]]:
    """BGR face crops of one identity: its files as they are, or the largest face the cascade
    finds in each (the report's crop); files without a face are skipped."""
    if not identity.detect:
        detector = None
    elif detector is None:
        detector = CascadeDetector()
    for path in identity.files:
        try:
            image = load_image(path)
        except UnreadableImage as error:
            raise InputError(str(error)) from error
        if detector is None:
            yield image
            continue
        boxes = detector.detect(image)
        if len(boxes):
            yield report_crop(image, boxes[int(np.argmax(boxes[:, 2] * boxes[:, 3]))])
