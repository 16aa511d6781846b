"""FaceBoxes' anchors, SSD decoding and non-maximum suppression, in numpy.

The ONNX models (animerec/models/faceboxes_anime*.onnx) stop at the raw outputs: one row per anchor,
anchors laid out as below. Everything after that is here, so it can be read and tested without
the network. Layout (FaceBoxes, Zhang et al. 2017; ../shared/vendor/faceboxes_anime/NOTICE.md):
three sources of stride 32, 64 and 128 over feature maps of ceil(H / stride) x ceil(W / stride)
cells, row-major; per stride-32 cell 21 anchors (size 32 densified 4x4, size 64 2x2, size 128
once), per cell of the others one anchor (256 and 512).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

BGR_MEAN = (104.0, 117.0, 123.0)  # subtracted inside the ONNX graph
LOC_OUTPUT = "loc"
SCORE_OUTPUT = "score"
VARIANCES = (0.1, 0.2)  # SSD's: centre offsets are in tenths of the anchor size, log-sizes in fifths
# (stride, anchor sizes in pixels); size 32 is densified 4x4 and 64 2x2 inside each stride-32 cell.
SOURCES = ((32, (32, 64, 128)), (64, (256,)), (128, (512,)))
DENSITY = {32: 4, 64: 2}


@lru_cache(maxsize=16)
def anchors(height: int, width: int) -> NDArray[np.float32]:
    """(N, 4) anchors as cx, cy, w, h in pixels, in the network's output order. Cached: a
    video's frames all have one size."""
    rows: list[NDArray[np.float64]] = []
    for stride, sizes in SOURCES:
        cells_y, cells_x = math.ceil(height / stride), math.ceil(width / stride)
        per_cell = []
        for size in sizes:
            density = DENSITY.get(size, 1)
            offsets = (np.arange(density) + 0.5) / density if density == 1 else np.arange(density) / density
            oy, ox = np.meshgrid(offsets, offsets, indexing="ij")  # cy outer, cx inner
            per_cell.append(np.stack([ox.ravel(), oy.ravel(), np.full(ox.size, float(size))], axis=1))
        cell = np.concatenate(per_cell)  # (anchors per cell, 3): x offset, y offset (in cells), size
        gy, gx = np.meshgrid(np.arange(cells_y), np.arange(cells_x), indexing="ij")
        cx = (gx.reshape(-1, 1) + cell[:, 0]) * stride
        cy = (gy.reshape(-1, 1) + cell[:, 1]) * stride
        sides = np.broadcast_to(cell[:, 2], cx.shape)
        rows.append(np.stack([cx, cy, sides, sides], axis=2).reshape(-1, 4))
    result = np.concatenate(rows).astype(np.float32)
    result.flags.writeable = False
    return result


def decode(loc: NDArray[np.float32], priors: NDArray[np.float32]) -> NDArray[np.float32]:
    """SSD offsets (N, 4) on anchors (N, 4: cx, cy, w, h) -> boxes (N, 4: x, y, w, h), same units."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    return np.concatenate([centre - size / 2, size], axis=1).astype(np.float32)


def nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], iou_threshold: float) -> NDArray[np.intp]:
    """Indices of the boxes (x, y, w, h) kept by greedy non-maximum suppression, best first: a
    box is dropped when it overlaps a better-scoring kept box by more than `iou_threshold`."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        order = rest[iou_matrix(boxes[best], boxes[rest])[0] <= iou_threshold]
    return np.asarray(keep, np.intp)


def iou_matrix(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float64]:
    """Intersection over union of every box of `a` (n, 4) with every box of `b` (m, 4), x, y, w, h."""
    a = np.asarray(a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, np.float64).reshape(1, -1, 4)
    low = np.maximum(a[..., :2], b[..., :2])
    high = np.minimum(a[..., :2] + a[..., 2:], b[..., :2] + b[..., 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.asarray(inter / np.maximum(union, 1e-9))
