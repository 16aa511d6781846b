"""The open-set decision on synthetic embeddings, its metadata, and the calibration arithmetic."""

from dataclasses import replace

import numpy as np
import pytest

from animerec.errors import ModelError, UsageError
from animerec.recognition.calibration import choose_threshold, fit_scale, prototypes
from animerec.recognition.classifier import Scores
from animerec.recognition.gallery import Character, Gallery
from animerec.recognition.model_info import ModelInfo, OpenSetCalibration
from animerec.recognition.naming import (
    DEFAULT_TRACK_MARGIN,
    ClosedSetDecider,
    OpenSetDecider,
    make_decider,
    unit_rows,
)
from animerec.recognition.recognizer import Recognizer, name_faces

LABELS = ("ame", "gura", "ina")
DIM = 8


def basis(i: int) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[i] = 1.0
    return vector


def calibration(threshold: float = 0.6) -> OpenSetCalibration:
    return OpenSetCalibration(np.stack([basis(0), basis(1), basis(2)]), np.zeros(DIM, np.float32), threshold, 10.0)


def info(open_set: OpenSetCalibration | None = None) -> ModelInfo:
    return ModelInfo(labels=LABELS, input_size=80, arch="anime", model_id="abc123", open_set=open_set)


def scores_for(*embeddings: np.ndarray) -> Scores:
    rows = unit_rows(np.stack(embeddings))
    return Scores(np.full((len(rows), len(LABELS)), 1 / len(LABELS), np.float32), rows)


def boxes(n: int) -> np.ndarray:
    return np.tile(np.array([[0, 0, 10, 10]], np.int32), (n, 1))


@pytest.fixture
def decider() -> OpenSetDecider:
    return OpenSetDecider.from_calibration(LABELS, calibration())


def test_face_near_a_prototype_is_named_with_its_probability(decider):
    faces = decider.decide(boxes(1), scores_for(basis(1) + 0.1 * basis(5)))
    assert faces.names == ("gura",)
    assert faces.top_names[0][0] == "gura" and len(faces.top_names[0]) == 3
    assert faces.confidence[0] == pytest.approx(faces.top_probs[0, 0])
    assert faces.confidence[0] > 0.5


def test_far_embedding_is_unknown_but_keeps_its_top3(decider):
    faces = decider.decide(boxes(1), scores_for(basis(6)))
    assert faces.names == ("unknown",)
    assert len(faces.top_names[0]) == 3
    # confidence is the probability of "unknown": the rest of the mass the characters leave.
    assert faces.confidence[0] == pytest.approx(1 - faces.top_probs[0].sum(), abs=1e-5)
    assert faces.confidence[0] > 0.5


def test_threshold_is_where_a_name_beats_unknown(decider):
    similar = np.cos(np.arccos(0.6) - 0.01) * basis(0) + np.sin(np.arccos(0.6) - 0.01) * basis(7)
    dissimilar = np.cos(np.arccos(0.6) + 0.01) * basis(0) + np.sin(np.arccos(0.6) + 0.01) * basis(7)
    assert decider.decide(boxes(2), scores_for(similar, dissimilar)).names == ("ame", "unknown")
    assert decider.with_threshold(0.7).decide(boxes(1), scores_for(similar)).names == ("unknown",)
    probs, unknown = decider.probabilities(decider.similarities(scores_for(similar).embeddings))
    np.testing.assert_allclose(probs.sum(axis=1) + unknown, 1.0, atol=1e-6)


def test_enrolled_character_wins_when_closer_and_trained_one_otherwise(decider):
    miku = basis(0) + 0.8 * basis(4)  # near ame, but a character of its own
    gallery = Gallery("abc123", (Character("初音ミク", unit_rows(np.stack([miku, miku + 0.05 * basis(5)]))),))
    both = decider.with_gallery(gallery)
    assert both.names == (*LABELS, "初音ミク")
    faces = both.decide(boxes(2), scores_for(miku, basis(0) - 0.2 * basis(4)))
    assert faces.names == ("初音ミク", "ame")
    assert "初音ミク" in faces.top_names[1]  # the runner-up stays in the top 3
    assert both.with_gallery(None).names == LABELS


