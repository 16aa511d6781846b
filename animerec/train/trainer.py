"""`animerec train`: fit an architecture on a built dataset, seeded, and write what it learned.

Writes into OUT: model.keras (the best epoch by validation accuracy), metrics.json, curves.png and
confusion.png. Ctrl-C or SIGTERM stops after the current batch and still writes all of them.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from animerec.errors import UsageError
from animerec.evaluation import format_report, plot_confusion, score
from animerec.interrupts import sigterm_as_interrupt
from animerec.labelled import list_labelled
from animerec.progress import tracked
from animerec.recognition.crop import to_model_input
from animerec.recognition.images import load_image
from animerec.train.archs import ARCHS, Recipe
from animerec.train.identities import DEFAULT_MANIFEST


@dataclass(frozen=True)
class TrainOptions:
    arch: str
    seed: int = 0
    epochs: int | None = None  # None: the architecture's recipe
    batch_size: int | None = None
    input_size: int | None = None
    steps_per_epoch: int | None = None  # identity recipes only
    renders: int | None = None  # identity recipes only: degraded renders per training face
    limit_per_class: int = 0  # 0 = all; small values make quick smoke runs
    manifest: Path = DEFAULT_MANIFEST  # identity recipes: which identity trains (DATA_DIR is its root)
    init: Path | None = None  # an earlier run's model.keras to start from (same arch and identities)

    def recipe(self) -> Recipe:
        if self.arch not in ARCHS:
            raise UsageError(f"--arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        recipe = ARCHS[self.arch][1]
        recipe = replace(
            recipe,
            epochs=recipe.epochs if self.epochs is None else self.epochs,
            batch_size=recipe.batch_size if self.batch_size is None else self.batch_size,
            input_size=recipe.input_size if self.input_size is None else self.input_size,
            steps_per_epoch=recipe.steps_per_epoch if self.steps_per_epoch is None else self.steps_per_epoch,
            renders=recipe.renders if self.renders is None else self.renders,
        )
        if recipe.epochs < 1 or recipe.batch_size < 1 or recipe.input_size < 16:
            raise UsageError("--epochs and --batch-size must be >= 1 and --input-size >= 16")
        if recipe.identities and (recipe.steps_per_epoch < 1 or recipe.renders < 0):
            raise UsageError("--steps-per-epoch must be >= 1 and --renders >= 0")
        return recipe


def load_split(paths: list[Path], input_size: int, desc: str) -> NDArray[np.float32]:
    images = []
    for path in tracked(paths, f"loading {desc}", "image", leave=False):
        images.append(load_image(path))  # UnreadableImage is an InputError naming the file
    return to_model_input(images, input_size)


@dataclass(frozen=True, eq=False)
class TrainingData:
    """What fitting needs, whichever source it came from."""

    batches: Any  # the training batches: a tf.data pipeline or a Keras PyDataset
    x_val: NDArray[np.float32]
    y_val: NDArray[np.int64]
    labels: tuple[str, ...]  # the named classes: scored, and the only ones exported
    classes: int  # the head's classes: the labels first, then any other training identity
    steps: int  # optimiser steps in the whole run
    n_train: int


def folder_data(data_dir: Path, options: TrainOptions, recipe: Recipe) -> TrainingData:
    """A folder-per-class set made by `dataset build`: DATA_DIR/train and DATA_DIR/val."""
    train_paths, y_train, labels = list_labelled(data_dir / "train", limit=options.limit_per_class)
    val_paths, y_val, _ = list_labelled(data_dir / "val", labels, limit=options.limit_per_class)
    x_train = load_split(train_paths, recipe.input_size, "train")
    x_val = load_split(val_paths, recipe.input_size, "val")
    steps = recipe.epochs * int(np.ceil(len(x_train) / recipe.batch_size))
    batches = _pipeline(x_train, y_train, len(labels), recipe, options.seed, training=True)
    return TrainingData(batches, x_val, y_val, labels, len(labels), steps, len(x_train))


def identity_data(data_root: Path, options: TrainOptions, recipe: Recipe) -> TrainingData:
    """Every training identity of the manifest, in balanced batches; validation on the named
    characters' validation posts."""
    from animerec.train.identities import load_identity_split
    from animerec.train.identity_data import BalancedBatches, build_identity_set, validation_inputs

    split = load_identity_split(options.manifest, data_root)
    faces = build_identity_set(split, recipe.input_size, recipe.renders, options.seed, options.limit_per_class)
    x_val, y_val = validation_inputs(split, recipe.input_size)
    batches = BalancedBatches(faces, recipe.input_size, recipe.batch_size, recipe.steps_per_epoch, options.seed,
                              recipe.named_share)
    named = tuple(i.name for i in split.named)
    return TrainingData(batches, x_val, y_val, named, len(faces.labels), recipe.epochs * recipe.steps_per_epoch,
                        len(faces.identity))


