"""The real ONNX Runtime session on the bundled model, and clear errors for bad model files."""

import shutil

import cv2
import numpy as np
import onnx
import pytest

from animerec.errors import ModelError
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.recognition.classifier import BATCH_SIZES, OnnxClassifier, padded_size
from animerec.recognition.detector import CascadeDetector
from animerec.recognition.recognizer import Recognizer


@pytest.fixture(scope="module")
def classifier() -> OnnxClassifier:
    return OnnxClassifier(DEFAULT_MODEL_PATH, device="cpu")


def test_bundled_model_carries_its_labels(classifier):
    assert len(classifier.labels) == 20 and "gura" in classifier.labels
    assert classifier.provider == "CPUExecutionProvider"
    assert len(classifier.model_id) == 16
    assert "on CPU" in classifier.describe_provider()


def test_batches_of_any_size_match_single_crops(classifier, face_paths):
    crops = [cv2.imread(str(p)) for p in face_paths] * 5  # 40 crops: one padded chunk of 32 + 8
    scores = classifier.classify(crops)
    assert scores.probs.shape == (40, 20)
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(scores.embeddings, axis=1), 1.0, atol=1e-4)
    single = classifier.classify(crops[3:4]).probs[0]
    np.testing.assert_allclose(scores.probs[3], single, atol=1e-5)
    assert classifier.classify([]).probs.shape == (0, 20)


def test_padded_sizes():
    assert [padded_size(n) for n in (1, 2, 5, 16, 17, 32, 40)] == [1, 4, 8, 16, 32, 32, 32]
    assert BATCH_SIZES[-1] == 32


def test_recognizer_names_fixture_faces(classifier, face_paths):
    recognizer = Recognizer(CascadeDetector(), classifier)
    path = face_paths[0]
    image = cv2.copyMakeBorder(cv2.imread(str(path)), 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    faces = recognizer.recognise(image)
    assert len(faces) == 1
    assert len(faces.top_names[0]) == 3 and faces.names[0] == faces.top_names[0][0]
    assert faces.confidence[0] == pytest.approx(faces.top_probs[0, 0])


def test_missing_corrupt_and_foreign_models_name_the_file(tmp_path):
    with pytest.raises(ModelError, match=r"not found.*nothing\.onnx"):
        OnnxClassifier(tmp_path / "nothing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(ModelError, match=r"corrupt\.onnx"):
        OnnxClassifier(corrupt)
    foreign = tmp_path / "foreign.onnx"
    model = onnx.load(str(DEFAULT_MODEL_PATH))
    del model.metadata_props[:]
    onnx.save(model, str(foreign))
    with pytest.raises(ModelError, match=r"foreign\.onnx is not an Animerec model"):
        OnnxClassifier(foreign)
    shutil.copy(DEFAULT_MODEL_PATH, tmp_path / "ok.onnx")
    assert OnnxClassifier(tmp_path / "ok.onnx", warmup=False).labels
