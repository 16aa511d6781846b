"""The gallery file: round trips in any script, refusals, corrupt files, atomic writes, default path."""

import json
import sys

import numpy as np
import pytest

from animerec.recognition import gallery as gallery_module
from animerec.recognition.gallery import (
    Character,
    Gallery,
    GalleryError,
    default_gallery_path,
    load_gallery,
    open_gallery,
    save_gallery,
)


def unit(seed: int, n: int = 3, dim: int = 16) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def two() -> Gallery:
    return Gallery("model-a").enrol(Character("初音ミク", unit(0), ("a.jpg", "b.jpg", "c.jpg"))).enrol(
        Character("Łucja", unit(1, 2))
    )


def test_round_trip_keeps_names_in_any_script_and_exact_embeddings(tmp_path, two):
    path = tmp_path / "sub" / "gallery.json"
    save_gallery(two, path)
    assert "初音ミク" in path.read_text(encoding="utf-8")  # readable UTF-8, not \\u escapes
    loaded = load_gallery(path)
    assert loaded.names == ("初音ミク", "Łucja") and loaded.model_id == "model-a"
    np.testing.assert_array_equal(loaded.get("初音ミク").embeddings, two.get("初音ミク").embeddings)
    assert loaded.get("初音ミク").sources == ("a.jpg", "b.jpg", "c.jpg")
    assert [p.name for p in path.parent.iterdir()] == ["gallery.json"]  # no temporary left behind


def test_existing_name_needs_append(two):
    with pytest.raises(GalleryError, match=r"already enrolled.*--append"):
        two.enrol(Character("初音ミク", unit(2, 1)))
    appended = two.enrol(Character("初音ミク", unit(2, 1), ("d.jpg",)), append=True)
    assert appended.get("初音ミク").count == 4 and appended.get("初音ミク").sources[-1] == "d.jpg"
    assert two.get("初音ミク").count == 3  # the original record is unchanged


def test_remove(two):
    assert two.remove("Łucja").names == ("初音ミク",)
    with pytest.raises(GalleryError, match="no character named 'nobody'"):
        two.remove("nobody")


def test_other_model_is_refused(two):
    two.check_model("model-a")
    with pytest.raises(GalleryError, match=r"enrolled with model model-a.*model-b"):
        two.check_model("model-b")


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"format": "animerec-gallery", "version": 1}', b"\xff\xfe\x00garbage",
     b'{"format": "animerec-gallery", "version": 1, "model_id": "m", "characters": '
     b'[{"name": "x", "count": 2, "dim": 4, "embeddings": "AAAA"}]}'],
)
def test_corrupt_file_is_an_error_and_left_untouched(tmp_path, content):
    path = tmp_path / "gallery.json"
    path.write_bytes(content)
    with pytest.raises(GalleryError, match=r"corrupt|cannot read"):
        load_gallery(path)
    assert path.read_bytes() == content


def test_missing_file_is_an_error_when_asked_for(tmp_path):
    with pytest.raises(GalleryError, match="not found"):
        load_gallery(tmp_path / "none.json")


def test_failed_write_keeps_the_old_file(tmp_path, two, monkeypatch):
    path = tmp_path / "gallery.json"
    save_gallery(two, path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(gallery_module.json, "dump", broken)
    with pytest.raises(OSError):
        save_gallery(two.remove("Łucja"), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["gallery.json"]


def test_blank_names_are_refused():
    with pytest.raises(GalleryError):
        Character(" ", unit(0))


def test_default_path_per_platform(monkeypatch, tmp_path):
    monkeypatch.delenv("ANIMEREC_GALLERY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_gallery_path() == tmp_path / "xdg" / "animerec" / "gallery.json"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_gallery_path() == tmp_path / "home" / ".local" / "share" / "animerec" / "gallery.json"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("APPDATA", str(tmp_path / "roaming"))
    assert default_gallery_path() == tmp_path / "roaming" / "animerec" / "gallery.json"
    monkeypatch.setenv("ANIMEREC_GALLERY", str(tmp_path / "mine.json"))
    assert default_gallery_path() == tmp_path / "mine.json"


def test_open_gallery_skips_a_default_of_another_model_but_refuses_an_explicit_one(tmp_path, two, monkeypatch, capsys):
    path = tmp_path / "gallery.json"
    monkeypatch.setenv("ANIMEREC_GALLERY", str(path))
    assert open_gallery(None, "model-a") is None  # no default gallery yet
    save_gallery(two, path)
    assert open_gallery(None, "model-a").names == two.names
    assert open_gallery(None, "model-b") is None
    assert "ignoring the default gallery" in capsys.readouterr().err
    with pytest.raises(GalleryError, match="enrolled with model"):
        open_gallery(path, "model-b")


def test_json_document_shape(two):
    document = json.loads(json.dumps(two.to_json(), ensure_ascii=False))
    assert document["format"] == "animerec-gallery" and document["version"] == 1
    assert [c["count"] for c in document["characters"]] == [3, 2]
    assert Gallery.from_json(document).names == two.names
