"""FaceBoxes (Zhang et al., IJCB 2017) in Keras with the AnimeFaceBoxes weights, exported to ONNX.

    python -m animerec.export.faceboxes_port --weights ../shared/vendor/faceboxes_anime/faceboxes_anime_epoch90.npz \
        --parity ../shared/vendor/faceboxes_anime/parity/reference_outputs.npz -o animerec/models/faceboxes_anime.onnx

The weights are PyTorch's (OIHW convolutions, one array per state-dict key); `build_faceboxes`
rebuilds the network layer by layer and copies them in. Two PyTorch habits need care in Keras:
TensorFlow's "same" padding is asymmetric for strided layers (so strided layers pad explicitly and
symmetrically), and PyTorch's average pool counts the zero padding in the mean (so the inception
pool pads with zeros and then averages "valid" windows). The ONNX graph takes BGR uint8 images
(NHWC, any size) and returns the raw SSD offsets `loc` (1, N, 4) and the face probability `score`
(1, N); anchors, decoding and NMS are ours, in `animerec.recognition.faceboxes`. The export fails
(and removes the file) unless ONNX Runtime matches the PyTorch reference outputs to 1e-4.

Fine-tuned weights (animerec.train.detector_fit writes them in the same PyTorch layout) export the
same way without `--parity`: ONNX Runtime is then checked against the Keras model instead. A
fine-tuned model's boxes sit differently around a face than the published weights' head boxes:
`--geometry` stores where (measured against the cascade's boxes; see DETECTOR_CARD.md) in the
model's metadata, and the runtime maps its boxes with it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from animerec.export.onnx_export import OPSET
from animerec.recognition.faceboxes import BGR_MEAN, LOC_OUTPUT, SCORE_OUTPUT
from animerec.recognition.learned_detector import PUBLISHED, HeadGeometry

PARITY_TOLERANCE = 1e-4
BN_EPSILON = 1e-5
BN_SLOTS = ("weight", "bias", "running_mean", "running_var")  # PyTorch's names, in Keras' order
KERAS_PARITY_SEED = 0
SOURCE = "WynMew/AnimeFaceBoxes FaceBoxes_epoch_90.pth (commit 025b5e0a), Apache-2.0"


class _Builder:
    """Creates each layer, calls it, then copies in the PyTorch weights under its key prefix."""

    def __init__(self, weights: Mapping[str, NDArray[Any]]) -> None:
        self.weights = weights

    def conv(self, x: Any, key: str, filters: int, kernel: int, stride: int = 1, bias: bool = False) -> Any:
        import keras

        pad = kernel // 2
        if stride > 1:  # TensorFlow's "same" would pad more at the bottom and right than PyTorch
            x = keras.layers.ZeroPadding2D(pad)(x)
        padding = "same" if stride == 1 else "valid"  # stride 1, odd kernel: "same" is symmetric
        layer = keras.layers.Conv2D(filters, kernel, stride, padding, use_bias=bias, name=key.replace(".", "_"))
        y = layer(x)
        kernel_hwio = self.weights[f"{key}.weight"].transpose(2, 3, 1, 0)
        layer.set_weights([kernel_hwio, self.weights[f"{key}.bias"]] if bias else [kernel_hwio])
        return y

    def conv_bn(self, x: Any, key: str, filters: int, kernel: int, stride: int = 1, crelu: bool = False) -> Any:
        """conv (no bias) + BatchNorm + ReLU, or + CReLU (concatenate x and -x, then ReLU)."""
        import keras

        y = self.conv(x, f"{key}.conv", filters, kernel, stride)
        norm = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{key}_bn".replace(".", "_"))
        y = norm(y)
        w = self.weights
        norm.set_weights([w[f"{key}.bn.{name}"] for name in BN_SLOTS])
        if crelu:
            y = keras.layers.Concatenate()([y, keras.layers.Lambda(lambda t: -t)(y)])
        return keras.layers.ReLU()(y)

    def inception(self, x: Any, key: str) -> Any:
        import keras

        one = self.conv_bn(x, f"{key}.branch1x1", 32, 1)
        # PyTorch's avg_pool2d counts the zero padding in the mean (count_include_pad=True).
        pooled = keras.layers.AveragePooling2D(3, 1, "valid")(keras.layers.ZeroPadding2D(1)(x))
        pool = self.conv_bn(pooled, f"{key}.branch1x1_2", 32, 1)
        three = self.conv_bn(self.conv_bn(x, f"{key}.branch3x3_reduce", 24, 1), f"{key}.branch3x3", 32, 3)
        double = self.conv_bn(x, f"{key}.branch3x3_reduce_2", 24, 1)
        double = self.conv_bn(self.conv_bn(double, f"{key}.branch3x3_2", 32, 3), f"{key}.branch3x3_3", 32, 3)
        return keras.layers.Concatenate()([one, pool, three, double])


def _max_pool(x: Any) -> Any:
    import keras

    # Zero padding stands in for PyTorch's -inf: the input is a ReLU output, never below zero.
    return keras.layers.MaxPooling2D(3, 2, "valid")(keras.layers.ZeroPadding2D(1)(x))


def build_faceboxes(weights: Mapping[str, NDArray[Any]]) -> Any:
    """The Keras model: BGR-minus-mean float images (NHWC) -> (loc (1, N, 4), score (1, N))."""
    import keras

    b = _Builder(weights)
    image = keras.Input((None, None, 3), name="image")
    x = _max_pool(b.conv_bn(image, "conv1", 24, 7, stride=4, crelu=True))
    x = _max_pool(b.conv_bn(x, "conv2", 64, 5, stride=2, crelu=True))
    for k in (1, 2, 3):
        x = b.inception(x, f"inception{k}")
    source1 = x
    source2 = b.conv_bn(b.conv_bn(source1, "conv3_1", 128, 1), "conv3_2", 256, 3, stride=2)
    source3 = b.conv_bn(b.conv_bn(source2, "conv4_1", 128, 1), "conv4_2", 256, 3, stride=2)
    locs, confs = [], []
    for k, (source, anchors) in enumerate(((source1, 21), (source2, 1), (source3, 1))):
        # NHWC flattening is PyTorch's permute(0, 2, 3, 1).view: cell by cell, anchors within a cell.
        locs.append(keras.layers.Reshape((-1, 4))(b.conv(source, f"loc.{k}", 4 * anchors, 3, bias=True)))
        confs.append(keras.layers.Reshape((-1, 2))(b.conv(source, f"conf.{k}", 2 * anchors, 3, bias=True)))
    loc = keras.layers.Concatenate(axis=1, name="loc")(locs)
    # Named so that training (animerec.train.detector_fit) can take the logits for its loss.
    probs = keras.layers.Softmax()(keras.layers.Concatenate(axis=1, name="conf_logits")(confs))
    score = keras.layers.Lambda(lambda t: t[..., 1], name="score")(probs)
    return keras.Model(image, [loc, score], name="faceboxes")


def read_weights(model: Any, like: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """The inverse of build_faceboxes' copying: the model's weights under the PyTorch keys of
    `like` (a fine-tuned model saved as the vendored file is); BatchNorm's batch counters, which
    Keras has no use for, keep their value from `like`."""
    weights = {}
    for key, value in like.items():
        stem, _, name = key.rpartition(".")
        if stem.endswith(".bn") and name in BN_SLOTS:
            weights[key] = model.get_layer(f"{stem[:-3]}_bn".replace(".", "_")).get_weights()[BN_SLOTS.index(name)]
        elif name in ("weight", "bias"):
            layer_weights = model.get_layer(stem.replace(".", "_")).get_weights()
            weights[key] = layer_weights[0].transpose(3, 2, 0, 1) if name == "weight" else layer_weights[1]
        else:
            weights[key] = value
    return {key: np.asarray(value, like[key].dtype) for key, value in weights.items()}


def weights_id(weights: Mapping[str, NDArray[Any]]) -> str:
    """A hash of the PyTorch weights (keys and values): the same weights always get the same id.
    (A hash of the ONNX initializers would not: tf2onnx numbers its constants differently each run.)"""
    digest = hashlib.sha256()
    for key in sorted(weights):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(weights[key]).tobytes())
    return digest.hexdigest()[:16]


def convert(model: Any, model_id: str, source: str = SOURCE, geometry: HeadGeometry = PUBLISHED) -> Any:
    """The ONNX ModelProto: uint8 BGR images in (any batch, height, width), `loc` and `score` out."""
    import tensorflow as tf
    import tf2onnx

    # Keras 3 breaks tf2onnx's from_keras: a tf.function with an input signature converts cleanly.
    spec = (tf.TensorSpec((None, None, None, 3), tf.uint8, name="image"),)

    @tf.function(input_signature=spec)
    def serve(image: Any) -> Any:
        # The mean is made inside the function: a captured tensor would become a graph input.
        loc, score = model(tf.cast(image, tf.float32) - tf.constant(BGR_MEAN), training=False)
        return {LOC_OUTPUT: loc, SCORE_OUTPUT: score}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=OPSET)
    metadata = {"model_id": model_id, "arch": "faceboxes", "source": source, "input": "BGR uint8 NHWC",
                **geometry.as_metadata()}
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "animerec"
    return proto


def parity(onnx_path: Path, reference: Mapping[str, NDArray[Any]]) -> float:
    """Max absolute difference between ONNX Runtime and PyTorch's outputs over the fixture's inputs
    (stored NCHW, BGR minus the mean: turned back into the uint8 images they came from)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    k = 0
    while f"input_{k}" in reference:
        image = reference[f"input_{k}"].transpose(0, 2, 3, 1) + np.asarray(BGR_MEAN, np.float32)
        loc, score = session.run([LOC_OUTPUT, SCORE_OUTPUT], {"image": np.round(image).astype(np.uint8)})
        worst = max(worst, float(np.abs(loc - reference[f"loc_{k}"]).max()),
                    float(np.abs(score - reference[f"score_{k}"]).max()))
        k += 1
    return worst


