"""The JSON Lines sink: one line per frame, frames without faces included (CONTRACTS.md).

Each line is flushed to the operating system as it is written, so Ctrl-C or a crash loses no
finished frame; fsync is left to `close` because forcing every line to disk would cost a disk
round trip per frame.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import TextIO

from animerec.errors import AnimerecError, InputError
from animerec.records import AnnotatedFrame


class JsonLinesWriter:
    """A Sink writing `item.to_json()` of each frame as one UTF-8 line of `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines_written = 0
        try:
            self._file: TextIO | None = open(path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror or error}") from error

    def write(self, item: AnnotatedFrame) -> None:
        """Append one frame's line and hand it to the operating system."""
        if self._file is None:
            raise AnimerecError(f"{self.path}: write after close")
        line = json.dumps(item.to_json(), ensure_ascii=False)
        try:
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as error:
            raise AnimerecError(f"cannot write {self.path}: {error.strerror or error}") from error
        self.lines_written += 1

    def close(self) -> None:
        """Flush, sync and close; safe to call twice and after Ctrl-C."""
        if self._file is None:
            return
        file, self._file = self._file, None
        try:
            file.flush()
            _sync(file)
        except OSError as error:
            raise AnimerecError(f"cannot finish {self.path}: {error.strerror or error}") from error
        finally:
            file.close()

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _sync(file: TextIO) -> None:
    try:
        os.fsync(file.fileno())
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):  # a pipe or terminal: nothing to sync
            raise
