"""The gallery file: round trips in any script, refusals, corrupt files, atomic writes, default path."""

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from animerec.recognition import gallery as gallery_module
from animerec.recognition.gallery import (
    CROP,
    DETECTED,
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


def test_framing_round_trips_and_an_older_file_without_it_still_loads(tmp_path):
    gallery = Gallery("m").enrol(Character("a", unit(0, 1), ("/x/a.jpg",), CROP))
    gallery = gallery.enrol(Character("b", unit(1, 1), ("/x/b.jpg",), DETECTED))
    path = tmp_path / "gallery.json"
    save_gallery(gallery, path)
    assert [c.framing for c in load_gallery(path).characters] == [CROP, DETECTED]
    document = json.loads(path.read_text(encoding="utf-8"))
    for entry in document["characters"]:
        del entry["framing"]  # as written before framing was recorded
    path.write_text(json.dumps(document), encoding="utf-8")
    assert [c.framing for c in load_gallery(path).characters] == ["", ""]
    mixed = gallery.enrol(Character("a", unit(2, 1), ("/x/c.jpg",), DETECTED), append=True)
    assert mixed.get("a").framing == ""  # a mix of both: not one framing any more


def test_another_models_gallery_says_how_to_migrate(two, tmp_path):
    with pytest.raises(GalleryError, match="`animerec gallery migrate` embeds"):
        two.check_model("model-b")
    mine = tmp_path / "my gallery.json"  # not the default one: the command must name it, quoted
    with pytest.raises(GalleryError, match=f"`animerec gallery migrate --gallery '{mine}'` embeds"):
        two.check_model("model-b", mine)


# The real thing: `animerec gallery migrate` with the bundled model, the cascade and real images.


@pytest.fixture
def enrolled(tmp_path, monkeypatch, face_paths):
    """A gallery enrolled with the bundled model (one crop character, one detected), then made to
    look like the work of another model: another id and meaningless embeddings."""
    from animerec.cli import main

    monkeypatch.setenv("ANIMEREC_GALLERY", str(tmp_path / "default.json"))
    framed = tmp_path / "framed.png"
    image = cv2.imread(str(face_paths[1]))
    cv2.imwrite(str(framed), cv2.copyMakeBorder(image, 96, 96, 96, 96, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    path = tmp_path / "gallery.json"
    assert main(["enroll", "初音ミク", str(face_paths[0]), str(face_paths[2]), "--crops", "--gallery", str(path)]) == 0
    assert main(["enroll", "framed", str(framed), "--gallery", str(path)]) == 0
    fresh = load_gallery(path)
    old = Gallery("0123456789abcdef", tuple(
        Character(c.name, unit(k, c.count, c.embeddings.shape[1]), c.sources, c.framing)
        for k, c in enumerate(fresh.characters)))
    save_gallery(old, path)
    return path, fresh


def test_migrate_embeds_every_face_again_with_the_current_model(enrolled, capsys):
    from animerec.cli import main

    path, fresh = enrolled
    assert main(["predict", fresh.get("初音ミク").sources[0], "--crops", "--gallery", str(path)]) == 2
    assert "animerec gallery migrate" in capsys.readouterr().err  # refused, and told what to do
    assert main(["gallery", "migrate", "--gallery", str(path)]) == 0
    migrated = load_gallery(path)
    assert migrated.model_id == fresh.model_id and migrated.names == fresh.names
    for before, after in zip(fresh.characters, migrated.characters, strict=True):
        np.testing.assert_allclose(after.embeddings, before.embeddings, atol=1e-5)  # as if enrolled anew
        assert after.sources == before.sources and after.framing == before.framing
    assert load_gallery(path.with_name("gallery.model-0123456789abcdef.json")).model_id == "0123456789abcdef"
    assert main(["gallery", "migrate", "--gallery", str(path)]) == 0  # already done: nothing to do
    assert "nothing to do" in capsys.readouterr().err


def test_migrate_keeps_what_it_can_and_says_what_it_could_not(enrolled, capsys):
    from animerec.cli import main

    path, fresh = enrolled
    old = load_gallery(path)
    lost = Path(fresh.get("framed").sources[0])
    lost.unlink()  # the only image of "framed" is gone
    assert main(["gallery", "migrate", "--gallery", str(path)]) == 3
    err = capsys.readouterr().err
    assert "framed" in err and "dropped" in err
    assert load_gallery(path).names == ("初音ミク",)
    assert load_gallery(path.with_name("gallery.model-0123456789abcdef.json")).names == old.names
