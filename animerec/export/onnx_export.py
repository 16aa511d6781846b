"""`animerec export`: a trained Keras model -> one ONNX file that carries its own labels.

tf2onnx's `from_keras` fails on Keras 3, so the model is wrapped in a `tf.function` with a
dynamic batch dimension and converted with `from_function`. The ONNX graph has two outputs:
`probs` (softmax) and `embedding` (the L2-normalised features of the layer named "embedding").
A model with a cosine head (trained with a margin) gets its softmax over scale x cosine here,
over the named classes only: an identity model's head also scores the identities that only
taught the embedding, and those are never names the model gives.
With `mirrored`, the graph also looks at each face's mirror image (one batch of twice the faces)
and returns the mean of the two looks: the mean probabilities, the normalised sum of the
embeddings. Anime faces are drawn near-symmetric but not quite; the mean of two looks is steadier
evidence (docs/OPEN_SET.md, "Mirrored looks"). It doubles the classifier's work per face.
A parity check against Keras runs on every export.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from animerec.errors import AnimerecError, ModelError
from animerec.recognition.crop import to_model_input
from animerec.recognition.model_info import EMBEDDING_OUTPUT, PROBS_OUTPUT, ModelInfo

PARITY_TOLERANCE = 1e-4
OPSET = 17


@dataclass(frozen=True)
class Parity:
    random_max_diff: float
    real_max_diff: float  # nan when no real inputs were given

    @property
    def ok(self) -> bool:
        worst = max(self.random_max_diff, 0.0 if np.isnan(self.real_max_diff) else self.real_max_diff)
        return worst <= PARITY_TOLERANCE


def load_trained(model_path: Path) -> tuple[Any, dict[str, Any]]:
    """The Keras model and the metrics.json that `train` wrote beside it."""
    import keras

    import animerec.train.archs  # noqa: F401  registers the custom layers the model may hold

    if model_path.is_dir():
        model_path = model_path / "model.keras"
    metrics_path = model_path.parent / "metrics.json"
    if not model_path.is_file():
        raise ModelError(f"Keras model not found: {model_path}")
    if not metrics_path.is_file():
        raise ModelError(f"{metrics_path} not found: export needs the metrics.json that train writes")
    try:
        model = keras.models.load_model(model_path)
    except Exception as error:
        raise ModelError(f"cannot load Keras model {model_path}: {error}") from error
    return model, json.loads(metrics_path.read_text())


def two_headed(model: Any, cosine_scale: float | None = None, named: int | None = None,
               mirrored: bool = False) -> Any:
    """The same weights with a second output: the L2-normalised embedding. With `cosine_scale`
    the model's output is cosines, and the first output becomes softmax(scale x cosine) over its
    first `named` columns (all of them when None). With `mirrored`, both outputs are the mean of
    the face and its mirror image."""
    import keras
    import tensorflow as tf

    embedding = model.get_layer("embedding").output
    normalised = keras.layers.Lambda(lambda t: tf.math.l2_normalize(t, axis=1))(embedding)
    probs = model.outputs[0]
    if cosine_scale is not None:
        probs = keras.layers.Lambda(lambda t: tf.nn.softmax(cosine_scale * t[:, :named], axis=1))(probs)
    heads = keras.Model(model.inputs, [probs, normalised])
    if not mirrored:
        return heads
    image = keras.Input(model.inputs[0].shape[1:])
    both = keras.layers.Lambda(lambda t: tf.concat([t, tf.reverse(t, axis=[2])], axis=0))(image)
    both_probs, both_embeddings = heads(both)
    mean_probs = keras.layers.Lambda(lambda t: tf.add(*tf.split(t, 2)) / 2)(both_probs)
    mean_embedding = keras.layers.Lambda(lambda t: tf.math.l2_normalize(tf.add(*tf.split(t, 2)), axis=1))(
        both_embeddings)
    return keras.Model(image, [mean_probs, mean_embedding])


def cosine_scale(metrics: dict[str, Any]) -> float | None:
    """The logit scale of a model trained with a margin (its outputs are cosines), else None."""
    recipe = metrics.get("recipe", {})
    return float(recipe["scale"]) if recipe.get("margin", 0) > 0 else None


def convert(model: Any, info: ModelInfo, scale: float | None = None) -> Any:
    """Return the ONNX ModelProto, outputs named and metadata (with the model id) attached.
    A mirrored graph gets another id than the plain one: its embeddings differ, so a gallery
    enrolled with one must be re-embedded for the other."""
    import tensorflow as tf
    import tf2onnx

    size = info.input_size
    spec = (tf.TensorSpec((None, size, size, 3), tf.float32, name="image"),)
    heads = two_headed(model, scale, len(info.labels), info.mirrored)

    @tf.function(input_signature=spec)
    def serve(image: Any) -> Any:
        probs, embedding = heads([image], training=False)
        return probs, embedding

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)
    _rename_outputs(proto, [PROBS_OUTPUT, EMBEDDING_OUTPUT])
    model_id = weights_id(proto, info.mirrored)
    del proto.metadata_props[:]
    for key, value in replace(info, model_id=model_id).to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "animerec"
    return proto


def weights_id(proto: Any, mirrored: bool = False) -> str:
    """A hash of the weights alone (and of whether the graph looks twice): the same network
    exported twice gets the same id. Tensor names are left out (tf2onnx numbers its constants anew
    in every export) and the tensors are hashed in the order of their contents, so only what the
    weights are counts."""
    from onnx import numpy_helper

    tensors = sorted(
        hashlib.sha256(f"{array.dtype}{array.shape}".encode() + array.tobytes()).digest()
        for array in (numpy_helper.to_array(tensor) for tensor in proto.graph.initializer)
    )
    return hashlib.sha256(b"".join(tensors) + (b"mirrored" if mirrored else b"")).hexdigest()[:16]


def _rename_outputs(proto: Any, names: list[str]) -> None:
    for output, name in zip(proto.graph.output, names, strict=True):
        old = output.name
        for node in proto.graph.node:
            node.output[:] = [name if o == old else o for o in node.output]
            node.input[:] = [name if i == old else i for i in node.input]
        output.name = name


def parity(model: Any, onnx_path: Path, real_inputs: NDArray[np.float32] | None, scale: float | None = None,
           seed: int = 0, named: int | None = None, mirrored: bool = False) -> Parity:
    """Max absolute difference between Keras and ONNX Runtime, on both outputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    heads = two_headed(model, scale, named, mirrored)
    size = int(model.inputs[0].shape[1])

    def worst(batch: NDArray[np.float32]) -> float:
        expected = [np.asarray(t) for t in heads([batch], training=False)]
        got = session.run([PROBS_OUTPUT, EMBEDDING_OUTPUT], {session.get_inputs()[0].name: batch})
        return max(float(np.abs(e - g).max()) for e, g in zip(expected, got, strict=True))

    rng = np.random.default_rng(seed)
    random_diff = worst(rng.random((8, size, size, 3), dtype=np.float32))
    real_diff = worst(real_inputs) if real_inputs is not None and len(real_inputs) else float("nan")
    return Parity(random_diff, real_diff)


