"""The OBS server under connection floods: idle sockets, slowloris headers, one greedy address.

Every flood here is bounded (a few hundred sockets at most, on loopback) and every wait has a
deadline; the limits are lowered in the server's settings so that the tests stay small.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from test_server_support import serving, wait_until

from animerec.server import ObsServer
from animerec.server.state import ServerState

pytestmark = pytest.mark.timeout(30)

FD_DIR = Path("/proc/self/fd")


def state_of(server: ObsServer) -> ServerState:
    assert server.state is not None
    return server.state


def connection_counts(server: ObsServer) -> dict[str, int]:
    state = state_of(server)
    stats = server.call(lambda: state.snapshot()["server"])
    return {key: value for key, value in stats.items() if key.startswith("connections")}


def open_fds() -> int:
    return len(os.listdir(FD_DIR))


@contextlib.contextmanager
def idle_sockets(server: ObsServer, count: int, source: str = "127.0.0.1",
                 send: bytes = b"") -> Iterator[list[socket.socket]]:
    """`count` connections that send `send` (nothing by default) and then sit there."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                              source_address=(source, 0))
            if send:
                client.sendall(send)
            sockets.append(client)
        yield sockets
    finally:
        for client in sockets:
            client.close()


def get(server: ObsServer, path: str) -> tuple[int, bytes]:
    async def fetch() -> tuple[int, bytes]:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(server.url + path) as r:
            return r.status, await r.read()

    return asyncio.run(fetch())


def closed_by_server(client: socket.socket) -> bool:
    """True once the server has closed this connection (end of stream or reset)."""
    client.settimeout(0.05)
    try:
        while data := client.recv(4096):  # the 400 or 408 the server may say first
            del data
        return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


@pytest.mark.skipif(not FD_DIR.is_dir(), reason="counts open files in /proc/self/fd (Linux)")
def test_an_idle_flood_neither_starves_the_overlay_nor_grows_the_open_files() -> None:
    """300 sockets that connect and never send (no token needed to hold one) against a limit of 16:
    the longest idle are closed to make room, the overlay and the stats answer throughout."""
    limit, flood = 16, 300
    with serving(max_connections=limit, max_connections_per_address=limit, idle_timeout_s=60.0) as (server, _):
        assert get(server, "api/stats")[0] == 200
        baseline = open_fds()
        half_headers = b"GET /overlay HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        with idle_sockets(server, flood // 2) as silent, idle_sockets(server, flood // 2, send=half_headers) as slow:
            statuses = [get(server, path)[0] for path in ("api/stats", "overlay", "api/stats", "static/overlay.js")]
            wait_until(lambda: connection_counts(server)["connections"] <= limit, what="evictions")
            server_side = open_fds() - baseline - len(silent) - len(slow)
            counts = connection_counts(server)
            assert closed_by_server(silent[0]) and not closed_by_server(slow[-1])  # longest idle first
    assert statuses == [200, 200, 200, 200]
    assert server_side <= limit, server_side  # today: one file per idle socket, 300
    assert counts["connections_evicted"] >= flood - limit and counts["connections_refused"] == 0


def test_connections_without_a_request_in_progress_are_timed_out() -> None:
    """Slowloris (headers trickling in), a silent socket and an idle keep-alive are closed after
    idle_timeout_s; a WebSocket open many times that long is busy, not idle, and keeps its frames."""

    async def still_streaming_after(server: ObsServer, seconds: float) -> bool:
        async with aiohttp.ClientSession() as session, session.ws_connect(server.url + "ws") as ws:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT
            return (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT

    with serving(idle_timeout_s=0.3) as (server, _):
        trickle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        trickle.sendall(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        keep_alive = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        keep_alive.sendall(b"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert keep_alive.recv(12) == b"HTTP/1.1 200"
        deadline = time.monotonic() + 10
        while not closed_by_server(trickle):  # one more header byte every 50 ms, as slowloris does
            assert time.monotonic() < deadline, "the trickling request was never timed out"
            trickle.sendall(b"a")
        wait_until(lambda: closed_by_server(silent) and closed_by_server(keep_alive), what="idle sockets")
        streaming = asyncio.run(still_streaming_after(server, seconds=1.0))  # > 3 idle timeouts
        timed_out = connection_counts(server)["connections_timed_out"]
        for client in (trickle, silent, keep_alive):
            client.close()
    assert streaming and timed_out >= 3


def test_when_every_connection_is_busy_newcomers_are_refused_until_one_leaves() -> None:
    async def scenario(server: ObsServer) -> tuple[bool, int]:
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(server.url + "ws") for _ in range(4)]
            for ws in sockets:  # each has its frame: all four are past the handshake, busy
                await ws.receive(timeout=5)
            try:
                async with session.get(server.url + "api/stats") as response:
                    await response.read()
                refused = False
            except aiohttp.ClientConnectionError:
                refused = True
            await sockets.pop().close()
            async with session.get(server.url + "api/stats") as response:
                status = response.status
            for ws in sockets:
                await ws.close()
            return refused, status

    with serving(max_connections=4) as (server, _):
        refused, status = asyncio.run(scenario(server))
        counts = connection_counts(server)
    assert refused and status == 200 and counts["connections_refused"] >= 1


@pytest.mark.skipif(sys.platform != "linux", reason="needs 127.0.0.2, which only Linux routes by default")
def test_one_address_cannot_take_every_connection() -> None:
    async def websockets_from(server: ObsServer, source: str, count: int) -> list[bool]:
        connector = aiohttp.TCPConnector(local_addr=(source, 0), limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            opened = []
            async with contextlib.AsyncExitStack() as stack:
                for _ in range(count):
                    try:
                        ws = await stack.enter_async_context(session.ws_connect(server.url + "ws"))
                        opened.append((await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT)
                    except aiohttp.ClientConnectionError:
                        opened.append(False)
                others = await websockets_from(server, "127.0.0.1", 1) if source != "127.0.0.1" else []
            return opened + others

    with serving(max_connections=16, max_connections_per_address=3) as (server, _):
        opened = asyncio.run(websockets_from(server, "127.0.0.2", 4))
    assert opened == [True, True, True, False, True]  # the greedy address's 4th, then another's 1st
