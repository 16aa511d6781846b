"""Fine-tune the learned detector (FaceBoxes) on composites with exact boxes (issue 12, item 2).

    python -m animerec.train.detector_fit --out /tmp/team/faceboxes_ft.npz [--steps 1200] [--seed 0]
    python -m animerec.export.faceboxes_port --weights /tmp/team/faceboxes_ft.npz -o /tmp/team/faceboxes_ft.onnx

It starts from the vendored weights (or `--weights`: an earlier run's), renders the composites once
(detector_data.py; cached as an .npz beside `--out`, named by the code that renders them), then
trains on random crops of them with SSD's multibox loss: an anchor is a face when it overlaps a
true box by IoU >= 0.35 (and every box gets its best anchor), smooth-L1 on the offsets encoded
with the decoder's variances, softmax cross-entropy on faces and on the three hardest background
anchors per face. BatchNorm stays frozen (batches of a few crops would make its
statistics noise); the learning rate decays to zero on a cosine. The weights are written in the
vendored file's PyTorch layout (every SAVE_EVERY steps and at the end), so the export script and
its model id (a hash of the weights) treat them like the original.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from animerec.recognition.faceboxes import BGR_MEAN, VARIANCES, anchors, iou_matrix
from animerec.train import degrade, detector_data
from animerec.train.detector_data import Boxes, Composite, random_crop, render_composites

MATCH_IOU = 0.35
NEGATIVES_PER_FACE = 3
IGNORED, BACKGROUND, FACE = -1, 0, 1
SAVE_EVERY = 200  # steps
VENDORED = Path(__file__).resolve().parents[3] / "shared" / "vendor" / "faceboxes_anime" / "faceboxes_anime_epoch90.npz"


@dataclass(frozen=True)
class Targets:
    """Per anchor: the encoded offsets to its face (zeros elsewhere) and FACE, BACKGROUND or IGNORED."""

    offsets: NDArray[np.float32]  # (N, 4)
    labels: NDArray[np.int8]  # (N,)


def encode(boxes: Boxes, priors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Boxes (n, 4: x, y, w, h) as SSD offsets from anchors (n, 4: cx, cy, w, h): faceboxes.decode's inverse."""
    centre = boxes[:, :2] + boxes[:, 2:] / 2
    offsets = np.concatenate([(centre - priors[:, :2]) / (VARIANCES[0] * priors[:, 2:]),
                              np.log(np.maximum(boxes[:, 2:], 1e-3) / priors[:, 2:]) / VARIANCES[1]], axis=1)
    return offsets.astype(np.float32)


def match(faces: Boxes, ignore: Boxes, priors: NDArray[np.float32]) -> Targets:
    """SSD's matching: each anchor takes the face it overlaps most if IoU >= MATCH_IOU, and each face
    its best anchor whatever the overlap. Anchors centred in an ignore region learn nothing."""
    labels = np.full(len(priors), BACKGROUND, np.int8)
    offsets = np.zeros((len(priors), 4), np.float32)
    centres = priors[:, :2]
    for x, y, w, h in ignore:
        inside = (centres[:, 0] >= x) & (centres[:, 0] < x + w) & (centres[:, 1] >= y) & (centres[:, 1] < y + h)
        labels[inside] = IGNORED
    if len(faces):
        corners = np.concatenate([priors[:, :2] - priors[:, 2:] / 2, priors[:, 2:]], axis=1)
        overlap = iou_matrix(faces, corners)  # (faces, anchors)
        best_face, best_iou = overlap.argmax(axis=0), overlap.max(axis=0)
        best_anchor = overlap.argmax(axis=1)
        best_face[best_anchor] = np.arange(len(faces))
        best_iou[best_anchor] = 1.0
        positive = best_iou >= MATCH_IOU
        labels[positive] = FACE
        offsets[positive] = encode(faces[best_face[positive]], priors[positive])
    return Targets(offsets, labels)


def multibox_loss(loc: Any, logits: Any, offsets: Any, labels: Any) -> tuple[Any, Any]:
    """(localisation, classification) losses of a batch, each summed and divided by its faces.
    Background anchors count only as the NEGATIVES_PER_FACE hardest per face of their image."""
    import tensorflow as tf

    face = tf.equal(labels, FACE)
    background = tf.equal(labels, BACKGROUND)
    faces_per_image = tf.reduce_sum(tf.cast(face, tf.int32), axis=1)
    error = tf.abs(loc - offsets)
    smooth_l1 = tf.reduce_sum(tf.where(error < 1.0, 0.5 * error**2, error - 0.5), axis=2)
    localisation = tf.reduce_sum(tf.where(face, smooth_l1, 0.0))
    entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(face, tf.int32), logits)
    background_entropy = tf.where(background, entropy, -1.0)  # ranks below every real background anchor
    rank = tf.argsort(tf.argsort(background_entropy, axis=1, direction="DESCENDING"), axis=1)
    quota = NEGATIVES_PER_FACE * tf.maximum(faces_per_image, 1)
    hard = background & (rank < quota[:, None])
    classification = tf.reduce_sum(tf.where(face | hard, entropy, 0.0))
    faces = tf.cast(tf.maximum(tf.reduce_sum(faces_per_image), 1), tf.float32)
    return localisation / faces, classification / faces


@dataclass(frozen=True)
class FitOptions:
    steps: int = 1200
    batch: int = 8
    crop: tuple[int, int] = (512, 512)  # width, height: faces keep their pixel size (720p frames)
    learning_rate: float = 3e-4
    seed: int = 0


