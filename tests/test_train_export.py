"""The real training path: the report's CNN shape, a short training, export, and parity."""

import json

import cv2
import numpy as np
import pytest

from animerec.cli import main
from animerec.recognition.classifier import OnnxClassifier


def test_seed_architecture_has_the_reports_parameter_count():
    from animerec.train.archs import build_seed

    assert build_seed(16, 150).count_params() == 1_213_488


def test_seed_optimizer_is_the_reports_sgd():
    from animerec.train.archs import seed_optimizer

    optimizer = seed_optimizer()
    assert float(optimizer.momentum) == pytest.approx(0.09) and not optimizer.nesterov
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(0.001)
    assert float(schedule(1_000_000)) == pytest.approx(0.001 / 2)  # decay 1e-6 per step


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, face_paths):
    """Three classes of augmented fixture crops, train and val."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for label, path in zip(("ame", "bae", "calli"), face_paths[:3], strict=True):
        face = cv2.imread(str(path))
        for split, count in (("train", 12), ("val", 4)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                noisy = np.clip(face.astype(np.int16) + rng.integers(-20, 20, face.shape), 0, 255)
                cv2.imwrite(str(folder / f"{i}.jpg"), cv2.resize(noisy.astype(np.uint8), (150, 150)))
    return root


@pytest.mark.slow
def test_train_export_parity_and_eval(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", str(tiny_dataset), "--epochs", "2", "--input-size", "48", "-o", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["validation"]["labels"] == ["ame", "bae", "calli"]
    for name in ("model.keras", "curves.png", "confusion.png"):
        assert (run / name).stat().st_size > 0
    onnx_path = tmp_path / "tiny.onnx"
    code = main(["export", str(run), "-o", str(onnx_path), "--parity-data", str(tiny_dataset / "val")])
    assert code == 0
    err = capsys.readouterr().err
    assert "parity with Keras" in err
    classifier = OnnxClassifier(onnx_path, device="cpu")
    assert classifier.labels == ("ame", "bae", "calli") and classifier.input_size == 48
    assert classifier.info.arch == "anime" and "top1" in classifier.info.metrics
    # the export refuses to overwrite, and eval reads the same set through ONNX Runtime
    assert main(["export", str(run), "-o", str(onnx_path)]) == 2
    capsys.readouterr()
    assert main(["eval", str(tiny_dataset / "val"), "--model", str(onnx_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 12 and result["labels"] == ["ame", "bae", "calli"]
    assert result["top1"] == pytest.approx(metrics["validation"]["top1"], abs=0.09)


def test_parity_function_against_keras(tiny_dataset, tmp_path):
    from animerec.export.onnx_export import PARITY_TOLERANCE, convert, parity
    from animerec.recognition.model_info import ModelInfo
    from animerec.train.archs import build_seed

    model = build_seed(3, 48)
    path = tmp_path / "seed.onnx"
    path.write_bytes(convert(model, ModelInfo(("a", "b", "c"), 48, "seed")).SerializeToString())
    real = np.random.default_rng(1).random((4, 48, 48, 3), dtype=np.float32)
    result = parity(model, path, real)
    assert result.ok and result.random_max_diff <= PARITY_TOLERANCE and result.real_max_diff <= PARITY_TOLERANCE


def test_the_same_weights_exported_twice_get_the_same_model_id():
    """Galleries are tied to the model id: exporting a model again must not orphan them, and
    other weights must get another id."""
    from animerec.export.onnx_export import convert
    from animerec.recognition.model_info import PREFIX, ModelInfo
    from animerec.train.archs import build_seed

    info = ModelInfo(("a", "b", "c"), 48, "seed")
    model = build_seed(3, 48)

    def model_id(network) -> str:
        return {p.key: p.value for p in convert(network, info).metadata_props}[PREFIX + "model_id"]

    first = model_id(model)
    assert model_id(model) == first
    other = build_seed(3, 48)
    assert model_id(other) != first


@pytest.mark.slow
def test_training_is_reproducible_with_a_seed(tiny_dataset, tmp_path):
    """Keras' global seed plus TensorFlow op determinism: the same seed gives the same model."""
    histories = []
    for name in ("a", "b"):
        args = [
            "train",
            str(tiny_dataset),
            "--epochs",
            "1",
            "--input-size",
            "32",
            "--seed",
            "5",
            "-o",
            str(tmp_path / name),
        ]
        assert main(args) == 0
        histories.append(json.loads((tmp_path / name / "metrics.json").read_text())["history"])
    assert histories[0] == histories[1]


@pytest.mark.slow
def test_cosface_trains_and_exports_probabilities(tiny_dataset, tmp_path, capsys):
    """The cosine head's outputs are cosines; the exported `probs` must be softmax(scale x cosine)."""
    import keras

    from animerec.train.archs import CosineHead  # noqa: F401  (registers the layer for load_model)

    run = tmp_path / "run"
    args = ["train", str(tiny_dataset), "--arch", "cosface", "--epochs", "2", "--input-size", "48", "-o", str(run)]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["recipe"]["margin"] == 0.35 and metrics["recipe"]["scale"] == 30.0
    onnx_path = tmp_path / "cos.onnx"
    assert main(["export", str(run), "-o", str(onnx_path), "--parity-data", str(tiny_dataset / "val")]) == 0
    capsys.readouterr()
    model = keras.models.load_model(run / "model.keras")
    batch = np.random.default_rng(1).random((5, 48, 48, 3), dtype=np.float32)
    cosines = np.asarray(model(batch, training=False))
    assert np.all(np.abs(cosines) <= 1 + 1e-5)
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    probs, embedding = session.run(["probs", "embedding"], {session.get_inputs()[0].name: batch})
    expected = np.exp(30 * cosines) / np.exp(30 * cosines).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)


def test_a_mirrored_export_averages_both_looks_and_gets_its_own_id(tmp_path):
    """The mean of a face and its mirror image is the same for both: the graph must be exactly
    that, match Keras, say so in its metadata, and not share its id (galleries) with the plain one."""
    import onnxruntime as ort

    from animerec.export.onnx_export import convert, parity
    from animerec.recognition.model_info import ModelInfo
    from animerec.train.archs import build_seed

    model = build_seed(3, 48)
    plain, mirrored = ModelInfo(("a", "b", "c"), 48, "seed"), ModelInfo(("a", "b", "c"), 48, "seed", mirrored=True)
    path = tmp_path / "mirrored.onnx"
    path.write_bytes(convert(model, mirrored).SerializeToString())
    faces = np.random.default_rng(2).random((3, 48, 48, 3), dtype=np.float32)
    assert parity(model, path, faces, mirrored=True).ok
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    as_given = session.run(None, {"image": faces})
    mirror_images = session.run(None, {"image": np.ascontiguousarray(faces[:, :, ::-1])})
    for a, b in zip(as_given, mirror_images, strict=True):
        assert np.abs(a - b).max() < 1e-5
    plain_path = tmp_path / "plain.onnx"
    plain_path.write_bytes(convert(model, plain).SerializeToString())
    plain_session = ort.InferenceSession(str(plain_path), providers=["CPUExecutionProvider"])
    assert np.abs(plain_session.run(None, {"image": faces})[1] - as_given[1]).max() > 1e-3
    loaded = OnnxClassifier(path, device="cpu", warmup=False)
    assert loaded.info.mirrored and not OnnxClassifier(plain_path, device="cpu", warmup=False).info.mirrored
    assert loaded.model_id != OnnxClassifier(plain_path, device="cpu", warmup=False).model_id
