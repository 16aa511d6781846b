"""animerec.outputs: output paths refused before any work, temporaries renamed or removed, frames
written in step, orphans of dead processes cleaned; and the commands that rely on it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import cv2
import pytest
from media import decode_video, make_test_video, read_index, synthetic_frame

from animerec import cli
from animerec.errors import UsageError
from animerec.interrupts import interrupts_deferred
from animerec.outputs import (
    IMAGE_SUFFIXES,
    VIDEO_CONTAINERS,
    AnnotationOutputs,
    atomic_output,
    check_folder,
    check_output,
    make_temporary,
    remove_orphaned_temporaries,
)
from animerec.paths import DEFAULT_MODEL_PATH, SAMPLE_FACES_DIR
from animerec.realtime.protocols import SourceInfo
from animerec.records import AnnotatedFrame, Faces, Frame

needs_model = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="bundled model not built yet")
needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc: a folder nobody can write")
INFO = SourceInfo("test", live=False, width=160, height=120, fps=30.0)


def annotated(index: int) -> AnnotatedFrame:
    image = synthetic_frame(index)
    return AnnotatedFrame(Frame(image, index, 0.0, index / 30, "test"), Faces.empty(), image)


def hidden(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- checks: every refusal is one UsageError, before anything is created -------------------------

@pytest.mark.parametrize(("name", "suffixes", "message"), [
    ("file/out.mp4", None, "is not a folder"),  # the parent is a file
    ("file/deeper/out.mp4", None, "is not a folder"),
    ("out.avi", VIDEO_CONTAINERS, "use .mp4, .mkv, .mov"),
    ("out.webm", VIDEO_CONTAINERS, "use .mp4, .mkv, .mov"),
    ("out", VIDEO_CONTAINERS, "a name without extension"),
    ("out.xyz", IMAGE_SUFFIXES, "use .png"),
    ("taken.mp4", None, "pass --overwrite"),
    ("folder", None, "is a folder"),
])
def test_check_output_refuses_with_one_line(tmp_path: Path, name: str, suffixes: tuple[str, ...] | None,
                                            message: str) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "taken.mp4").write_text("x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(UsageError, match=message) as refused:
        check_output(tmp_path / name, False, suffixes)
    assert "\n" not in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder", "taken.mp4"]  # nothing made


def test_check_output_accepts_a_new_folder_and_overwrite_without_creating_anything(tmp_path: Path) -> None:
    assert check_output(tmp_path / "new" / "sub" / "out.MKV", False, VIDEO_CONTAINERS)
    (tmp_path / "taken.png").write_text("x")
    assert check_output(tmp_path / "taken.png", True, IMAGE_SUFFIXES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.png"]


@needs_proc
def test_a_folder_that_cannot_be_written_is_refused_although_os_access_says_yes() -> None:
    with pytest.raises(UsageError, match="cannot write to /proc"):
        check_output(Path("/proc/out.mp4"), False, VIDEO_CONTAINERS)
    with pytest.raises(UsageError, match="cannot write to /proc/new"):
        check_folder(Path("/proc/new/deeper"))


# --- temporaries ------------------------------------------------------------------------------

def test_atomic_output_renames_when_whole_and_removes_after_an_error_or_ctrl_c(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    with atomic_output(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.startswith(".report.")
        temporary.write_text("{}")
    assert target.read_text() == "{}"
    for error in (ValueError, KeyboardInterrupt):
        with pytest.raises(error), atomic_output(tmp_path / "half.json") as temporary:
            temporary.write_text("{")
            raise error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # a half-written file is never kept


def test_orphaned_temporaries_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    ours = make_temporary(tmp_path / "sub" / "live.mp4")  # this process: alive
    orphan_name = ours.name.replace(f"-{os.getpid()}-", f"-{dead_pid()}-")
    orphan = tmp_path / "sub" / orphan_name.replace(".live.", ".dead.")
    orphan.write_bytes(b"half a video")
    other_machine = tmp_path / orphan_name.replace("tmp-", "tmp-othermachine", 1)
    other_machine.write_bytes(b"")
    users_file = tmp_path / ".dead.mp4"
    users_file.write_bytes(b"")
    assert remove_orphaned_temporaries(tmp_path) == 0  # not recursive: sub/ is left alone
    assert remove_orphaned_temporaries(tmp_path, recursive=True) == 1
    assert not orphan.exists()
    assert ours.exists() and other_machine.exists() and users_file.exists()


def test_a_library_job_removes_its_outputs_temporaries_from_any_machine_and_nothing_else(tmp_path: Path) -> None:
    from animerec.library.jobs import remove_stale_temporaries
    from animerec.library.records import VideoJob

    job = VideoJob(tmp_path / "in.mp4", "in.mp4", tmp_path / "ep1.mp4", tmp_path / "ep1.jsonl")
    ours = make_temporary(job.video_out)  # under the job lock even a live owner's file is stale
    other_machine = tmp_path / ours.name.replace("tmp-", "tmp-othermachine", 1).replace(".mp4", ".jsonl")
    other_machine.write_bytes(b"")
    keep = [tmp_path / ".ep1.backup.mp4", tmp_path / ".ep10.tmp-x-1-abcdefgh.mp4", make_temporary(tmp_path / "ep2.mp4")]
    keep[0].write_bytes(b"")
    keep[1].write_bytes(b"")
    assert remove_stale_temporaries([job]) == 2
    assert not ours.exists() and not other_machine.exists()
    assert all(path.exists() for path in keep)


# --- AnnotationOutputs: in step, renamed together, nothing for nothing -------------------------

def test_annotation_outputs_write_in_step_and_rename_together(tmp_path: Path) -> None:
    video, lines = tmp_path / "out.mov", tmp_path / "out.jsonl"
    with AnnotationOutputs(INFO, video, lines) as outputs:
        for index in range(12):
            outputs.write(annotated(index))
        assert not video.exists() and len(hidden(tmp_path)) == 2  # under temporary names until closed
    assert [read_index(image) for image, _ in decode_video(video)] == list(range(12))
    assert [json.loads(line)["index"] for line in lines.read_text().splitlines()] == list(range(12))
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("ending", [None, KeyboardInterrupt, ValueError])
def test_annotation_outputs_leave_nothing_when_no_frame_was_written(tmp_path: Path, ending: type | None) -> None:
    try:
        with AnnotationOutputs(INFO, tmp_path / "out.mp4", tmp_path / "out.jsonl"):
            if ending is not None:
                raise ending
    except (KeyboardInterrupt, ValueError):
        pass
    assert list(tmp_path.iterdir()) == []


def test_annotation_outputs_keep_a_partial_run_after_ctrl_c_but_not_after_an_error(tmp_path: Path) -> None:
    for name, ending in (("kept", KeyboardInterrupt), ("dropped", ValueError)):
        outputs = AnnotationOutputs(INFO, tmp_path / f"{name}.mp4", tmp_path / f"{name}.jsonl")
        with pytest.raises(ending), outputs:
            outputs.write(annotated(0))
            raise ending
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.jsonl", "kept.mp4"]
    assert len(decode_video(tmp_path / "kept.mp4")) == 1


def test_a_writer_that_cannot_open_leaves_no_temporary(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"use \.mp4, \.mkv, \.mov"):
        AnnotationOutputs(INFO, tmp_path / "out.avi", tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_waits_while_a_frame_is_written_then_arrives(tmp_path: Path) -> None:
    reached_end = False
    with pytest.raises(KeyboardInterrupt), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        reached_end = True
    assert reached_end
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


@pytest.mark.parametrize(("suffix", "format_name"), [(".mp4", "mp4"), (".mkv", "matroska"), (".mov", "mov")])
def test_the_container_follows_the_extension_with_h264_and_aac(tmp_path: Path, suffix: str,
                                                               format_name: str) -> None:
    source = make_test_video(tmp_path / "source.mp4", frames=6, audio=True)
    out = tmp_path / f"out{suffix}"
    with AnnotationOutputs(INFO, out, None, audio_from=source) as outputs:
        for index in range(6):
            outputs.write(annotated(index))
    with av.open(str(out)) as container:
        assert format_name in container.format.name.split(",")
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio[0].codec_context.name == "aac"


# --- commands -----------------------------------------------------------------------------------

@pytest.fixture
def image(tmp_path: Path) -> Path:
    face = cv2.imread(str(SAMPLE_FACES_DIR / "gura.jpg"))
    path = tmp_path / "framed.png"
    cv2.imwrite(str(path), cv2.copyMakeBorder(face, 64, 64, 64, 64, cv2.BORDER_CONSTANT, value=(255, 255, 255)))
    return path


def refused_before_work(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the command, which must exit 2 before loading the model; returns its one error line."""
    assert cli.main(arguments) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "classifier" not in captured.err and "Traceback" not in captured.err
    return captured.err.strip()


