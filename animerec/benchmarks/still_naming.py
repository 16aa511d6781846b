"""Naming on still images, the figures of docs/OPEN_SET.md that are not video: one run per model,
every model on the same faces, so that a before/after table comes from one command.

Known faces are the named characters' validation posts (the identity manifest's `named_val`),
unseen faces the manifest's test set (danbooru6: never trained on, never calibrated on). Each face
is scored twice: as the tight crop it is (`tight`), and on the runtime path (`runtime`): standing
in a scene, found by the configured detector at full resolution as `animerec predict` does, cut
with the report's crop. A runtime face counts when a found box's centre lies inside its true box
(`quality.match`, the benchmarks' one rule); faces the detector misses are left out and counted apart.

- val top-1: the model's argmax over its trained characters, tight crops (what `eval` reports);
- known accepted: known faces given their right name by the single-image decision;
- unseen named: unseen faces given any name;
- 5-shot: `eval-enroll`'s figures (K enrolled per danbooru6 character, the manifest's calibration
  unknowns as negatives), averaged over seeds.

The decision is the model's calibrated one with no gallery, whatever the user has enrolled.

    python -m animerec.benchmarks.still_naming [--model M ...] [--data ../shared/data] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.benchmarks.quality import match
from animerec.benchmarks.truth_clips import SHARED_DATA, shared_data_present
from animerec.config import Config
from animerec.errors import InputError, ModelError
from animerec.evaluation import class_files, decided_names, few_shot
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.progress import tracked
from animerec.recognition.calibration import VIDEO_STEP, calibration_unknowns
from animerec.recognition.classifier import OnnxClassifier
from animerec.recognition.crop import resize_square
from animerec.recognition.detectors import make_detector
from animerec.recognition.embedding import embed_files
from animerec.recognition.images import load_image
from animerec.recognition.naming import OpenSetDecider
from animerec.recognition.recognizer import Recognizer
from animerec.records import UNKNOWN
from animerec.train.identities import DEFAULT_MANIFEST, load_identity_split

FACE_SIDE = 192  # a face's side in its scene: mid-range for the clips' 40-260 px
SHOTS, SEEDS = 5, 3


@dataclass(frozen=True)
class StillFaces:
    """The faces every model is measured on."""

    known: tuple[Path, ...]
    known_names: tuple[str, ...]
    unseen: tuple[Path, ...]
    unseen_root: Path  # one folder per character, for the few-shot test
    manifest: Path
    data: Path

    @classmethod
    def from_manifest(cls, data: Path, manifest: Path = DEFAULT_MANIFEST, limit: int = 0) -> StillFaces:
        """The manifest's named validation files and its test folder; `limit` > 0 keeps every
        n-th file so that about `limit` of each remain (for quick runs)."""
        split = load_identity_split(manifest, data)
        known = [(path, identity.name) for identity in split.named_val for path in identity.files]
        if len(split.test) != 1:
            raise InputError(f"{manifest}: expected one test folder, found {len(split.test)}")
        unseen = sorted(p for p in split.test[0].rglob("*") if p.is_file())
        known, unseen = _thinned(known, limit), _thinned(unseen, limit)
        return cls(tuple(p for p, _ in known), tuple(n for _, n in known), tuple(unseen), split.test[0],
                   manifest, data)


def _thinned(items: list[Any], limit: int) -> list[Any]:
    return items[:: max(1, len(items) // limit)] if limit > 0 else items


def in_scene(face: NDArray[np.uint8], surround: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.int32]]:
    """(a scene three face sides wide with the face in its centre, the face's box x, y, w, h).
    `surround`, stretched and mirrored, is the picture around it."""
    side = FACE_SIDE
    canvas = np.asarray(cv2.resize(surround[:, ::-1], (3 * side, 3 * side), interpolation=cv2.INTER_LINEAR), np.uint8)
    canvas[side : 2 * side, side : 2 * side] = resize_square(face, side)
    return canvas, np.array([side, side, side, side], np.int32)


def found_name(recognizer: Recognizer, face: NDArray[np.uint8], surround: NDArray[np.uint8]) -> str | None:
    """The name the runtime gives `face` standing in a scene; None when no found box matches it."""
    canvas, true_box = in_scene(face, surround)
    faces = recognizer.recognise(canvas)
    pairs = match([tuple(box) for box in faces.boxes.tolist()], [tuple(true_box.tolist())])
    return faces.names[pairs[0][0]] if pairs else None


def runtime_names(recognizer: Recognizer, images: Sequence[NDArray[np.uint8]], desc: str) -> Iterator[str | None]:
    """`found_name` for each image, the next image (mirrored) as its scene."""
    for i in tracked(range(len(images)), desc, "face"):
        yield found_name(recognizer, images[i], images[(i + 1) % len(images)])


def measure(model: Path, faces: StillFaces, config: Config, seeds: int = SEEDS, shots: int = SHOTS) -> dict[str, Any]:
    """Every figure for one model."""
    classifier = OnnxClassifier(model, device=config.classifier.device, warmup=False)
    if classifier.info.open_set is None:
        raise ModelError(f"{model} has no open-set calibration: run `animerec calibrate {model}` first")
    decider = OpenSetDecider.from_calibration(classifier.labels, classifier.info.open_set)
    recognizer = Recognizer(make_detector(config), classifier, decider=decider)
    truth = np.array(faces.known_names, dtype=object)

    known_images = [load_image(p) for p in faces.known]
    unseen_images = [load_image(p) for p in faces.unseen]
    known_scores = classifier.classify(known_images)
    tight_known = np.array(decided_names(decider, known_scores.embeddings), dtype=object)
    tight_unseen = np.array(decided_names(decider, classifier.classify(unseen_images).embeddings), dtype=object)
    runtime_known = list(runtime_names(recognizer, known_images, f"{model.name}: known faces in scenes"))
    runtime_unseen = list(runtime_names(recognizer, unseen_images, f"{model.name}: unseen faces in scenes"))
    found = np.array([n is not None for n in runtime_known])
    found_unseen = [n for n in runtime_unseen if n is not None]

    embedded = {name: embed_files(classifier, files) for name, files in class_files(faces.unseen_root, shots).items()}
    negatives = calibration_unknowns(classifier, faces.manifest, faces.data, VIDEO_STEP)
    enrolment = [few_shot(decider, classifier.model_id, embedded, shots, seed, negatives) for seed in range(seeds)]
    labels = np.array(classifier.labels, dtype=object)
    return {
        "model": str(model),
        "model_id": classifier.model_id,
        "threshold": decider.threshold,
        "known_faces": len(truth),
        "unseen_faces": len(faces.unseen),
        "val_top1": float(np.mean(labels[known_scores.probs.argmax(axis=1)] == truth)),
        "known_accepted_tight": float(np.mean(tight_known == truth)),
        "known_found_runtime": float(found.mean()),
        "known_accepted_runtime": float(np.mean([n == t for n, t in zip(runtime_known, truth, strict=True)
                                                 if n is not None])),
        "unseen_named_tight": float(np.mean(tight_unseen != UNKNOWN)),
        "unseen_found_runtime": len(found_unseen) / max(len(runtime_unseen), 1),
        "unseen_named_runtime": float(np.mean([n != UNKNOWN for n in found_unseen])) if found_unseen else 0.0,
        f"{shots}shot_top1": float(np.mean([r["top1"] for r in enrolment])),
        f"{shots}shot_known_accept": float(np.mean([r["known_accept"] for r in enrolment])),
        f"{shots}shot_false_accept": float(np.mean([r["false_accept"] for r in enrolment])),
        "negatives": len(negatives),
    }


ROWS = (("val top-1 (tight)", "val_top1"), ("known accepted, tight", "known_accepted_tight"),
        ("known accepted, runtime", "known_accepted_runtime"), ("known found, runtime", "known_found_runtime"),
        ("unseen named, tight", "unseen_named_tight"), ("unseen named, runtime", "unseen_named_runtime"))


def table(results: Sequence[dict[str, Any]], shots: int = SHOTS) -> str:
    """The results as a Markdown table, one column per model."""
    rows = [*ROWS, (f"{shots}-shot top-1", f"{shots}shot_top1"),
            (f"{shots}-shot false accepts", f"{shots}shot_false_accept")]
    lines = ["| | " + " | ".join(Path(r["model"]).name for r in results) + " |", "|---|" + "---:|" * len(results)]
    lines += [f"| {title} | " + " | ".join(f"{r[key]:.1%}" for r in results) + " |" for title, key in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", help="ONNX model (repeatable; default: the bundled one)")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="the shared data folder (default %(default)s)")
    parser.add_argument("--detector", choices=("cascade", "learned", "both"), default="cascade")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="few-shot draws averaged (default %(default)s)")
    parser.add_argument("--limit", type=int, default=0, help="about this many faces per set (0: all)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of the table")
    args = parser.parse_args(argv)
    if not shared_data_present(args.data):
        print(f"no shared data at {args.data}: nothing to do", file=sys.stderr)
        return 1
    config = Config()
    config = replace(config, detector=replace(config.detector, kind=args.detector),
                     pipeline=replace(config.pipeline, working_height=0))
    faces = StillFaces.from_manifest(args.data, limit=args.limit)
    results = [measure(model, faces, config, args.seeds) for model in args.model or [DEFAULT_MODEL_PATH]]
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
