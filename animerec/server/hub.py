"""Fan-out to network clients: one small bounded mailbox per client, oldest dropped first.

Everything here runs on the server's event loop thread only, so there are no locks. A client that
stops reading fills its own mailbox and loses its own oldest frames; the producer never waits and
no other client notices (ENGINEERING.md: every queue bounded, with a named, counted drop policy).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


class ClientQueue(Generic[T]):
    """One client's mailbox: keeps the newest `maxsize` items, drops and counts the oldest."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"server.client_queue must be >= 1, got {maxsize}")
        self._items: deque[T] = deque(maxlen=maxsize)
        self._ready = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> None:
        if len(self._items) == self._items.maxlen:
            self.dropped += 1  # deque(maxlen) discards the oldest on append
        self._items.append(item)
        self._ready.set()

    async def get(self) -> T | None:
        """The oldest kept item; None once the queue is closed (server shutting down)."""
        while not self._items:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)


class Hub(Generic[T]):
    """The set of live mailboxes of one kind (WebSocket messages, or MJPEG parts)."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._clients: set[ClientQueue[T]] = set()
        self._departed_drops = 0  # drops of clients that have left, so the total never shrinks

    def subscribe(self) -> ClientQueue[T]:
        queue: ClientQueue[T] = ClientQueue(self._maxsize)
        self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: ClientQueue[T]) -> None:
        if queue in self._clients:
            self._clients.discard(queue)
            self._departed_drops += queue.dropped
        queue.close()

    def publish(self, item: T) -> None:
        for queue in self._clients:
            queue.put(item)

    def close_all(self) -> None:
        for queue in self._clients:
            queue.close()

    @property
    def dropped(self) -> int:
        return self._departed_drops + sum(q.dropped for q in self._clients)

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._clients)

    def __len__(self) -> int:
        return len(self._clients)

    def __iter__(self) -> Iterator[ClientQueue[T]]:
        return iter(self._clients)


class LatencyWindow:
    """Percentiles, in milliseconds, over the most recent samples (seconds in)."""

    def __init__(self, size: int = 600) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def percentiles(self, *qs: int) -> dict[str, float | None]:
        if not self._samples:
            return {f"p{q}": None for q in qs}
        values = np.percentile(np.fromiter(self._samples, float), qs) * 1000.0
        return {f"p{q}": round(float(v), 3) for q, v in zip(qs, values, strict=True)}

    def __len__(self) -> int:
        return len(self._samples)


class AckTracker:
    """Matches a page's `{"ack": index}` to the time the server sent that index.

    delivery = ack receipt - send time, both on this process's monotonic clock: the round trip
    through the network, the browser's JSON parse and DOM update, and the ack's way back. It
    overstates one-way delivery a little and needs no clock shared with the browser.
    """

    def __init__(self, window: LatencyWindow, remember: int = 64) -> None:
        self._window = window
        self._remember = remember
        self._sent: OrderedDict[int, float] = OrderedDict()

    def sent(self, index: int) -> None:
        self._sent[index] = time.monotonic()
        while len(self._sent) > self._remember:  # a page that never acks costs nothing more
            self._sent.popitem(last=False)

    def acked(self, index: int) -> bool:
        """Record one delivery; False when the index was never sent (or long forgotten)."""
        sent_at = self._sent.pop(index, None)
        if sent_at is None:
            return False
        self._window.add(time.monotonic() - sent_at)
        return True
