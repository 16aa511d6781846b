"""What video and a camera do to a face, rendered once per training image before training starts.

Each render draws one random chain: a framing (the report's crop around a simulated detector
box, or a partial crop), then maybe a camera filming a screen (perspective, defocus, moiré,
colour cast, noise), then maybe the video itself (a small face scaled up, blur, JPEG/H.264-like
block artefacts). The detector's box may be larger than the training crop itself: then the
report's crop takes in whatever surrounds the face in the frame (a `surround`, another picture),
which is what the runtime sees when a tight face crop sits in a scene. Colours keep their hue:
a colour cast tints the whole image a little, never shifts hair or eye colours into other ones.
The cheap per-batch jitter (flips, crop position, brightness, contrast) is `identity_data`'s job;
these are the expensive ones, rendered offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.recognition.crop import framed_in_scene

Image = NDArray[np.uint8]


@dataclass(frozen=True)
class DegradeOptions:
    report_crop: float = 0.5  # share of renders framed as the runtime frames a detector box
    partial_crop: float = 0.25  # share cut off at one side (faces leaving the frame, occlusion)
    camera: float = 0.45  # share filmed off a screen
    small_face: float = 0.5  # share shrunk to 16-48 px and scaled back up
    blur: float = 0.3
    jpeg: float = 0.6


def detector_framing(image: Image, surround: Image, rng: np.random.Generator) -> Image:
    """The report's crop around a box where a detector might put it on this face: a square of
    55-120% of the crop's side, off centre and a little low (the cascade's boxes sit low on anime
    faces). Where the crop reaches past the face, `surround` fills the scene around it: boxes of
    0.95-1.15 times the crop are what the cascade gives on the naming clips (crop.framed_in_scene)."""
    shift = (rng.uniform(-0.08, 0.08), rng.uniform(-0.04, 0.12))
    return framed_in_scene(image, surround, rng.uniform(0.55, 1.2), shift)


def partial_crop(image: Image, rng: np.random.Generator) -> Image:
    """A square window 60-85% of the side pushed against one edge: part of the face is cut off."""
    side = image.shape[0]
    window = int(side * rng.uniform(0.6, 0.85))
    free = side - window
    x, y = [int(v) for v in rng.integers(0, free + 1, 2)]
    edge = int(rng.integers(4))
    x = 0 if edge == 0 else free if edge == 1 else x
    y = 0 if edge == 2 else free if edge == 3 else y
    return np.ascontiguousarray(image[y : y + window, x : x + window])


def camera(image: Image, rng: np.random.Generator) -> Image:
    """A phone filming a screen: a tilted view, defocus, moiré, glare, a colour cast and noise.

    Glare (light off the screen's glass) lifts the blacks and flattens contrast; a phone's white
    balance tints the whole picture and its processing mutes colours. Both change every colour
    alike, so hair and eye colours keep their order: a cast, not a hue shift of one colour."""
    side = image.shape[0]
    corners = np.array([[0, 0], [side, 0], [side, side], [0, side]], np.float32)
    moved = (corners + rng.uniform(-0.08, 0.08, (4, 2)) * side).astype(np.float32)
    warp = cv2.getPerspectiveTransform(corners, moved)
    out = np.asarray(cv2.warpPerspective(image, warp, (side, side), borderMode=cv2.BORDER_REPLICATE), np.float32)
    radius = int(rng.integers(0, 4))
    if radius:
        disk = np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)), np.float32)
        out = np.asarray(cv2.filter2D(out, -1, disk / disk.sum()), np.float32)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(3.0, 9.0)
    moire = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    out *= 1 + rng.uniform(0.0, 0.12) * moire[..., None]
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * rng.uniform(0.6, 1.0)  # muted colours
    out = out * rng.uniform(0.7, 1.0) + rng.uniform(0, 60)  # glare: lifted blacks, less contrast
    out *= np.asarray(rng.uniform(0.85, 1.15, 3), np.float32)  # white balance: a tint of the whole picture
    out += np.asarray(rng.normal(0, rng.uniform(2, 9), out.shape), np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def small_face(image: Image, rng: np.random.Generator) -> Image:
    """A face 16-48 px high in the frame, scaled up again as the runtime does."""
    side = image.shape[0]
    small = int(rng.integers(16, 49))
    down = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(down, (side, side), interpolation=cv2.INTER_LINEAR), np.uint8)


def blur(image: Image, rng: np.random.Generator) -> Image:
    """Gaussian (focus, scaling) or a short motion streak (a face moving within one frame)."""
    if rng.random() < 0.5:
        return np.asarray(cv2.GaussianBlur(image, (0, 0), rng.uniform(0.6, 1.8)), np.uint8)
    length = int(rng.integers(3, 8))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1 / length
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
    kernel = np.asarray(cv2.warpAffine(kernel, rotation, (length, length)), np.float32)
    return np.asarray(cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6)), np.uint8)


def jpeg(image: Image, rng: np.random.Generator) -> Image:
    """Block artefacts and ringing at quality 15-60, as JPEG and low-rate H.264 leave them."""
    quality = int(rng.integers(15, 61))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR), np.uint8) if ok else image


def render(image: Image, surround: Image, rng: np.random.Generator,
           options: DegradeOptions = DegradeOptions()) -> Image:
    """One degraded copy of a square BGR face crop (any size; the result is square too);
    `surround` is a picture of any size for what a detector's crop may show around the face."""
    framing = rng.random()
    if framing < options.report_crop:
        image = detector_framing(image, surround, rng)
    elif framing < options.report_crop + options.partial_crop:
        image = partial_crop(image, rng)
    for share, step in ((options.camera, camera), (options.small_face, small_face),
                        (options.blur, blur), (options.jpeg, jpeg)):
        if rng.random() < share:
            image = step(image, rng)
    return image
