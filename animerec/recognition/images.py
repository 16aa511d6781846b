"""Reading still images of any kind the internet serves, into BGR uint8, or a reason why not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from animerec.errors import InputError

MAX_SIDE = 8000  # larger files are refused: a "photo" that size is almost always an error or a bomb
MIN_SIDE = 20
# A tight face crop, as dataset build and the samples make them: about square and small. The
# cascade needs some margin around a face, so on such an image it often finds none.
CROP_ASPECT = (0.8, 1.25)
CROP_MAX_SIDE = 512
CROP_HINT = "no face found, but it looks like a face crop (near-square, at most 512 px): add --crops"


class UnreadableImage(InputError):
    """The file cannot be used as an image; the message names it and `reason` says why in a few
    words. Uncaught, the command line prints the message and exits 1 like any InputError."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason

    def __reduce__(self) -> tuple[type[UnreadableImage], tuple[Path, str]]:
        return type(self), (self.path, self.reason)  # crosses process boundaries (library workers)


def looks_like_face_crop(image: NDArray[np.uint8]) -> bool:
    """Near-square (width/height within 0.8-1.25) and at most 512 px: likely a crop already."""
    height, width = image.shape[:2]
    return CROP_ASPECT[0] <= width / height <= CROP_ASPECT[1] and max(width, height) <= CROP_MAX_SIDE


def load_image(path: str | Path) -> NDArray[np.uint8]:
    """Decode `path` to a BGR uint8 array (height, width, 3).

    Grayscale, palette, RGBA (composited on white), 16-bit and the first frame of a GIF are
    converted; truncated, corrupt, non-image, tiny (< 20 px) and huge (> 8000 px) files raise
    UnreadableImage naming the file, with a short `reason`.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            if max(width, height) > MAX_SIDE:
                raise UnreadableImage(path, f"too large ({width}x{height}, limit {MAX_SIDE} px)")
            if min(width, height) < MIN_SIDE:
                raise UnreadableImage(path, f"too small ({width}x{height}, need {MIN_SIDE} px)")
            image.load()  # decodes now, so a truncated file fails here and not later
            rgb = _to_rgb(image)
    except UnreadableImage:
        raise
    except FileNotFoundError as error:
        raise UnreadableImage(path, "file not found") from error
    except IsADirectoryError as error:
        raise UnreadableImage(path, "is a folder") from error
    except UnidentifiedImageError as error:
        raise UnreadableImage(path, "not an image") from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnreadableImage(path, f"corrupt or truncated ({error})") from error
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _to_rgb(image: Image.Image) -> NDArray[np.uint8]:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: keep the full range, scaled to 8 bits.
        values = np.asarray(image, dtype=np.float64)
        top = values.max() if values.size and values.max() > 255 else 255.0
        grey = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def cover(image: NDArray[np.uint8], width: int, height: int) -> NDArray[np.uint8]:
    """The image scaled to cover width x height and cut to it, centred: a backdrop of that size."""
    scale = max(width / image.shape[1], height / image.shape[0])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    interpolation = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
    resized = cv2.resize(image, size, interpolation=interpolation)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])
