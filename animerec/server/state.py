"""What the OBS server knows while it runs: its settings, its clients, and what it reports.

`ServerState` lives on the event loop thread. It receives each finished frame once (from
`FrameHandoff`), turns it into one JSON text for every WebSocket client and hands the pixels to the
shared JPEG encoder; `/api/stats` reads the counters it keeps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from animerec.records import AnnotatedFrame
from animerec.server.connections import ConnectionGuard, ConnectionLimits
from animerec.server.frames import JpegEncoder, JpegPart, frame_message
from animerec.server.hub import Hub, LatencyWindow
from animerec.server.security import AccessPolicy

log = logging.getLogger(__name__)

StatsProvider = Callable[[], dict[str, Any]]

# The pipeline's keys of CONTRACTS.md, with what to show before the pipeline has measured anything.
PIPELINE_DEFAULTS: dict[str, Any] = {
    "fps": 0.0,
    "latency_ms": {"p50": None, "p95": None, "p99": None},
    "dropped": 0,
    "provider": "",
}


class ServerSection(Protocol):
    """What the server needs: `animerec.config.ServerConfig` (the `server` section), or a
    `ServerSettings` where there is no configuration."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...  # 0 picks a free port
    @property
    def token(self) -> str: ...  # "" = no token (loopback only)
    @property
    def client_queue(self) -> int: ...  # frames each client may fall behind before drops
    @property
    def max_connections(self) -> int: ...
    @property
    def max_connections_per_address(self) -> int: ...
    @property
    def idle_timeout_s(self) -> float: ...  # a connection with no request in progress is closed


@dataclass(frozen=True)
class ServerSettings:
    """Stand-alone settings with the configuration's defaults."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str = ""
    client_queue: int = 4
    max_connections: int = 128
    max_connections_per_address: int = 32
    idle_timeout_s: float = 10.0
    jpeg_quality: int = 80


class ServerState:
    """Clients, encoder and counters of one running server (event loop thread only)."""

    def __init__(self, config: ServerSection, stats: StatsProvider, executor: Executor) -> None:
        self.config = config
        self.policy = AccessPolicy(config.host, config.token)
        limits = ConnectionLimits(
            max_connections=config.max_connections,
            max_per_address=config.max_connections_per_address,
            idle_timeout_s=config.idle_timeout_s,
        )
        self.connections = ConnectionGuard(limits)
        self.messages: Hub[tuple[int, str]] = Hub(config.client_queue)
        self.streams: Hub[JpegPart] = Hub(config.client_queue)
        quality = int(getattr(config, "jpeg_quality", 80))
        self.encoder = JpegEncoder(
            executor, self.streams.publish, lambda: len(self.streams) > 0, quality
        )
        self.delivery = LatencyWindow()
        self.sockets: set[web.WebSocketResponse] = set()
        self.frames_in = 0
        self.ignored_messages = 0  # malformed or unexpected WebSocket messages from clients
        self.handoff_dropped: Callable[[], int] = lambda: 0  # filled in by the service, its owner
        self._stats = stats

    def publish(self, item: AnnotatedFrame) -> None:
        """One finished frame: serialised once for all WebSocket clients, offered to the encoder."""
        self.frames_in += 1
        self.encoder.offer(item)
        if len(self.messages):
            text = json.dumps(frame_message(item), ensure_ascii=False, separators=(",", ":"))
            self.messages.publish((item.frame.index, text))

    def close_clients(self) -> None:
        """Wake every client's sender with end-of-stream (shutdown)."""
        self.messages.close_all()
        self.streams.close_all()

    def snapshot(self) -> dict[str, Any]:
        """The body of /api/stats: the pipeline's keys, then the server's own."""
        try:
            pipeline = dict(self._stats())
        except Exception:  # a broken provider must not take the status page down with it
            log.exception("the pipeline's stats provider failed")
            pipeline = {}
        body = {**PIPELINE_DEFAULTS, **pipeline}
        body["delivery_ms"] = {**self.delivery.percentiles(50, 95), "samples": len(self.delivery)}
        body["clients"] = len(self.messages) + len(self.streams)
        body["server"] = {
            "websocket_clients": len(self.messages),
            "mjpeg_clients": len(self.streams),
            "frames_in": self.frames_in,
            "jpegs_encoded": self.encoder.encoded,
            "client_dropped": self.messages.dropped + self.streams.dropped,
            "handoff_dropped": self.handoff_dropped(),
            "queued": self.messages.queued + self.streams.queued,
            "connections": len(self.connections),
            "connections_evicted": self.connections.evicted,
            "connections_refused": self.connections.refused,
            "connections_timed_out": self.connections.timed_out,
            # Bytes written but not yet taken by the kernel: bounded by the writers' limits however
            # slowly clients read, and shown here to prove it.
            "buffered_bytes": sum(t.get_write_buffer_size() for t in self.connections.transports()),
            "ignored_messages": self.ignored_messages,
            "rejected_requests": self.policy.rejected,
        }
        return body


STATE_KEY: web.AppKey[ServerState] = web.AppKey("animerec_state", ServerState)