class DetectorTrainer:
    """Trains a Keras FaceBoxes (export.faceboxes_port.build_faceboxes) in place on composites."""

    def __init__(self, model: Any, options: FitOptions = FitOptions()) -> None:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(options.seed)
        self.model, self.options = model, options
        self._heads = keras.Model(model.input, [model.get_layer("loc").output, model.get_layer("conf_logits").output])
        schedule = keras.optimizers.schedules.CosineDecay(options.learning_rate, max(1, options.steps))
        self._optimizer = keras.optimizers.Adam(schedule)
        self._priors = anchors(options.crop[1], options.crop[0])
        self._step = tf.function(self._train_step, reduce_retracing=True)

    def batch(self, composites: list[Composite], rng: np.random.Generator) -> tuple[NDArray[Any], ...]:
        """Network inputs (BGR minus the mean), target offsets and anchor labels for a batch of crops."""
        width, height = self.options.crop
        images, offsets, labels = [], [], []
        for k in rng.integers(len(composites), size=self.options.batch):
            crop = random_crop(composites[int(k)], width, height, rng)
            targets = match(crop.faces, crop.ignore, self._priors)
            images.append(crop.image.astype(np.float32) - np.asarray(BGR_MEAN, np.float32))
            offsets.append(targets.offsets)
            labels.append(targets.labels)
        return np.stack(images), np.stack(offsets), np.stack(labels).astype(np.int32)

    def _train_step(self, images: Any, offsets: Any, labels: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loc, logits = self._heads(images, training=False)  # training=False: BatchNorm frozen
            localisation, classification = multibox_loss(loc, logits, offsets, labels)
            total = localisation + classification
        variables = self._heads.trainable_variables
        self._optimizer.apply_gradients(zip(tape.gradient(total, variables), variables, strict=True))
        return localisation, classification

    def fit(self, composites: list[Composite], log: Any = None) -> list[tuple[float, float]]:
        """Run the steps; the (localisation, classification) loss of each. `log(step, losses)` if given."""
        rng = np.random.default_rng(self.options.seed)
        history = []
        for step in range(self.options.steps):
            localisation, classification = self._step(*self.batch(composites, rng))
            history.append((float(localisation), float(classification)))
            if log is not None:
                log(step, history[-1])
        return history


def composite_cache(out: Path, count: int, illustrations: int, seed: int) -> Path:
    """Where the composites for weights `out` are cached: named by their count, illustrations and
    seed and by a digest of the code that renders them, so that a changed recipe renders afresh
    instead of silently reusing composites an older one made."""
    digest = hashlib.sha256()
    for module in (detector_data, degrade):
        digest.update(Path(str(module.__file__)).read_bytes())
    return out.with_name(f"{out.stem}_composites_{count}_{illustrations}_{seed}_{digest.hexdigest()[:10]}.npz")


def load_composites(path: Path) -> list[Composite]:
    with np.load(path) as archive:
        count = int(archive["count"])
        return [Composite(archive[f"image_{k}"], archive[f"faces_{k}"], archive[f"ignore_{k}"]) for k in range(count)]


def save_composites(composites: list[Composite], path: Path) -> None:
    arrays: dict[str, NDArray[Any]] = {"count": np.asarray(len(composites))}
    for k, c in enumerate(composites):
        arrays.update({f"image_{k}": c.image, f"faces_{k}": c.faces, f"ignore_{k}": c.ignore})
    save_arrays(path, arrays)


def save_arrays(path: Path, arrays: dict[str, NDArray[Any]]) -> None:
    np.savez(path, **arrays)  # type: ignore[arg-type]  # numpy's stub reads the keywords as its flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m animerec.train.detector_fit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the fine-tuned weights (.npz, PyTorch layout)")
    parser.add_argument("--weights", type=Path, default=VENDORED, help="the weights to start from")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data root")
    parser.add_argument("--composites", type=int, default=600, help="composites to render (default 600)")
    parser.add_argument("--illustrations", type=int, default=150,
                        help="illustrations of the training identities among the backgrounds (default 150)")
    parser.add_argument("--steps", type=int, default=FitOptions.steps)
    parser.add_argument("--batch", type=int, default=FitOptions.batch)
    parser.add_argument("--learning-rate", type=float, default=FitOptions.learning_rate)
    parser.add_argument("--seed", type=int, default=FitOptions.seed)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from animerec.export.faceboxes_port import build_faceboxes, read_weights

    cache = composite_cache(args.out, args.composites, args.illustrations, args.seed)
    if cache.is_file():
        composites = load_composites(cache)
    else:
        composites = render_composites(args.data, args.composites, args.seed, illustration_count=args.illustrations)
        save_composites(composites, cache)
    with np.load(args.weights) as archive:
        vendored = {key: archive[key] for key in archive.files}
    model = build_faceboxes(vendored)
    options = FitOptions(args.steps, args.batch, learning_rate=args.learning_rate, seed=args.seed)
    started = time.perf_counter()

    def log(step: int, losses: tuple[float, float]) -> None:
        if step % 20 == 0:
            print(json.dumps({"step": step, "loc": round(losses[0], 4), "conf": round(losses[1], 4),
                              "seconds": round(time.perf_counter() - started, 1)}), file=sys.stderr, flush=True)
        if step % SAVE_EVERY == SAVE_EVERY - 1:  # a run stopped early still leaves its latest weights
            save_arrays(args.out, read_weights(model, vendored))

    DetectorTrainer(model, options).fit(composites, log)
    save_arrays(args.out, read_weights(model, vendored))
    print(f"wrote {args.out} after {options.steps} steps in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
