"""The learned detector: the ported pretrained ONNX against PyTorch's outputs, the fine-tuned one
(the default) on the same frames, and our anchors, decoding, NMS, geometry mapping and merge rule
on synthetic inputs."""

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from animerec.cli import main
from animerec.config import Config, add_config_args, config_from_args, load_config
from animerec.errors import ModelError, UsageError
from animerec.paths import PRETRAINED_FACEBOXES_PATH
from animerec.recognition.detector import CascadeDetector, ScoredBoxes
from animerec.recognition.detectors import ConfirmedDetector, MergedDetector, describe, make_detector, merge
from animerec.recognition.faceboxes import BGR_MEAN, anchors, decode, iou_matrix, nms
from animerec.recognition.learned_detector import PUBLISHED, HeadGeometry, LearnedDetector, LearnedSettings

VENDOR = Path(__file__).resolve().parent.parent.parent / "shared" / "vendor" / "faceboxes_anime"


@pytest.fixture(scope="module")
def reference():
    path = VENDOR / "parity" / "reference_outputs.npz"
    if not path.is_file():
        pytest.skip(f"needs the FaceBoxes parity fixture ({path}), absent on this machine")
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def learned():
    return LearnedDetector(LearnedSettings(device="cpu"))


@pytest.fixture(scope="module")
def confirmed():
    """The learned detector as the pipeline runs it: every box confirmed by the second look."""
    return make_detector(load_config(overrides=["detector.kind=learned", "detector.learned_device=cpu"]))


@pytest.fixture(scope="module")
def pretrained():
    return LearnedDetector(LearnedSettings(model=PRETRAINED_FACEBOXES_PATH, device="cpu"))


def as_image(fixture_input):
    """The fixture's NCHW BGR-minus-mean input back as the uint8 frame it came from."""
    return np.round(fixture_input[0].transpose(1, 2, 0) + np.asarray(BGR_MEAN)).astype(np.uint8)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_shipped_pretrained_onnx_matches_pytorch(reference, k):
    import onnxruntime as ort

    session = ort.InferenceSession(str(PRETRAINED_FACEBOXES_PATH), providers=["CPUExecutionProvider"])
    loc, score = session.run(["loc", "score"], {"image": as_image(reference[f"input_{k}"])[np.newaxis]})
    np.testing.assert_allclose(loc, reference[f"loc_{k}"], atol=1e-4)
    np.testing.assert_allclose(score, reference[f"score_{k}"], atol=1e-4)


def test_detector_finds_the_fixture_faces_in_anchor_order(reference, pretrained):
    # Anchors in the wrong order would scatter the decoded boxes; right, the two faces of frame 640
    # come out once each, where the reference's best anchors put them.
    heads = pretrained.detect_heads(as_image(reference["input_1"]))
    assert len(heads) == 2 and (heads.scores > 0.99).all()
    priors = anchors(720, 1280)
    best = decode(reference["loc_1"][0], priors)[np.argmax(reference["score_1"][0])]
    assert iou_matrix(best[np.newaxis], heads.boxes).max() > 0.9


def test_input_height_decides_which_faces_are_big_enough(reference, pretrained):
    small_frame = as_image(reference["input_0"])  # frame 960 at 640x360: max score 0.025 as it is
    native = LearnedDetector(LearnedSettings(model=PRETRAINED_FACEBOXES_PATH, input_height=0, device="cpu"),
                             warmup=False)
    assert len(native.detect_heads(small_frame)) == 0
    found = pretrained.detect_heads(small_frame)  # resized to 720 rows: the faces reach the anchors
    assert len(found) == 2 and (found.boxes[:, 2] < 200).all()  # boxes in the 640x360 frame's pixels


@pytest.mark.parametrize("k", [0, 1])
def test_the_fine_tuned_detector_finds_what_the_pretrained_one_finds(reference, learned, pretrained, k):
    """Fine-tuning kept the faces the published weights find: on the fixture's frames the default
    (tuned) model finds each of the pretrained model's faces."""
    frame = as_image(reference[f"input_{k}"])
    tuned, before = learned.detect_heads(frame), pretrained.detect_heads(frame)
    assert learned.model_id != pretrained.model_id
    assert len(before) == 2
    assert (iou_matrix(before.boxes, tuned.boxes).max(axis=1) > 0.5).all()


