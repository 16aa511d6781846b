"""`animerec dataset build`: raw illustrations (or ready crops) -> a train/validation set of face crops.

The output is a folder-per-class set that `train` and `eval` read:
    OUT/train/<class>/<file>.jpg, OUT/val/<class>/<file>.jpg, OUT/report.json, OUT/report.md
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.config import STILL_IMAGES, load_config
from animerec.errors import InputError, UsageError
from animerec.media import MediaKind, media_kind
from animerec.progress import tracked
from animerec.recognition.crop import DEFAULT_CROP_SIZE, report_crop, resize_square
from animerec.recognition.detector import Detector
from animerec.recognition.detectors import make_detector
from animerec.recognition.images import UnreadableImage, load_image

SPLITS = ("train", "val")


@dataclass(frozen=True)
class BuildOptions:
    size: int = DEFAULT_CROP_SIZE
    val_fraction: float = 1 / 8
    seed: int = 0
    all_faces: bool = False  # keep every face of an image, not only the largest
    crops: bool = False  # inputs are ready face crops: no detection
    detector: str = "cascade"  # detector.kind: cascade, learned or both
    group_regex: str = ""  # files whose names give the same match are one group, never split
    val_groups: str = ""  # groups matching this go to validation (replaces the random split)
    clean_list: Path | None = None  # validation keeps only these "<class>/<file>" entries

    def __post_init__(self) -> None:
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.size < 16:
            raise UsageError(f"--size must be at least 16, got {self.size}")
        for flag, pattern in (("--group-regex", self.group_regex), ("--val-groups", self.val_groups)):
            try:
                re.compile(pattern)
            except re.error as error:
                raise UsageError(f"{flag} is not a valid regular expression: {error}") from error


@dataclass
class ClassReport:
    images: int = 0
    images_with_face: int = 0
    faces_kept: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})
    skipped: Counter[str] = field(default_factory=Counter)


def group_of(path: Path, group_regex: str) -> str:
    """The split group of a file: the regex's first group (or whole match) on its name, else the name."""
    if group_regex:
        match = re.search(group_regex, path.name)
        if match:
            return match.group(1) if match.groups() else match.group(0)
    return path.name


def split_of(group: str, options: BuildOptions) -> str:
    if options.val_groups:
        return "val" if re.search(options.val_groups, group) else "train"
    # A hash, not a shuffle: a group's side does not depend on which other files exist.
    digest = hashlib.sha256(f"{options.seed}:{group}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return "val" if fraction < options.val_fraction else "train"


def class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InputError(f"not a folder: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InputError(f"no class folders in {root} (expected one folder per character)")
    return folders


def build_dataset(raw_dir: Path, out_dir: Path, options: BuildOptions) -> dict[str, ClassReport]:
    folders = class_folders(raw_dir)
    clean = _read_clean_list(options.clean_list)
    still_images = load_config(overrides=[f"detector.kind={options.detector}"], base=STILL_IMAGES)
    detector = None if options.crops else make_detector(still_images, announce=True)
    reports: dict[str, ClassReport] = {}
    files = [(folder.name, f) for folder in folders for f in sorted(folder.rglob("*")) if f.is_file()]
    if not files:
        raise InputError(f"no files under {raw_dir}")
    for split in SPLITS:
        for folder in folders:
            (out_dir / split / folder.name).mkdir(parents=True, exist_ok=True)
    for label, path in tracked(files, "dataset", "image"):
        report = reports.setdefault(label, ClassReport())
        kind = media_kind(path)
        if kind is not MediaKind.IMAGE:
            report.skipped["a video or animated image" if kind is MediaKind.VIDEO else "not an image file"] += 1
            continue
        report.images += 1
        try:
            image = load_image(path)
        except UnreadableImage as error:
            report.skipped[error.reason.split(" (")[0]] += 1
            continue
        crops = [image] if options.crops else _face_crops(image, detector, options.all_faces)
        if not crops:
            report.skipped["no face found"] += 1
            continue
        report.images_with_face += 1
        split = split_of(group_of(path, options.group_regex), options)
        if split == "val" and clean is not None and f"{label}/{path.name}" not in clean:
            report.skipped["validation file not in the clean list"] += 1
            continue
        for i, crop in enumerate(crops):
            name = f"{path.stem}-{i}.jpg" if len(crops) > 1 else f"{path.stem}.jpg"
            target = out_dir / split / label / name
            if not cv2.imwrite(str(target), resize_square(crop, options.size), [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise InputError(f"cannot write {target}")  # OpenCV says so only by returning False
            report.faces_kept[split] += 1
    for folder in folders:
        reports.setdefault(folder.name, ClassReport())
    _write_reports(out_dir, reports, raw_dir, options)
    return reports


def _face_crops(image: NDArray[np.uint8], detector: Detector | None, all_faces: bool) -> list[NDArray[np.uint8]]:
    assert detector is not None
    boxes = detector.detect(image)
    if not len(boxes):
        return []
    if not all_faces:
        boxes = boxes[[int(np.argmax(boxes[:, 2] * boxes[:, 3]))]]
    return [report_crop(image, box) for box in boxes]


def _read_clean_list(path: Path | None) -> set[str] | None:
    if path is None:
        return None
    if not path.is_file():
        raise InputError(f"clean list not found: {path}")
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _write_reports(out_dir: Path, reports: dict[str, ClassReport], raw_dir: Path, options: BuildOptions) -> None:
    data = {
        "source": str(raw_dir),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        "classes": {
            label: {
                "images": r.images,
                "images_with_face": r.images_with_face,
                "faces_kept": r.faces_kept,
                "skipped": dict(r.skipped),
            }
            for label, r in sorted(reports.items())
        },
    }
    (out_dir / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        f"# Dataset built from {raw_dir}",
        "",
        "| class | images | with a face | train faces | val faces | skipped |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, r in sorted(reports.items()):
        skipped = ", ".join(f"{reason}: {n}" for reason, n in sorted(r.skipped.items())) or "-"
        lines.append(
            f"| {label} | {r.images} | {r.images_with_face} | {r.faces_kept['train']} "
            f"| {r.faces_kept['val']} | {skipped} |"
        )
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")


def summary(reports: dict[str, ClassReport]) -> str:
    kept = sum(sum(r.faces_kept.values()) for r in reports.values())
    images = sum(r.images for r in reports.values())
    skipped = sum(sum(r.skipped.values()) for r in reports.values())
    return f"{len(reports)} classes, {images} images, {kept} faces kept, {skipped} skipped"
