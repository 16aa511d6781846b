"""`animerec annotate DIR -o OUTDIR` as a library job on this machine: real worker processes,
tiny generated videos, the bundled model."""

from __future__ import annotations

import json
import os

import pytest
from library_helpers import interrupt_job, jsonl_lines, make_library, statuses
from media import make_test_video

from animerec import cli
from animerec.library.index import LibraryIndex
from animerec.library.records import Status
from animerec.library.worker import CRASH_FLAGS_ENV
from animerec.paths import DEFAULT_MODEL_PATH

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="bundled model not built yet")


@pytest.fixture(autouse=True)
def no_default_gallery(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMEREC_GALLERY", str(tmp_path / "no-gallery.json"))


def test_pool_annotates_videos_and_lists_the_corrupt_one(tmp_path, capsys):
    videos = make_library(tmp_path / "in", {"a.mp4": 12, "sub/b.mkv": 6}, corrupt=("broken.mp4",))
    out = tmp_path / "out"
    assert cli.main(["annotate", str(videos), "-o", str(out), "--jobs", "2", "--json"]) == 3
    captured = capsys.readouterr()
    err = captured.err
    summary = json.loads(captured.out)
    assert summary["done"] == 2 and summary["failed"][0]["video"] == "broken.mp4"
    assert {v["video"]: v["frames"] for v in summary["videos"]}["a.mp4"] == 12
    assert "1 failed" in err and "2 annotated" in err
    assert "animerec: skipped broken.mp4:" in err  # named on stderr, per CONTRACTS.md
    assert "2 process(es) x 1 detector thread(s)" in err  # 2 cores shared, not oversubscribed
    assert statuses(out) == {"a.mp4": "done", "sub/b.mkv": "done", "broken.mp4": "failed"}
    assert jsonl_lines(out / "a.jsonl") == 12 and jsonl_lines(out / "sub" / "b.jsonl") == 6
    assert (out / "a.mp4").stat().st_size > 0 and (out / "sub" / "b.mp4").is_file()
    index = LibraryIndex.read_only(out / "library.sqlite")
    columns, rows = index.table("videos")
    index.close()
    row = dict(zip(columns, next(r for r in rows if r[0] == "a.mp4"), strict=True))
    assert row["frames"] == 12 and row["duration"] == pytest.approx(12 / 30, abs=1e-3)
    assert len(row["checksum"]) == 64 and row["attempts"] == 1


def test_rerun_skips_finished_videos_and_redoes_an_interrupted_one(tmp_path, capsys):
    videos = make_library(tmp_path / "in", {"a.mp4": 8, "b.mp4": 8})
    out = tmp_path / "out"
    assert cli.main(["annotate", str(videos), "-o", str(out), "--jobs", "2"]) == 0
    finished = (out / "a.mp4").stat().st_mtime_ns, (out / "a.jsonl").stat().st_mtime_ns

    # A crash half way through b: the index says running, a temporary output is half written,
    # and the output name holds something that is not b's annotation.
    index = LibraryIndex.open(out / "library.sqlite")
    index.mark(["b.mp4"], Status.RUNNING)
    index.close()
    (out / ".b.tmp-othermachine-4242-k2j4h6g8.mp4").write_bytes(b"\x00" * 100)  # a crashed job elsewhere
    (out / "b.jsonl").write_text('{"index": 0, "time": 0.0, "fa', encoding="utf-8")
    capsys.readouterr()

    assert cli.main(["annotate", str(videos), "-o", str(out), "--jobs", "2"]) == 0
    err = capsys.readouterr().err
    assert "1 annotated, 1 already done" in err
    assert ((out / "a.mp4").stat().st_mtime_ns, (out / "a.jsonl").stat().st_mtime_ns) == finished  # untouched
    assert jsonl_lines(out / "b.jsonl") == 8  # redone in full
    assert not (out / ".b.tmp-othermachine-4242-k2j4h6g8.mp4").exists()  # its half-written temporary is gone
    assert statuses(out) == {"a.mp4": "done", "b.mp4": "done"}

    # A changed input is done again; the same bytes under a new mtime are not; an untouched
    # library is a no-op.
    make_test_video(videos / "a.mp4", frames=5, audio=False)
    (videos / "b.mp4").touch()
    assert cli.main(["annotate", str(videos), "-o", str(out)]) == 0
    assert "1 annotated, 1 already done" in capsys.readouterr().err
    assert jsonl_lines(out / "a.jsonl") == 5
    assert cli.main(["annotate", str(videos), "-o", str(out)]) == 0
    assert "0 annotated, 2 already done" in capsys.readouterr().err


def test_a_worker_that_dies_is_replaced_and_its_video_retried(tmp_path, monkeypatch, capsys):
    videos = make_library(tmp_path / "in", {"a.mp4": 6, "b.mp4": 6})
    flags = tmp_path / "flags"
    flags.mkdir()
    (flags / "a.mp4.crash").touch()  # the first worker to take a.mp4 dies at once (os._exit)
    monkeypatch.setenv(CRASH_FLAGS_ENV, str(flags))
    out = tmp_path / "out"
    assert cli.main(["annotate", str(videos), "-o", str(out), "--jobs", "2"]) == 0
    assert not (flags / "a.mp4.crash").exists()  # it did crash once
    assert statuses(out) == {"a.mp4": "done", "b.mp4": "done"}
    assert jsonl_lines(out / "a.jsonl") == 6


def test_unwritable_outdir_is_refused_before_any_work(tmp_path, capsys):
    videos = make_library(tmp_path / "in", {"a.mp4": 4})
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert cli.main(["annotate", str(videos), "-o", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to" in err and "classifier" not in err  # refused before the model loaded


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_outdir_is_refused_before_any_work(tmp_path, capsys):
    videos = make_library(tmp_path / "in", {"a.mp4": 4})
    out = tmp_path / "out"
    out.mkdir(mode=0o555)
    assert cli.main(["annotate", str(videos), "-o", str(out)]) == 2
    assert "cannot write to" in capsys.readouterr().err


def test_ctrl_c_stops_workers_keeps_finished_videos_and_exits_130(tmp_path):
    # One short video that finishes at once, one long enough to be interrupted.
    videos = make_library(tmp_path / "in", {"a_short.mp4": 4, "b_long.mp4": 2400})
    out = tmp_path / "out"
    code, err = interrupt_job(videos, out, tmp_path / "none.json", "--jobs", "2")
    assert code == 130, err
    assert statuses(out) == {"a_short.mp4": "done", "b_long.mp4": "interrupted"}
    assert jsonl_lines(out / "a_short.jsonl") == 4
    partial = jsonl_lines(out / "b_long.jsonl")
    assert 0 < partial < 2400  # finalised, valid, and not taken for finished
    assert "run the same command again" in err


def test_a_worker_fetches_and_loads_the_model_once_for_many_videos(tmp_path):
    from animerec.config import Config
    from animerec.library.records import JobSettings, ModelSource, VideoJob
    from animerec.library.worker import annotate_video

    videos = make_library(tmp_path / "in", {"a.mp4": 3, "b.mp4": 3})
    fetched = []

    def fetch() -> tuple[bytes, None]:  # what RayFetch does on a cluster: bytes from the object store
        fetched.append(1)
        return DEFAULT_MODEL_PATH.read_bytes(), None

    model = ModelSource(f"test-{tmp_path.name}", tmp_path / "absent.onnx", fetch=fetch)
    settings = JobSettings(Config())
    for name in ("a", "b"):
        job = VideoJob(videos / f"{name}.mp4", f"{name}.mp4", tmp_path / f"{name}.mp4", tmp_path / f"{name}.jsonl")
        assert annotate_video(job, settings, model).status == Status.DONE
    assert len(fetched) == 1


def test_ray_before_the_folder_does_not_take_it_as_its_address(tmp_path, monkeypatch):
    """`annotate --ray DIR -o OUT`: argparse gives DIR to --ray's optional ADDRESS; a Ray address
    is never an existing path, so the folder is the input and Ray's default address is used."""
    from animerec.library import job

    seen = []
    monkeypatch.setattr(job, "run_library", lambda options: seen.append(options) or 0)
    videos = make_library(tmp_path / "in", {"a.mp4": 2})
    assert cli.main(["annotate", "--ray", str(videos), "-o", str(tmp_path / "out")]) == 0
    assert seen[0].source == videos and seen[0].ray == ""
    assert cli.main(["annotate", "--ray", "10.0.0.1:6379", "-o", str(tmp_path / "out")]) == 2
