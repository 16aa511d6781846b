"""Every kind of file the internet serves: converted, or skipped with a reason, never a crash."""

import numpy as np
import pytest
from PIL import Image

from animerec.recognition.images import UnreadableImage, load_image


def save(tmp_path, name, image: Image.Image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("grey.png", lambda: Image.new("L", (64, 48), 128)),
        ("rgba.png", lambda: Image.new("RGBA", (64, 48), (255, 0, 0, 0))),
        ("palette.png", lambda: Image.new("P", (64, 48), 3)),
        ("sixteen.png", lambda: Image.fromarray(np.full((48, 64), 60000, np.uint16))),
        ("anim.gif", lambda: Image.new("P", (64, 48), 1)),
        ("rgb.webp", lambda: Image.new("RGB", (64, 48), (0, 255, 0))),
    ],
)
def test_odd_formats_become_bgr(tmp_path, name, make):
    image = load_image(save(tmp_path, name, make()))
    assert image.shape == (48, 64, 3) and image.dtype == np.uint8


def test_transparent_pixels_become_white(tmp_path):
    image = load_image(save(tmp_path, "clear.png", Image.new("RGBA", (30, 30), (255, 0, 0, 0))))
    assert image[0, 0].tolist() == [255, 255, 255]


def test_sixteen_bit_keeps_its_range(tmp_path):
    pixels = np.zeros((30, 30), np.uint16)
    pixels[:, 15:] = 65535
    image = load_image(save(tmp_path, "16.png", Image.fromarray(pixels)))
    assert image[0, 0, 0] == 0 and image[0, 29, 0] == 255


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not an image at all", "not an image"),
        (None, "truncated"),
        ("tiny", "too small"),
        ("huge", "too large"),
    ],
)
def test_bad_files_raise_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    if content is None:
        save(tmp_path, "full.jpg", Image.new("RGB", (200, 200), (10, 20, 30)), quality=95)
        path = tmp_path / "full.jpg"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif content == "tiny":
        save(tmp_path, "bad.png", Image.new("RGB", (19, 40)))
    elif content == "huge":
        save(tmp_path, "bad.png", Image.new("1", (8001, 20)))
    else:
        path.write_bytes(content)
    with pytest.raises(UnreadableImage, match=reason):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(UnreadableImage, match="not found"):
        load_image(tmp_path / "nope.jpg")
