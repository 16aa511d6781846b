"""Connection limits: clients that connect and then do nothing cannot starve the server.

aiohttp accepts every connection and leaves limits to the application (aiohttp#675); an idle
connection needs no token, and enough of them use up the process's open files. `ConnectionGuard`
stands between the listening socket and aiohttp:

* at most `max_connections` in all and `max_per_address` from one address. A newcomer that would
  exceed either closes the longest-idle connection of that scope (idle: no request in progress);
  only when all of them are busy is the newcomer refused. A real client sends its request as soon
  as it connects, so it is never the longest idle: a flood of idle sockets cannot keep the overlay
  or /api/stats from being served.
* a connection with no request in progress is closed after `idle_timeout_s`: request headers that
  never finish arriving (slowloris), a keep-alive connection nobody reuses, a socket that never
  sends a byte.

What it closes and refuses is counted for /api/stats; refusals are also logged, at most once a
minute: a flood of connections must not become a flood of log lines.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from aiohttp import web

from animerec.server.security import Handler

log = logging.getLogger(__name__)

WARN_EVERY_S = 60.0


@dataclass(frozen=True)
class ConnectionLimits:
    """The `server` section's limits (config.py): connections in all, per address, idle seconds."""

    max_connections: int = 128
    max_per_address: int = 32
    idle_timeout_s: float = 10.0


class _Connection:
    """One admitted connection; `timer` closes it when idle too long (event loop thread only)."""

    __slots__ = ("address", "timer", "transport")

    def __init__(self, transport: asyncio.Transport, address: str) -> None:
        self.transport = transport
        self.address = address
        self.timer: asyncio.TimerHandle | None = None


class ConnectionGuard:
    """Admits, times out and evicts connections (the module docstring); event loop thread only."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: dict[asyncio.Transport, _Connection] = {}
        self._idle: OrderedDict[asyncio.Transport, _Connection] = OrderedDict()  # longest first
        self._per_address: Counter[str] = Counter()
        self.evicted = 0  # idle connections closed to make room for a newcomer
        self.refused = 0  # newcomers closed at once: every connection in their scope was busy
        self.timed_out = 0  # idle for idle_timeout_s
        self._warned_at = -math.inf

    def protocol_factory(self, make_handler: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """What the listening socket builds for each connection: aiohttp's handler behind the guard."""
        return lambda: GuardedProtocol(self, make_handler)

    def transports(self) -> list[asyncio.Transport]:
        return list(self._open)

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, transport: asyncio.Transport) -> bool:
        """Register a new connection, closing an idle one if a limit is reached; False: refuse it."""
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else ""
        if self._per_address[address] >= self.limits.max_per_address:
            room = self._evict_longest_idle(lambda connection: connection.address == address)
        elif len(self._open) >= self.limits.max_connections:
            room = self._evict_longest_idle(lambda connection: True)
        else:
            room = True
        if not room:
            self.refused += 1
            self._warn_refusing()
            return False
        connection = _Connection(transport, address)
        self._open[transport] = connection
        self._per_address[address] += 1
        self._idle_from_now(connection)
        return True

    def release(self, transport: asyncio.Transport) -> None:
        """The connection is gone (closed by either side); a no-op for one already forgotten."""
        connection = self._open.get(transport)
        if connection is not None:
            self._forget(connection)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the connection busy while a request is handled (a stream or WebSocket: throughout)."""
        connection = self._open.get(request.transport) if request.transport is not None else None
        if connection is None:
            return await handler(request)
        self._idle.pop(connection.transport, None)
        if connection.timer is not None:
            connection.timer.cancel()
        try:
            return await handler(request)
        finally:
            if connection.transport in self._open:
                self._idle_from_now(connection)

    def _idle_from_now(self, connection: _Connection) -> None:
        self._idle[connection.transport] = connection  # last: the most recently idle
        loop = asyncio.get_running_loop()
        connection.timer = loop.call_later(self.limits.idle_timeout_s, self._expire, connection)

    def _expire(self, connection: _Connection) -> None:
        self.timed_out += 1
        self._close(connection)

    def _evict_longest_idle(self, in_scope: Callable[[_Connection], bool]) -> bool:
        victim = next((c for c in self._idle.values() if in_scope(c)), None)
        if victim is None:
            return False
        self.evicted += 1  # routine under load (a browser's spare keep-alive): counted, not logged
        self._close(victim)
        return True

    def _close(self, connection: _Connection) -> None:
        self._forget(connection)
        # abort, not close: an idle connection is owed nothing, and close() would keep the socket
        # until a client that never reads had taken the rest of the last response.
        connection.transport.abort()

    def _forget(self, connection: _Connection) -> None:
        del self._open[connection.transport]
        self._idle.pop(connection.transport, None)
        self._per_address[connection.address] -= 1
        if not self._per_address[connection.address]:
            del self._per_address[connection.address]
        if connection.timer is not None:
            connection.timer.cancel()

    def _warn_refusing(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning(
                "refusing new connections: a limit is reached (server.max_connections %d, "
                "server.max_connections_per_address %d) and every connection is busy with a "
                "request (%d refused so far)",
                self.limits.max_connections, self.limits.max_per_address, self.refused,
            )


class GuardedProtocol(asyncio.Protocol):
    """Admits its connection through the guard, then passes every event on to aiohttp's handler."""

    def __init__(self, guard: ConnectionGuard, make_handler: Callable[[], asyncio.Protocol]) -> None:
        self._guard = guard
        self._make_handler = make_handler
        self._transport: asyncio.Transport | None = None
        self._handler: asyncio.Protocol | None = None  # None: refused, nothing more to pass on

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = self._transport = cast(asyncio.Transport, transport)  # what a TCP server makes
        if not self._guard.admit(transport):
            transport.abort()
            return
        self._handler = self._make_handler()
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handler is not None and self._transport is not None:
            self._guard.release(self._transport)
            self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._handler is not None:
            self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received() if self._handler is not None else None

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()
