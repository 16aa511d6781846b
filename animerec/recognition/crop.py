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