def keras_parity(onnx_path: Path, model: Any) -> float:
    """Max absolute difference between ONNX Runtime and the Keras model on seeded random frames: the
    check for weights that have no PyTorch reference (fine-tuned ones)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(KERAS_PARITY_SEED)
    worst = 0.0
    for height, width in ((360, 640), (720, 1280)):
        image = rng.integers(0, 256, (1, height, width, 3), dtype=np.uint8)
        expected = model(image.astype(np.float32) - np.asarray(BGR_MEAN, np.float32), training=False)
        got = session.run([LOC_OUTPUT, SCORE_OUTPUT], {"image": image})
        worst = max(worst, *(float(np.abs(np.asarray(e) - g).max()) for e, g in zip(expected, got, strict=True)))
    return worst


def port(weights_path: Path, reference_path: Path | None, out_path: Path, source: str = SOURCE,
         geometry: HeadGeometry = PUBLISHED) -> float:
    """Build, convert, write `out_path` and return the parity against the PyTorch reference outputs,
    or against the Keras model where there are none; a failed check removes the file."""
    import onnx

    with np.load(weights_path) as archive:
        weights = {key: archive[key] for key in archive.files}
    model = build_faceboxes(weights)
    onnx.save(convert(model, weights_id(weights), source, geometry), str(out_path))
    if reference_path is None:
        worst, against = keras_parity(out_path, model), "Keras"
    else:
        with np.load(reference_path) as archive:
            worst, against = parity(out_path, {key: archive[key] for key in archive.files}), "PyTorch"
    if not worst <= PARITY_TOLERANCE:
        out_path.unlink(missing_ok=True)
        raise SystemExit(f"parity check failed: ONNX differs from {against} by {worst:.2e} (tolerance 1e-4)")
    return worst


def head_geometry(text: str) -> HeadGeometry:
    try:
        width_ratio, centre_above = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTH,ABOVE such as 1.22,0.19, got {text!r}") from None
    return HeadGeometry(width_ratio, centre_above)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="faceboxes_anime_epoch90.npz")
    parser.add_argument("--parity", type=Path, help="parity/reference_outputs.npz; without it (fine-tuned "
                        "weights), ONNX Runtime is checked against the Keras model")
    parser.add_argument("--source", default=SOURCE, help="where the weights come from (the model's metadata)")
    parser.add_argument("--geometry", type=head_geometry, default=PUBLISHED, metavar="WIDTH,ABOVE",
                        help="where the model's boxes lie around the cascade's box: width ratio and centre "
                        f"offset in cascade widths (default the published weights': "
                        f"{PUBLISHED.width_ratio},{PUBLISHED.centre_above})")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the ONNX file to write")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    worst = port(args.weights, args.parity, args.out, args.source, args.geometry)
    against = "PyTorch over the parity fixture" if args.parity else "Keras over seeded random frames"
    print(f"wrote {args.out}: max |ONNX - {against}| {worst:.2e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
