"""One shutdown path for Ctrl-C and SIGTERM (what `kill`, systemd and container runtimes send)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM behaves like Ctrl-C (KeyboardInterrupt on the main thread), so
    both take the same clean-shutdown path. Does nothing off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM wait: the first to come is delivered, to whatever
    handler was in place, when the block ends. For work that must not be cut in the middle, such
    as one frame written to every output file, or an encoder flushed. Does nothing off the main
    thread, where signals are never delivered anyway."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous: dict[int, Any] = {}
    with ExitStack() as restore:  # every handler is put back, even if a signal lands in between
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if handler is not None:  # None: a handler set outside Python, which cannot be put back
                previous[signum] = handler
                restore.callback(signal.signal, signum, handler)
                signal.signal(signum, lambda received, _frame: held.append(received))
        yield
    if held:
        _deliver(held[0], previous[held[0]])


def _deliver(signum: int, handler: Any) -> None:
    """Hand a held signal to the handler that was in place. A Python handler is called directly,
    as the interpreter would have: Ray cancels a task with `_thread.interrupt_main()`, which runs
    the Python handler without any real signal, so re-raising one would be lost in its workers."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)