def test_enrolled_character_matches_its_nearest_face_as_well_as_its_mean(decider):
    styles = unit_rows(np.stack([basis(3), basis(4)]))  # one character drawn in two styles
    both = decider.with_gallery(Gallery("abc123", (Character("miku", styles),)))
    # The mean (between the styles) is 0.71 away; the second style alone is a match.
    faces = both.decide(boxes(2), scores_for(basis(4) + 0.1 * basis(6), basis(5)))
    assert faces.names == ("miku", "unknown")
    similarity = both.similarities(scores_for(basis(4)).embeddings)
    assert similarity[0, 3] == pytest.approx(1.0, abs=1e-5)


def test_centre_is_removed_before_comparing():
    shared = 0.9 * basis(7)  # a direction every face has: without centring, all would look alike
    calibrated = OpenSetCalibration(np.stack([basis(0), basis(1), basis(2)]), shared, 0.6, 10.0)
    decider = OpenSetDecider.from_calibration(LABELS, calibrated)
    faces = decider.decide(boxes(2), scores_for(shared + 0.4 * basis(2), shared + 0.4 * basis(6)))
    assert faces.names == ("ina", "unknown")
    uncentred = OpenSetDecider.from_calibration(LABELS, calibration())
    assert uncentred.decide(boxes(1), scores_for(shared + 0.4 * basis(2))).names == ("unknown",)


def test_gallery_cannot_shadow_a_trained_name(decider):
    with pytest.raises(UsageError, match="gura"):
        decider.with_gallery(Gallery("abc123", (Character("gura", basis(3)[None]),)))


def test_closed_set_decider_is_the_old_argmax_with_an_optional_threshold():
    scores = Scores(np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]], np.float32), np.zeros((2, DIM), np.float32))
    assert ClosedSetDecider(LABELS).decide(boxes(2), scores).names == ("ame", "ame")
    assert ClosedSetDecider(LABELS, threshold=0.5).decide(boxes(2), scores).names == ("ame", "unknown")
    legacy = name_faces(boxes(2), scores, LABELS, top_k=2)
    assert legacy.names == ("ame", "ame") and legacy.top_names[1] == ("ame", "gura")
    np.testing.assert_allclose(legacy.confidence, [0.7, 0.4])
    with pytest.raises(UsageError):
        ClosedSetDecider(LABELS, threshold=1.5)


def test_name_faces_takes_a_decider(decider):
    faces = name_faces(boxes(1), scores_for(basis(6)), LABELS, decider=decider)
    assert faces.names == ("unknown",)


def test_make_decider_follows_the_model():
    assert isinstance(make_decider(info()), ClosedSetDecider)
    gallery = Gallery("abc123", (Character("miku", basis(4)[None]),))
    with pytest.raises(ModelError, match="calibrate"):
        make_decider(info(), gallery)
    open_set = make_decider(info(calibration()), gallery, threshold=0.3)
    assert isinstance(open_set, OpenSetDecider) and open_set.threshold == 0.3
    assert open_set.names == (*LABELS, "miku")
    with pytest.raises(UsageError, match="enrolled with model"):
        make_decider(info(calibration()), Gallery("other", ()))
    with pytest.raises(UsageError):
        make_decider(info(calibration()), threshold=1.5)


def test_calibration_round_trips_through_metadata():
    original = info(OpenSetCalibration(unit_rows(np.random.default_rng(0).normal(size=(3, DIM)).astype(np.float32)),
                                       np.arange(DIM, dtype=np.float32), 0.42, 12.5, {"known_accept": 0.95}))
    restored = ModelInfo.from_metadata(original.to_metadata())
    assert restored.open_set is not None and original.open_set is not None
    np.testing.assert_array_equal(restored.open_set.prototypes, original.open_set.prototypes)
    np.testing.assert_array_equal(restored.open_set.centre, original.open_set.centre)
    assert (restored.open_set.threshold, restored.open_set.scale) == (0.42, 12.5)
    assert restored.open_set.stats == {"known_accept": 0.95}
    assert ModelInfo.from_metadata(info().to_metadata()).open_set is None
    broken = original.to_metadata()
    broken["animerec.open_set"] = broken["animerec.open_set"].replace('"classes": 3', '"classes": 4')
    with pytest.raises(ValueError):
        ModelInfo.from_metadata(broken)


