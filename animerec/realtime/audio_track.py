"""Carrying a source's audio tracks into an output file, a packet at a time, as the video advances.

Codecs that MP4 and browsers accept are remuxed untouched (no quality loss, almost no CPU); the
rest (PCM, Vorbis, AC-3, ...) are re-encoded to AAC. Subtitle and data tracks are dropped: MP4
cannot hold most subtitle formats and the overlay is the point of the output.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container.output import OutputContainer

from animerec.errors import InputError

log = logging.getLogger(__name__)

REMUXABLE = frozenset({"aac", "mp3", "opus", "flac"})  # in MP4 and played by current browsers
AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


class _Track:
    """One input audio track and its output stream: remuxed, or decoded and re-encoded to AAC."""

    def __init__(self, source: AudioStream, output: OutputContainer, shift_s: float) -> None:
        self.source = source
        codec = source.codec_context.codec.canonical_name  # "mp3", where the decoder is "mp3float"
        self.remux = codec in REMUXABLE
        self._shift_s = shift_s
        self._next_sample = 0
        if self.remux:
            self.stream = output.add_stream_from_template(source)
        else:
            rate = int(source.rate or 48000)
            self.stream = output.add_stream("aac", rate=rate)
            # A named layout for the channel count: AAC refuses unordered ones ("2 channels").
            channels = source.codec_context.channels
            self.stream.layout = AAC_LAYOUTS.get(channels, "stereo")
            log.info("re-encoding %s audio track %d to AAC", codec, source.index)

    def convert(self, packet: av.Packet) -> Iterator[av.Packet]:
        """The output packets for one input packet (None packet: flush the encoder)."""
        if self.remux:
            if packet.size == 0:  # the demuxer's end-of-stream marker carries no data
                return
            shift = round(self._shift_s / packet.time_base) if packet.time_base else 0
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.stream
            yield packet
            return
        for frame in self.source.decode(packet):
            if self._next_sample == 0 and frame.time is not None:
                # Keep the track's offset from the video's start; later frames follow on directly.
                self._next_sample = max(0, round((frame.time - self._shift_s) * frame.sample_rate))
            frame.pts = self._next_sample
            frame.time_base = Fraction(1, frame.sample_rate)
            self._next_sample += frame.samples
            yield from self.stream.encode(frame)

    def flush(self) -> Iterator[av.Packet]:
        if not self.remux:
            yield from self.stream.encode(None)


class AudioCarrier:
    """Every audio track of `source` into `output`, interleaved with the video by time.

    Construct it before the first packet is muxed (MP4 fixes its streams at the header). Times are
    measured from the start of the source's video stream, the origin of Frame.time.
    """

    def __init__(self, source: Path, output: OutputContainer) -> None:
        try:
            self._input = av.open(str(source))
        except (av.error.FFmpegError, OSError) as error:
            raise InputError(f"{source}: cannot read its audio ({error})") from error
        video = self._input.streams.video
        start = video[0].start_time if video else None
        base = video[0].time_base if video else None
        shift_s = float(start * base) if start is not None and base is not None else 0.0
        self._tracks: dict[int, _Track] = {}
        for stream in self._input.streams:
            if isinstance(stream, AudioStream):
                self._tracks[stream.index] = _Track(stream, output, shift_s)
            elif stream.type != "video":
                log.info("dropping %s track %d of %s: MP4 output keeps video and audio only",
                         stream.type, stream.index, source)
        self._shift_s = shift_s
        audio = [track.source for track in self._tracks.values()]
        self._packets: Iterator[av.Packet] = self._input.demux(*audio) if audio else iter(())
        self._waiting: av.Packet | None = None
        self._finished = not audio

    @property
    def track_count(self) -> int:
        return len(self._tracks)

    def packets_until(self, seconds: float, *, final: bool = False) -> Iterator[av.Packet]:
        """Output packets for the audio before `seconds` (video time); with `final`, also flush
        the encoders and drop whatever lies beyond, so the audio ends with the video."""
        while not self._finished:
            packet = self._waiting or self._next_packet()
            self._waiting = None
            if packet is None:
                break
            if packet.size and self._time(packet) >= seconds:
                if not final:
                    self._waiting = packet  # keep it for a later call
                break
            track = self._tracks.get(packet.stream.index)
            if track is not None:
                yield from track.convert(packet)
        if final:
            self._finished = True
            for track in self._tracks.values():
                yield from track.flush()

    def _next_packet(self) -> av.Packet | None:
        try:
            return next(self._packets)
        except StopIteration:
            return None
        except (av.error.FFmpegError, OSError) as error:  # damaged audio: keep what we have
            log.warning("audio copy stopped early: %s", error)
            return None

    def _time(self, packet: av.Packet) -> float:
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is None or packet.time_base is None:
            return float("-inf")  # no timestamp: send it with the packets around it
        return float(stamp * packet.time_base) - self._shift_s

    def close(self) -> None:
        self._input.close()
