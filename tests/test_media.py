"""One rule for what is an image and what is a video (animerec.media), as every command applies it:
an animated GIF or APNG is a video, a one-frame one an image."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from media import make_test_video, read_index, synthetic_frame
from PIL import Image

from animerec import cli
from animerec.library.jobs import discover
from animerec.media import MediaKind, media_kind
from animerec.paths import SAMPLE_FACES_DIR
from animerec.realtime.capture import open_source
from animerec.train.dataset import BuildOptions, build_dataset

FRAMES = 5


def write_animation(path: Path, frames: int = FRAMES, size: tuple[int, int] = (160, 120)) -> Path:
    """An animated image (by suffix: GIF, PNG as APNG, WebP) whose frames carry their index."""
    pictures = [Image.fromarray(synthetic_frame(i, size)[:, :, ::-1]) for i in range(frames)]
    pictures[0].save(path, save_all=frames > 1, append_images=pictures[1:], duration=100, loop=0)
    return path


@pytest.mark.parametrize(
    ("name", "frames", "kind"),
    [
        ("moving.gif", FRAMES, MediaKind.VIDEO),
        ("still.gif", 1, MediaKind.IMAGE),
        ("moving.png", FRAMES, MediaKind.VIDEO),  # APNG
        ("still.png", 1, MediaKind.IMAGE),
        ("moving.webp", FRAMES, MediaKind.IMAGE),  # FFmpeg cannot decode animated WebP
        ("photo.JPG", 1, MediaKind.IMAGE),
    ],
)
def test_media_kind_counts_frames(tmp_path: Path, name: str, frames: int, kind: MediaKind) -> None:
    assert media_kind(write_animation(tmp_path / name, frames)) is kind


def test_media_kind_by_suffix_for_the_rest(tmp_path: Path) -> None:
    (tmp_path / "broken.gif").write_bytes(b"GIF89a but not really")
    assert media_kind(tmp_path / "broken.gif") is MediaKind.IMAGE  # reading it will say why
    assert media_kind(tmp_path / "clip.MKV") is MediaKind.VIDEO
    assert media_kind(tmp_path / "notes.txt") is None


def test_an_animated_gif_plays_every_frame_in_order(tmp_path: Path) -> None:
    source = open_source(write_animation(tmp_path / "moving.gif"))
    try:
        frames = list(source.frames(threading.Event()))
    finally:
        source.close()
    assert [read_index(frame.image) for frame in frames] == list(range(FRAMES))
    assert [frame.time for frame in frames] == pytest.approx([0.1 * i for i in range(FRAMES)], abs=0.011)


def test_a_one_frame_gif_is_one_still(tmp_path: Path) -> None:
    source = open_source(write_animation(tmp_path / "still.gif", frames=1))
    try:
        assert source.info.frame_count == 1 and not source.info.live and source.info.fps == 0.0
    finally:
        source.close()


def test_a_library_folder_takes_animated_gifs_and_leaves_stills(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_animation(folder / "moving.gif")
    write_animation(folder / "still.gif", frames=1)
    make_test_video(folder / "clip.mp4", frames=3, audio=False)
    assert sorted(job.key for job in discover(folder, tmp_path / "out")) == ["clip.mp4", "moving.gif"]


def test_dataset_build_leaves_out_animations(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / "ame"
    raw.mkdir(parents=True)
    write_animation(raw / "moving.gif")
    crop = Image.open(SAMPLE_FACES_DIR / "ame.jpg")
    crop.save(raw / "still.gif")
    reports = build_dataset(tmp_path / "raw", tmp_path / "out", BuildOptions(crops=True))
    assert reports["ame"].skipped == {"a video or animated image": 1}
    assert reports["ame"].images_with_face == 1


def test_predict_takes_the_first_frame_of_an_animation_and_says_so(tmp_path: Path, capsys) -> None:
    face = np.asarray(Image.open(SAMPLE_FACES_DIR / "ame.jpg").convert("RGB"))
    moving = tmp_path / "moving.gif"
    Image.fromarray(face).save(moving, save_all=True, append_images=[Image.fromarray(face[::-1])], duration=100)
    assert cli.main(["predict", str(moving), "--crops", "--json"]) == 0
    assert f"{moving} is animated: using its first frame" in capsys.readouterr().err
