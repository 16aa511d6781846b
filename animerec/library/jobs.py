"""Find the videos of a folder, fingerprint them, and plan a job against the library index.

The plan is what makes a job resumable: a video is skipped only when the index says DONE for
the same content (size and modification time unchanged, or else the same sha256) and both
outputs are still there. Anything else (pending, running, interrupted, failed, changed, outputs
deleted) is done again. Outputs the index does not know are the user's, and are replaced only
with --overwrite, as CONTRACTS.md promises; that refusal happens before any work starts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from animerec.errors import UsageError
from animerec.library.index import LibraryIndex
from animerec.library.records import Plan, Status, VideoJob
from animerec.media import is_video
from animerec.outputs import temporaries_of

INDEX_NAME = "library.sqlite"
_CHUNK = 1 << 20  # 1 MiB reads: hashing runs at disk speed without holding much memory


def discover(source: Path, out: Path) -> list[VideoJob]:
    """Every video under `source` (sorted, hidden files and folders left out) with its outputs
    `out/<relative path without extension>.mp4` and `.jsonl`. An earlier run's outputs inside
    the input folder are not inputs. Raises UsageError when there is nothing to do or two inputs
    would write the same output."""
    jobs = []
    source = source.resolve()
    out_root = out.resolve()
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        hidden = any(part.startswith(".") for part in relative.parts)
        if hidden or not path.is_file() or not is_video(path):
            continue
        if out_root in path.resolve().parents:
            continue
        base = out_root / relative.with_suffix("")
        jobs.append(VideoJob(path, relative.as_posix(), base.with_name(base.name + ".mp4"),
                             base.with_name(base.name + ".jsonl")))
    outputs = [job.video_out for job in jobs]
    if len(set(outputs)) != len(outputs):
        raise UsageError("two inputs would write the same output (same name, other extension)")
    if not jobs:
        raise UsageError(f"{source}: no video files found")
    return jobs


def remove_stale_temporaries(jobs: Sequence[VideoJob]) -> int:
    """Delete the half-written temporary outputs a crashed run left for these videos, on any
    machine sharing the folder; safe because the job lock says no other job is writing them.
    Returns how many."""
    stale = [t for job in jobs for output in (job.video_out, job.jsonl_out) for t in temporaries_of(output)]
    for temporary in stale:
        temporary.unlink(missing_ok=True)
    return len(stale)


def file_checksum(path: Path) -> str:
    """The sha256 of the file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def plan(jobs: Sequence[VideoJob], index: LibraryIndex, overwrite: bool) -> Plan:
    """Split `jobs` into finished (skipped) and to do; refuse foreign outputs without --overwrite."""
    todo: list[VideoJob] = []
    done: list[str] = []
    refused: list[Path] = []
    for job in jobs:
        if not overwrite and _finished(job, index):
            done.append(job.key)
            continue
        ours = index.get(job.key) is not None  # a row means these outputs came from this library
        if not overwrite and not ours:
            refused += [p for p in (job.video_out, job.jsonl_out) if p.exists()]
        todo.append(job)
    if refused:
        names = ", ".join(str(p) for p in refused[:3]) + (" ..." if len(refused) > 3 else "")
        raise UsageError(f"{names} exist(s) and are not in {INDEX_NAME}; pass --overwrite to replace")
    return Plan(tuple(todo), tuple(done))


def _finished(job: VideoJob, index: LibraryIndex) -> bool:
    row = index.get(job.key)
    if row is None or row.status != Status.DONE:
        return False
    if not (job.video_out.is_file() and job.jsonl_out.is_file()):
        return False  # someone deleted an output: make it again
    stat = job.source.stat()
    if (stat.st_size, stat.st_mtime_ns) == (row.size, row.mtime_ns):
        return True  # unchanged since it was hashed: no need to read it again
    if stat.st_size != row.size:
        return False
    # Touched (copied, restored from backup) but maybe the same bytes: the checksum decides.
    if file_checksum(job.source) != row.checksum:
        return False
    index.touch(job.key, stat.st_size, stat.st_mtime_ns)
    return True



def usable_cores() -> int:
    """The cores this process may run on (an affinity mask or a container's cpuset counts)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
