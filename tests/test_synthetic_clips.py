"""The ground-truth clips: faces on their paths, the screen camera's warp of pixels and truth alike,
the naming score by table, and (with ../shared/data) the fixed clips scored by the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from animerec.benchmarks.quality import FoundFace, naming_against_truth
from animerec.benchmarks.screen_camera import FilmedScene, ScreenCamera
from animerec.benchmarks.synthetic import FacePath, PastedScene, PlacedFace, VideoBackdrop, write_clip
from animerec.benchmarks.targets import evaluate, load_targets
from animerec.benchmarks.truth_clips import CLIPS, TruthClip, make_clip, scene_for, score_clip, validation_faces

WIDTH, HEIGHT = 320, 180


class Plain:
    """A grey backdrop."""

    def frames(self):
        while True:
            yield np.full((HEIGHT, WIDTH, 3), 40, np.uint8)


def square(colour: tuple[int, int, int], side: int = 32) -> np.ndarray:
    return np.full((side, side, 3), colour, np.uint8)


def test_faces_are_on_screen_only_for_their_frames_growing_along_their_path():
    walker = FacePath("ame", square((0, 0, 255)), (10.0, 20.0), (3.0, 1.0), (40, 80), first=4, last=14)
    still = FacePath("gura", square((255, 0, 0)), (200.0, 100.0), (0.0, 0.0), (30, 30))
    scene = PastedScene([walker, still], Plain(), WIDTH, HEIGHT, 24.0, 16)
    frames = list(scene.frames())
    assert [len(scene.placements(i)) for i in range(16)] == [1] * 4 + [2] * 10 + [1] * 2
    first, last = scene.placements(4)[0].box, scene.placements(13)[0].box
    assert first[:2] == (10, 20) and first[2] == 40 and last[2] == 80  # sides from 40 to 80 px
    for index in range(4, 14):
        x, y, w, h = scene.placements(index)[0].box
        assert 0 <= x <= WIDTH - w and 0 <= y <= HEIGHT - h
        assert (frames[index][y + h // 2, x + w // 2] == (0, 0, 255)).all()  # the pasted face is where the truth says
    assert (frames[0][HEIGHT // 2, 20] == 40).all()


def test_a_video_backdrop_loops_over_its_videos_scaled_to_cover(tmp_path):
    scene = PastedScene([], Plain(), 64, 48, 24.0, 5)
    clip = tmp_path / "five.mp4"
    write_clip(scene, clip)
    backdrop = VideoBackdrop([clip], 200, 100)  # 64x48 covers 200x100 once scaled by 4.17
    frames = [frame for frame, _ in zip(backdrop.frames(), range(12), strict=False)]
    assert len(frames) == 12 and all(f.shape == (100, 200, 3) for f in frames)
    with av.open(str(clip)) as container:
        assert container.streams.video[0].frames == 5


def test_the_screen_camera_moves_the_truth_with_the_picture():
    face = FacePath("ame", square((255, 255, 255), 40), (140.0, 70.0), (0.0, 0.0), (40, 40))
    scene = PastedScene([face], Plain(), WIDTH, HEIGHT, 24.0, 3)
    camera = ScreenCamera(seed=4, noise=0.0, moire=0.0)
    filmed = FilmedScene(scene, camera)
    for index, image in enumerate(filmed.frames()):
        (placed,) = filmed.placements(index)
        x, y, w, h = placed.box
        grey = image.mean(axis=2)
        bright = np.argwhere(grey > grey.max() - 30)
        cy, cx = bright.mean(axis=0)
        assert x <= cx < x + w and y <= cy < y + h  # the one matching rule still finds it
        assert placed.box != (140, 70, 40, 40)  # the warp did move it
    again = list(FilmedScene(scene, ScreenCamera(seed=4)).frames())
    np.testing.assert_array_equal(again[1], list(FilmedScene(scene, ScreenCamera(seed=4)).frames())[1])


def found(*faces: tuple[str, int, tuple[int, int, int, int]]) -> list[FoundFace]:
    return [FoundFace(box, name, track) for name, track, box in faces]


A = (0, 0, 100, 100)
B = (200, 0, 100, 100)
ELSEWHERE = (400, 400, 20, 20)


def test_naming_score_counts_right_wrong_unknown_and_jumps_between_characters():
    truth = [(PlacedFace("ame", A), PlacedFace("gura", B))] * 6
    frames = [
        found(("unknown", 1, A), ("gura", 2, B)),  # a first decision is not a change
        found(("ame", 1, A), ("gura", 2, B), ("ina", 3, ELSEWHERE)),  # ina: a background face
        found(("ame", 1, A), ("unknown", 2, B)),
        found(("ame", 1, A), ("ina", 2, B)),  # gura -> (unknown) -> ina: one jump
        found(("gura", 1, A)),  # ame -> gura: one jump; gura not found
        found(("gura", 1, A), ("gura", 2, B)),  # ina -> gura: one jump
    ]
    score = naming_against_truth(frames, truth, fps=1.0)
    assert score["true_faces"] == 12 and score["found_share"] == pytest.approx(11 / 12, abs=1e-4)
    assert score["named_right"] == pytest.approx(6 / 11, abs=1e-4)
    assert score["named_wrong"] == pytest.approx(3 / 11, abs=1e-4)
    assert score["named_unknown"] == pytest.approx(2 / 11, abs=1e-4)
    assert score["character_changes"] == 3
    assert score["character_changes_per_10s"] == pytest.approx(10 * 3 / 11, abs=1e-3)  # 11 face-seconds
    assert score["background_faces"] == 1 and score["background_faces_named"] == 1.0
    assert score["given_names"] == {"ame": {"ame": 3, "gura": 2, "unknown": 1},
                                    "gura": {"gura": 3, "unknown": 1, "ina": 1}}


def test_faces_of_unseen_characters_are_scored_apart():
    truth = [(PlacedFace("unknown", A), PlacedFace("ame", B))] * 2
    frames = [found(("ame", 1, A), ("ame", 2, B)), found(("unknown", 1, A), ("ame", 2, B))]
    score = naming_against_truth(frames, truth, fps=24.0)
    assert score["named_right"] == 1.0 and score["true_faces"] == 2
    assert score["unknown_faces_found"] == 2 and score["unknown_faces_named"] == 0.5


# The fixed clips, from ../shared/data


def test_the_clips_have_disjoint_faces_and_backgrounds(shared_data):
    groups = [validation_faces(shared_data, g) for g in range(3)]
    files = [{p for paths in group.values() for p in paths} for group in groups]
    assert all(files) and not files[0] & files[1] and not files[1] & files[2] and not files[0] & files[2]
    posts = [{p.name.split(".")[0] for p in group} for group in files]
    assert not posts[0] & posts[1]  # a post's faces never straddle two clips
    assert all(p.name[0] in "01" for group in files for p in group)  # validation posts only
    backgrounds = [set(spec.backgrounds) for spec in CLIPS.values()]
    assert not backgrounds[0] & backgrounds[1] and not backgrounds[0] & backgrounds[2]
    assert len({spec.face_group for spec in CLIPS.values()}) == 3
    scene = scene_for(CLIPS["a"], frames=240, data=shared_data)
    sides = [p.box[2] for i in range(240) for p in scene.placements(i)]
    assert min(sides) >= 40 and max(sides) <= 260
    assert np.mean([len(scene.placements(i)) for i in range(240)]) >= 2  # several faces per frame


def test_the_real_pipeline_is_scored_on_a_short_filmed_clip(shared_data, tmp_path: Path):
    clip = make_clip(CLIPS["b"], tmp_path, frames=8, camera=True, data=shared_data)
    assert clip.path.is_file() and len(clip.truth) == 8
    with av.open(str(clip.path)) as container:
        assert container.streams.video[0].frames == 8
    score = score_clip(clip)
    assert 0 < score["true_faces"] <= sum(len(placed) for placed in clip.truth)
    for key in ("found_share", "named_right", "named_wrong", "named_unknown"):
        assert score[key] is None or 0.0 <= score[key] <= 1.0
    again = make_clip(CLIPS["b"], tmp_path, frames=8, camera=True, data=shared_data)
    assert again.truth == clip.truth  # fixed seed and faces


def test_bench_targets_read_the_naming_clips_and_skip_without_them():
    targets = [t for t in load_targets() if t.get("scope", "").startswith("naming")]
    assert {t["name"] for t in targets} == {"named_right", "named_wrong", "named_right_camera",
                                             "character_changes_per_10s", "recall_ge48", "recall_lt48",
                                             "recall_camera"}
    clip = {"true_faces": 100, "found_share": 0.6, "named_right": 0.93, "named_wrong": 0.03,
            "character_changes_per_10s": 0.4}
    report = {"workloads": [], "naming_clips": [{**clip, "name": "a-720", "camera": False},
                                                {**clip, "name": "a-camera-720", "camera": True, "named_right": 0.7}]}
    rows = {row["name"]: row for row in evaluate(report, targets)}
    assert rows["named_right[a-720]"]["met"] and not rows["named_wrong[a-720]"]["met"]
    assert not rows["named_right_camera[a-camera-720]"]["met"]
    assert {"character_changes_per_10s[a-720]", "character_changes_per_10s[a-camera-720]"} <= rows.keys()
    absent = evaluate({"workloads": []}, targets)
    assert len(absent) == len(targets) and all(row["skipped"] and not row["met"] for row in absent)


def test_a_truth_clip_travels_to_the_benchmark_workers_whole(tmp_path):
    clip = TruthClip("x", tmp_path / "x.mp4", 24.0, ((PlacedFace("ame", (1, 2, 3, 4)),), ()), camera=True)
    assert TruthClip.from_json(json.loads(json.dumps(clip.to_json()))) == clip