@needs_model
def test_annotate_refuses_outputs_it_cannot_write_before_any_work(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    clip = make_test_video(tmp_path / "clip.mp4", frames=2, audio=False)
    (tmp_path / "somefile").write_text("x")
    cases = {
        "is not a folder": ["-o", str(tmp_path / "somefile" / "out.mp4")],
        "use .mp4, .mkv, .mov": ["-o", str(tmp_path / "out.avi")],
        "somefile is not a folder": ["-o", str(tmp_path / "ok.mp4"), "--jsonl", str(tmp_path / "somefile" / "x.jsonl")],
        "give the JSON Lines another name": ["-o", str(tmp_path / "ok.mp4"), "--jsonl", str(tmp_path / "ok.mp4")],
    }
    if Path("/proc/self").is_dir():
        cases["cannot write to /proc"] = ["-o", "/proc/out.mp4"]
    for message, outputs in cases.items():
        assert message in refused_before_work(["annotate", str(clip), *outputs], capsys)
    assert "use .mp4, .mkv, .mov" in refused_before_work(
        ["run", "--source", str(clip), "--record", str(tmp_path / "live.webm")], capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "somefile"]


@needs_model
def test_predict_checks_its_output_before_printing_anything(image: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"keep me")
    assert "pass --overwrite" in refused_before_work(["predict", str(image), "-o", str(existing)], capsys)
    assert existing.read_bytes() == b"keep me"
    assert "use .png" in refused_before_work(["predict", str(image), "-o", str(tmp_path / "out.xyz")], capsys)
    if Path("/proc/self").is_dir():
        assert "cannot write to /proc" in refused_before_work(["predict", str(image), "-o", "/proc/g.png"], capsys)


@needs_model
def test_predict_fails_when_the_image_cannot_be_written(image: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cv2, "imwrite", lambda *args: False)  # what OpenCV does on a failed write
    assert cli.main(["predict", str(image), "-o", str(tmp_path / "out.png")]) == 1
    assert f"cannot write {tmp_path / 'out.png'}" in capsys.readouterr().err
    assert hidden(tmp_path) == [] and not (tmp_path / "out.png").exists()


@needs_model
def test_predict_exits_1_when_no_image_was_done_and_3_when_some_were(image: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    assert cli.main(["predict", str(broken)]) == 1
    assert cli.main(["predict", str(broken), str(image), "-o", str(tmp_path / "out")]) == 3
    assert (tmp_path / "out" / "framed.jpg").is_file()
    capsys.readouterr()


@needs_model
def test_a_library_job_removes_temporaries_a_killed_worker_left(tmp_path: Path) -> None:
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    make_test_video(videos / "a.mp4", frames=4, audio=False)
    (out / "old").mkdir(parents=True)
    leftover = make_temporary(out / "old" / "b.mp4")  # as a killed worker leaves it, for a video done since
    orphan = leftover.with_name(leftover.name.replace(f"-{os.getpid()}-", f"-{dead_pid()}-"))
    leftover.rename(orphan)
    assert cli.main(["annotate", str(videos), "-o", str(out), "--jobs", "1"]) == 0
    assert not orphan.exists() and (out / "a.mp4").is_file()
    assert [p.name for p in out.rglob(".*") if ".tmp-" in p.name] == []
