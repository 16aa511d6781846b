"""`animerec annotate DIR -o OUTDIR --ray local`: the same job as Ray tasks on a local instance
that each test starts (2 CPUs, no dashboard) and the runner shuts down."""

from __future__ import annotations

import sys

import pytest
from library_helpers import attempts, interrupt_job, jsonl_lines, make_library, statuses

from animerec import cli
from animerec.library.worker import CRASH_FLAGS_ENV
from animerec.paths import DEFAULT_MODEL_PATH

needs_model = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="bundled model not built yet")


@pytest.fixture(autouse=True)
def no_default_gallery(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMEREC_GALLERY", str(tmp_path / "no-gallery.json"))


@pytest.fixture
def ray():
    ray = pytest.importorskip("ray")
    yield ray
    if ray.is_initialized():  # the runner shuts down what it started; this covers a failed test
        ray.shutdown()


@needs_model
def test_ray_runs_each_video_as_a_task(ray, tmp_path, capsys):
    videos = make_library(tmp_path / "in", {"a.mp4": 8, "sub/b.mp4": 5})
    out = tmp_path / "out"
    assert cli.main(["annotate", str(videos), "-o", str(out), "--ray", "local", "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "2 annotated" in err and "ray, 2 tasks at a time" in err
    assert statuses(out) == {"a.mp4": "done", "sub/b.mp4": "done"}
    assert jsonl_lines(out / "a.jsonl") == 8 and jsonl_lines(out / "sub" / "b.jsonl") == 5
    assert not ray.is_initialized()  # the local instance it started is gone


@needs_model
def test_ray_retries_a_video_whose_worker_died(ray, tmp_path, monkeypatch, capsys):
    videos = make_library(tmp_path / "in", {"a.mp4": 6, "b.mp4": 4})
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "a.mp4.crash").touch()  # the first worker to take a.mp4 dies (os._exit), once
    monkeypatch.setenv(CRASH_FLAGS_ENV, str(flags))  # before ray.init: workers inherit it
    out = tmp_path / "out"
    assert cli.main(["annotate", str(videos), "-o", str(out), "--ray", "local", "--jobs", "2"]) == 0
    assert not (flags / "a.mp4.crash").exists()
    assert statuses(out) == {"a.mp4": "done", "b.mp4": "done"}
    assert jsonl_lines(out / "a.jsonl") == 6
    assert attempts(out) == {"a.mp4": 2, "b.mp4": 1}  # the retry is counted, as on the local pool


def test_missing_ray_is_a_usage_error_naming_the_extra(tmp_path, monkeypatch, capsys):
    videos = make_library(tmp_path / "in", {"a.mp4": 2})
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert cli.main(["annotate", str(videos), "-o", str(tmp_path / "out"), "--ray"]) == 2
    assert "animerec[ray]" in capsys.readouterr().err


@needs_model
def test_ctrl_c_stops_ray_tasks_keeps_finished_videos_and_exits_130(ray, tmp_path):
    videos = make_library(tmp_path / "in", {"a_short.mp4": 4, "b_long.mp4": 2400})
    out = tmp_path / "out"
    code, err = interrupt_job(videos, out, tmp_path / "none.json", "--ray", "local", "--jobs", "2", start_s=90)
    assert code == 130, err
    assert statuses(out) == {"a_short.mp4": "done", "b_long.mp4": "interrupted"}
    assert jsonl_lines(out / "a_short.jsonl") == 4
    assert "run the same command again" in err