def at_similarity(similarity: float, character: int = 1) -> np.ndarray:
    """A unit embedding whose cosine with `basis(character)` is `similarity`."""
    return similarity * basis(character) + np.sqrt(1 - similarity**2) * basis(7)


def track_calibration(track_threshold: float | None = 0.5, track_margin: float | None = 0.1) -> OpenSetCalibration:
    return replace(calibration(0.6), track_threshold=track_threshold, track_margin=track_margin)


@pytest.mark.parametrize(("similarity", "held", "named"), [
    (0.55, None, "gura"),  # above the track bar (0.5)
    (0.45, None, "unknown"),  # below it, nothing held
    (0.45, "gura", "gura"),  # below it but above the bar to keep (0.4): the held name stays
    (0.35, "gura", "unknown"),  # below both: dropped
    (0.45, "ame", "unknown"),  # what is held is not what the evidence says
])
def test_tracks_are_named_with_hysteresis(similarity, held, named):
    decider = OpenSetDecider.from_calibration(LABELS, track_calibration())
    faces = decider.decide_tracks(boxes(1), scores_for(at_similarity(similarity)), [held])
    assert faces.names == (named,)
    probs = dict(zip(faces.top_names[0], faces.top_probs[0], strict=True))
    if named == "unknown":  # confidence is the probability of what was decided
        assert faces.confidence[0] == pytest.approx(1 - faces.top_probs[0].sum(), abs=1e-5)
    else:
        assert faces.confidence[0] == pytest.approx(probs[named]) and faces.confidence[0] > 0.5


def test_still_images_keep_the_single_image_threshold():
    decider = OpenSetDecider.from_calibration(LABELS, track_calibration())
    scores = scores_for(at_similarity(0.55))
    assert decider.decide(boxes(1), scores).names == ("unknown",)  # 0.55 < 0.6
    assert decider.decide_tracks(boxes(1), scores, [None]).names == ("gura",)  # 0.55 >= 0.5


def test_without_a_track_calibration_tracks_use_the_threshold_and_the_default_margin():
    decider = OpenSetDecider.from_calibration(LABELS, track_calibration(None, None))
    assert decider.decide_tracks(boxes(1), scores_for(at_similarity(0.58)), [None]).names == ("unknown",)
    keep = 0.6 - DEFAULT_TRACK_MARGIN + 0.01
    assert decider.decide_tracks(boxes(1), scores_for(at_similarity(keep)), ["gura"]).names == ("gura",)


def test_a_threshold_override_moves_the_track_bar_with_it():
    decider = OpenSetDecider.from_calibration(LABELS, track_calibration(), threshold=0.7)  # 0.1 stricter
    assert decider.threshold == pytest.approx(0.7) and decider.track_threshold == pytest.approx(0.6)
    assert decider.with_threshold(0.5).track_threshold == pytest.approx(0.4)
    assert make_decider(info(track_calibration()), threshold=0.65).track_threshold == pytest.approx(0.55)


def test_closed_set_tracks_are_named_from_their_mean_probabilities():
    decider = ClosedSetDecider(LABELS, threshold=0.5)
    evidence = Scores(np.array([[0.6, 0.3, 0.1], [0.45, 0.45, 0.1]], np.float32), np.zeros((2, DIM), np.float32))
    assert decider.decide_tracks(boxes(2), evidence, [None, "ame"]).names == ("ame", "unknown")


def test_track_calibration_round_trips_through_metadata():
    restored = ModelInfo.from_metadata(info(track_calibration(0.55, 0.07)).to_metadata()).open_set
    assert restored is not None and (restored.track_threshold, restored.track_margin) == (0.55, 0.07)
    older = ModelInfo.from_metadata(info(calibration()).to_metadata()).open_set
    assert older is not None and (older.track_threshold, older.track_margin) == (None, None)


