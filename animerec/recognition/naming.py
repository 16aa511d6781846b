"""The naming decision: which character a face is, or "unknown" when the evidence is too weak.

A softmax always sums to one over the trained characters, so a face of anyone else is still
forced into one of them, often with a high probability. The open-set decision instead compares
the face's embedding with one prototype per character: the class mean of (centred) training
embeddings for trained characters, the mean of the enrolled faces for gallery characters. Both
live in the same space, so an enrolled character competes with trained ones on equal terms, and
the cosine similarity to the nearest prototype is the evidence: below the threshold, "unknown".

Probabilities come from a softmax over the scaled similarities plus one "unknown" logit placed
at the threshold: the best character out-scores "unknown" exactly when its similarity reaches
the threshold, so `name` is always the top entry or "unknown", and `confidence` is the
probability of whichever was decided.

A face followed on video is named from its track's evidence, the mean of all its looks
(`decide_tracks`), against bars calibrated for such means, with hysteresis: a track is named
when its best character reaches `track_accept`, and keeps that name while the character stays
above `track_keep`, lower by a margin, so evidence hovering at the bar does not make the name
blink. A still image (`decide`) keeps the single-image threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from animerec.errors import ModelError, UsageError
from animerec.recognition.classifier import Scores
from animerec.recognition.gallery import Gallery, open_gallery
from animerec.recognition.model_info import ModelInfo, OpenSetCalibration
from animerec.records import UNKNOWN, Faces

log = logging.getLogger(__name__)
TOP_K = 3
# How far below the bar that named a track its evidence may fall before the name is dropped,
# for models whose calibration has no measured margin (docs/OPEN_SET.md, "Names on video").
DEFAULT_TRACK_MARGIN = 0.05


class Decider(Protocol):
    """Turns classifier scores into named faces."""

    @property
    def names(self) -> tuple[str, ...]:
        """Every character it can name: trained, then enrolled."""
        ...

    def decide(self, boxes: NDArray[np.int32], scores: Scores) -> Faces:
        """Name the faces of one still image, each from its own scores."""
        ...

    def decide_tracks(self, boxes: NDArray[np.int32], evidence: Scores, held: Sequence[str | None]) -> Faces:
        """Name tracked faces from their tracks' mean scores (`evidence`), given the name each
        track holds (None: undecided); the names returned are the ones to hold next."""
        ...


def hold_or_decide(scores: NDArray[np.float32], held: NDArray[np.intp], accept: float,
                   keep: float) -> NDArray[np.intp]:
    """The character chosen for each row (-1: unknown): the best one when it reaches `accept`,
    else the one held (`held`, -1 for none) while it stays at `keep` or above."""
    rows = np.arange(len(scores))
    best = scores.argmax(axis=1)
    chosen = np.where(scores[rows, best] >= accept, best, -1)
    holding = (chosen < 0) & (held >= 0)
    holding[holding] = scores[rows[holding], held[holding]] >= keep
    chosen[holding] = held[holding]
    return chosen


def held_indices(names: tuple[str, ...], held: Sequence[str | None]) -> NDArray[np.intp]:
    """Each held name's column (-1 for none, or for a name no longer offered)."""
    column = {name: j for j, name in enumerate(names)}
    return np.array([column.get(name, -1) if name is not None else -1 for name in held], np.intp)


def unit_rows(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), np.float32)


def _faces(boxes: NDArray[np.int32], probs: NDArray[np.float32], names: tuple[str, ...], top_k: int,
           decided: tuple[str, ...], confidence: NDArray[np.float32]) -> Faces:
    """The Faces record: the top-k of `probs` (whatever the decision), the names and confidence."""
    k = min(top_k, len(names))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    top_probs = np.take_along_axis(probs, order, axis=1)
    top_names = tuple(tuple(names[j] for j in row) for row in order)
    return Faces(boxes=np.asarray(boxes, np.int32), top_names=top_names, top_probs=top_probs,
                 names=decided, confidence=confidence)


