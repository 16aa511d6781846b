"""Training images for the learned detector (issue 12, item 2): faces with exact boxes over real frames.

A composite is a frame of a training clip with face crops of the training identities pasted on it,
each at a side drawn log-uniformly from 24-400 px (as seen in a 720p frame), blended in through a
soft alpha edge so the paste's border is no cue; its label is the pasted rectangle (the crops are
roughly head boxes, which is what FaceBoxes predicts). As many decoys (patches of other background
frames, or fractal-noise clouds) are pasted the same way and stay background: without them, trees
and buildings that stand out from their surroundings became faces (4.6 false boxes per frame on a
held-aside clip). Lettering (subtitles, signs, shirt prints) is drawn on some frames as background:
without it, big letters and subtitles were the detector's most confident false faces. Some
faces and decoys get the training degradations (degrade.py: camera, small face, blur, JPEG);
some whole frames blur, JPEG, or look filmed off a
screen (`filmed`: degrade.camera's look without its tilt, so the boxes stay exact). A share of
the composites are mosaics of downscaled ones, so faces that were large appear small.

Backgrounds are frames of the training clips and whole illustrations of the training identities.
Faces already drawn in them carry no labels: the pretrained FaceBoxes (at 1080
rows, score >= 0.9) and the cascade (full resolution) find them first (`PseudoLabeller`). The
FaceBoxes boxes train as faces; the cascade's, whose head box is only estimated, are ignored (the
anchors on them learn neither face nor background), so the network is never taught that a real
face is background. The test clips' backgrounds (digimon, patorn_taki) are never used here.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.media import every_nth_frame
from animerec.paths import PRETRAINED_FACEBOXES_PATH
from animerec.recognition.detector import CascadeDetector, CascadeSettings
from animerec.recognition.faceboxes import iou_matrix
from animerec.recognition.images import cover, load_image
from animerec.recognition.learned_detector import LearnedDetector, LearnedSettings
from animerec.train import degrade
from animerec.train.identities import Identity, IdentitySplit, identity_faces, load_identity_split

Image = NDArray[np.uint8]
Boxes = NDArray[np.float32]  # (n, 4): x, y, w, h in pixels
TRAINING_VIDEOS = ("jjk_gojo_tas_1080p.mp4", "konobi_s01e007__000282_input.mp4", "kon_taoky_report.gif")
WIDTH, HEIGHT = 1280, 720
SMALLEST_FACE = 20  # a face shrunk below this by a mosaic is ignored: too small to ask for


def no_boxes() -> Boxes:
    return np.zeros((0, 4), np.float32)


@dataclass(frozen=True)
class Composite:
    """A training image: `faces` are trained as faces; `ignore` regions are neither face nor background."""

    image: Image
    faces: Boxes
    ignore: Boxes


@dataclass(frozen=True)
class CompositeOptions:
    faces: tuple[int, int] = (1, 8)  # faces pasted per frame, inclusive
    decoys: tuple[int, int] = (1, 8)  # background patches pasted the same way, labelled background
    sides: tuple[int, int] = (24, 400)  # pasted side in pixels, log-uniform
    feather: tuple[float, float] = (0.03, 0.12)  # width of the soft edge, as a share of the side
    degraded_faces: float = 0.4  # share of faces put through degrade.render before pasting
    frame_blur: float = 0.15
    frame_jpeg: float = 0.4
    frame_camera: float = 0.35  # the whole frame filmed off a screen (`filmed`)
    mosaic: float = 0.3  # share of composites made of 2x2 or 3x3 downscaled composites
    clouds: float = 0.3  # share of decoys that are fractal-noise clouds rather than background patches
    lettering: tuple[int, int] = (0, 3)  # texts drawn per frame (subtitle lines or sign letters), inclusive


# (share, step) of degrade.py's steps for a face crop: the same chain as its `render`, less the framing.
FACE_DEGRADATIONS = ((0.4, degrade.camera), (0.3, degrade.small_face), (0.3, degrade.blur), (0.5, degrade.jpeg))


def video_frames(path: Path, step: int) -> list[Image]:
    """Every `step`-th frame of a video or GIF, covering WIDTH x HEIGHT."""
    return [cover(frame, WIDTH, HEIGHT) for _, frame in every_nth_frame(path, step)]


class PseudoLabeller:
    """The faces already drawn in a background frame: confident FaceBoxes heads, and the cascade's
    faces that none of them covers (as ignore regions)."""

    def __init__(self, model: Path = PRETRAINED_FACEBOXES_PATH) -> None:
        settings = LearnedSettings(model=model, score_threshold=0.9, input_height=1080, device="cpu")
        self.learned = LearnedDetector(settings, warmup=False)
        self.cascade = CascadeDetector(CascadeSettings(working_height=0))

    def label(self, frame: Image) -> Composite:
        heads = self.learned.detect_heads(frame).boxes.astype(np.float32)
        cascade = self.learned.geometry.to_head(self.cascade.detect(frame))
        if len(heads) and len(cascade):
            cascade = cascade[iou_matrix(cascade, heads).max(axis=1) <= 0.3]
        return Composite(frame, heads.reshape(-1, 4), cascade)


def feathered_alpha(side: int, feather: float) -> NDArray[np.float32]:
    """(side, side, 1) opacity: 1 inside, falling linearly to 0 over the outer `feather` pixels."""
    ramp = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32) + 0.5
    edge = np.minimum(ramp[:, None], ramp[None, :]) / max(feather, 1.0)
    return np.clip(edge, 0.0, 1.0)[..., None]


def _free_spot(side: int, width: int, height: int, taken: Boxes, rng: np.random.Generator,
               ) -> NDArray[np.float64] | None:
    """A side x side box inside width x height covering little of any taken box; None after 20 tries."""
    for _attempt in range(20):
        x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        box = np.array([x, y, side, side], np.float64)
        if not _overlaps(box, taken, 0.15):
            return box
    return None


def _overlaps(box: NDArray[np.float64], taken: Boxes, share: float) -> bool:
    """Whether `box` covers more than `share` of the smaller of itself and any taken box."""
    if not len(taken):
        return False
    low = np.maximum(box[:2], taken[:, :2])
    high = np.minimum(box[:2] + box[2:], taken[:, :2] + taken[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    smaller = np.minimum(box[2] * box[3], taken[:, 2] * taken[:, 3])
    return bool((inter > share * smaller).any())


class Compositor:
    """Pastes training faces over pseudo-labelled background frames; one seed, one sequence."""

    def __init__(self, faces: Sequence[Image], backgrounds: Sequence[Composite],
                 options: CompositeOptions = CompositeOptions()) -> None:
        if not faces or not backgrounds:
            raise ValueError("composites need at least one face crop and one background frame")
        self.faces, self.backgrounds, self.options = tuple(faces), tuple(backgrounds), options

    def render(self, count: int, seed: int) -> list[Composite]:
        rng = np.random.default_rng(seed)
        return [self.mosaic(rng) if rng.random() < self.options.mosaic else self.composite(rng) for _ in range(count)]

    def composite(self, rng: np.random.Generator) -> Composite:
        """One background frame with faces and decoys pasted at free spots (nothing hides a face)."""
        o = self.options
        background = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        image = background.image.copy()
        height, width = image.shape[:2]
        pasted: list[NDArray[np.float64]] = []
        taken = np.concatenate([background.faces, background.ignore])
        for _text in range(int(rng.integers(o.lettering[0], o.lettering[1] + 1))):
            draw_lettering(image, taken, rng)
        faces, decoys = (int(rng.integers(low, high + 1)) for low, high in (o.faces, o.decoys))
        for is_face in rng.permutation([True] * faces + [False] * decoys):
            side = int(np.exp(rng.uniform(np.log(o.sides[0]), np.log(min(o.sides[1], height, width)))))
            box = _free_spot(side, width, height, taken, rng)
            if box is None:
                continue
            self._paste(image, box, self._face(rng) if is_face else self._decoy(side, rng), rng)
            taken = np.concatenate([taken, box[np.newaxis].astype(np.float32)])
            if is_face:
                pasted.append(box)
        found = np.concatenate([background.faces, np.asarray(pasted, np.float32).reshape(-1, 4)])
        return Composite(self._degrade_frame(image, rng), found, background.ignore)

    def _face(self, rng: np.random.Generator) -> Image:
        return self.faces[int(rng.integers(len(self.faces)))]

    def _decoy(self, side: int, rng: np.random.Generator) -> Image:
        """A patch of a background frame away from its known faces. Pasted like a face but labelled
        background, it keeps the paste itself (a region unlike its surroundings) from meaning "face"."""
        if rng.random() < self.options.clouds:
            return clouds(side, rng)
        source = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        height, width = source.image.shape[:2]
        side = min(side, height, width)
        box = _free_spot(side, width, height, np.concatenate([source.faces, source.ignore]), rng)
        x, y = (0, 0) if box is None else (int(box[0]), int(box[1]))
        return source.image[y : y + side, x : x + side]

    def mosaic(self, rng: np.random.Generator) -> Composite:
        """An n x n grid (n = 2 or 3) of composites shrunk by n: every face n times smaller."""
        n = int(rng.integers(2, 4))
        parts = [self.composite(rng) for _ in range(n * n)]
        tile_h, tile_w = (side // n for side in parts[0].image.shape[:2])
        image = np.zeros((tile_h * n, tile_w * n, 3), np.uint8)
        faces: list[Boxes] = []
        ignore: list[Boxes] = []
        for k, part in enumerate(parts):
            top, left = (k // n) * tile_h, (k % n) * tile_w
            image[top : top + tile_h, left : left + tile_w] = cv2.resize(part.image, (tile_w, tile_h),
                                                                         interpolation=cv2.INTER_AREA)
            sx, sy = tile_w / part.image.shape[1], tile_h / part.image.shape[0]
            scale, shift = np.array([sx, sy, sx, sy], np.float32), np.array([left, top, 0, 0], np.float32)
            faces.append((part.faces * scale + shift).astype(np.float32))
            ignore.append((part.ignore * scale + shift).astype(np.float32))
        every_face = np.concatenate(faces)
        small = every_face[:, 2] < SMALLEST_FACE
        return Composite(image, every_face[~small], np.concatenate([*ignore, every_face[small]]))

    def _paste(self, image: Image, box: NDArray[np.float64], crop: Image, rng: np.random.Generator) -> None:
        """Degraded (maybe), mirrored (maybe), resized into `box` and blended in through a soft edge."""
        x, y, side = int(box[0]), int(box[1]), int(box[2])
        if rng.random() < self.options.degraded_faces:
            for share, step in FACE_DEGRADATIONS:
                crop = step(crop, rng) if rng.random() < share else crop
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        face = cv2.resize(np.ascontiguousarray(crop), (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        alpha = feathered_alpha(side, side * rng.uniform(*self.options.feather))
        region = image[y : y + side, x : x + side].astype(np.float32)
        image[y : y + side, x : x + side] = np.round(alpha * face + (1 - alpha) * region).astype(np.uint8)

    def _degrade_frame(self, image: Image, rng: np.random.Generator) -> Image:
        o = self.options
        if rng.random() < o.frame_camera:
            image = filmed(image, rng)
        if rng.random() < o.frame_blur:
            image = degrade.blur(image, rng)
        if rng.random() < o.frame_jpeg:
            image = degrade.jpeg(image, rng)
        return image


FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX)


def draw_lettering(image: Image, keep_clear: Boxes, rng: np.random.Generator) -> None:
    """Text drawn on the frame where it covers no face: either a subtitle line (small, light,
    outlined, in the lower part) or a sign word (2-5 capitals, 40-260 px high, any colour)."""
    height, width = image.shape[:2]
    font = FONTS[int(rng.integers(len(FONTS)))]
    subtitle = rng.random() < 0.5
    if subtitle:
        words = [_word(rng, string.ascii_letters, 2, 8) for _ in range(int(rng.integers(1, 5)))]
        text, letter_height = " ".join(words), rng.uniform(10, 40)
        fill = [255, 255, 255] if rng.random() < 0.7 else [80, 235, 255]
    else:
        text, letter_height = _word(rng, string.ascii_uppercase + string.digits, 2, 5), rng.uniform(40, 260)
        fill = [int(v) for v in rng.integers(0, 256, 3)]
    scale = letter_height / cv2.getTextSize("H", font, 1.0, 1)[0][1]
    thickness = max(1, int(scale * rng.uniform(0.8, 2.5)))
    (text_width, text_height), base = cv2.getTextSize(text, font, scale, thickness)
    if text_width >= width or text_height + base >= height:
        return
    x = int(rng.integers(0, width - text_width))
    y = int(rng.integers(max(text_height, height * 3 // 4 if subtitle else 0), height - base))
    area = np.array([x, y - text_height, text_width, text_height + base], np.float64)
    if _overlaps(area, keep_clear, 0.0):
        return
    if subtitle or rng.random() < 0.3:  # an outline, as subtitles and printed signs have
        cv2.putText(image, text, (x, y), font, scale, (0, 0, 0), thickness + max(2, thickness // 2), cv2.LINE_AA)
    cv2.putText(image, text, (x, y), font, scale, fill, thickness, cv2.LINE_AA)


def _word(rng: np.random.Generator, letters: str, shortest: int, longest: int) -> str:
    return "".join(letters[int(k)] for k in rng.integers(len(letters), size=int(rng.integers(shortest, longest + 1))))


def clouds(side: int, rng: np.random.Generator) -> Image:
    """A side x side patch of fractal-noise clouds between a sky colour and a light one."""
    noise = np.zeros((side, side), np.float32)
    for cells, weight in ((3, 0.5), (6, 0.25), (12, 0.15), (24, 0.1)):
        coarse = rng.random((cells, cells)).astype(np.float32)
        noise += weight * cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)
    noise = np.clip((noise - noise.min()) / max(float(np.ptp(noise)), 1e-6), 0, 1)[..., None]
    sky = rng.uniform([120, 60, 40], [255, 200, 255])  # BGR: blues, purples, dusk oranges
    light = rng.uniform(190, 255, 3)
    return np.clip(sky * (1 - noise) + light * noise, 0, 255).astype(np.uint8)


def filmed(image: Image, rng: np.random.Generator) -> Image:
    """degrade.camera's look over a whole frame, less its tilt (boxes must stay exact): defocus,
    moiré, a colour cast, washed-out blacks and sensor noise."""
    radius = int(rng.integers(0, 3))
    out = image.astype(np.float32)
    if radius:
        disk = np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)), np.float32)
        out = np.asarray(cv2.filter2D(out, -1, disk / disk.sum()), np.float32)
    yy, xx = np.mgrid[0 : out.shape[0], 0 : out.shape[1]].astype(np.float32)
    angle, period = rng.uniform(0, np.pi), rng.uniform(3.0, 9.0)
    moire = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    out *= 1 + rng.uniform(0.0, 0.08) * moire[..., None]
    out = out * rng.uniform(0.75, 1.0) + rng.uniform(0, 30)  # a screen never shows deep blacks
    out *= np.asarray(rng.uniform(0.88, 1.1, 3), np.float32)
    out += np.asarray(rng.normal(0, rng.uniform(2, 8), out.shape), np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def random_crop(composite: Composite, width: int, height: int, rng: np.random.Generator) -> Composite:
    """A width x height window (grey where the image is smaller), maybe mirrored. A face trains when
    at least half of it is inside the window; a face cut to less is ignored, not called background."""
    image = composite.image
    left = int(rng.integers(0, max(1, image.shape[1] - width + 1)))
    top = int(rng.integers(0, max(1, image.shape[0] - height + 1)))
    window = np.full((height, width, 3), 117, np.uint8)
    part = image[top : top + height, left : left + width]
    window[: part.shape[0], : part.shape[1]] = part
    faces, face_share = _shift_clip(composite.faces, left, top, width, height)
    ignore, ignore_share = _shift_clip(composite.ignore, left, top, width, height)
    trained = face_share >= 0.5
    ignore = np.concatenate([ignore[ignore_share > 0], faces[~trained & (face_share > 0)]])
    faces = faces[trained]
    if rng.random() < 0.5:
        window = np.ascontiguousarray(window[:, ::-1])
        faces, ignore = _mirror(faces, width), _mirror(ignore, width)
    return Composite(window, faces, ignore)


def _shift_clip(boxes: Boxes, left: int, top: int, width: int, height: int) -> tuple[Boxes, NDArray[np.float32]]:
    """Boxes in window coordinates, clipped to it, and the share of each box's area left inside."""
    origin = np.array([left, top], np.float32)
    low = np.clip(boxes[:, :2] - origin, 0, [width, height])
    high = np.clip(boxes[:, :2] + boxes[:, 2:] - origin, 0, [width, height])
    area = np.maximum(boxes[:, 2] * boxes[:, 3], 1e-6)
    return (np.concatenate([low, high - low], axis=1).astype(np.float32),
            (np.prod(high - low, axis=1) / area).astype(np.float32))


