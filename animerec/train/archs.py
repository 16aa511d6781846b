"""The model architectures: the report's `seed` CNN, kept exactly, our `anime`, `cosface`, and
the identity embeddings `identity` and `identity-arcface` (issue 11).

Every builder returns an uncompiled Keras model whose layer named `embedding` gives the features
the exported model also outputs, L2-normalised. The last layer is the softmax, except for recipes
with a `margin`: there it gives cosine similarities to learned class centres, trained with a
margin loss, and the export turns them into probabilities (softmax of scale x cosine). The
identity recipes train on every identity of `identities.toml`; the named characters come first,
and the export keeps only their columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

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
    margin: float = 0.0  # > 0: a cosine head trained with a margin loss
    scale: float = 1.0  # the cosine head's logit scale (softmax of scale x cosine)
    angular: bool = False  # ArcFace's margin on the angle instead of CosFace's on the cosine
    identities: bool = False  # trained on every identity of the manifest, not one folder set
    steps_per_epoch: int = 0  # identity recipes: balanced batches per epoch
    named_share: float = 0.5  # identity recipes: the named characters' share of every batch
    renders: int = 2  # identity recipes: degraded renders made once per training face


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
    """Cosine similarity of the (normalised) input to learned, normalised class centres. With
    `subcentres` > 1 each class has several centres and scores its nearest one (sub-centre
    ArcFace): a class whose faces come in a few looks, or carry label noise, need not squeeze
    them into one cone."""

    def __init__(self, units: int, subcentres: int = 1, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.units, self.subcentres = units, subcentres

    def build(self, input_shape: tuple[int, ...]) -> None:
        self.centres = self.add_weight(
            name="centres", shape=(int(input_shape[-1]), self.units * self.subcentres), initializer="glorot_uniform"
        )

    def call(self, inputs: keras.KerasTensor) -> keras.KerasTensor:
        from keras import ops

        features = inputs / ops.maximum(ops.norm(inputs, axis=1, keepdims=True), 1e-12)
        centres = self.centres / ops.maximum(ops.norm(self.centres, axis=0, keepdims=True), 1e-12)
        cosines = ops.matmul(features, centres)
        if self.subcentres == 1:
            return cosines
        return ops.max(ops.reshape(cosines, (-1, self.units, self.subcentres)), axis=2)

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "units": self.units, "subcentres": self.subcentres}


def build_cosface(num_classes: int, input_size: int = 80) -> keras.Model:
    """`anime`'s network with a cosine head: the embedding itself is what the loss shapes, so
    faces of one character cluster around its centre and unseen characters fall between centres
    (the open-set decision and enrolment compare embeddings)."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    outputs = CosineHead(num_classes, name="cosine")(_resnet_features(inputs))
    return keras.Model(inputs, outputs, name="cosface")


def build_identity(num_classes: int, input_size: int = 64, subcentres: int = 1) -> keras.Model:
    """The identity embedding: a plain 4-block CNN (32-64-128-192 filters, two 3x3 conv + BN +
    ReLU per block, 2x2 max-pool between blocks), global average pooling and a 128-d embedding
    under a cosine head. The first convolution has stride 2: at 64 px the full-resolution block
    alone cost 8 ms a face on our 2 cores; strided it is under 3 ms."""
    inputs = keras.Input((input_size, input_size, 3), name="image")
    x = inputs
    for block, filters in enumerate((32, 64, 128, 192)):
        if block:
            x = layers.MaxPooling2D(2)(x)
        x = _conv_bn(x, filters, stride=2 if block == 0 else 1)
        x = _conv_bn(x, filters)
    x = layers.GlobalAveragePooling2D()(x)
    embedding = layers.Dense(128, name="embedding")(x)
    outputs = CosineHead(num_classes, subcentres, name="cosine")(embedding)
    return keras.Model(inputs, outputs, name="identity")


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


@keras.saving.register_keras_serializable(package="animerec")
class ArcFaceLoss(keras.losses.Loss):
    """ArcFace (Deng et al. 2019): cross-entropy over scale x cos(angle + margin on the true class).
    Past pi - margin, where cos(angle + margin) would rise again, CosFace's form takes over."""

    def __init__(self, scale: float, margin: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.scale, self.margin = scale, margin

    def call(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor) -> keras.KerasTensor:
        import math

        from keras import ops

        cosine = ops.clip(y_pred, -1 + 1e-6, 1 - 1e-6)
        with_margin = ops.cos(ops.arccos(cosine) + self.margin)
        with_margin = ops.where(cosine > math.cos(math.pi - self.margin), with_margin,
                                cosine - self.margin * math.sin(self.margin))
        logits = self.scale * (cosine + y_true * (with_margin - cosine))
        return ops.categorical_crossentropy(y_true, logits, from_logits=True)

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "scale": self.scale, "margin": self.margin}


@keras.saving.register_keras_serializable(package="animerec")
class NamedAccuracy(keras.metrics.Metric):
    """Top-1 among the first `named` classes, on the faces of those classes only: the shipped
    names, whatever other identities the head was trained with."""

    def __init__(self, named: int, name: str = "accuracy", **kwargs: object) -> None:
        super().__init__(name=name, **kwargs)
        self.named = named
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true: keras.KerasTensor, y_pred: keras.KerasTensor,
                     sample_weight: keras.KerasTensor | None = None) -> None:
        from keras import ops

        truth, scores = y_true[:, : self.named], y_pred[:, : self.named]
        counted = ops.cast(ops.sum(truth, axis=1) > 0, "float32")
        right = ops.cast(ops.argmax(truth, axis=1) == ops.argmax(scores, axis=1), "float32")
        self.hits.assign_add(ops.sum(right * counted))
        self.total.assign_add(ops.sum(counted))

    def result(self) -> keras.KerasTensor:
        from keras import ops

        return self.hits / ops.maximum(self.total, 1.0)

    def reset_state(self) -> None:
        self.hits.assign(0.0)
        self.total.assign(0.0)

    def get_config(self) -> dict[str, object]:
        return {**super().get_config(), "named": self.named}


IDENTITY_RECIPE = Recipe(
    input_size=64, epochs=24, batch_size=64, augment=True, label_smoothing=0.0, margin=0.15, scale=16.0,
    identities=True, steps_per_epoch=40,
)
ARCHS: dict[str, tuple[Callable[[int, int], keras.Model], Recipe]] = {
    "seed": (build_seed, Recipe(input_size=150, epochs=100, batch_size=32, augment=False, label_smoothing=0.0)),
    "anime": (build_anime, Recipe(input_size=80, epochs=30, batch_size=64, augment=True, label_smoothing=0.1)),
    "cosface": (
        build_cosface,
        Recipe(input_size=80, epochs=30, batch_size=64, augment=True, label_smoothing=0.0, margin=0.35, scale=30.0),
    ),
    "identity": (build_identity, IDENTITY_RECIPE),
    "identity-arcface": (partial(build_identity, subcentres=3), replace(IDENTITY_RECIPE, margin=0.2, angular=True)),
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
