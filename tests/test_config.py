"""The configuration tree: defaults, TOML files, --set overrides, and errors that name the field."""

import argparse

import pytest

from animerec.config import (
    SECTIONS,
    Config,
    PipelineConfig,
    add_config_args,
    config_from_args,
    load_config,
    parse_override,
)
from animerec.errors import EXIT_USAGE, UsageError


def test_defaults_are_valid_and_complete():
    config = Config()
    assert set(SECTIONS) == {"detector", "classifier", "pipeline", "tracker", "overlay", "server"}
    assert (config.server.host, config.server.port, config.server.token, config.server.client_queue) == (
        "127.0.0.1", 8765, "", 4)
    assert config.pipeline.working_height == 360
    assert config.classifier.device == "auto" and config.classifier.top_k == 3
    settings = config.cascade_settings()
    assert settings.working_height == 360 and settings.min_neighbors == 5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pipeline.max_batch=0", "pipeline.max_batch must be between 1 and 256, got 0"),
        ("pipeline.detector_threads=99", "pipeline.detector_threads must be between 1 and 16, got 99"),
        ("tracker.iou_threshold=1.5", "tracker.iou_threshold must be between 0.01 and 1.0, got 1.5"),
        ("server.port=70000", "server.port must be between 0 and 65535, got 70000"),
        ("classifier.device=tpu", "classifier.device must be one of auto, cpu, cuda, got 'tpu'"),
        ("overlay.top3=1", "overlay.top3 must be bool, got 1"),
        ("pipeline.max_batch=\"8\"", "pipeline.max_batch must be int, got '8'"),
        ("pipeline.batch_size=8", "unknown configuration key pipeline.batch_size"),
        ("gpu.enabled=true", "unknown configuration section 'gpu'"),
        ("max_batch=8", "--set wants section.key=value"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_field(override, message):
    with pytest.raises(UsageError) as caught:
        load_config(None, [override])
    assert message in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE


def test_toml_file_then_overrides(tmp_path):
    path = tmp_path / "animerec.toml"
    path.write_text(
        "[pipeline]\nmax_batch = 8\nmax_wait_ms = 5\n\n[server]\nport = 9000\ntoken = \"s3cret\"\n"
        "[classifier]\nmodel = \"/models/m.onnx\"\n",
        encoding="utf-8",
    )
    config = load_config(path, ["pipeline.max_batch=32", "classifier.device=cpu"])
    assert config.pipeline.max_batch == 32  # the override wins over the file
    assert config.pipeline.max_wait_ms == 5.0 and isinstance(config.pipeline.max_wait_ms, float)
    assert config.server.port == 9000 and config.server.token == "s3cret"
    assert config.classifier.device == "cpu"
    assert str(config.model_path()) == "/models/m.onnx"


def test_file_errors_name_the_file_and_the_key(tmp_path):
    with pytest.raises(UsageError, match="cannot read configuration"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[pipeline\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_config(broken)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[tracker]\nmax_miss = 3\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"tracker\.max_miss"):
        load_config(unknown)
    ranged = tmp_path / "ranged.toml"
    ranged.write_text("[detector]\nmin_size = 0\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"detector\.min_size must be between 1 and 4096, got 0"):
        load_config(ranged)


def test_sections_check_their_values_when_built_directly():
    with pytest.raises(UsageError, match=r"pipeline\.max_wait_ms"):
        PipelineConfig(max_wait_ms=-1.0)


def test_cross_field_detector_sizes():
    config = load_config(None, ["detector.min_size=40", "detector.max_size=30"])
    with pytest.raises(UsageError, match=r"detector\.max_size"):
        config.cascade_settings()


def test_parse_override_reads_toml_values_and_bare_words():
    assert parse_override("pipeline.max_batch=8") == ("pipeline", "max_batch", 8)
    assert parse_override("overlay.top3 = false") == ("overlay", "top3", False)
    assert parse_override("classifier.device=cuda") == ("classifier", "device", "cuda")
    assert parse_override("classifier.model=C:/m.onnx") == ("classifier", "model", "C:/m.onnx")


def test_command_line_flags_override_the_file(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[pipeline]\ndetector_threads = 4\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_config_args(parser)
    args = parser.parse_args(["--config", str(path), "--set", "tracker.max_misses=5",
                              "--device", "cpu", "--working-height", "0", "--model", "my model.onnx"])
    config = config_from_args(args)
    assert config.pipeline.detector_threads == 4
    assert config.tracker.max_misses == 5
    assert config.classifier.device == "cpu" and config.classifier.model == "my model.onnx"
    assert config.detector.learned_device == "cpu"  # --device places both ONNX models
    assert config.pipeline.working_height == 0
    both = config_from_args(parser.parse_args(["--detector-threads", "3"]))  # files and live alike
    assert (both.pipeline.detector_threads, both.pipeline.live_detector_threads) == (3, 3)
    args = parser.parse_args(["--detector-threads", "0"])
    with pytest.raises(UsageError, match=r"pipeline\.detector_threads"):
        config_from_args(args)


def test_a_retired_key_is_ignored_with_a_warning_not_refused(capsys):
    from animerec.config import Config, load_config

    assert load_config(overrides=["tracker.vote_alpha=0.25"]) == Config()
    assert "tracker.vote_alpha is no longer used" in capsys.readouterr().err
