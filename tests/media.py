"""Synthetic media for tests: videos whose frames carry their own index, with an optional tone.

Each frame has its index drawn twice: as text for a human looking at a failed test's output, and
as a row of black and white blocks (binary, most significant bit first) that survives H.264 at
any sane quality, so `read_index` can check order and count losses exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

INDEX_BITS = 12  # up to 4095 frames; a test video is never that long
_BAND = 10  # height of the block row, in pixels

FacePlacement = tuple[NDArray[np.uint8], tuple[int, int]]  # a BGR image and its top-left (x, y)


def draw_index(image: NDArray[np.uint8], index: int) -> NDArray[np.uint8]:
    """Draw `index` into the top band of `image` (in place) and return it."""
    width = image.shape[1]
    block = width // INDEX_BITS
    if block < 4:
        raise ValueError(f"frames need a width of at least {4 * INDEX_BITS} px to carry an index")
    for bit in range(INDEX_BITS):
        on = (index >> (INDEX_BITS - 1 - bit)) & 1
        image[:_BAND, bit * block : (bit + 1) * block] = 255 if on else 0
    cv2.putText(image, str(index), (2, _BAND + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
    return image


def read_index(image: NDArray[np.uint8]) -> int:
    """The index `draw_index` put into `image` (after any lossy encoding)."""
    block = image.shape[1] // INDEX_BITS
    grey = image[: _BAND, : block * INDEX_BITS].mean(axis=2) if image.ndim == 3 else image
    value = 0
    for bit in range(INDEX_BITS):
        centre = grey[2 : _BAND - 2, bit * block + 1 : (bit + 1) * block - 1].mean()
        value = (value << 1) | int(centre > 127)
    return value


def synthetic_frame(
    index: int,
    size: tuple[int, int] = (160, 120),
    *,
    draw: bool = True,
    faces: Sequence[FacePlacement] = (),
) -> NDArray[np.uint8]:
    """A BGR frame of `size` (width, height): a colour that changes with the index, optional
    pasted face images, and the index drawn in."""
    width, height = size
    image = np.empty((height, width, 3), np.uint8)
    image[:] = ((index * 7) % 200 + 30, (index * 13) % 200 + 30, 90)
    for face, (x, y) in faces:
        h = min(face.shape[0], height - y)
        w = min(face.shape[1], width - x)
        image[y : y + h, x : x + w] = face[:h, :w]
    return draw_index(image, index) if draw else image


def make_test_video(
    path: Path,
    frames: int = 30,
    size: tuple[int, int] = (160, 120),
    fps: int | Fraction = 30,
    *,
    audio: bool = True,
    draw_index: bool = True,
    faces: Sequence[FacePlacement] = (),
    sample_rate: int = 44100,
    channels: int = 2,
    tone_hz: float = 440.0,
    audio_codec: str = "aac",
    data_track: bool = False,
) -> Path:
    """Write an H.264 video (MP4, MKV or MOV by suffix) of `frames` synthetic frames and,
    with `audio`, a track of a sine tone (AAC, or `audio_codec`: "pcm_s16le" in MKV or MOV, ...)
    lasting exactly as long as the video.

    Odd sizes are encoded as yuv444p, which H.264 allows and yuv420p does not. `data_track` adds
    a KLV data stream with one packet (MPEG-TS, ".ts", holds one; MP4 does not).
    """
    width, height = size
    rate = Fraction(fps)
    options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
    with av.open(str(path), "w", container_options=options) as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height = width, height
        video.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        sound: av.audio.stream.AudioStream | None = None
        if audio:
            added = container.add_stream(audio_codec, rate=sample_rate)
            assert isinstance(added, av.audio.stream.AudioStream)
            added.layout = "stereo" if channels == 2 else "mono"
            sound = added
        if data_track:
            data = container.add_data_stream("klv")
            packet = av.Packet(b"animerec test data")
            packet.stream, packet.pts, packet.dts, packet.time_base = data, 0, 0, 1 / rate
            container.mux(packet)
        for index in range(frames):
            image = synthetic_frame(index, size, draw=draw_index, faces=faces)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            frame.time_base = 1 / rate
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            _write_tone(container, sound, float(frames / rate), sample_rate, channels, tone_hz)
    return path


def tone(seconds: float, sample_rate: int, channels: int, tone_hz: float) -> NDArray[np.float32]:
    """A sine tone sweeping up from `tone_hz` (twice that after one second), planar (channels,
    samples), each further channel a multiple of the first's frequency. The sweep makes it unlike itself at any
    shift, so a correlation with a copy shows the copy is aligned, not just periodic."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * tone_hz * (t + t * t / 2)
    return np.asarray([0.5 * np.sin(phase * (c + 1)) for c in range(channels)], np.float32)


def _write_tone(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    seconds: float,
    sample_rate: int,
    channels: int,
    tone_hz: float,
) -> None:
    samples = tone(seconds, sample_rate, channels, tone_hz)
    layout = "stereo" if channels == 2 else "mono"
    for start in range(0, samples.shape[1], 1024):
        chunk = np.ascontiguousarray(samples[:, start : start + 1024])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def decode_video(path: Path) -> list[tuple[NDArray[np.uint8], float]]:
    """Every frame of `path`'s first video stream as (BGR image, time in seconds)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (np.asarray(f.to_ndarray(format="bgr24"), np.uint8), float(f.time or 0.0))
            for f in container.decode(stream)
        ]


def decode_audio(path: Path) -> tuple[NDArray[np.float32], int]:
    """The first audio stream of `path`, planar float (channels, samples), and its sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = []
        for frame in container.decode(stream):
            samples = frame.to_ndarray().astype(np.float32)
            if not frame.format.is_planar:  # packed: one row of interleaved channels
                samples = samples.reshape(-1, len(frame.layout.channels)).T
            if frame.format.name.startswith("s16"):
                samples /= 32768.0
            chunks.append(samples)
        return np.concatenate(chunks, axis=1), int(stream.rate)
