"""The `/ws` endpoint: frame messages out, `{"ack": index}` in, anything else counted and ignored.

Each connection runs two coroutines: the handler reads what the page sends, a sender task drains the
client's bounded mailbox. They are separate so a page that never acknowledges still gets frames, and
a page that never reads only loses its own oldest frames (its socket buffer fills, `send_str` waits,
the mailbox drops).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiohttp import WSMessage, WSMsgType, web

from animerec.server.hub import AckTracker, ClientQueue
from animerec.server.state import STATE_KEY, ServerState

log = logging.getLogger(__name__)

# What a client may send. An ack is ~12 characters, so anything longer is ignored unparsed; the
# bound also bounds JSON nesting, which json.loads follows by recursion ('[' * 2000 would raise
# RecursionError). Up to MAX_CLIENT_MESSAGE a message is ignored and counted; beyond it aiohttp
# would have to buffer it, so it closes the socket (1009 message too big), counted too.
MAX_ACK_TEXT = 64
MAX_CLIENT_MESSAGE = 64 * 1024
WRITER_LIMIT = 64 * 1024  # bytes buffered towards one client before send_str waits
CLOSE_TIMEOUT_S = 1.0  # at shutdown, how long to wait for a client's close reply


def parse_ack(data: str) -> int | None:
    """The index of a well-formed `{"ack": index}`; None for anything else."""
    if len(data) > MAX_ACK_TEXT:
        return None
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict) or set(message) != {"ack"}:
        return None
    index = message["ack"]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        return None
    return index


async def _send_frames(
    ws: web.WebSocketResponse, queue: ClientQueue[tuple[int, str]], acks: AckTracker
) -> None:
    while (item := await queue.get()) is not None:
        index, text = item
        acks.sent(index)
        await ws.send_str(text)


async def handle_websocket(request: web.Request) -> web.StreamResponse:
    state: ServerState = request.app[STATE_KEY]
    if not state.policy.origin_ok(request):
        state.policy.rejected += 1
        raise web.HTTPForbidden(text="cross-origin WebSocket refused\n")
    ws = web.WebSocketResponse(
        timeout=CLOSE_TIMEOUT_S,
        max_msg_size=MAX_CLIENT_MESSAGE,
        writer_limit=WRITER_LIMIT,
        heartbeat=10.0,  # finds pages gone without a close (OBS scene switched, laptop slept)
        compress=False,  # per-message deflate costs CPU for ~300-byte messages
    )
    await ws.prepare(request)
    queue = state.messages.subscribe()
    state.sockets.add(ws)
    acks = AckTracker(state.delivery)
    sender = asyncio.create_task(_send_frames(ws, queue, acks), name="animerec-ws-sender")
    try:
        async for message in ws:
            _receive(state, acks, message)
    finally:
        state.messages.unsubscribe(queue)
        state.sockets.discard(ws)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await sender
    return ws


def _receive(state: ServerState, acks: AckTracker, message: WSMessage) -> None:
    if message.type == WSMsgType.TEXT:
        index = parse_ack(message.data)
        if index is not None and acks.acked(index):
            return
        # Forgotten acks land here too: after a long stall the page may ack very old frames.
    state.ignored_messages += 1
    log.debug("ignored a WebSocket message of type %s", message.type)


async def close_websockets(state: ServerState) -> None:
    """Say goodbye (1001 going away) to every page, so overlays reconnect to the next server."""
    closing = [
        asyncio.create_task(ws.close(code=1001, message=b"server shutting down"))
        for ws in list(state.sockets)
    ]
    if closing:  # a client that never reads cannot even take the close frame: bounded wait
        _, late = await asyncio.wait(closing, timeout=CLOSE_TIMEOUT_S)
        for task in late:
            task.cancel()
        await asyncio.gather(*closing, return_exceptions=True)