@dataclass(frozen=True)
class ClosedSetDecider:
    """The model's softmax alone, for models without open-set calibration: the best trained
    character, or "unknown" below `threshold` (a max-probability; 0 always names someone)."""

    names: tuple[str, ...]
    threshold: float = 0.0
    top_k: int = TOP_K

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise UsageError(f"unknown threshold must be 0..1 for an uncalibrated model, got {self.threshold}")

    def decide(self, boxes: NDArray[np.int32], scores: Scores) -> Faces:
        if not len(boxes):
            return Faces.empty()
        held = np.full(len(boxes), -1, np.intp)
        return self._named(boxes, scores.probs, hold_or_decide(scores.probs, held, self.threshold, self.threshold))

    def decide_tracks(self, boxes: NDArray[np.int32], evidence: Scores, held: Sequence[str | None]) -> Faces:
        """The mean probabilities, with the same threshold to name and to keep a name: the
        threshold is not calibrated, so there is no measured margin to hold a name by."""
        if not len(boxes):
            return Faces.empty()
        chosen = hold_or_decide(evidence.probs, held_indices(self.names, held), self.threshold, self.threshold)
        return self._named(boxes, evidence.probs, chosen)

    def _named(self, boxes: NDArray[np.int32], probs: NDArray[np.float32], chosen: NDArray[np.intp]) -> Faces:
        rows = np.arange(len(chosen))
        confidence = np.where(chosen >= 0, probs[rows, np.maximum(chosen, 0)], probs.max(axis=1)).astype(np.float32)
        decided = tuple(self.names[j] if j >= 0 else UNKNOWN for j in chosen)
        return _faces(boxes, probs, self.names, self.top_k, decided, confidence)


@dataclass(frozen=True, eq=False)
class OpenSetDecider:
    """Cosine similarity to per-character prototypes, with a threshold for "unknown".

    An enrolled character also keeps its individual faces (`shots`): its similarity is the
    better of its mean and its nearest enrolled face. Five faces make a noisy mean, and a
    character drawn in several styles matches one of its faces better than their average; on
    danbooru6 this raised 5-shot top-1 from 37% to 52% (docs/OPEN_SET.md).
    """

    names: tuple[str, ...]
    prototypes: NDArray[np.float32]  # (characters, dim) unit rows in centred space, names' order
    centre: NDArray[np.float32]  # (dim,) subtracted from every embedding before comparing
    threshold: float  # cosine similarity
    scale: float  # softmax temperature of the similarities
    trained: int  # the first `trained` names are the model's own classes
    top_k: int = TOP_K
    shots: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # enrolled faces
    shot_starts: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))  # first shot per enrolled
    track_threshold: float | None = None  # the bar a track's mean evidence must reach; None: `threshold`
    track_margin: float = DEFAULT_TRACK_MARGIN  # a named track keeps its name down to the bar minus this

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise UsageError(f"unknown threshold is a cosine similarity between -1 and 1, got {self.threshold}")
        if len(self.names) != len(self.prototypes):
            raise ValueError(f"{len(self.names)} names for {len(self.prototypes)} prototypes")
        if len(self.shot_starts) not in (0, len(self.names) - self.trained):
            raise ValueError("every enrolled character needs its shots")
        if self.track_margin < 0:
            raise ValueError(f"the track margin must not be negative, got {self.track_margin}")

    @classmethod
    def from_calibration(cls, labels: tuple[str, ...], calibration: OpenSetCalibration,
                         threshold: float | None = None, top_k: int = TOP_K) -> OpenSetDecider:
        """The calibrated decision; an explicit `threshold` moves the track bar by as much as it
        moves the single-image one, so "stricter" and "looser" mean the same on video."""
        shift = 0.0 if threshold is None else threshold - calibration.threshold
        track = calibration.track_threshold
        return cls(
            names=labels,
            prototypes=unit_rows(calibration.prototypes),
            centre=np.asarray(calibration.centre, np.float32),
            threshold=calibration.threshold if threshold is None else threshold,
            scale=calibration.scale,
            trained=len(labels),
            top_k=top_k,
            track_threshold=None if track is None else float(np.clip(track + shift, -1.0, 1.0)),
            track_margin=DEFAULT_TRACK_MARGIN if calibration.track_margin is None else calibration.track_margin,
        )

    def embed(self, embeddings: NDArray[np.float32]) -> NDArray[np.float32]:
        """Model embeddings -> the centred unit vectors prototypes are compared with. Centring
        removes the direction every anime face shares, which otherwise inflates all similarities."""
        return unit_rows(np.asarray(embeddings, np.float32) - self.centre)

    def with_gallery(self, gallery: Gallery | None) -> OpenSetDecider:
        """The same decision over the trained characters plus the gallery's (replacing any
        characters an earlier gallery added)."""
        if gallery is None or not len(gallery):
            return self if len(self.names) == self.trained else self._trained_only()
        clash = sorted(set(gallery.names) & set(self.names[: self.trained]))
        if clash:
            raise UsageError(f"gallery names {', '.join(clash)} are trained characters of this model")
        faces = [self.embed(c.embeddings) for c in gallery.characters]
        means = unit_rows(np.stack([f.mean(axis=0) for f in faces]))
        starts = np.cumsum([0] + [len(f) for f in faces[:-1]]).astype(np.intp)
        base = self._trained_only()
        return replace(base, names=base.names + gallery.names, prototypes=np.concatenate([base.prototypes, means]),
                       shots=np.concatenate(faces), shot_starts=starts)

    def with_threshold(self, threshold: float) -> OpenSetDecider:
        """The same decision with the single-image threshold (and the track bar) moved."""
        track = None if self.track_threshold is None else self.track_threshold + threshold - self.threshold
        return replace(self, threshold=threshold, track_threshold=track)

    def _trained_only(self) -> OpenSetDecider:
        return replace(self, names=self.names[: self.trained], prototypes=self.prototypes[: self.trained],
                       shots=np.zeros((0, 0), np.float32), shot_starts=np.zeros(0, np.intp))

    def similarities(self, embeddings: NDArray[np.float32]) -> NDArray[np.float32]:
        """(n, characters) cosine similarity of each face to each character: to the prototype,
        or for an enrolled character the better of its prototype and its nearest enrolled face."""
        if embeddings.shape[1] != self.prototypes.shape[1]:
            raise ModelError(f"embeddings have {embeddings.shape[1]} values, prototypes {self.prototypes.shape[1]}")
        embedded = self.embed(embeddings)
        similarity = embedded @ self.prototypes.T
        if len(self.shot_starts):
            nearest = np.maximum.reduceat(embedded @ self.shots.T, self.shot_starts, axis=1)
            similarity[:, self.trained :] = np.maximum(similarity[:, self.trained :], nearest)
        return similarity

    def probabilities(self, similarities: NDArray[np.float32],
                      bars: NDArray[np.float32] | None = None) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Per-character probabilities and the probability of "unknown" (they sum to one), with
        "unknown" at the bar each face is judged by (default: the single-image threshold)."""
        n = len(similarities)
        unknown_at = np.full((n, 1), self.threshold, np.float32) if bars is None else np.reshape(bars, (n, 1))
        logits = self.scale * np.concatenate([similarities, unknown_at], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        probs = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
        return probs[:, :-1], probs[:, -1]

    def decide(self, boxes: NDArray[np.int32], scores: Scores) -> Faces:
        if not len(boxes):
            return Faces.empty()
        similarity = self.similarities(scores.embeddings)
        none_held = np.full(len(boxes), -1, np.intp)
        chosen = hold_or_decide(similarity, none_held, self.threshold, self.threshold)
        return self._named(boxes, similarity, chosen, np.full(len(boxes), self.threshold, np.float32))

    def decide_tracks(self, boxes: NDArray[np.int32], evidence: Scores, held: Sequence[str | None]) -> Faces:
        if not len(boxes):
            return Faces.empty()
        similarity = self.similarities(evidence.embeddings)
        accept = self.threshold if self.track_threshold is None else self.track_threshold
        keep = accept - self.track_margin
        held_columns = held_indices(self.names, held)
        chosen = hold_or_decide(similarity, held_columns, accept, keep)
        kept = (chosen >= 0) & (chosen == held_columns)
        return self._named(boxes, similarity, chosen, np.where(kept, keep, accept).astype(np.float32))

    def _named(self, boxes: NDArray[np.int32], similarity: NDArray[np.float32], chosen: NDArray[np.intp],
               bars: NDArray[np.float32]) -> Faces:
        """`confidence` is the probability of what was decided, with "unknown" at each face's bar."""
        probs, unknown = self.probabilities(similarity, bars)
        rows = np.arange(len(chosen))
        confidence = np.where(chosen >= 0, probs[rows, np.maximum(chosen, 0)], unknown).astype(np.float32)
        decided = tuple(self.names[j] if j >= 0 else UNKNOWN for j in chosen)
        return _faces(boxes, probs, self.names, self.top_k, decided, confidence)


