"""One typed configuration tree: frozen dataclasses, a default and a range for every field.

Loaded from a TOML file plus `--set section.key=value` overrides. An unknown section or key, a
value of the wrong type or out of range is a `UsageError` that names the field, e.g.
"pipeline.max_batch must be between 1 and 256, got 0". Each stage receives only its own section.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, published as tomli
    import tomli as tomllib

from animerec.errors import UsageError
from animerec.paths import FACEBOXES_PATH
from animerec.recognition.detector import CascadeSettings
from animerec.recognition.learned_detector import LearnedSettings
from animerec.recognition.second_look import SecondLookSettings


def _f(default: Any, low: float | None = None, high: float | None = None, *,
       choices: tuple[str, ...] = (), unit: str = "") -> Any:
    """A field with its default, its allowed range (inclusive) or choices, and its unit."""
    return field(default=default, metadata={"low": low, "high": high, "choices": choices, "unit": unit})


class Section:
    """Checks every field against its metadata when built; errors name `section.field`."""

    NAME = ""

    def __post_init__(self) -> None:
        for spec in fields(self):  # type: ignore[arg-type]
            value = _check(f"{self.NAME}.{spec.name}", getattr(self, spec.name), spec.default, spec.metadata)
            object.__setattr__(self, spec.name, value)  # an int given for a float becomes a float


def _check(name: str, value: Any, default: Any, meta: Any) -> Any:
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise UsageError(f"{name} must be {kind.__name__}, got {value!r}")
    low, high, choices = meta.get("low"), meta.get("high"), meta.get("choices")
    if choices and value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    if low is not None and high is not None and not low <= value <= high:
        raise UsageError(f"{name} must be between {low} and {high}, got {value}")
    return value


DETECTOR_KINDS = ("cascade", "learned", "both")


@dataclass(frozen=True)
class DetectorConfig(Section):
    """Which detector runs (`kind`: the LBP cascade, the learned FaceBoxes detector, or both merged),
    the cascade's settings (sizes in source pixels; its working height is in `pipeline`), then the
    learned detector's (`learned_*`; its input height is its own)."""

    NAME = "detector"
    kind: str = _f("both", choices=DETECTOR_KINDS)
    scale_factor: float = _f(1.1, 1.01, 2.0)
    min_neighbors: int = _f(5, 0, 50)
    min_size: int = _f(24, 1, 4096, unit="px")
    max_size: int = _f(0, 0, 8192, unit="px")  # 0 = no limit
    equalize: bool = _f(True)
    learned_model: str = _f("")  # "" = the bundled faceboxes_anime_tuned.onnx
    learned_threshold: float = _f(0.5, 0.01, 0.99)  # least face probability kept
    learned_nms_iou: float = _f(0.3, 0.01, 1.0)
    learned_height: int = _f(720, 0, 4320, unit="px")  # frames resized to this for the network; 0 = as is
    learned_threads: int = _f(1, 1, 16)  # ONNX Runtime threads per detector thread
    learned_device: str = _f("auto", choices=("auto", "cpu", "cuda"))
    # Each new learned box is looked at again, zoomed so it is `confirm_side` px wide, and kept only
    # where the learned detector finds it there with at least `confirm_threshold` (0 = no second look).
    confirm_threshold: float = _f(0.7, 0.0, 0.99)
    confirm_side: int = _f(256, 32, 1024, unit="px")


@dataclass(frozen=True)
class ClassifierConfig(Section):
    NAME = "classifier"
    model: str = _f("")  # "" = the bundled model
    device: str = _f("auto", choices=("auto", "cpu", "cuda"))
    top_k: int = _f(3, 1, 10)
    gallery: str = _f("")  # enrolled characters; "" = the default gallery when it exists
    # The "unknown" threshold: a cosine similarity for a calibrated model, a max-probability for
    # one without calibration; -1 = the threshold calibrated into the model.
    unknown_threshold: float = _f(-1.0, -1.0, 1.0)

    def gallery_path(self) -> Path | None:
        return Path(self.gallery).expanduser() if self.gallery else None

    def threshold(self) -> float | None:
        return None if self.unknown_threshold == -1.0 else self.unknown_threshold


@dataclass(frozen=True)
class PipelineConfig(Section):
    NAME = "pipeline"
    detector_threads: int = _f(2, 1, 16)  # files: frames detected at once, for throughput
    # Live sources: a frame's latency is its own detection time, so by default one frame at a time,
    # with the whole machine (the cascade alone on OpenCV's pool; with `both`, one core each).
    live_detector_threads: int = _f(1, 1, 16)
    max_batch: int = _f(16, 1, 256, unit="crops")
    max_wait_ms: float = _f(20.0, 0.0, 1000.0, unit="ms")  # files; live sources never wait
    frame_queue: int = _f(4, 1, 256, unit="frames")  # before detection: the one that drops (live)
    result_queue: int = _f(8, 1, 256, unit="frames")  # between the later stages: always blocks
    working_height: int = _f(360, 0, 4320, unit="px")  # 0 = detect at full resolution
    dedup_threshold: float = _f(1.5, 0.0, 255.0, unit="grey levels")  # 0 = off
    max_reuse: int = _f(12, 0, 10000, unit="frames")  # fresh detection after this many reuses
    # Live sources only: a frame that waited longer than this for a detector takes the newest
    # detections instead of running the cascade, so a burst never queues up latency (0 = off).
    late_frame_ms: float = _f(20.0, 0.0, 10000.0, unit="ms")


