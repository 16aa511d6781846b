"""The annotated-video sink: H.264 in MP4 that browsers play, with the source's audio carried over.

OpenCV's VideoWriter makes mp4v files browsers will not play and drops audio, so this writes
through PyAV: libx264 yuv420p, timestamps from each Frame's presentation time (so the output keeps
the source's timing, gaps included), and every audio track of the source remuxed when MP4 and
browsers take its codec, re-encoded to AAC otherwise, interleaved with the video as it is written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from animerec.errors import AnimerecError, InputError
from animerec.outputs import VIDEO_CONTAINERS, check_suffix
from animerec.realtime.audio_track import AudioCarrier
from animerec.realtime.protocols import SourceInfo
from animerec.records import AnnotatedFrame

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0  # for live sources that do not report a rate; timestamps still come from frames


def _frame_rate(fps: float) -> Fraction:
    """The exact rate behind a float: 29.97002997 is 30000/1001, 23.976 is 24000/1001."""
    if not fps or fps <= 0:
        return Fraction(int(DEFAULT_FPS))
    return Fraction(fps).limit_denominator(1001)


class VideoWriter:
    """A Sink writing `item.annotated` of each frame to an H.264 file at `path`.

    `info` gives the size and frame rate (odd sizes are padded to even by repeating the last row
    and column); `audio_from` is a media file whose audio tracks are carried over, cut where the
    video ends. The container follows `path`'s extension (VIDEO_CONTAINERS: others raise
    UsageError). Raises InputError when `path` cannot be written.
    """

    def __init__(
        self,
        path: Path,
        info: SourceInfo,
        *,
        audio_from: Path | None = None,
        crf: int = 23,
        preset: str = "veryfast",
    ) -> None:
        if info.width <= 0 or info.height <= 0:
            raise ValueError(f"VideoWriter needs the frame size, got {info.width}x{info.height}")
        check_suffix(path, VIDEO_CONTAINERS, "a video")
        container_format = VIDEO_CONTAINERS[path.suffix.lower()]
        self.path = path
        self.frames_written = 0
        self._size = (info.width, info.height)
        self._rate = _frame_rate(info.fps)
        self._last_pts = -1
        self._closed = False
        # faststart moves the index to the front, so a browser starts playing before the end loads
        options = {"movflags": "+faststart"} if container_format in ("mp4", "mov") else {}
        try:
            self._container = av.open(
                str(path), "w", format=container_format, container_options=options
            )
        except (av.error.FFmpegError, OSError) as error:
            raise InputError(f"cannot write {path}: {_reason(error)}") from error
        self._broken = False  # after a failed write FFmpeg must not be asked to write again
        self._audio: AudioCarrier | None = None
        try:
            self._stream = self._add_video_stream(crf, preset)
            self._audio = AudioCarrier(audio_from, self._container) if audio_from else None
            # Writing the header now opens the file, so a bad path fails here and not at frame 1.
            self._container.start_encoding()
        except (av.error.FFmpegError, OSError) as error:
            self._abandon()
            raise InputError(f"cannot write {path}: {_reason(error)}") from error
        except BaseException:
            self._abandon()
            raise

    def _add_video_stream(self, crf: int, preset: str) -> av.video.stream.VideoStream:
        stream = self._container.add_stream("libx264", rate=self._rate)
        stream.width, stream.height = (side + side % 2 for side in self._size)
        stream.pix_fmt = "yuv420p"  # the only chroma layout every browser decodes
        stream.codec_context.time_base = 1 / self._rate
        stream.options = {"crf": str(crf), "preset": preset}
        return stream

    def write(self, item: AnnotatedFrame) -> None:
        """Encode one frame at the time its source gave it, and the audio up to that time."""
        if self._closed or self._broken:
            raise AnimerecError(f"{self.path}: write after close or after a failed write")
        frame = av.VideoFrame.from_ndarray(self._fit(item.annotated), format="bgr24")
        # Timestamps must rise strictly: frames closer than one tick apart get the next tick.
        pts = max(round(item.frame.time * self._rate), self._last_pts + 1)
        frame.pts = pts
        frame.time_base = 1 / self._rate
        self._last_pts = pts
        self._mux(self._stream.encode(frame))
        if self._audio is not None:
            self._mux(self._audio.packets_until(float(pts / self._rate)))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder, finish the audio and finalise the file; safe to call twice and
        after Ctrl-C, so whatever was written is a valid, playable file."""
        if self._closed:
            return
        if self._broken:
            self._abandon()
            return
        self._closed = True
        try:
            self._mux(self._stream.encode(None))
            if self._audio is not None:
                end = float((self._last_pts + 1) / self._rate) if self.frames_written else 0.0
                self._mux(self._audio.packets_until(end, final=True))
        finally:
            if self._audio is not None:
                self._audio.close()
            try:
                self._container.close()
            except (av.error.FFmpegError, OSError) as error:
                raise AnimerecError(f"cannot finish {self.path}: {_reason(error)}") from error

    def _fit(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        width, height = self._size
        fitted: NDArray[Any] = image
        if (image.shape[1], image.shape[0]) != (width, height):
            fitted = cv2.resize(fitted, (width, height), interpolation=cv2.INTER_AREA)
        if width % 2 or height % 2:
            fitted = cv2.copyMakeBorder(fitted, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(fitted, np.uint8)

    def _mux(self, packets: Iterable[av.Packet]) -> None:
        try:
            for packet in packets:
                self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as error:
            self._broken = True
            raise AnimerecError(f"cannot write {self.path}: {_reason(error)}") from error

    def _abandon(self) -> None:
        """Release FFmpeg's resources without encoding anything more: muxing again after a
        failed write crashes FFmpeg, closing does not."""
        self._closed = True
        if self._audio is not None:
            self._audio.close()
        with contextlib.suppress(av.error.FFmpegError, OSError):
            self._container.close()


def _reason(error: BaseException) -> str:
    strerror = getattr(error, "strerror", None)
    return str(strerror or error)
