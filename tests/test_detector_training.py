"""Fine-tuning the learned detector (issue 12, item 2): the composites' boxes, the SSD matching and
loss on tiny hand-made cases, and a few real training steps of FaceBoxes."""

from pathlib import Path

import numpy as np
import pytest

from animerec.recognition.faceboxes import anchors, decode
from animerec.recognition.learned_detector import PUBLISHED, HeadGeometry
from animerec.train.detector_data import (
    Composite,
    CompositeOptions,
    Compositor,
    clouds,
    draw_lettering,
    feathered_alpha,
    no_boxes,
    random_crop,
)
from animerec.train.detector_fit import (
    BACKGROUND,
    FACE,
    IGNORED,
    VENDORED,
    DetectorTrainer,
    FitOptions,
    composite_cache,
    encode,
    match,
    multibox_loss,
)

RED, GREY = (0, 0, 255), 90
PLAIN = CompositeOptions(faces=(3, 3), decoys=(0, 0), sides=(40, 120), feather=(0.05, 0.05), degraded_faces=0.0,
                         frame_blur=0.0, frame_jpeg=0.0, frame_camera=0.0, mosaic=0.0, clouds=0.0, lettering=(0, 0))


def plain_compositor(options=PLAIN):
    face = np.zeros((64, 64, 3), np.uint8)
    face[:] = RED  # symmetric: mirroring changes nothing
    background = Composite(np.full((360, 640, 3), GREY, np.uint8), no_boxes(), no_boxes())
    return Compositor([face], [background], options)


def test_composite_boxes_are_exactly_where_the_faces_were_pasted():
    for composite in plain_compositor().render(4, seed=3):
        assert len(composite.faces) == 3
        painted = np.zeros(composite.image.shape[:2], bool)
        for x, y, w, h in composite.faces.astype(int):
            assert 40 <= w == h <= 120
            core = composite.image[y + 3 : y + h - 3, x + 3 : x + w - 3]  # inside the soft edge
            assert (np.abs(core.astype(int) - RED).max(axis=-1) <= 30).mean() > 0.9
            painted[y : y + h, x : x + w] = True
        assert (composite.image[~painted] == GREY).all()  # nothing pasted outside the boxes


def test_composites_are_seeded():
    first, again = plain_compositor().render(2, seed=5), plain_compositor().render(2, seed=5)
    other = plain_compositor().render(2, seed=6)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.image, b.image) and np.array_equal(a.faces, b.faces)
    assert not np.array_equal(first[0].faces, other[0].faces)


def test_decoys_are_pasted_like_faces_but_never_labelled():
    rng = np.random.default_rng(0)
    backdrop = np.asarray(rng.integers(0, 80, (360, 640, 3)), np.uint8)  # no red anywhere
    face = np.zeros((64, 64, 3), np.uint8)
    face[:] = RED
    options = CompositeOptions(**{**PLAIN.__dict__, "decoys": (4, 4)})
    composite = Compositor([face], [Composite(backdrop, no_boxes(), no_boxes())], options).render(1, seed=2)[0]
    assert len(composite.faces) == 3
    outside = np.ones(backdrop.shape[:2], bool)
    for x, y, w, h in composite.faces.astype(int):
        outside[y : y + h, x : x + w] = False
    moved = np.any(composite.image != backdrop, axis=-1) & outside
    assert moved.sum() > 4 * 40 * 40 * 0.5  # four patches of the backdrop landed elsewhere
    assert not (composite.image[outside] == RED).all(axis=-1).any()


def test_lettering_is_drawn_on_the_frame_but_never_over_a_face():
    rng = np.random.default_rng(0)
    image = np.full((360, 640, 3), GREY, np.uint8)
    face = np.array([[250, 100, 120, 120]], np.float32)
    for _ in range(40):
        draw_lettering(image, face, rng)
    x, y, w, h = face[0].astype(int)
    assert (image[y : y + h, x : x + w] == GREY).all()
    assert np.any(image != GREY, axis=-1).mean() > 0.05  # text landed all around it


