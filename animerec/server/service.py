"""The OBS server as a pipeline sink: aiohttp on its own thread, with its own event loop.

    sink, url = start_server(config.server, pipeline.stats.snapshot)
    ...  pipeline calls sink.write(annotated_frame) for every frame ...
    sink.close()  # closes every client, stops the loop, joins the thread

The pipeline's thread only ever touches `FrameHandoff.push` (a lock held for an append), so a
stalled network, a slow page or a crashed client can never slow recognition down.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web

from animerec.errors import AnimerecError, UsageError
from animerec.records import AnnotatedFrame
from animerec.server.app import build_app
from animerec.server.client_log import HTTP_LOG
from animerec.server.frames import FrameHandoff
from animerec.server.security import check_bind
from animerec.server.state import ServerSection, ServerState, StatsProvider

log = logging.getLogger(__name__)

T = TypeVar("T")

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
HANDLER_GRACE_S = 2.0  # how long shutdown waits for request handlers before cancelling them
BACKLOG = 128  # connections the kernel holds for us before we accept them


def check_port(host: str, port: int, port_option: str = "--port ") -> None:
    """Bind `host:port` the way the server will, and let it go again: a port in use or an address
    of another machine is reported (UsageError) before the model loads, not after. The message
    says how to choose another port with `port_option`, the way the calling command spells it."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as error:
        raise cannot_listen(host, port, error, port_option) from error
    bound, unavailable = False, None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            if os.name == "posix":  # as asyncio's create_server: a port in TIME_WAIT is free
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno != errno.EADDRNOTAVAIL:
                    raise cannot_listen(host, port, error, port_option) from error
                unavailable = error  # e.g. ::1 without IPv6: asyncio skips that address too
            else:
                bound = True
    if not bound and unavailable is not None:
        raise cannot_listen(host, port, unavailable, port_option) from unavailable


def cannot_listen(host: str, port: int, error: OSError, port_option: str = "--port ") -> UsageError:
    message = f"cannot listen on {host}:{port}: {error.strerror or error}"
    if error.errno in (errno.EADDRINUSE, errno.EACCES):
        message += f" (choose another port with {port_option}N, or {port_option}0 for any free one)"
    return UsageError(message)


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


class ObsServer:
    """Owns the server thread, its event loop and the JPEG worker; `start` returns when listening."""

    def __init__(self, config: ServerSection, stats: StatsProvider) -> None:
        check_bind(config.host, config.token)
        self.config = config
        self._stats = stats
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._handoff: FrameHandoff | None = None
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="animerec-jpeg")
        self.state: ServerState | None = None  # event loop thread only; see call()
        self.port = 0

    @property
    def url(self) -> str:
        return url_for(self.config.host, self.port)

    def start(self, timeout: float = START_TIMEOUT_S) -> str:
        """Bind and serve; raises UsageError when the address cannot be used."""
        self._thread = threading.Thread(target=self._run, name="animerec-obs-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise AnimerecError(f"the OBS server did not start within {timeout:.0f} s")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT_S)
            raise self._error
        return self.url

    def publish(self, item: AnnotatedFrame) -> None:
        """Hand one frame to the clients; any thread, never blocks."""
        if self._handoff is not None:
            self._handoff.push(item)

    def call(self, function: Callable[[], T], timeout: float = 5.0) -> T:
        """Run `function` on the event loop thread and return its result (tests, diagnostics)."""
        if self._loop is None:
            raise RuntimeError("the server is not running")

        async def invoke() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Close every client, stop the loop and join the thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed between the check and the call
                loop.call_soon_threadsafe(loop.stop)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the OBS server thread did not stop within %.0f s", timeout)
        self._executor.shutdown(wait=True, cancel_futures=True)  # an encode takes ms

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._listen(loop))
        except BaseException as error:
            self._error = error
            loop.run_until_complete(self._close())
            loop.close()
            self._ready.set()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._close())
            loop.close()

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        state = ServerState(self.config, self._stats, self._executor)
        handoff = FrameHandoff(loop, state.publish)
        self._runner = runner = web.AppRunner(
            build_app(state), access_log=None, logger=HTTP_LOG, shutdown_timeout=HANDLER_GRACE_S
        )
        state.handoff_dropped = lambda: handoff.dropped
        self.state = state
        await runner.setup()
        assert runner.server is not None  # set up just above
        # Our own listening socket rather than web.TCPSite: every connection passes the guard
        # (server/connections.py) before aiohttp sees it.
        factory = state.connections.protocol_factory(runner.server)
        host, port = self.config.host, self.config.port
        try:
            self._listener = await loop.create_server(factory, host, port, backlog=BACKLOG)
        except OSError as error:
            raise cannot_listen(host, port, error) from error
        self.port = int(self._listener.sockets[0].getsockname()[1])
        self._handoff = handoff  # only now: frames before this point have no one to go to

    async def _close(self) -> None:
        self._handoff = None
        if self._listener is not None:
            self._listener.close()  # no new connections; the runner's cleanup ends the open ones
        if self._runner is not None:
            await self._runner.cleanup()  # on_shutdown closes clients; handlers get a grace period
        current = asyncio.current_task()
        leftovers = [task for task in asyncio.all_tasks() if task is not current]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()


class ObsSink:
    """The pipeline's side of the server (the `Sink` protocol): write frames, close to stop."""

    def __init__(self, server: ObsServer) -> None:
        self.server = server

    def write(self, item: AnnotatedFrame) -> None:
        self.server.publish(item)

    def close(self) -> None:
        self.server.stop()


def start_server(config: ServerSection, stats: StatsProvider) -> tuple[ObsSink, str]:
    """Start the OBS server; returns its sink and its URL (`http://HOST:PORT/`).

    `config` is the configuration's `server` section (host, port, token, client_queue and the
    connection limits; port 0 picks a free port); `stats` returns the pipeline's stats dict and
    is called on the server's thread. Raises UsageError for a non-loopback host without a token,
    or a port in use.
    """
    server = ObsServer(config, stats)
    url = server.start()
    return ObsSink(server), url
