"""Detection and naming quality against ground truth or against a reference detector.

Matching rule (one rule everywhere): a found box matches a true (or reference) box when the found
box's centre lies inside the true box; each box matches at most once, closest centres first.
The cascade's box sits inside the pasted face crop and a little lower, so an IoU threshold would
penalise a correct box for the crop's margins, while the centre test does not.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from animerec.benchmarks.synthetic import PlacedFace
from animerec.records import UNKNOWN

Box = Sequence[int]  # x, y, w, h
SMALL_FACE_PX = 48  # the recall target counts faces of at least this side; smaller ones apart
LARGE_FACE_PX = 96  # the top of the middle size bucket: faces < 48, 48-96 and > 96 px are reported apart
SIZE_BUCKETS = ("<48", "48-96", ">96", ">=48", "all")  # recall_by_size's keys: sides in source pixels
HIDDEN_SHARE = 0.5  # a pasted face more than half covered by later ones is not expected to be found
MATCH_RULE = "centre-inside: a found box matches when its centre lies inside the true box (one-to-one)"


@dataclass(frozen=True)
class FoundFace:
    """One face a method reported on one frame."""

    box: tuple[int, int, int, int]
    name: str = ""
    track: int = -1  # the tracker's id, -1 where none ran


def match(found: Sequence[Box], truth: Sequence[Box]) -> list[tuple[int, int]]:
    """Pairs (found index, true index), one-to-one, closest centres first."""
    pairs = []
    for i, f in enumerate(found):
        cx, cy = f[0] + f[2] / 2, f[1] + f[3] / 2
        for j, t in enumerate(truth):
            if t[0] <= cx < t[0] + t[2] and t[1] <= cy < t[1] + t[3]:
                distance = (cx - t[0] - t[2] / 2) ** 2 + (cy - t[1] - t[3] / 2) ** 2
                pairs.append((distance, i, j))
    used_found: set[int] = set()
    used_truth: set[int] = set()
    result = []
    for _, i, j in sorted(pairs):
        if i not in used_found and j not in used_truth:
            used_found.add(i)
            used_truth.add(j)
            result.append((i, j))
    return result


def visible(placed: Sequence[PlacedFace]) -> list[PlacedFace]:
    """The pasted faces not mostly hidden under faces pasted after them (later ones are on top)."""
    kept = []
    for k, face in enumerate(placed):
        x, y, w, h = face.box
        cover = np.zeros((h, w), bool)
        for other in placed[k + 1 :]:
            ox, oy, ow, oh = other.box
            left, top = max(0, ox - x), max(0, oy - y)
            right, bottom = min(w, ox + ow - x), min(h, oy + oh - y)
            if right > left and bottom > top:
                cover[top:bottom, left:right] = True
        if cover.mean() <= HIDDEN_SHARE:
            kept.append(face)
    return kept


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def against_truth(found: Sequence[Sequence[FoundFace]], truth: Sequence[Sequence[PlacedFace]]) -> dict[str, Any]:
    """Recall, precision and top-1 of the names over a clip with known faces."""
    true_total = found_total = matched = named = 0
    names_given = any(face.name for faces in found for face in faces)
    for faces, placed in zip(found, truth, strict=False):
        expected = visible(placed)
        pairs = match([f.box for f in faces], [p.box for p in expected])
        true_total += len(expected)
        found_total += len(faces)
        matched += len(pairs)
        named += sum(faces[i].name == expected[j].name for i, j in pairs)
    return {
        "frames": min(len(found), len(truth)),
        "true_faces": true_total,
        "found_faces": found_total,
        "recall": _ratio(matched, true_total),
        "precision": _ratio(matched, found_total),
        # Among the faces found: naming, not detection. None for a method that gives no names.
        "top1": _ratio(named, matched) if names_given else None,
        "top1_of_all": _ratio(named, true_total) if names_given else None,
        "matching": MATCH_RULE,
    }


def _size_buckets(side: int) -> tuple[str, ...]:
    """The SIZE_BUCKETS a true face of this side (the larger of its width and height) counts in."""
    if side < SMALL_FACE_PX:
        return ("<48", "all")
    return ("48-96" if side <= LARGE_FACE_PX else ">96", ">=48", "all")


def recall_by_size(found: Sequence[Sequence[Box]], truth: Sequence[Sequence[PlacedFace]]) -> dict[str, dict[str, Any]]:
    """Recall of the visible true faces by their side in source pixels: per bucket of SIZE_BUCKETS,
    how many true faces it holds and the share of them a found box matches."""
    faces = dict.fromkeys(SIZE_BUCKETS, 0)
    hits = dict.fromkeys(SIZE_BUCKETS, 0)
    for boxes, placed in zip(found, truth, strict=False):
        expected = visible(placed)
        matched = {j for _, j in match(boxes, [p.box for p in expected])}
        for j, face in enumerate(expected):
            for bucket in _size_buckets(max(face.box[2], face.box[3])):
                faces[bucket] += 1
                hits[bucket] += j in matched
    return {bucket: {"faces": faces[bucket], "recall": _ratio(hits[bucket], faces[bucket])} for bucket in SIZE_BUCKETS}


def naming_against_truth(found: Sequence[Sequence[FoundFace]], truth: Sequence[Sequence[PlacedFace]],
                         fps: float) -> dict[str, Any]:
    """What a viewer sees on a clip with known faces, over the faces found (`found_share` of the
    visible true faces): the share named right, named wrong and left `unknown`; and how often a
    track's name jumps from one character to another per 10 s of faces on screen (a first name,
    and a change to or from `unknown`, are not jumps). Faces whose truth is "unknown" (characters
    the model never saw) are counted apart, as is every found face matching no true face: those
    are faces drawn in the background clips, which are not in the truth and not scored.
    `given_names`: for each true character, how often each name was given to its found faces
    (a clip's few faces weigh a lot: this shows which of them make the shares)."""
    given: defaultdict[str, Counter[str]] = defaultdict(Counter)
    known = right = wrong = strangers = strangers_named = background = background_named = expected_total = 0
    last_character: dict[int, str] = {}
    jumps = 0
    for faces, placed in zip(found, truth, strict=False):
        expected = visible(placed)
        expected_total += sum(p.name != UNKNOWN for p in expected)
        pairs = match([f.box for f in faces], [p.box for p in expected])
        for i, j in pairs:
            face, name = faces[i], expected[j].name
            if name == UNKNOWN:
                strangers += 1
                strangers_named += face.name != UNKNOWN
                continue
            known += 1
            given[name][face.name] += 1
            right += face.name == name
            wrong += face.name not in (name, UNKNOWN)
            if face.name != UNKNOWN and face.track >= 0:
                jumps += last_character.get(face.track, face.name) != face.name
                last_character[face.track] = face.name
        matched = {i for i, _ in pairs}
        background += len(faces) - len(matched)
        background_named += sum(f.name != UNKNOWN for k, f in enumerate(faces) if k not in matched)
    seconds = known / fps if fps > 0 else 0.0
    return {
        "true_faces": expected_total,
        "found_share": _ratio(known, expected_total),
        "named_right": _ratio(right, known),
        "named_wrong": _ratio(wrong, known),
        "named_unknown": _ratio(known - right - wrong, known),
        "character_changes": jumps,
        "character_changes_per_10s": round(10.0 * jumps / seconds, 3) if seconds else None,
        "unknown_faces_found": strangers,
        "unknown_faces_named": _ratio(strangers_named, strangers),
        "background_faces": background,
        "background_faces_named": _ratio(background_named, background),
        "given_names": {name: dict(names.most_common()) for name, names in sorted(given.items())},
        "matching": MATCH_RULE,
    }


def against_reference(
    found: Sequence[Sequence[FoundFace]], reference: Sequence[Sequence[FoundFace]]
) -> dict[str, Any]:
    """Share of the reference detector's faces that were also found, faces of side >= 48 px and
    smaller ones counted apart; and how many found faces the reference did not have."""
    large_total = large_hit = small_total = small_hit = extra = 0
    for faces, wanted in zip(found, reference, strict=False):
        pairs = match([f.box for f in faces], [r.box for r in wanted])
        hit = {j for _, j in pairs}
        extra += len(faces) - len(pairs)
        for j, face in enumerate(wanted):
            if max(face.box[2], face.box[3]) >= SMALL_FACE_PX:
                large_total += 1
                large_hit += j in hit
            else:
                small_total += 1
                small_hit += j in hit
    return {
        "reference_faces_ge48": large_total,
        "recall_ge48": _ratio(large_hit, large_total),
        "reference_faces_lt48": small_total,
        "recall_lt48": _ratio(small_hit, small_total),
        "not_in_reference": extra,
        "matching": MATCH_RULE,
    }


def faces_from_json(frames: Sequence[Sequence[dict[str, Any]]]) -> list[list[FoundFace]]:
    """Worker output (per frame, `{"box": [x, y, w, h], "name": ..., "track": ...}`) into FoundFace lists."""
    found = []
    for frame in frames:
        faces = []
        for face in frame:
            x, y, w, h = (int(v) for v in face["box"])
            track = face.get("track")
            faces.append(FoundFace((x, y, w, h), face.get("name", ""), -1 if track is None else int(track)))
        found.append(faces)
    return found