def _mirror(boxes: Boxes, width: int) -> Boxes:
    flipped = boxes.copy()
    flipped[:, 0] = width - boxes[:, 0] - boxes[:, 2]
    return flipped


def training_faces(split: IdentitySplit, count: int, rng: np.random.Generator) -> list[Image]:
    """`count` face crops drawn evenly over the files of the manifest's training identities: the
    named characters' training posts and the extra identities (calibration ones excluded by the
    split; danbooru6 and the validation posts are never in it). Illustrations are cut by the cascade."""
    files = [(identity, path) for identity in (*split.named, *split.extra) for path in identity.files]
    chosen = sorted(int(k) for k in rng.choice(len(files), size=min(count, len(files)), replace=False))
    by_identity: dict[Identity, list[Path]] = {}
    for k in chosen:
        by_identity.setdefault(files[k][0], []).append(files[k][1])
    cascade = CascadeDetector()
    return [face for identity, paths in by_identity.items()
            for face in identity_faces(Identity(identity.name, tuple(paths), identity.detect), cascade)]


def illustrations(split: IdentitySplit, count: int, backdrops: Sequence[Image], rng: np.random.Generator,
                  ) -> list[Image]:
    """`count` whole illustrations of the training identities (the `detect` ones), each scaled to fit
    a frame and laid over one of `backdrops`: hands, bodies, lettering and scenery that three clips
    never show as background. Whole, not cut to fill the frame: a face cut in half escapes the
    pseudo-labels and would be taught as background."""
    files = [path for identity in split.extra if identity.detect for path in identity.files]
    chosen = sorted(int(k) for k in rng.choice(len(files), size=min(count, len(files)), replace=False))
    framed = []
    for k in chosen:
        image = load_image(files[k])
        scale = min(WIDTH / image.shape[1], HEIGHT / image.shape[0])
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        frame = backdrops[int(rng.integers(len(backdrops)))].copy()
        left, top = int(rng.integers(0, WIDTH - size[0] + 1)), (HEIGHT - size[1]) // 2
        frame[top : top + size[1], left : left + size[0]] = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        framed.append(frame)
    return framed


def render_composites(data: Path, count: int, seed: int, face_pool: int = 1500, frame_step: int = 3,
                      illustration_count: int = 150) -> list[Composite]:
    """The training set: `count` composites of `face_pool` training faces over every `frame_step`-th
    frame of the TRAINING_VIDEOS and `illustration_count` illustrations, all pseudo-labelled."""
    rng = np.random.default_rng(seed)
    split = load_identity_split(root=data)
    faces = training_faces(split, face_pool, rng)
    frames = [frame for name in TRAINING_VIDEOS for frame in video_frames(data / "videos" / name, frame_step)]
    frames += illustrations(split, illustration_count, frames, rng)
    labeller = PseudoLabeller()
    return Compositor(faces, [labeller.label(frame) for frame in frames]).render(count, seed)