def make_decider(info: ModelInfo, gallery: Gallery | None = None, threshold: float | None = None,
                 top_k: int = TOP_K) -> Decider:
    """The decision a model supports: open-set when calibrated, else its softmax (and then a
    gallery cannot be used: trained characters would have no prototypes to compete with)."""
    if info.open_set is None:
        if gallery is not None and len(gallery):
            raise ModelError(
                "this model has no open-set calibration, so enrolled characters cannot be compared with "
                "trained ones: run `animerec calibrate MODEL` first"
            )
        if threshold is None:
            log.warning("the model has no open-set calibration: every face gets a trained name "
                        "(run `animerec calibrate`, or pass --unknown-threshold)")
        return ClosedSetDecider(info.labels, threshold or 0.0, top_k)
    if gallery is not None:
        gallery.check_model(info.model_id)
    decider = OpenSetDecider.from_calibration(info.labels, info.open_set, threshold, top_k)
    return decider.with_gallery(gallery)


def decider_for(info: ModelInfo, gallery_path: Path | None = None, threshold: float | None = None,
                top_k: int = TOP_K) -> Decider:
    """`make_decider` with the gallery at `gallery_path`, or the default gallery when it exists."""
    return make_decider(info, open_gallery(gallery_path, info.model_id), threshold, top_k)
