"""The machinery every threaded source shares: a bounded hand-over with a named drop policy, a
producer thread that owns the device or file, and exponential backoff for reconnecting.

A source's producer runs in its own named thread so decoding or grabbing overlaps the pipeline's
work; the consumer only ever waits on `BoundedQueue.get` with a timeout, so a stop request is seen
within half a second whatever the device does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from animerec.errors import InputError
from animerec.realtime.protocols import SourceInfo
from animerec.realtime.queues import BoundedQueue
from animerec.records import Frame

log = logging.getLogger(__name__)

POLL_S = 0.25  # how long any wait lasts before the stop events are checked again
JOIN_TIMEOUT_S = 3.0


class GrabError(Exception):
    """A device or stream gave no picture; the message says why. `permanent` errors (a monitor
    that does not exist) are not worth retrying."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class ThreadedSource:
    """A Source whose frames come from `_produce`, run in a named thread started on demand.

    Subclasses implement `_produce` and call `_emit` for each image; `_stop` is set by `close`.
    """

    def __init__(self, info: SourceInfo, buffer: BoundedQueue[Frame], thread_name: str) -> None:
        self.info = info
        self._buffer = buffer
        self._stop = threading.Event()
        self._errors = 0
        self._next_index = 0
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=thread_name, daemon=True)

    # --- the Source protocol -------------------------------------------------------------------
    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """Frames in order until the source ends, `stop` is set, or `close` is called."""
        if self._stop.is_set():
            return
        self.start()
        while not (stop.is_set() or self._stop.is_set()):
            frame = self._buffer.get(POLL_S)
            if frame is not None:
                yield frame
            elif self._buffer.exhausted:
                break
        if self._failure is not None and not stop.is_set():
            raise InputError(f"{self.info.source_id}: {self._failure}") from self._failure

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    @property
    def errors(self) -> int:
        return self._errors

    def close(self) -> None:
        """Stop the producer and wait for it (with a timeout); safe to call twice."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("%s did not stop within %.0f s", self._thread.name, JOIN_TIMEOUT_S)

    # --- for subclasses --------------------------------------------------------------------
    def start(self) -> None:
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()

    def _produce(self) -> None:
        raise NotImplementedError

    def _emit(self, image: NDArray[np.uint8], time_s: float) -> bool:
        """Wrap `image` in the next Frame and hand it over; False once the source must stop."""
        frame = Frame(
            image=image,
            index=self._next_index,
            captured_at=time.monotonic(),
            time=time_s,
            source_id=self.info.source_id,
        )
        self._next_index += 1
        return self._buffer.put(frame, self._stop)

    def _main(self) -> None:
        try:
            self._produce()
        except Exception as error:  # a bug or an unforeseen device error: end, and say so
            log.exception("%s failed", self._thread.name)
            self._failure = error
        finally:
            self._buffer.finish()


class Backoff:
    """Exponential waits between reconnection attempts: first, 2*first, ... up to `limit`."""

    def __init__(self, first: float = 0.5, limit: float = 10.0) -> None:
        self.first = first
        self.limit = limit
        self._next = first

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.limit)
        return delay

    def reset(self) -> None:
        self._next = self.first
