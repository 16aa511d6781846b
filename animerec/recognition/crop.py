"""The report's face crop and the model-input preprocessing: one definition each, used by dataset
building, training, prediction and the real-time pipeline alike, so that the crops a model is
trained on look like the crops it sees at run time."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

DEFAULT_CROP_SIZE = 150


def crop_window(box: tuple[int, int, int, int] | NDArray[np.int32]) -> tuple[int, int, int]:
    """The report's square around a detector box: (left, top, side).

    side = max(w, h), off = side // 12; columns x - off .. x + side + off, rows y - 2*off .. y + side.
    The square is raised because the cascade's box sits low on anime faces (hair and ears above it).
    """
    x, y, w, h = (int(v) for v in box)
    side = max(w, h)
    off = side // 12
    return x - off, y - 2 * off, side + 2 * off


def report_crop(image: NDArray[np.uint8], box: tuple[int, int, int, int] | NDArray[np.int32]) -> NDArray[np.uint8]:
    """The full square crop of CONTRACTS.md; parts outside the image replicate its edge pixels."""
    left, top, side = crop_window(box)
    height, width = image.shape[:2]
    pad_left, pad_top = max(0, -left), max(0, -top)
    pad_right, pad_bottom = max(0, left + side - width), max(0, top + side - height)
    inside = image[max(0, top) : min(height, top + side), max(0, left) : min(width, left + side)]
    if pad_left or pad_top or pad_right or pad_bottom:
        border = cv2.copyMakeBorder(inside, pad_top, pad_bottom, pad_left, pad_right, cv2.BORDER_REPLICATE)
        inside = np.asarray(border, np.uint8)
    return np.ascontiguousarray(inside)


def framed_in_scene(face: NDArray[np.uint8], surround: NDArray[np.uint8], box_ratio: float,
                    shift: tuple[float, float] = (0.0, 0.0)) -> NDArray[np.uint8]:
    """The report's crop of a square face crop standing in a scene, around a detector box
    `box_ratio` times the crop's side with its centre moved by `shift` (shares of that side);
    `surround` (any picture, stretched) is the scene around the face.

    On the naming clips, where tight face crops move over anime frames, the cascade's box is
    0.95-1.15 times the crop's side (median 1.05), its centre ~0.04 low: the runtime sees the
    face a little smaller than in its training crop, with a rim of the scene around it."""
    side = face.shape[0]
    canvas = np.asarray(cv2.resize(surround, (3 * side, 3 * side), interpolation=cv2.INTER_LINEAR), np.uint8)
    canvas[side : 2 * side, side : 2 * side] = face
    box_side = int(side * box_ratio)
    x = int(side + (side - box_side) / 2 + shift[0] * side)
    y = int(side + (side - box_side) / 2 + shift[1] * side)
    return report_crop(canvas, (x, y, box_side, box_side))


def resize_square(image: NDArray[np.uint8], size: int) -> NDArray[np.uint8]:
    """Resize to size x size: area averaging when shrinking (no aliasing), linear when growing."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrinking = image.shape[0] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(image, (size, size), interpolation=interpolation), np.uint8)


def to_model_input(crops: list[NDArray[np.uint8]] | NDArray[np.uint8], size: int) -> NDArray[np.float32]:
    """BGR uint8 crops of any size -> the model's input: (n, size, size, 3) RGB float32 in 0..1.

    Training calls this on its dataset crops and the runtime on live crops: one definition of
    colour order, scaling and resizing.
    """
    batch = np.empty((len(crops), size, size, 3), np.float32)
    for i, crop in enumerate(crops):
        rgb = cv2.cvtColor(resize_square(crop, size), cv2.COLOR_BGR2RGB)
        np.multiply(rgb, 1.0 / 255.0, out=batch[i], casting="unsafe")
    return batch
