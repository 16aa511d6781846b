"""The identity embedding (issue 11): the manifest split, balanced sampling, the offline
degradations, and training on many identities -> an ONNX model that names the named ones only."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from animerec.cli import main
from animerec.errors import InputError
from animerec.recognition.classifier import OnnxClassifier
from animerec.train.degrade import DegradeOptions, camera, detector_framing, partial_crop, render
from animerec.train.identities import identity_faces, load_identity_split
from animerec.train.identity_data import sampling_weights

NAMED = ("ame", "bae", "calli")
EXTRA = ("gura", "ina", "irys")  # identity folders of the one extra source; "irys" is held out

MANIFEST = """
[named]
folder = "named"
val_regex = "^[01]"
clean = "named/clean.txt"

[[train]]
folder = "extra"

[[train]]
folder = "scenes"
detect = ["*"]

[calibration]
identities = ["extra/irys"]
videos = []

[test]
folders = ["test"]
"""


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, face_paths) -> Path:
    """Three named characters (posts 0* and 1* are validation, one of them not in clean.txt),
    three extra identities, and one of whole scenes whose faces the cascade must cut."""
    root = tmp_path_factory.mktemp("identities")
    faces = {p.stem: cv2.imread(str(p)) for p in face_paths}
    rng = np.random.default_rng(0)
    clean = []
    for label in NAMED + EXTRA:
        folder = root / ("named" if label in NAMED else "extra") / label
        folder.mkdir(parents=True)
        for i, post in enumerate(("0a", "0b", "1c", "a1", "b2", "c3", "d4", "e5")):
            noisy = np.clip(faces[label].astype(np.int16) + rng.integers(-20, 20, faces[label].shape), 0, 255)
            name = f"{post}{i}.jpg"
            cv2.imwrite(str(folder / name), cv2.resize(noisy.astype(np.uint8), (96, 96)))
            if label in NAMED and post != "1c":
                clean.append(f"{label}/{name}")
    (root / "named" / "clean.txt").write_text("\n".join(clean) + "\n")
    scenes = root / "scenes" / "kiara"
    scenes.mkdir(parents=True)
    scene = cv2.copyMakeBorder(faces["kiara"], 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    for i in range(4):
        cv2.imwrite(str(scenes / f"{i}.jpg"), np.roll(scene, 3 * i, axis=1))
    (root / "test" / "someone").mkdir(parents=True)
    (root / "manifest.toml").write_text(MANIFEST)
    return root


def test_manifest_splits_posts_and_holds_calibration_identities_out(data_root):
    split = load_identity_split(data_root / "manifest.toml", data_root)
    assert split.labels == (*NAMED, "extra/gura", "extra/ina", "scenes/kiara")
    assert [i.name for i in split.calibration] == ["extra/irys"] and split.calibration[0].files
    for train, val in zip(split.named, split.named_val, strict=True):
        assert all(not f.name.startswith(("0", "1")) for f in train.files) and len(train.files) == 5
        assert {f.name[:2] for f in val.files} == {"0a", "0b"}  # 1c is not in the clean list
    assert [i.detect for i in split.extra] == [False, False, True]
    assert split.test == (data_root / "test",)


def test_manifest_names_missing_folders(data_root, tmp_path):
    (tmp_path / "manifest.toml").write_text(MANIFEST.replace('"extra/irys"', '"extra/nobody"'))
    with pytest.raises(InputError, match="nobody"):
        load_identity_split(tmp_path / "manifest.toml", data_root)


def test_whole_illustrations_are_cut_with_the_cascade(data_root):
    scenes = load_identity_split(data_root / "manifest.toml", data_root).extra[-1]
    image_side = cv2.imread(str(scenes.files[0])).shape[0]
    crops = list(identity_faces(scenes))
    assert crops and all(crop.shape[0] < image_side for crop in crops)


def test_balanced_sampling_gives_the_named_group_its_share():
    identity = np.array([0] * 50 + [1] * 5 + [2] * 200 + [3] * 4 + [4] * 1)  # 2 named, 3 other
    weights = sampling_weights(identity, classes=5, named=2, named_share=0.6)
    per_identity = np.bincount(identity, weights=weights)
    np.testing.assert_allclose(per_identity, [0.3, 0.3, 0.4 / 3, 0.4 / 3, 0.4 / 3])
    alone = sampling_weights(np.array([0, 0, 1]), classes=2, named=2, named_share=0.6)
    np.testing.assert_allclose(np.bincount(np.array([0, 0, 1]), weights=alone), [0.5, 0.5])


def test_renders_per_face_can_be_chosen_and_default_to_the_recipes():
    from animerec.errors import UsageError
    from animerec.train.trainer import TrainOptions

    assert TrainOptions("identity").recipe().renders == 2
    assert TrainOptions("identity", renders=6).recipe().renders == 6
    with pytest.raises(UsageError, match="--renders"):
        TrainOptions("identity", renders=-1).recipe()


def test_degradations_keep_a_square_face_and_its_colours(face_paths):
    face = cv2.resize(cv2.imread(str(face_paths[0])), (96, 96))
    rng = np.random.default_rng(3)
    for _ in range(20):
        out = render(face, face[::-1], rng, DegradeOptions(camera=1.0, small_face=1.0, blur=1.0, jpeg=1.0))
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[0] == out.shape[1] >= 40
    cut = partial_crop(face, rng)
    assert cut.shape[0] == cut.shape[1] < 96
    # a cast, glare and muted colours change every colour alike: a red half stays redder than a
    # blue half (hair and eye colours keep what tells characters apart)
    halves = np.zeros((96, 96, 3), np.uint8)
    halves[:, :48] = (40, 40, 200)  # BGR red
    halves[:, 48:] = (200, 40, 40)  # BGR blue
    for _ in range(50):
        filmed = camera(halves, rng).astype(np.float32)
        red, blue = filmed[20:76, 12:36].mean(axis=(0, 1)), filmed[20:76, 60:84].mean(axis=(0, 1))
        assert red[2] > red[0] + 20 and blue[0] > blue[2] + 20


def test_detector_framing_shows_the_surround_where_the_box_is_wider_than_the_crop():
    """The runtime's crop around a box wider than a tight face crop shows what surrounds the
    face (the naming clips' look); a box inside the crop shows the face alone."""
    face = np.full((96, 96, 3), 200, np.uint8)
    surround = np.zeros((50, 70, 3), np.uint8)
    wide = [detector_framing(face, surround, np.random.default_rng(seed)) for seed in range(200)]
    dark_rims = [float((crop[:, :3] < 100).mean()) for crop in wide]
    assert max(dark_rims) == 1.0  # some boxes reach past the crop's left edge: a rim of surround
    assert min(dark_rims) == 0.0  # others sit inside it
    assert all(crop.shape[0] == crop.shape[1] for crop in wide)


@pytest.mark.slow
def test_identity_model_trains_on_every_identity_and_exports_the_named_ones(data_root, tmp_path, capsys):
    """The head scores all 6 training identities; the ONNX `probs` are softmax(16 x cosine)
    over the 3 named ones only, then calibrate and eval-enroll draw unknowns from the manifest."""
    import keras
    import onnxruntime as ort

    import animerec.train.archs  # noqa: F401  registers the custom layers

    run, manifest = tmp_path / "run", str(data_root / "manifest.toml")
    args = ["train", str(data_root), "--arch", "identity", "--manifest", manifest, "--epochs", "2",
            "--steps-per-epoch", "3", "--batch-size", "8", "--input-size", "32", "-o", str(run)]
    assert main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["identities"] == 6 and metrics["validation"]["labels"] == list(NAMED)
    assert metrics["validation"]["n"] == 6 and metrics["epochs_run"] == 2
    onnx_path = tmp_path / "identity.onnx"
    assert main(["export", str(run), "-o", str(onnx_path)]) == 0
    model = keras.models.load_model(run / "model.keras")
    batch = np.random.default_rng(1).random((4, 32, 32, 3), dtype=np.float32)
    cosines = np.asarray(model(batch, training=False))
    assert cosines.shape == (4, 6)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    probs, embedding = session.run(["probs", "embedding"], {session.get_inputs()[0].name: batch})
    named = np.exp(16 * cosines[:, :3])
    np.testing.assert_allclose(probs, named / named.sum(axis=1, keepdims=True), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(embedding, axis=1), 1.0, atol=1e-5)
    assert OnnxClassifier(onnx_path, device="cpu", warmup=False).labels == NAMED

    capsys.readouterr()
    calibrate = ["calibrate", str(onnx_path), "--train", str(data_root / "named"),
                 "--clean", str(data_root / "named" / "clean.txt"),
                 "--manifest", manifest, "--data-root", str(data_root), "--json"]
    assert main(calibrate) == 0
    stats = json.loads(capsys.readouterr().out)["stats"]
    assert stats["n_unknown"] == 8 and stats["n_known"] == 6  # the 8 files of extra/irys
    enrol = ["eval-enroll", str(data_root / "extra"), "--shots", "2", "--model", str(onnx_path), "--manifest",
             manifest, "--data-root", str(data_root), "--json"]
    assert main(enrol) == 0
    assert json.loads(capsys.readouterr().out)["n_negatives"] == 8


def test_margin_losses_and_subcentre_head_match_their_formulas():
    import keras

    from animerec.train.archs import ArcFaceLoss, CosFaceLoss, CosineHead, NamedAccuracy

    cosines = np.array([[0.5, 0.2, -0.1]], np.float32)
    truth = np.array([[1.0, 0.0, 0.0]], np.float32)

    def cross_entropy(logits):
        return float(np.log(np.exp(logits).sum()) - logits[0])

    angular = np.array([np.cos(np.arccos(0.5) + 0.2), 0.2, -0.1])
    assert float(ArcFaceLoss(16.0, 0.2)(truth, cosines)) == pytest.approx(cross_entropy(16 * angular), rel=1e-4)
    additive = np.array([0.5 - 0.15, 0.2, -0.1])
    assert float(CosFaceLoss(16.0, 0.15)(truth, cosines)) == pytest.approx(cross_entropy(16 * additive), rel=1e-4)

    head = CosineHead(2, subcentres=3)
    features = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    scores = np.asarray(head(features))
    centres = np.asarray(head.centres)
    every = (features / np.linalg.norm(features, axis=1, keepdims=True)) @ (centres / np.linalg.norm(centres, axis=0))
    np.testing.assert_allclose(scores, every.reshape(4, 2, 3).max(axis=2), atol=1e-5)

    # faces of identities beyond the named ones are not counted, and only named columns compete
    accuracy = NamedAccuracy(2)
    truth = keras.ops.one_hot(np.array([0, 1, 2]), 3)
    accuracy.update_state(truth, np.array([[0.9, 0.1, 0.95], [0.2, 0.3, 0.0], [0.9, 0.0, 0.1]], np.float32))
    assert float(accuracy.result()) == 1.0


def test_a_run_can_start_from_an_earlier_runs_weights_of_the_same_shape(tmp_path):
    import keras

    from animerec.errors import UsageError
    from animerec.train.archs import build_identity
    from animerec.train.trainer import _start_from

    earlier = build_identity(5, 32)
    earlier.save(tmp_path / "model.keras")
    model = build_identity(5, 32)
    assert not np.allclose(model.get_weights()[0], earlier.get_weights()[0])  # a fresh random start
    _start_from(model, tmp_path)  # the run's folder, as `--init RUN` takes it
    for mine, theirs in zip(model.get_weights(), earlier.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(UsageError, match="does not fit"):
        _start_from(build_identity(7, 32), tmp_path / "model.keras")  # other identities: another head
    with pytest.raises(UsageError, match=r"no model\.keras"):
        _start_from(model, tmp_path / "missing")
    keras.backend.clear_session()