def test_recognizer_uses_the_decider(decider):
    class Fake:
        labels = LABELS
        provider = "test"

        def classify(self, crops):
            return scores_for(*[basis(6)] * len(crops))

    class NoFaces:
        def detect(self, image):
            return np.zeros((0, 4), np.int32)

    recognizer = Recognizer(NoFaces(), Fake())
    crop = np.zeros((20, 20, 3), np.uint8)
    assert recognizer.recognise_crop(crop).names == ("ame",)  # no metadata: the softmax argmax
    assert recognizer.with_decider(decider).recognise_crop(crop).names == ("unknown",)


def test_prototypes_and_threshold_choice():
    rng = np.random.default_rng(1)
    embeddings = unit_rows(np.concatenate([basis(0) + 0.1 * rng.normal(size=(20, DIM)),
                                           basis(1) + 0.1 * rng.normal(size=(20, DIM))]).astype(np.float32))
    centre, protos = prototypes(embeddings, np.repeat([0, 1], 20), 2)
    assert protos.shape == (2, DIM) and centre.shape == (DIM,)
    np.testing.assert_allclose(np.linalg.norm(protos, axis=1), 1.0, atol=1e-5)
    known = np.linspace(0.5, 1.0, 100).astype(np.float32)
    # Separable: the threshold sits between the 95% point of known and the 5% point of unknown.
    threshold = choose_threshold(known, np.linspace(0.0, 0.3, 100).astype(np.float32), 0.95, 0.05)
    assert 0.29 < threshold < 0.53
    # Overlapping: one target, or the knee where (known named - unknown named) is largest.
    unknown = np.linspace(0.4, 0.9, 100).astype(np.float32)
    threshold = choose_threshold(known, unknown, 0.95, 0.05, prefer="accept")
    assert np.mean(known >= threshold) >= 0.95 and threshold == pytest.approx(0.525, abs=0.01)
    threshold = choose_threshold(known, unknown, 0.95, 0.05, prefer="reject")
    assert np.mean(unknown >= threshold) <= 0.05
    # 10% of the unknown faces look known: the knee names all known faces and just those 10%.
    unknown = np.concatenate([np.linspace(0.0, 0.45, 90), np.linspace(0.6, 0.9, 10)]).astype(np.float32)
    threshold = choose_threshold(known, unknown, 0.95, 0.05)
    assert 0.45 < threshold <= 0.5 and np.mean(unknown >= threshold) == pytest.approx(0.1)


def test_fit_scale_prefers_sharp_probabilities_on_separable_data():
    known = np.array([[0.9, 0.1], [0.1, 0.9]] * 10, np.float32)
    unknown = np.array([[0.2, 0.2]] * 10, np.float32)
    assert fit_scale(known, np.array([0, 1] * 10), unknown, 0.5) > 20


def test_track_bars_name_the_known_tracks_and_keep_the_unseen_ones_out():
    """Replayed tracks: ame's mean evidence hovers at 0.78-0.84, a stranger's at 0.70-0.74 (near
    ame). The chosen bar lies between them, and the margin keeps ame named when it dips."""
    from animerec.benchmarks.track_calibration import TrackLook, choose_bars, replay

    rng = np.random.default_rng(0)
    looks = []
    for track, (truth, centre) in enumerate([("ame", 0.81), ("ame", 0.8), ("unknown", 0.72)] * 4):
        for _ in range(30):
            similarity = np.array([centre + rng.uniform(-0.03, 0.03), 0.2, 0.1], np.float32)
            looks.append(TrackLook(track, truth, similarity))
    filmed = [TrackLook(look.track, look.truth, look.similarity - 0.02) for look in looks]
    bar, _, plain, both = choose_bars(looks, filmed, LABELS)
    assert 0.74 < bar <= 0.76 + 1e-9  # filmed, ame is seen 0.02 lower: the bar goes as low as the limits allow
    assert plain.unknown_named == 0.0 and plain.wrong == 0.0 and plain.right == 1.0 and both.right == 1.0
    strict = replay(looks, LABELS, 0.8, 0.0)  # a bar inside ame's band without a margin: names blink
    held = replay(looks, LABELS, 0.8, 0.06)
    assert strict.right < held.right - 0.05