def train(data_dir: Path, out_dir: Path, options: TrainOptions) -> dict[str, Any]:
    import keras
    import tensorflow as tf

    from animerec.train.archs import NamedAccuracy

    recipe = options.recipe()
    keras.utils.set_random_seed(options.seed)
    tf.config.experimental.enable_op_determinism()
    data = (identity_data if recipe.identities else folder_data)(data_dir, options, recipe)
    labels, x_val, y_val = data.labels, data.x_val, data.y_val
    out_dir.mkdir(parents=True, exist_ok=True)

    build, _ = ARCHS[options.arch]
    model = build(data.classes, recipe.input_size)
    if options.init is not None:
        _start_from(model, options.init)
    model.compile(
        optimizer=_optimizer(options.arch, data.steps),
        loss=_loss(recipe),
        metrics=[NamedAccuracy(len(labels))],
    )
    val_data = _pipeline(x_val, y_val, data.classes, recipe, options.seed, training=False)
    best_path = out_dir / "model.keras"
    callbacks = [
        keras.callbacks.ModelCheckpoint(best_path, monitor="val_accuracy", mode="max", save_best_only=True),
    ]
    print(
        f"training {options.arch} on {data.n_train} faces of {data.classes} identities, validating on "
        f"{len(x_val)} faces of {len(labels)} named ones, {recipe.input_size}px, {recipe.epochs} epochs",
        flush=True,
    )
    started = time.monotonic()
    try:
        with sigterm_as_interrupt():
            model.fit(data.batches, validation_data=val_data, epochs=recipe.epochs, verbose=2, callbacks=callbacks)
    except KeyboardInterrupt:
        # Ctrl-C: keep the epochs already finished and still write every output.
        print("interrupted: writing the outputs of the finished epochs", flush=True)
    history = model.history
    seconds = time.monotonic() - started
    if not best_path.exists():  # interrupted before the first epoch ended
        model.save(best_path)
    best = keras.models.load_model(best_path)
    # Only the named classes' columns: the other identities are never names the model gives.
    result = score(best.predict(x_val, batch_size=128, verbose=0)[:, : len(labels)], y_val, labels)
    metrics: dict[str, Any] = {
        "arch": options.arch,
        "params": int(model.count_params()),
        "recipe": asdict(recipe),
        "seed": options.seed,
        "epochs_run": len(history.history.get("loss", [])),
        "train_seconds": round(seconds, 1),
        "n_train": data.n_train,
        "identities": data.classes,
        "history": {k: [round(float(v), 5) for v in vs] for k, vs in history.history.items()},
        "validation": result,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _plot_curves(metrics["history"], out_dir / "curves.png", options.arch)
    plot_confusion(result, out_dir / "confusion.png", f"{options.arch} validation")
    print(format_report(result), flush=True)
    return metrics


def _start_from(model: Any, run: Path) -> None:
    """Continue from an earlier run's weights: a longer schedule, or new renders, without
    paying again for what that run already learned."""
    path = run / "model.keras" if run.is_dir() else run
    if not path.is_file():
        raise UsageError(f"--init: no model.keras at {run}")
    try:
        model.load_weights(path)
    except ValueError as error:
        raise UsageError(f"--init: {path} does not fit this architecture and identities ({error})") from error
    print(f"starting from the weights of {path}", flush=True)


def _loss(recipe: Recipe) -> Any:
    import keras

    from animerec.train.archs import ArcFaceLoss, CosFaceLoss

    if recipe.margin > 0 and recipe.angular:
        return ArcFaceLoss(recipe.scale, recipe.margin)
    if recipe.margin > 0:
        return CosFaceLoss(recipe.scale, recipe.margin)
    return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)


def _optimizer(arch: str, steps: int) -> Any:
    from animerec.train.archs import anime_optimizer, seed_optimizer

    return seed_optimizer() if arch == "seed" else anime_optimizer(steps)


def _pipeline(
    x: NDArray[np.float32], y: NDArray[np.int64], classes: int, recipe: Recipe, seed: int, training: bool
) -> Any:
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, tf.one_hot(y, classes)))
    if training:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(recipe.batch_size)
    if training and recipe.augment:
        augment = _augmentation(seed)
        data = data.map(lambda images, target: (augment(images, training=True), target))
    return data.prefetch(2)


def _augmentation(seed: int) -> Any:
    """Augmentation for drawn faces: mirror, small rotations, scale and shift (the cascade's boxes
    vary in size and position), brightness and contrast. No hue shifts: hair and eye colours are
    what tell many characters (and the twins fuwawa and mococo) apart."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.03, fill_mode="reflect", seed=seed + 1),
            layers.RandomZoom((-0.15, 0.2), fill_mode="reflect", seed=seed + 2),
            layers.RandomTranslation(0.06, 0.06, fill_mode="reflect", seed=seed + 3),
            layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=seed + 4),
            layers.RandomContrast(0.2, value_range=(0.0, 1.0), seed=seed + 5),
        ],
        name="augment",
    )


def _plot_curves(history: dict[str, list[float]], path: Path, arch: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", loss_ax), ("accuracy", acc_ax)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key, [])
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{arch} training")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