@dataclass(frozen=True)
class TrackerConfig(Section):
    NAME = "tracker"
    iou_threshold: float = _f(0.3, 0.01, 1.0)
    max_misses: int = _f(2, 0, 1000, unit="frames")
    reclassify_growth: float = _f(0.2, 0.0, 100.0)  # box area growth that triggers a new look
    reclassify_every: int = _f(15, 1, 100000, unit="frames")  # once named; undecided tracks: every frame


@dataclass(frozen=True)
class OverlayConfig(Section):
    NAME = "overlay"
    top3: bool = _f(False)  # the runners-up under each name: clutter in a busy scene, so opt-in
    show_track: bool = _f(True)
    status_line: bool = _f(True)  # FPS, latency, provider, drops; live sources only
    font_size: int = _f(16, 6, 128, unit="px")
    thickness: int = _f(2, 1, 20, unit="px")
    font: str = _f("")  # a TrueType/OpenType file; "" = search the system


@dataclass(frozen=True)
class ServerConfig(Section):
    NAME = "server"
    host: str = _f("127.0.0.1")
    port: int = _f(8765, 0, 65535)
    token: str = _f("")
    client_queue: int = _f(4, 1, 1024, unit="messages")
    # So that idle sockets cannot starve the overlay (animerec/server/connections.py): past a
    # limit the longest-idle connection is closed; a connection with no request in progress
    # (headers still arriving, an idle keep-alive) is closed after idle_timeout_s.
    max_connections: int = _f(128, 1, 100000, unit="connections")
    max_connections_per_address: int = _f(32, 1, 100000, unit="connections")
    idle_timeout_s: float = _f(10.0, 0.1, 3600.0, unit="s")


SECTIONS: dict[str, type[Section]] = {
    "detector": DetectorConfig,
    "classifier": ClassifierConfig,
    "pipeline": PipelineConfig,
    "tracker": TrackerConfig,
    "overlay": OverlayConfig,
    "server": ServerConfig,
}


@dataclass(frozen=True)
class Config:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    overlay: OverlayConfig = field(default_factory=OverlayConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

    def cascade_settings(self) -> CascadeSettings:
        """The detector section plus the pipeline's working height, as the detector takes them."""
        d = self.detector
        if d.max_size and d.max_size < d.min_size:
            raise UsageError("detector.max_size must be 0 or at least detector.min_size")
        return CascadeSettings(
            scale_factor=d.scale_factor,
            min_neighbors=d.min_neighbors,
            min_size=d.min_size,
            max_size=d.max_size,
            working_height=self.pipeline.working_height,
            equalize=d.equalize,
        )

    def learned_settings(self) -> LearnedSettings:
        """The detector section's `learned_*` keys, as the learned detector takes them."""
        d = self.detector
        return LearnedSettings(
            model=Path(d.learned_model) if d.learned_model else FACEBOXES_PATH,
            score_threshold=d.learned_threshold,
            nms_iou=d.learned_nms_iou,
            input_height=d.learned_height,
            threads=d.learned_threads,
            device=d.learned_device,
        )

    def second_look_settings(self) -> SecondLookSettings:
        """The detector section's `confirm_*` keys, as the learned detector's second look takes them."""
        return SecondLookSettings(threshold=self.detector.confirm_threshold, side=self.detector.confirm_side)

    def model_path(self) -> Path:
        from animerec.paths import DEFAULT_MODEL_PATH

        return Path(self.classifier.model) if self.classifier.model else DEFAULT_MODEL_PATH


# The defaults of the commands that read still images (predict, enroll): they detect at full
# resolution (CONTRACTS.md); --working-height or pipeline.working_height can still lower it.
STILL_IMAGES = Config(pipeline=PipelineConfig(working_height=0))


def from_dict(data: dict[str, Any], base: Config | None = None) -> Config:
    """Apply `{section: {key: value}}` on top of `base` (defaults when None)."""
    config = base or Config()
    for section, values in data.items():
        if section not in SECTIONS:
            raise UsageError(f"unknown configuration section {section!r} (known: {', '.join(SECTIONS)})")
        if not isinstance(values, dict):
            raise UsageError(f"configuration section {section!r} must be a table")
        cls = SECTIONS[section]
        known = {spec.name for spec in fields(cls)}  # type: ignore[arg-type]
        values = {key: value for key, value in values.items() if not _retired(section, key)}
        for key in values:
            if key not in known:
                raise UsageError(f"unknown configuration key {section}.{key}")
        current = getattr(config, section)
        config = replace(config, **{section: replace(current, **values)})
    return config


# Keys a release removed: still accepted for one release, with a warning, so that a user's file
# keeps working (the contract for changed interfaces); key -> what replaced it.
RETIRED_KEYS = {
    "tracker.vote_alpha": "a track's name now comes from the plain mean of all its looks (no moving average)",
}


def _retired(section: str, key: str) -> bool:
    reason = RETIRED_KEYS.get(f"{section}.{key}")
    if reason is not None:
        print(f"animerec: warning: {section}.{key} is no longer used and is ignored: {reason}", file=sys.stderr)
    return reason is not None


def parse_override(text: str) -> tuple[str, str, Any]:
    """`section.key=value` -> (section, key, value); the value is read as TOML, else as a string."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise UsageError(f"--set wants section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # a bare word such as cpu or a path
    return section, key.strip(), value


def load_config(path: str | Path | None = None, overrides: Sequence[str] = (), base: Config | None = None) -> Config:
    """Defaults (`base`, else Config()), then the TOML file at `path`, then each `section.key=value`
    override."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as error:
            raise UsageError(f"cannot read configuration {path}: {error.strerror or error}") from error
        except tomllib.TOMLDecodeError as error:
            raise UsageError(f"configuration {path} is not valid TOML: {error}") from error
    config = from_dict(data, base)
    for text in overrides:
        section, key, value = parse_override(text)
        config = from_dict({section: {key: value}}, config)
    return config


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """The flags every pipeline command shares; they override the file's values when given."""
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        dest="overrides", help="override one configuration value (repeatable)")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled one)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"),
                        help="where to run the ONNX models, the classifier and the learned detector "
                             "(classifier.device, detector.learned_device)")
    add_detector_arg(parser)
    parser.add_argument("--detector-threads", type=int, metavar="N",
                        help="frames detected at once (default: 2 for files, 1 for live sources)")
    parser.add_argument("--working-height", type=int, metavar="PX",
                        help="detect on frames scaled to this height (0 = full resolution)")


