"""`animerec dataset build`: real detection end to end, crops mode, and bad files."""

import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from animerec.cli import main
from animerec.errors import InputError
from animerec.train.dataset import BuildOptions, build_dataset, group_of, split_of


def test_keima3_end_to_end(shared_data, tmp_path):
    raw = shared_data / "keima3" / "raw"
    out = tmp_path / "keima"
    assert main(["dataset", "build", str(raw), str(out), "--seed", "1"]) == 0
    report = json.loads((out / "report.json").read_text())["classes"]
    assert set(report) == {"nishikino_maki", "sakurauchi_riko", "takimoto_hifumi"}
    images = sum(c["images"] for c in report.values())
    found = sum(c["images_with_face"] for c in report.values())
    assert images == 107
    assert 0.85 <= found / images <= 1.0  # the README: the cascade finds a face in ~93%
    crops = list(out.glob("*/*/*.jpg"))
    assert len(crops) == found  # the largest face of each image by default
    assert all(cv2.imread(str(p)).shape == (150, 150, 3) for p in crops[:10])
    assert list(out.glob("val/*/*.jpg")) and list(out.glob("train/*/*.jpg"))


def test_bad_files_are_skipped_with_reasons(tmp_path, face_paths):
    raw = tmp_path / "raw" / "someone"
    raw.mkdir(parents=True)
    shutil.copy(face_paths[0], raw / "good.jpg")
    (raw / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (raw / "notes.txt").write_text("hello")
    Image.new("RGB", (10, 10)).save(raw / "tiny.png")
    Image.new("RGBA", (60, 60), (0, 0, 0, 0)).save(raw / "clear.png")
    out = tmp_path / "out"
    reports = build_dataset(tmp_path / "raw", out, BuildOptions(crops=True, val_fraction=0))
    skipped = reports["someone"].skipped
    assert skipped["not an image file"] == 1 and skipped["not an image"] == 1
    assert skipped["too small"] == 1
    assert reports["someone"].faces_kept == {"train": 2, "val": 0}  # good.jpg and clear.png


def test_group_split_never_splits_a_post():
    options = BuildOptions(crops=True, group_regex=r"^([0-9a-f]{32})", val_fraction=0.5, seed=3)
    md5 = "0123456789abcdef0123456789abcdef"
    from pathlib import Path

    sides = {split_of(group_of(Path(f"{md5}.jpg-{i}.jpg"), options.group_regex), options) for i in range(5)}
    assert len(sides) == 1
    fixed = BuildOptions(crops=True, group_regex=r"^([0-9a-f]{32})", val_groups="^[01]")
    assert split_of(group_of(Path(f"{md5}.png-1.jpg"), fixed.group_regex), fixed) == "val"
    assert split_of(group_of(Path("f" + md5[1:] + ".png-1.jpg"), fixed.group_regex), fixed) == "train"
    fractions = [split_of(f"g{i}", BuildOptions(val_fraction=0.125)) for i in range(4000)]
    assert 0.10 < fractions.count("val") / 4000 < 0.15


def test_empty_or_missing_raw_dir_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        build_dataset(tmp_path / "missing", tmp_path / "out", BuildOptions())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no class folders"):
        build_dataset(tmp_path / "empty", tmp_path / "out", BuildOptions())
    assert main(["dataset", "build", str(tmp_path / "missing"), str(tmp_path / "o2")]) == 1


def test_all_faces_keeps_every_face(tmp_path, face_paths):
    raw = tmp_path / "raw" / "pair"
    raw.mkdir(parents=True)
    faces = [cv2.imread(str(p)) for p in face_paths[:2]]
    canvas = np.full((400, 800, 3), 255, np.uint8)
    canvas[100:292, 80:272] = faces[0]
    canvas[100:292, 480:672] = faces[1]
    cv2.imwrite(str(raw / "two.png"), canvas)
    largest = build_dataset(tmp_path / "raw", tmp_path / "a", BuildOptions(val_fraction=0))
    every = build_dataset(tmp_path / "raw", tmp_path / "b", BuildOptions(val_fraction=0, all_faces=True))
    assert largest["pair"].faces_kept["train"] == 1
    assert every["pair"].faces_kept["train"] == 2