def test_the_fine_tuned_detector_finds_the_face_the_pretrained_one_misses(reference, confirmed, pretrained):
    # Frame 640 shows three boys; the published weights find the two on the right, not the
    # red-haired one on the left, whose face is about 240 px at (277, 216) of the 1280x720 frame.
    frame = as_image(reference["input_1"])
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in confirmed.detect(frame)]
    assert len(centres) == 3
    assert any(277 < cx < 517 and 216 < cy < 460 for cx, cy in centres)
    assert not any(277 < x + w / 2 < 517 for x, _, w, _ in pretrained.detect_heads(frame).boxes)


def test_blank_frame_has_no_faces_and_boxes_are_in_source_pixels(learned):
    assert len(learned.detect_scored(np.zeros((360, 640, 3), np.uint8))) == 0
    assert learned.provider == "CPUExecutionProvider"
    assert "detector faceboxes_anime_tuned.onnx on CPU" in learned.describe_provider()


@pytest.mark.parametrize(("height", "width", "count"), [
    (360, 640, 12 * 20 * 21 + 6 * 10 + 3 * 5),
    (720, 1280, 23 * 40 * 21 + 12 * 20 + 6 * 10),
    (32, 32, 21 + 1 + 1),
])
def test_anchor_count_follows_ceil_of_each_stride(height, width, count):
    assert anchors(height, width).shape == (count, 4)


def test_anchor_layout_of_the_first_cell():
    first = anchors(64, 64)[:21]
    # size 32 densified 4x4 (cy outer, cx inner, offsets 0, 8, 16, 24 px), 64 at 2x2, 128 centred
    expected_32 = [(x, y, 32, 32) for y in (0, 8, 16, 24) for x in (0, 8, 16, 24)]
    expected_64 = [(x, y, 64, 64) for y in (0, 16) for x in (0, 16)]
    np.testing.assert_array_equal(first, np.array(expected_32 + expected_64 + [(16, 16, 128, 128)], np.float32))
    second_cell = anchors(64, 64)[21]
    np.testing.assert_array_equal(second_cell, [32, 0, 32, 32])  # cells row-major: x moves first


def test_decode_zero_offsets_is_the_anchor_and_offsets_scale_by_the_variances():
    priors = np.array([[100, 50, 40, 20]], np.float32)
    np.testing.assert_allclose(decode(np.zeros((1, 4), np.float32), priors), [[80, 40, 40, 20]])
    moved = decode(np.array([[1, -1, np.log(2) / 0.2, 0]], np.float32), priors)
    np.testing.assert_allclose(moved, [[100 + 4 - 40, 50 - 2 - 10, 80, 20]], rtol=1e-5)


@pytest.mark.parametrize(("threshold", "kept"), [(0.3, [1, 2]), (0.9, [1, 0, 2])])
def test_nms_keeps_the_best_of_overlapping_boxes(threshold, kept):
    boxes = np.array([[0, 0, 10, 10], [1, 0, 10, 10], [50, 50, 10, 10]], np.float32)  # IoU(0, 1) = 0.82
    scores = np.array([0.8, 0.9, 0.7], np.float32)
    assert nms(boxes, scores, threshold).tolist() == kept


def test_head_boxes_map_to_the_cascade_geometry():
    mapped = PUBLISHED.to_cascade(np.array([[100, 100, 122, 140]]))
    # side 122 / 1.22 = 100, centre x 161, centre y 170 + 0.19 * 100 = 189
    np.testing.assert_array_equal(mapped, [[111, 139, 100, 100]])


def test_each_model_maps_its_boxes_with_its_own_geometry(learned, pretrained):
    """The published weights' ONNX carries no geometry (the published one applies); the fine-tuned
    model carries what its export measured, and a round trip through its metadata keeps it."""
    assert pretrained.geometry == PUBLISHED
    assert learned.geometry != PUBLISHED and 0.9 < learned.geometry.width_ratio < 1.2
    assert HeadGeometry.from_metadata(learned.geometry.as_metadata()) == learned.geometry
    assert HeadGeometry.from_metadata({"model_id": "x"}) == PUBLISHED


def test_merge_keeps_cascade_boxes_and_adds_learned_only_ones():
    cascade = ScoredBoxes.certain(np.array([[100, 100, 50, 50]]))
    same_face = [105, 102, 50, 50]  # IoU with the cascade box about 0.77
    elsewhere = [400, 100, 80, 80]
    learned = ScoredBoxes(np.array([same_face, elsewhere]), np.array([0.95, 0.8]))
    merged = merge(cascade, learned)
    np.testing.assert_array_equal(merged.boxes, [[100, 100, 50, 50], elsewhere])
    np.testing.assert_allclose(merged.scores, [1.0, 0.8])
    assert len(merge(ScoredBoxes.certain(np.zeros((0, 4))), learned)) == 2
    assert len(merge(cascade, ScoredBoxes.certain(np.zeros((0, 4))))) == 1


