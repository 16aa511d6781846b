"""The one bounded queue every thread hand-over uses, with a named drop policy.

Live sources drop the oldest item and count it; files and benchmarks block and lose nothing. The
policy is a constructor argument, not a second code path. Every wait has a timeout and checks the
caller's stop event, so shutdown never hangs on a queue.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Generic, TypeVar

T = TypeVar("T")
POLL_S = 0.1  # the longest a blocked producer waits before looking at the stop event again


class DropPolicy(Enum):
    BLOCK = "block"  # files and benchmarks: the producer waits; nothing is lost
    DROP_OLDEST = "drop_oldest"  # live: the newest item wins; every discarded one is counted


class BoundedQueue(Generic[T]):
    """A bounded FIFO between threads. `take` numbers items as they leave, so consumers in several
    threads can restore the order later; `finish` tells consumers nothing more will come."""

    def __init__(
        self, name: str, maxsize: int, policy: DropPolicy, on_drop: Callable[[str], None] | None = None
    ) -> None:
        if maxsize < 1:
            raise ValueError(f"queue {name}: maxsize must be at least 1, got {maxsize}")
        self.name, self.maxsize, self.policy = name, maxsize, policy
        self.dropped = 0
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._on_drop = on_drop
        self._tickets = 0
        self._finished = False

    def put(self, item: T, stop: threading.Event, *, force: bool = False) -> bool:
        """Queue `item`; False when `stop` was set before there was room. `force` waits for room
        even under DROP_OLDEST (end markers must arrive)."""
        with self._cond:
            while len(self._items) >= self.maxsize:
                if self.policy is DropPolicy.DROP_OLDEST and not force:
                    self._items.popleft()
                    self.dropped += 1
                    if self._on_drop:
                        self._on_drop(self.name)
                    continue
                if stop.is_set():
                    return False
                self._cond.wait(POLL_S)
            self._items.append(item)
            self._cond.notify_all()
            return True

    def take(self, timeout: float = POLL_S) -> tuple[int, T] | None:
        """The oldest item and its departure number, or None after `timeout` (at once when the
        producer has finished and nothing is left)."""
        with self._cond:
            if not self._items and not self._finished:
                self._cond.wait(timeout)
            if not self._items:
                return None
            ticket, self._tickets = self._tickets, self._tickets + 1
            item = self._items.popleft()
            self._cond.notify_all()
            return ticket, item

    def get(self, timeout: float = POLL_S) -> T | None:
        taken = self.take(timeout)
        return None if taken is None else taken[1]

    def finish(self) -> None:
        """The producer will put nothing more."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    @property
    def exhausted(self) -> bool:
        with self._cond:
            return self._finished and not self._items

    def drain(self) -> int:
        """Discard everything queued (at shutdown, so no producer stays blocked)."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self._cond.notify_all()
            return n
