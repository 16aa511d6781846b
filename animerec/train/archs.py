"""The model architectures: the report's `seed` CNN, kept exactly, our `anime`, and `cosface`.

Every builder returns an uncompiled Keras model whose layer named `embedding` gives the features
the exported model also outputs, L2-normalised. The last layer is the softmax, except for recipes
with a `margin`: there it gives cosine similarities to one learned centre per class, trained with
the CosFace loss, and the export turns them into probabilities (softmax of scale x cosine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from animerec.train import ARCH_NAMES


@dataclass(frozen=True)
class Recipe:
    """How an architecture is trained: the report's recipe for `seed`, ours for `anime`."""

    input_size: int
    epochs: int
    batch_size: int
    augment: bool
    label_smoothing: float
    margin: float = 0.0  # > 0: a cosine head trained with CosFace's additive margin
    scale: float = 1.0  # the cosine head's logit scale (softmax of scale x cosine)


def build_seed(num_classes: int, input_size: int = 150) -> keras.Model:
    """The report's CNN: Conv 32-32-64 3x3 ReLU, each followed by 2x2 max-pool; Dense 64,
    Dropout 0.3, softmax. 1,213,488 parameters for 16 classes at 150x150."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = inputs
    for filters in (32, 32, 64):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", name="embedding")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="seed")


def _conv_bn(x: keras.KerasTensor, filters: int, stride: int = 1) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _residual(x: keras.KerasTensor, filters: int, stride: int) -> keras.KerasTensor:
    shortcut = x
    y = _conv_bn(x, filters, stride)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.Activation("relu")(layers.Add()([y, shortcut]))


def _resnet_features(inputs: keras.KerasTensor) -> keras.KerasTensor:
    x = _conv_bn(inputs, 32, stride=2)
    for filters, stride in ((48, 1), (64, 2), (128, 2), (256, 2)):
        x = _residual(x, filters, stride)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    return layers.Dense(128, name="embedding")(x)


def build_anime(num_classes: int, input_size: int = 80) -> keras.Model:
    """Ours: a small ResNet with batch norm and global pooling (about 1.2 M parameters, far
    fewer multiply-adds per face than `seed` because it downsamples early)."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = layers.Activation("relu")(_resnet_features(inputs))
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="anime")


@keras.saving.register_keras_serializable(package="animerec")
class CosineHead(layers.Layer):
    """Cosine similarity of the (normalised) input to one learned, normalised centre per class."""

    def __init__(self, units: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.centres = self.add_weight(
            name="centres", shape=(int(input_shape[-1]), self.units), initializer="glorot_uniform"
        )

    def call(self, inputs: keras.KerasTensor) -> keras.KerasTensor:
        from keras import ops

        features = inputs / ops.maximum(ops.norm(inputs, axis=1, keepdims=True), 1e-12)
        centres = self.centres / ops.maximum(ops.norm(self.centres, axis=0, keepdims=True), 1e-12)
        return ops.matmul(features, centres)

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "units": self.units}


def build_cosface(num_classes: int, input_size: int = 80) -> keras.Model:
    """`anime`'s network with a cosine head: the embedding itself is what the loss shapes, so
    faces of one character cluster around its centre and unseen characters fall between centres
    (the open-set decision and enrolment compare embeddings)."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    outputs = CosineHead(num_classes, name="cosine")(_resnet_features(inputs))
    return keras.Model(inputs, outputs, name="cosface")


@keras.saving.register_keras_serializable(package="animerec")
class CosFaceLoss(keras.losses.Loss):
    """CosFace (Wang et al. 2018): cross-entropy over scale x (cosine - margin on the true class)."""

    def __init__(self, scale: float, margin: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.scale, self.margin = scale, margin

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        from keras import ops

        logits = self.scale * (y_pred - self.margin * y_true)
        return ops.categorical_crossentropy(y_true, logits, from_logits=True)

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "scale": self.scale, "margin": self.margin}


ARCHS: dict[str, tuple[Callable[[int, int], keras.Model], Recipe]] = {
    "seed": (build_seed, Recipe(input_size=150, epochs=100, batch_size=32, augment=False, label_smoothing=0.0)),
    "anime": (build_anime, Recipe(input_size=80, epochs=30, batch_size=64, augment=True, label_smoothing=0.1)),
    "cosface": (
        build_cosface,
        Recipe(input_size=80, epochs=30, batch_size=64, augment=True, label_smoothing=0.0, margin=0.35, scale=30.0),
    ),
}
assert tuple(sorted(ARCHS)) == tuple(sorted(ARCH_NAMES))


def seed_optimizer() -> keras.optimizers.Optimizer:
    """The report's SGD: lr 0.001, momentum 0.09, decay 1e-6 per step (Keras 2's `decay`,
    which is an inverse-time schedule in Keras 3), no Nesterov."""
    schedule = keras.optimizers.schedules.InverseTimeDecay(0.001, decay_steps=1, decay_rate=1e-6)
    return keras.optimizers.SGD(learning_rate=schedule, momentum=0.09, nesterov=False)


def anime_optimizer(steps: int) -> keras.optimizers.Optimizer:
    """AdamW with a short warm-up and cosine decay over the whole run."""
    warmup = max(1, steps // 20)
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-4, decay_steps=max(1, steps - warmup), warmup_target=3e-3, warmup_steps=warmup, alpha=0.01
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=5e-4)