def test_scored_boxes_reject_mismatched_columns():
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        ScoredBoxes(np.zeros((2, 4)), np.ones(1))


def test_detector_kind_is_checked_and_builds_that_detector():
    with pytest.raises(UsageError, match=r"detector\.kind must be one of"):
        load_config(overrides=["detector.kind=yolo"])
    assert isinstance(make_detector(load_config(overrides=["detector.kind=cascade"])), CascadeDetector)
    assert describe(make_detector(load_config(overrides=["detector.kind=cascade"]))).startswith("cascade")
    assert isinstance(make_detector(Config()), MergedDetector)  # the default: both
    both = make_detector(load_config(overrides=["detector.kind=both", "detector.learned_device=cpu"]))
    assert isinstance(both, MergedDetector)
    assert describe(both).startswith("both: FaceBoxes model ")
    learned = make_detector(load_config(overrides=["detector.kind=learned", "detector.learned_height=360"]))
    assert isinstance(learned, ConfirmedDetector) and learned.learned.settings.input_height == 360
    alone = make_detector(load_config(overrides=["detector.kind=learned", "detector.confirm_threshold=0"]))
    assert isinstance(alone, LearnedDetector) and describe(alone).endswith("no second look")


def test_detector_flag_sets_the_kind():
    parser = argparse.ArgumentParser()
    add_config_args(parser)
    assert config_from_args(parser.parse_args(["--detector", "learned"])).detector.kind == "learned"
    assert config_from_args(parser.parse_args(["--detector", "cascade"])).detector.kind == "cascade"
    assert config_from_args(parser.parse_args([])).detector.kind == "both"
    with pytest.raises(SystemExit):
        parser.parse_args(["--detector", "yolo"])


def framed(path):
    return cv2.copyMakeBorder(cv2.imread(str(path)), 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255, 255, 255))


def test_learned_boxes_land_where_the_cascade_puts_them(face_paths, confirmed):
    cascade = CascadeDetector()
    for path in face_paths:
        image = framed(path)
        found, reference = confirmed.detect(image), cascade.detect(image)
        assert len(found) == 1 and len(reference) == 1, path.name
        assert iou_matrix(found, reference)[0, 0] > 0.6, path.name  # head boxes would score about 0.5


@pytest.mark.parametrize("kind", ["learned", "both"])
def test_predict_detector_flag_finds_the_face_once(kind, face_paths, tmp_path, capsys):
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), framed(face_paths[0]))
    assert main(["predict", str(image), "--json", "--detector", kind, "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)[0]["faces"]) == 1  # `both`: the two detectors' boxes merged
    assert "detector faceboxes_anime_tuned.onnx on CPU" in captured.err


def test_doctor_shows_the_detector(capsys, learned):
    main(["doctor", "--camera", "99"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("detector"))
    assert "both by default" in row and f"faceboxes_anime_tuned.onnx id {learned.model_id} on" in row
    assert row.endswith("its boxes confirmed by a second look at 256 px from 0.7")
    assert len(learned.model_id) == 16


def test_a_missing_or_broken_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="detector model file not found"):
        LearnedDetector(LearnedSettings(model=tmp_path / "none.onnx"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot load detector model"):
        LearnedDetector(LearnedSettings(model=broken))


@pytest.mark.slow
def test_port_script_rebuilds_the_shipped_model(reference, tmp_path, pretrained):
    pytest.importorskip("tf2onnx")
    from animerec.export.faceboxes_port import port

    out = tmp_path / "faceboxes.onnx"
    assert port(VENDOR / "faceboxes_anime_epoch90.npz", VENDOR / "parity" / "reference_outputs.npz", out) <= 1e-4
    rebuilt = LearnedDetector(LearnedSettings(model=out, device="cpu"), warmup=False)
    assert rebuilt.model_id == pretrained.model_id  # the same weights: the shipped file is this script's output


def test_geometry_is_measured_from_paired_boxes():
    from animerec.benchmarks.detector_geometry import paired_geometry

    cascade = np.array([[100, 100, 100, 100], [600, 100, 50, 50]], np.int32)
    heads = np.round(PUBLISHED.to_head(cascade[:1])).astype(np.int32)  # a head around the first face only
    pairs = paired_geometry(cascade, heads, PUBLISHED)
    assert len(pairs) == 1
    np.testing.assert_allclose(pairs[0], (PUBLISHED.width_ratio, PUBLISHED.centre_above), atol=0.01)
    assert paired_geometry(cascade, heads[:0], PUBLISHED) == []