def export(
    model_path: Path, out_path: Path, real_crops: list[NDArray[np.uint8]] | None = None, mirrored: bool = False
) -> tuple[ModelInfo, Parity]:
    """Convert, write `out_path`, and fail (removing the file) if parity is not within tolerance
    on random inputs or on `real_crops` (BGR face crops, preprocessed as at run time)."""
    import onnx

    model, metrics = load_trained(model_path)
    validation = metrics.get("validation", {})
    info = ModelInfo(
        labels=tuple(validation["labels"]),
        input_size=int(model.inputs[0].shape[1]),
        arch=str(metrics["arch"]),
        metrics={k: validation[k] for k in ("n", "top1", "top3", "per_class") if k in validation},
        mirrored=mirrored,
    )
    scale = cosine_scale(metrics)
    proto = convert(model, info, scale)
    onnx.save(proto, str(out_path))
    real_inputs = to_model_input(real_crops, info.input_size) if real_crops else None
    result = parity(model, out_path, real_inputs, scale, named=len(info.labels), mirrored=mirrored)
    if not result.ok:
        out_path.unlink(missing_ok=True)
        raise AnimerecError(
            f"parity check failed: ONNX differs from Keras by {result.random_max_diff:.2e} (random) "
            f"/ {result.real_max_diff:.2e} (real), tolerance {PARITY_TOLERANCE:.0e}"
        )
    final = ModelInfo.from_metadata({p.key: p.value for p in proto.metadata_props})
    return final, result
