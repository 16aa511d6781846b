"""Output files: checked before any work, written under a temporary name, renamed when whole.

Every command that writes a file goes through here, so CONTRACTS.md's promises hold everywhere:
- `check_output` and `check_folder` refuse, in one line with exit code 2 and before any work, an
  existing file without --overwrite, a folder where a file should be, a parent that is a file or
  cannot be written, and an extension whose format cannot be written. They create nothing.
- `atomic_output` writes a whole file (a report, a table) under a temporary name, then renames it.
- `AnnotationOutputs` writes an annotated video and its JSON Lines frame by frame, in step.
- Temporaries are named `.<stem>.tmp-<host>-<pid>-<random><suffix>`: hidden, and saying which
  process owns them, so `remove_orphaned_temporaries` can delete those of a process that died.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from animerec.errors import UsageError
from animerec.interrupts import interrupts_deferred
from animerec.realtime.protocols import Sink, SourceInfo
from animerec.records import AnnotatedFrame

# H.264 and AAC, as browsers play them, fit these containers (the suffix chooses, see VideoWriter).
VIDEO_CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
_TEMPORARY = re.compile(r"\.tmp-(?P<host>[A-Za-z0-9]*)-(?P<pid>\d+)-[a-z0-9_]{8}(\.[^.]*)?$")


def check_output(path: Path, overwrite: bool, suffixes: Collection[str] | None = None, kind: str = "a file") -> Path:
    """Refuse (UsageError) an output file that must not or cannot be written; `suffixes` are
    the extensions of the formats it may have (any when None), `kind` names that format."""
    if suffixes is not None:
        check_suffix(path, suffixes, kind)
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists; pass --overwrite to replace it")
    check_folder(path.parent)
    return path


def check_suffix(path: Path, suffixes: Collection[str], kind: str) -> None:
    """Refuse (UsageError) a name whose extension is not one of `suffixes`."""
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{path}: cannot write {kind} as {path.suffix or 'a name without extension'}; "
                         f"use {', '.join(suffixes)}")


def check_folder(folder: Path) -> Path:
    """Refuse (UsageError) a folder that cannot be written into. One that does not exist yet is
    checked where it would be made: its nearest existing parent must be a folder that can be
    written. The check creates a real file there and removes it, because os.access says yes to
    root on read-only mounts and in /proc, and knows nothing of ACLs."""
    existing = folder
    while not _exists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot write to {folder}: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".animerec-probe-"):
            pass
    except OSError as error:
        raise UsageError(f"cannot write to {folder}: {error.strerror or error}") from error
    return folder


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a parent we may not look into: the write would fail there
        return True


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary name beside `path`; rename it to `path` when the block ends normally.
    After an error or Ctrl-C the temporary is removed: a half-written file is never kept."""
    temporary = make_temporary(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # gone already after the rename


def make_temporary(path: Path) -> Path:
    """A new, empty, hidden file beside `path` (its folder made if needed), owned by this process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.tmp-{_host()}-{os.getpid()}-", suffix=path.suffix,
                                dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); outputs get the mode any new file would get.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)
    return Path(name)


def temporaries_of(path: Path) -> list[Path]:
    """The temporaries of `path` beside it, whichever process made them."""
    if not path.parent.is_dir():
        return []
    candidates = path.parent.glob(f".{glob.escape(path.stem)}.tmp-*{glob.escape(path.suffix)}")
    return [c for c in candidates if _TEMPORARY.search(c.name) and c.is_file()]


def remove_orphaned_temporaries(folder: Path, recursive: bool = False) -> int:
    """Delete the temporaries in `folder` (and below it, when `recursive`) whose owner, a process
    on this machine, is gone: a killed run's leftovers. Returns how many were deleted."""
    if not folder.is_dir():
        return 0
    removed = 0
    for candidate in folder.rglob(".*") if recursive else folder.glob(".*"):
        owner = _TEMPORARY.search(candidate.name)
        if owner and owner["host"] == _host() and not _alive(int(owner["pid"])) and candidate.is_file():
            candidate.unlink(missing_ok=True)
            removed += 1
    return removed


@cache
def _host() -> str:
    """This machine's name, reduced to letters and digits: on a cluster sharing one output folder,
    a process id only says something on the machine that gave it."""
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def _alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill would terminate it: without a safe probe, never delete on Windows
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


@dataclass(frozen=True)
class _Staged:
    """One output file: its name, the temporary it is written under, and its writer."""

    path: Path
    temporary: Path
    writer: Sink


class AnnotationOutputs:
    """A Sink writing an annotated video and/or its JSON Lines, frame by frame, in step.

    Each frame goes to every file or to none: Ctrl-C and SIGTERM wait while a frame is written
    (an encoder cut between two packets loses a keyframe and every frame after it), so the video's
    decodable frames always equal the JSON lines. `close` finalises the files and renames them to
    their names, after Ctrl-C too; when no frame was written it removes them instead, so nothing
    appears at the names. As a context manager it keeps them unless the block fails with an error.
    """

    def __init__(self, info: SourceInfo, video: Path | None, jsonl: Path | None, *,
                 audio_from: Path | None = None) -> None:
        from animerec.realtime.jsonl import JsonLinesWriter
        from animerec.realtime.video_writer import VideoWriter

        self.frames_written = 0
        self._staged: list[_Staged] = []
        self._closed = False
        try:
            with interrupts_deferred():  # a Ctrl-C while opening comes out below, and removes them
                if video is not None:
                    self._stage(video, lambda temporary: VideoWriter(temporary, info, audio_from=audio_from))
                if jsonl is not None:
                    self._stage(jsonl, JsonLinesWriter)
        except BaseException:
            self.close(keep=False)
            raise

    def _stage(self, path: Path, open_writer: Callable[[Path], Sink]) -> None:
        temporary = make_temporary(path)
        try:
            self._staged.append(_Staged(path, temporary, open_writer(temporary)))
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def write(self, item: AnnotatedFrame) -> None:
        with interrupts_deferred():
            for staged in self._staged:
                staged.writer.write(item)
            self.frames_written += 1

    def close(self, keep: bool = True) -> None:
        """Finalise every file, then rename them all to their names when `keep` and at least one
        frame was written, or remove them all. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with interrupts_deferred():
            failures = []
            for staged in self._staged:
                try:
                    staged.writer.close()
                except Exception as error:  # a file that cannot be finished is not kept, nor its partner
                    failures.append(error)
            keep = keep and not failures and self.frames_written > 0
            for staged in self._staged:
                if keep:
                    os.replace(staged.temporary, staged.path)
                else:
                    staged.temporary.unlink(missing_ok=True)
        if failures:
            raise failures[0]

    def __enter__(self) -> AnnotationOutputs:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(keep=kind is None or issubclass(kind, KeyboardInterrupt))

