"""predict, eval, doctor and --version through the real command line."""

import json
import shutil
import subprocess
import sys

import cv2
import pytest

from animerec import __version__
from animerec.cli import main
from animerec.paths import DEFAULT_MODEL_PATH
from animerec.recognition.classifier import OnnxClassifier


@pytest.fixture
def framed_face(tmp_path, face_paths):
    """A fixture face on a white margin, where the cascade finds it."""
    image = cv2.copyMakeBorder(
        cv2.imread(str(face_paths[0])), 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255, 255, 255)
    )
    path = tmp_path / "framed.png"
    cv2.imwrite(str(path), image)
    return path


def test_predict_json_names_the_faces(framed_face, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), 255 * (cv2.imread(str(framed_face)) * 0 + 1))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    code = main(["predict", str(framed_face), str(blank), str(broken), "--json"])
    captured = capsys.readouterr()
    assert code == 3  # one input was skipped
    results = json.loads(captured.out)
    assert [r["image"] for r in results] == [str(framed_face), str(blank), str(broken)]
    face = results[0]["faces"][0]
    assert set(face) == {"box", "name", "confidence", "top", "track"}
    assert len(face["top"]) == 3 and face["name"] == face["top"][0][0] and face["track"] is None
    x, y, w, _ = face["box"]
    assert abs(x - 64) < 40 and abs(y - 64) < 40 and w > 120
    assert results[1]["faces"] == [] and "error" in results[2]
    assert "classifier" in captured.err and "broken.jpg" in captured.err


def test_predict_text_and_annotated_output(framed_face, tmp_path, capsys):
    out = tmp_path / "annotated.jpg"
    assert main(["predict", str(framed_face), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "1 face(s)" in text and text.count(" : ") == 3  # the report's top-3 lines
    annotated = cv2.imread(str(out))
    assert annotated.shape == cv2.imread(str(framed_face)).shape
    assert main(["predict", str(framed_face), "-o", str(out)]) == 2  # never overwritten silently


def test_predict_crops_mode_is_one_face_per_image(face_paths, capsys):
    assert main(["predict", *map(str, face_paths[:3]), "--crops", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [len(r["faces"]) for r in results] == [1, 1, 1]
    assert results[0]["faces"][0]["box"] == [0, 0, 192, 192]


def test_eval_json_and_unknown_class(face_paths, tmp_path, capsys):
    data = tmp_path / "set"
    for path in face_paths:
        (data / path.stem).mkdir(parents=True)
        shutil.copy(path, data / path.stem / path.name)
    (data / "README.txt").write_text("plain files are ignored")
    assert main(["eval", str(data), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == len(face_paths) and 0 <= result["top1"] <= result["top3"] <= 1
    assert set(result) == {"n", "top1", "top3", "per_class", "confusion", "labels"}
    assert len(result["confusion"]) == len(result["labels"]) == 20
    (data / "hatsune_miku").mkdir()
    assert main(["eval", str(data), "--json"]) == 1
    err = capsys.readouterr().err
    assert "hatsune_miku" in err and "gura" in err  # lists the model's labels


def test_eval_on_shared_validation_subset(shared_data, tmp_path, capsys):
    source = shared_data / "holoen20"
    data = tmp_path / "val"
    for label in ("gura", "ina", "kiara"):
        (data / label).mkdir(parents=True)
        for path in sorted((source / label).glob("0*.jpg"))[:5]:
            shutil.copy(path, data / label / path.name)
    assert main(["eval", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 15


def test_version_and_doctor():
    version = subprocess.run([sys.executable, "-m", "animerec", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"animerec {__version__}"
    doctor = subprocess.run([sys.executable, "-m", "animerec", "doctor"], capture_output=True, text=True, timeout=120)
    assert doctor.returncode == 0, doctor.stderr
    for needle in (
        "OpenCV",
        "ONNX Runtime",
        "PyAV",
        "provider in use",
        "CPUExecutionProvider",
        "9376d30a",
        "gura",
        "unknown faces",
        "threshold",
        "gallery",
        "display",
        "camera",
    ):
        assert needle in doctor.stdout
    info = OnnxClassifier(DEFAULT_MODEL_PATH, device="cpu", warmup=False).info
    assert info.mirrored == ("mirrored looks" in doctor.stdout)  # the shipped model says how it looks


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), ImportError("initialization failed")])
def test_ctrl_c_while_a_compiled_module_initialises_is_an_interrupt(raised, monkeypatch, capsys):
    """Ctrl-C during ONNX Runtime's import reaches us as its ImportError, chained to the
    KeyboardInterrupt: exit 130 and one line, like any other interrupt; a plain ImportError
    (nothing interrupted) still propagates."""
    import animerec.commands.doctor as doctor

    def interrupted_import(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("initialization failed") from interrupt

    def failed_import(args):
        raise raised

    monkeypatch.setattr(doctor, "run", interrupted_import)
    assert main(["doctor"]) == 130
    assert capsys.readouterr().err.strip() == "animerec: interrupted"
    monkeypatch.setattr(doctor, "run", failed_import)
    if isinstance(raised, KeyboardInterrupt):
        assert main(["doctor"]) == 130
    else:
        with pytest.raises(ImportError):
            main(["doctor"])