def add_detector_arg(parser: argparse.ArgumentParser, default: str = "detector.kind, both") -> None:
    """`--detector`, for every command that detects faces (add_config_args includes it)."""
    parser.add_argument("--detector", choices=DETECTOR_KINDS,
                        help="face detector: the LBP cascade, the learned FaceBoxes, or both merged "
                             f"(default: {default})")


def add_naming_args(parser: argparse.ArgumentParser) -> None:
    """How faces are named: enrolled characters and the unknown threshold (classifier section)."""
    from animerec.recognition.gallery import default_gallery_path

    parser.add_argument("--gallery", type=Path, metavar="PATH",
                        help=f"enrolled characters (default: {default_gallery_path()} when it exists)")
    parser.add_argument("--unknown-threshold", type=float, metavar="T",
                        help="override the model's calibrated unknown threshold (a cosine similarity)")


def add_overlay_args(parser: argparse.ArgumentParser) -> None:
    """What the commands that draw put under each face (overlay section)."""
    parser.add_argument("--top3", action=argparse.BooleanOptionalAction,
                        help="list the three best candidates under each name (overlay.top3; default: off); "
                             "JSON output always has them")


def config_from_args(args: argparse.Namespace, base: Config | None = None) -> Config:
    """The configuration the flags of add_config_args (and add_naming_args) describe, on top of
    `base`: a command's own defaults where they differ from Config()'s."""
    overrides = list(args.overrides)
    if getattr(args, "gallery", None) is not None:
        overrides.append(f"classifier.gallery={_toml_string(str(args.gallery))}")
    if getattr(args, "unknown_threshold", None) is not None:
        overrides.append(f"classifier.unknown_threshold={args.unknown_threshold!r}")
    if getattr(args, "top3", None) is not None:
        overrides.append(f"overlay.top3={str(args.top3).lower()}")
    if args.model is not None:
        overrides.append(f"classifier.model={_toml_string(str(args.model))}")
    if args.device is not None:
        # One flag for both models: `--device cpu` means no GPU at all (to place them apart, use --set).
        overrides.append(f"classifier.device={_toml_string(args.device)}")
        overrides.append(f"detector.learned_device={_toml_string(args.device)}")
    if args.detector is not None:
        overrides.append(f"detector.kind={_toml_string(args.detector)}")
    if args.detector_threads is not None:
        overrides.append(f"pipeline.detector_threads={args.detector_threads}")
        overrides.append(f"pipeline.live_detector_threads={args.detector_threads}")
    if args.working_height is not None:
        overrides.append(f"pipeline.working_height={args.working_height}")
    return load_config(args.config, overrides)


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
