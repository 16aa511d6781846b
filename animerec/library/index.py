"""The library index, OUTDIR/library.sqlite: the job's manifest and the "who appears where" table.

    videos       path (relative, the key), checksum, size, mtime_ns, status, frames, duration,
                 faces, error, attempts, elapsed_s, updated_at
    characters   id, name
    appearances  character_id, video, start_s, end_s, seconds

Only the parent process writes, one transaction per event (a batch of status changes, or one
finished video with all its appearances), so a crash leaves the index as it was before or
after that event, never between. WAL keeps readers (`animerec library query` during a job)
from blocking the writer; where WAL is refused (some network file systems) SQLite's rollback
journal gives the same atomicity, only with readers and writer taking turns.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from animerec.errors import UsageError
from animerec.library.records import Status, VideoResult

SCHEMA_VERSION = 1
_STATUSES = ", ".join(f"'{s.value}'" for s in Status)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS videos (
    path TEXT PRIMARY KEY,
    checksum TEXT NOT NULL DEFAULT '',
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL CHECK (status IN ({_STATUSES})),
    frames INTEGER NOT NULL DEFAULT 0,
    duration REAL NOT NULL DEFAULT 0,
    faces INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    elapsed_s REAL NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS characters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS appearances (
    character_id INTEGER NOT NULL REFERENCES characters(id),
    video TEXT NOT NULL REFERENCES videos(path) ON DELETE CASCADE,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    seconds REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS appearances_by_character ON appearances(character_id);
CREATE INDEX IF NOT EXISTS appearances_by_video ON appearances(video);
"""


@dataclass(frozen=True)
class IndexedVideo:
    """What planning needs to know about a video the index has seen."""

    key: str
    status: Status
    checksum: str
    size: int
    mtime_ns: int


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class LibraryIndex:
    """One connection to a library index; `LibraryIndex.open(path)` creates it, `read_only` does not."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.path = path
        self._db = connection
        self._db.row_factory = sqlite3.Row

    @classmethod
    def open(cls, path: Path) -> LibraryIndex:
        """Open or create the index for writing. Raises UsageError when it cannot be."""
        try:
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), explicit.
            db = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # with WAL: atomic on a crash, fast to commit
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as error:
            raise UsageError(f"cannot open the library index {path}: {error}") from error
        return cls(db, path)

    @classmethod
    def read_only(cls, path: Path) -> LibraryIndex:
        if not path.is_file():
            raise UsageError(f"{path}: no library index here (made by `animerec annotate DIR -o OUTDIR`)")
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
            db.execute("SELECT count(*) FROM videos")
        except sqlite3.Error as error:
            raise UsageError(f"cannot read the library index {path}: {error}") from error
        return cls(db, path)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: BEGIN IMMEDIATE takes the write lock up front, so a reader can not
        make the commit fail half way through."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # Planning and status ---------------------------------------------------------------------

    def get(self, key: str) -> IndexedVideo | None:
        row = self._db.execute("SELECT path, status, checksum, size, mtime_ns FROM videos WHERE path = ?",
                               (key,)).fetchone()
        if row is None:
            return None
        return IndexedVideo(row["path"], Status(row["status"]), row["checksum"], row["size"], row["mtime_ns"])

    def touch(self, key: str, size: int, mtime_ns: int) -> None:
        """Record a new modification time for a file whose content (checksum) did not change."""
        with self.transaction() as db:
            db.execute("UPDATE videos SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime_ns, key))

    def mark(self, keys: Iterable[str], status: Status, *, attempt: bool = False) -> None:
        """Set the status of several videos at once (inserting unknown ones); `attempt` counts a try."""
        now = _now()
        with self.transaction() as db:
            for key in keys:
                db.execute(
                    "INSERT INTO videos (path, status, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(path) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
                    (key, status.value, now),
                )
                if attempt:
                    db.execute("UPDATE videos SET attempts = attempts + 1 WHERE path = ?", (key,))

    def record(self, result: VideoResult) -> None:
        """Store one worker's result, appearances included, in one transaction. The worker has
        already renamed the outputs into place, so DONE here is never ahead of the files."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO videos (path, checksum, size, mtime_ns, status, frames, duration, faces, error, "
                "elapsed_s, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET "
                "checksum = excluded.checksum, size = excluded.size, mtime_ns = excluded.mtime_ns, "
                "status = excluded.status, frames = excluded.frames, duration = excluded.duration, "
                "faces = excluded.faces, error = excluded.error, elapsed_s = excluded.elapsed_s, "
                "updated_at = excluded.updated_at",
                (result.key, result.checksum, result.size, result.mtime_ns, result.status.value, result.frames,
                 result.duration, result.faces, result.error, result.elapsed_s, _now()),
            )
            db.execute("DELETE FROM appearances WHERE video = ?", (result.key,))
            for item in result.appearances:
                db.execute("INSERT OR IGNORE INTO characters (name) VALUES (?)", (item.character,))
                db.execute(
                    "INSERT INTO appearances (character_id, video, start_s, end_s, seconds) "
                    "SELECT id, ?, ?, ?, ? FROM characters WHERE name = ?",
                    (result.key, item.start, item.end, item.seconds, item.character),
                )

    # Queries ---------------------------------------------------------------------------------

    def appearances_of(self, name: str) -> list[dict[str, Any]]:
        """Where `name` (any letter case) appears: video, from, to, seconds; in video and time order."""
        rows = self._db.execute(
            "SELECT c.name AS character, a.video, a.start_s AS 'from', a.end_s AS 'to', a.seconds "
            "FROM appearances a JOIN characters c ON c.id = a.character_id "
            "JOIN videos v ON v.path = a.video AND v.status = 'done' "
            "WHERE c.name = ? COLLATE NOCASE ORDER BY a.video, a.start_s",
            (name,),
        )
        return [dict(row) for row in rows]

    def characters(self) -> list[dict[str, Any]]:
        """Every character of finished videos: in how many videos, how many seconds in all."""
        rows = self._db.execute(
            "SELECT c.name AS character, count(DISTINCT a.video) AS videos, "
            "round(sum(a.seconds), 3) AS seconds, count(*) AS appearances "
            "FROM appearances a JOIN characters c ON c.id = a.character_id "
            "JOIN videos v ON v.path = a.video AND v.status = 'done' "
            "GROUP BY c.id ORDER BY seconds DESC, c.name"
        )
        return [dict(row) for row in rows]

    def table(self, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """A whole table (videos, characters or appearances): column names and rows."""
        if name not in ("videos", "characters", "appearances"):
            raise ValueError(f"no table {name!r}")
        query = f"SELECT * FROM {name} ORDER BY rowid"
        if name == "appearances":  # with the name beside the id: a spreadsheet cannot join
            query = ("SELECT a.character_id, c.name AS character, a.video, a.start_s, a.end_s, a.seconds "
                     "FROM appearances a JOIN characters c ON c.id = a.character_id ORDER BY a.rowid")
        cursor = self._db.execute(query)
        return [column[0] for column in cursor.description], [tuple(row) for row in cursor]

    def statuses(self) -> dict[str, str]:
        """path -> status for every video the index knows."""
        return {row["path"]: row["status"] for row in self._db.execute("SELECT path, status FROM videos")}
