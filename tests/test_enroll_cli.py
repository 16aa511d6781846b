"""enroll, gallery, predict --gallery, eval-enroll and calibrate with the real bundled model."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from animerec.cli import main
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.recognition.classifier import OnnxClassifier
from animerec.recognition.gallery import Gallery, load_gallery, save_gallery

NAMES = ("初音ミク", "Łucja", "Ame-chan")  # one name per fixture, in three scripts


@pytest.fixture(autouse=True)
def private_gallery(tmp_path, monkeypatch) -> Path:
    """Every test gets its own default gallery: the user's is never read or written."""
    path = tmp_path / "home" / "gallery.json"
    monkeypatch.setenv("ANIMEREC_GALLERY", str(path))
    return path


def variants(path: Path, out: Path, n: int) -> list[Path]:
    """n slightly different copies of a face crop (shifted, flipped, brighter): a tiny class."""
    image = cv2.imread(str(path))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        shifted = np.roll(image, 4 * i, axis=1)
        shifted = cv2.flip(shifted, 1) if i % 2 else shifted
        shifted = cv2.convertScaleAbs(shifted, alpha=1.0, beta=6 * i)
        paths.append(out / f"{i}.jpg")
        cv2.imwrite(str(paths[-1]), shifted)
    return paths


def test_bundled_model_is_calibrated():
    info = OnnxClassifier(DEFAULT_MODEL_PATH, device="cpu", warmup=False).info
    assert info.open_set is not None, "run `animerec calibrate animerec/models/default.onnx` (docs/OPEN_SET.md)"
    assert len(info.open_set.prototypes) == len(info.labels)