def test_lettering_in_a_composite_is_background():
    options = CompositeOptions(**{**PLAIN.__dict__, "lettering": (3, 3)})
    composite = plain_compositor(options).render(1, seed=4)[0]
    assert len(composite.faces) == 3
    outside = np.ones(composite.image.shape[:2], bool)
    for x, y, w, h in composite.faces.astype(int):
        outside[y : y + h, x : x + w] = False
    assert np.any(composite.image[outside] != GREY, axis=-1).any()


def test_cloud_decoys_are_seeded_textures():
    first, again = clouds(96, np.random.default_rng(3)), clouds(96, np.random.default_rng(3))
    assert first.shape == (96, 96, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert first.std() > 5  # a texture, not a flat patch
    assert not np.array_equal(first, clouds(96, np.random.default_rng(4)))


def test_mosaic_shrinks_the_boxes_with_the_faces():
    options = CompositeOptions(**{**PLAIN.__dict__, "mosaic": 1.0, "sides": (60, 120)})
    composite = plain_compositor(options).render(1, seed=1)[0]
    assert len(composite.faces) + len(composite.ignore) in (12, 27)  # 2x2 or 3x3 tiles of 3 faces
    for x, y, w, h in composite.faces:
        assert w < 60
        assert tuple(composite.image[int(y + h / 2), int(x + w / 2)]) == RED


def test_the_soft_edge_fades_out_at_the_border():
    alpha = feathered_alpha(20, 4.0)[..., 0]
    assert alpha[10, 10] == 1.0 and alpha[0, 10] < 0.2 and alpha[0, 0] < 0.2


def test_the_runtime_mapping_of_a_pasted_box_stays_inside_it():
    pasted = np.array([[100, 50, 80, 80], [0, 0, 24, 24]], np.float32)
    for (x, y, w, h), (mx, my, mw, mh) in zip(pasted, PUBLISHED.to_cascade(pasted), strict=True):
        assert x <= mx + mw / 2 <= x + w and y <= my + mh / 2 <= y + h


@pytest.mark.parametrize("geometry", [PUBLISHED, HeadGeometry(1.03, 0.045)])
def test_cascade_boxes_map_back_to_the_head_box_they_came_from(geometry):
    heads = np.array([[100, 40, 122, 122]], np.float32)
    np.testing.assert_allclose(geometry.to_head(geometry.to_cascade(heads)), heads, atol=1.0)


def test_crops_keep_faces_cut_in_half_as_ignored_not_as_background():
    composite = Composite(np.zeros((200, 300, 3), np.uint8), np.array([[10, 10, 40, 40], [180, 10, 40, 40]],
                                                                       np.float32), no_boxes())
    rng = np.random.default_rng(0)
    for _ in range(20):
        crop = random_crop(composite, 200, 200, rng)
        assert len(crop.faces) + len(crop.ignore) >= 1
        for boxes in (crop.faces, crop.ignore):
            assert ((boxes[:, :2] >= 0) & (boxes[:, :2] + boxes[:, 2:] <= 200)).all()


def test_a_face_on_an_anchor_matches_it_with_zero_offsets():
    priors = anchors(128, 128)
    k = 40  # a 32 px anchor of the first cell row
    cx, cy, w, h = priors[k]
    face = np.array([[cx - w / 2, cy - h / 2, w, h]], np.float32)
    targets = match(face, no_boxes(), priors)
    assert targets.labels[k] == FACE
    np.testing.assert_allclose(targets.offsets[k], 0.0, atol=1e-6)
    positives = np.flatnonzero(targets.labels == FACE)
    decoded = decode(targets.offsets[positives], priors[positives])
    np.testing.assert_allclose(decoded, np.repeat(face, len(positives), axis=0), atol=1e-3)
    assert (targets.labels[priors[:, 2] >= 256] == BACKGROUND).all()


def test_every_face_gets_its_best_anchor_and_ignore_regions_learn_nothing():
    priors = anchors(128, 128)
    tiny = np.array([[60, 60, 10, 10]], np.float32)  # IoU with every anchor < 0.35
    assert (match(tiny, no_boxes(), priors).labels == FACE).sum() == 1
    ignored = match(no_boxes(), np.array([[0, 0, 64, 64]], np.float32), priors)
    centres = priors[:, :2]
    assert (ignored.labels[(centres < 64).all(axis=1)] == IGNORED).all()
    assert (ignored.labels[(centres >= 64).any(axis=1)] == BACKGROUND).all()


def test_a_perfect_prediction_costs_nothing_and_only_the_hardest_negatives_count():
    priors = anchors(128, 128)
    cx, cy, w, h = priors[40]
    targets = match(np.array([[cx - w / 2, cy - h / 2, w, h]], np.float32), no_boxes(), priors)
    faces = targets.labels == FACE
    logits = np.where(faces[:, None], [-9.0, 9.0], [9.0, -9.0]).astype(np.float32)
    localisation, classification = multibox_loss(targets.offsets[None], logits[None], targets.offsets[None],
                                                  targets.labels[None].astype(np.int32))
    assert float(localisation) < 1e-6 and float(classification) < 1e-3
    wrong = logits.copy()
    background = np.flatnonzero(~faces)[:10]
    wrong[background] = [0.0, np.log(np.e - 1)]  # each costs log(e) = 1 nat of cross-entropy
    _, classification = multibox_loss(targets.offsets[None], wrong[None], targets.offsets[None],
                                      targets.labels[None].astype(np.int32))
    counted = min(len(background), 3 * faces.sum())  # three negatives per face, the costliest first
    assert float(classification) == pytest.approx(counted / faces.sum(), abs=0.01)


def test_offsets_encode_what_decode_reads():
    priors = np.array([[50, 60, 32, 32], [100, 100, 64, 64]], np.float32)
    boxes = np.array([[30, 40, 40, 36], [70, 90, 50, 80]], np.float32)
    np.testing.assert_allclose(decode(encode(boxes, priors), priors), boxes, atol=1e-4)


@pytest.fixture(scope="module")
def vendored():
    if not VENDORED.is_file():
        pytest.skip(f"needs the vendored FaceBoxes weights ({VENDORED}), absent on this machine")
    with np.load(VENDORED) as archive:
        return {key: archive[key] for key in archive.files}


def test_composites_are_cached_under_a_name_of_their_recipe_and_code(tmp_path, monkeypatch):
    from animerec.train import detector_data

    out = tmp_path / "ft.npz"
    cache = composite_cache(out, 600, 150, 0)
    assert cache.parent == tmp_path and cache == composite_cache(out, 600, 150, 0)
    assert len({cache, composite_cache(out, 600, 150, 1), composite_cache(out, 600, 400, 0),
                composite_cache(out, 500, 150, 0)}) == 4
    changed = tmp_path / "detector_data.py"
    changed.write_bytes(Path(detector_data.__file__).read_bytes() + b"# a changed recipe\n")
    monkeypatch.setattr(detector_data, "__file__", str(changed))
    assert composite_cache(out, 600, 150, 0) != cache


def test_weights_read_back_from_keras_are_the_vendored_ones(vendored):
    from animerec.export.faceboxes_port import build_faceboxes, read_weights

    back = read_weights(build_faceboxes(vendored), vendored)
    assert back.keys() == vendored.keys()
    for key, value in vendored.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)


@pytest.mark.slow
def test_a_few_training_steps_lower_the_loss(vendored):
    from animerec.export.faceboxes_port import build_faceboxes

    rng = np.random.default_rng(0)
    composites = []
    for _ in range(2):
        image = np.asarray(rng.integers(60, 200, (256, 256, 3)), np.uint8)
        image[64:128, 96:160] = RED
        composites.append(Composite(image, np.array([[96, 64, 64, 64]], np.float32), no_boxes()))
    trainer = DetectorTrainer(build_faceboxes(vendored), FitOptions(steps=8, batch=2, crop=(256, 256),
                                                                   learning_rate=1e-3))
    history = np.sum(trainer.fit(composites), axis=1)
    assert history[-2:].mean() < 0.8 * history[:2].mean()
