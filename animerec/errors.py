"""Errors that reach the user, each carrying the exit code of CONTRACTS.md."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SKIPPED = 3
EXIT_INTERRUPTED = 130


class AnimerecError(Exception):
    """A failure explained to the user in one message; the CLI prints it and exits."""

    exit_code = EXIT_FAILURE


class UsageError(AnimerecError):
    """Bad flag, unknown configuration key, out-of-range value or unreadable model."""

    exit_code = EXIT_USAGE


class ModelError(UsageError):
    """A missing, corrupt or mismatched model file; the message names the file."""


class InputError(AnimerecError):
    """An input (image, video, folder) that cannot be used."""