def test_enrolled_crops_are_named_by_predict(face_paths, private_gallery, capsys):
    for name, path in zip(NAMES, face_paths, strict=False):
        assert main(["enroll", name, str(path), "--crops"]) == 0
    assert "enrolled Ame-chan: 1 face(s) added" in capsys.readouterr().out
    assert load_gallery(private_gallery).names == NAMES
    assert main(["predict", *map(str, face_paths[:3]), "--crops", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["faces"][0]["name"] for r in results] == list(NAMES)
    assert all(r["faces"][0]["top"][0][0] == r["faces"][0]["name"] for r in results)
    assert main(["gallery", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in listing["characters"]] == list(NAMES)
    assert main(["gallery", "remove", "Łucja"]) == 0
    assert load_gallery(private_gallery).names == (NAMES[0], NAMES[2])


def test_predict_threshold_override_and_explicit_gallery(face_paths, tmp_path, capsys):
    other = tmp_path / "other.json"
    assert main(["enroll", "初音ミク", str(face_paths[0]), "--crops", "--gallery", str(other)]) == 0
    capsys.readouterr()
    assert main(["predict", str(face_paths[0]), "--crops", "--json", "--gallery", str(other)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["faces"][0]["name"] == "初音ミク"
    assert main(["predict", str(face_paths[0]), "--crops", "--json", "--unknown-threshold", "1"]) == 0
    face = json.loads(capsys.readouterr().out)[0]["faces"][0]
    assert face["name"] == "unknown" and len(face["top"]) == 3


def test_enroll_detects_the_largest_face(face_paths, tmp_path, private_gallery):
    framed = tmp_path / "framed.png"
    image = cv2.copyMakeBorder(cv2.imread(str(face_paths[0])), 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255,) * 3)
    cv2.imwrite(str(framed), image)
    assert main(["enroll", "framed", str(framed)]) == 0
    assert load_gallery(private_gallery).get("framed").count == 1


def test_no_face_writes_nothing(tmp_path, private_gallery, capsys):
    blank = tmp_path / "faces"
    blank.mkdir()
    cv2.imwrite(str(blank / "blank.png"), np.full((200, 200, 3), 255, np.uint8))
    assert main(["enroll", "nobody", str(blank)]) == 1
    assert "no face" in capsys.readouterr().err
    assert not private_gallery.exists()


def test_refusals_leave_the_gallery_untouched(face_paths, private_gallery, capsys):
    assert main(["enroll", "初音ミク", str(face_paths[0]), "--crops"]) == 0
    before = private_gallery.read_bytes()
    assert main(["enroll", "初音ミク", str(face_paths[1]), "--crops"]) == 2
    assert "--append" in capsys.readouterr().err
    assert main(["enroll", "gura", str(face_paths[1]), "--crops"]) == 2  # a trained character
    assert main(["enroll", "unknown", str(face_paths[1]), "--crops"]) == 2
    assert private_gallery.read_bytes() == before
    assert main(["enroll", "初音ミク", str(face_paths[1]), "--crops", "--append"]) == 0
    assert load_gallery(private_gallery).get("初音ミク").count == 2


def test_corrupt_and_foreign_galleries_are_clear_errors(face_paths, private_gallery, capsys):
    private_gallery.parent.mkdir(parents=True)
    private_gallery.write_text("{broken", encoding="utf-8")
    assert main(["enroll", "初音ミク", str(face_paths[0]), "--crops"]) == 2
    assert "corrupt" in capsys.readouterr().err and private_gallery.read_text() == "{broken"
    assert main(["gallery", "list"]) == 2
    save_gallery(Gallery("0000000000000000"), private_gallery)
    assert main(["enroll", "初音ミク", str(face_paths[0]), "--crops"]) == 2
    assert "enrolled with model 0000000000000000" in capsys.readouterr().err
    assert main(["predict", str(face_paths[0]), "--crops", "--gallery", str(private_gallery)]) == 2


def test_eval_enroll_json_on_a_tiny_set(face_paths, tmp_path, capsys):
    data = tmp_path / "set"
    for name, path in zip(NAMES, face_paths, strict=False):
        variants(path, data / name, 4)
    negatives = tmp_path / "negatives"
    negatives.mkdir()
    for path in face_paths[3:6]:
        shutil.copy(path, negatives / path.name)
    assert main(["eval-enroll", str(data), "--shots", "2", "--negatives", str(negatives), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result) == ["n", "top1", "known_accept", "false_accept", "n_negatives"]
    assert result["n"] == 6 and result["n_negatives"] == 3
    assert 0 <= result["top1"] <= result["known_accept"] <= 1 and 0 <= result["false_accept"] <= 1
    assert main(["eval-enroll", str(data), "--shots", "4"]) == 1  # nothing left to test on
    assert not (tmp_path / "home").exists()  # the default gallery was never written


def test_eval_enroll_on_danbooru6(shared_data, capsys):
    assert main(["eval-enroll", str(shared_data / "danbooru6"), "--shots", "5", "--seed", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 6 * 70 and result["false_accept"] is None and result["n_negatives"] == 0
    assert result["top1"] > 1 / 26  # far better than chance among 20 trained + 6 enrolled


def test_calibrate_writes_metadata_and_keeps_the_model_id(face_paths, tmp_path, capsys):
    labels = OnnxClassifier(DEFAULT_MODEL_PATH, device="cpu", warmup=False).labels
    train = tmp_path / "train"
    for i, label in enumerate(labels):
        for j, path in enumerate(variants(face_paths[i % len(face_paths)], train / label, 3)):
            path.rename(path.with_name(f"{'0' if j == 0 else 'f'}{j}.jpg"))  # 0* are validation posts
    unknown = tmp_path / "unknown"
    variants(face_paths[0], unknown, 3)
    out = tmp_path / "calibrated.onnx"
    args = ["calibrate", str(DEFAULT_MODEL_PATH), "--train", str(train), "--unknown", str(unknown), "-o", str(out)]
    assert main([*args, "--json", "--plot", str(tmp_path / "curve.png")]) == 0
    document = json.loads(capsys.readouterr().out)
    assert -1 <= document["threshold"] <= 1 and document["stats"]["n_known"] == len(labels)
    calibrated = OnnxClassifier(out, device="cpu", warmup=False)
    assert calibrated.info.open_set is not None
    assert calibrated.info.open_set.threshold == pytest.approx(document["threshold"])
    assert calibrated.model_id == OnnxClassifier(DEFAULT_MODEL_PATH, warmup=False).model_id
    assert (tmp_path / "curve.png").stat().st_size > 1000
    assert main(args) == 2  # -o exists: never overwritten without --overwrite


def test_calibration_embeds_each_crop_as_given_and_as_the_runtime_frames_it(face_paths):
    """Prototypes and known faces come from both looks of a crop: as given, and as the report's
    crop around the cascade's typical box shows it standing in a scene (a rim around the face)."""
    from animerec.recognition.calibration import SEEN_BOX_RATIO, SEEN_SHIFT, SEEN_SIDE, embed_as_seen
    from animerec.recognition.crop import framed_in_scene, resize_square
    from animerec.recognition.embedding import embed, embed_files

    classifier = OnnxClassifier(DEFAULT_MODEL_PATH, device="cpu", warmup=False)
    files = face_paths[:3]
    both = embed_as_seen(classifier, files)
    assert both.shape[0] == 2 * len(files)
    np.testing.assert_allclose(both[:3], embed_files(classifier, files), atol=1e-4)  # as given (a resize apart)
    faces = [resize_square(cv2.imread(str(p)), SEEN_SIDE) for p in files]
    framed = [framed_in_scene(faces[0], faces[1][::-1], SEEN_BOX_RATIO, SEEN_SHIFT),
              framed_in_scene(faces[2], faces[0][::-1], SEEN_BOX_RATIO, SEEN_SHIFT)]  # the last: the first around it
    np.testing.assert_allclose(both[[3, 5]], embed(classifier, framed), atol=1e-5)
    assert not np.allclose(both[3], both[0], atol=1e-3)  # the rim changes the look
