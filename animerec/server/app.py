"""The OBS server's routes (CONTRACTS.md, `animerec serve`).

    /              status page: live preview, the URLs to paste into OBS, live stats
    /overlay       the OBS Browser Source page (transparent; boxes and names from /ws)
    /ws            frame messages with normalised boxes; the page acknowledges each one
    /stream.mjpg   multipart MJPEG of the annotated frames (one encode shared by every client)
    /snapshot.jpg  the newest annotated frame (`?raw=1`: the frame without the overlay)
    /api/stats     pipeline stats + delivery_ms + clients
    /static/NAME   the files of the static folder, and nothing else
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from animerec.server.frames import BOUNDARY
from animerec.server.security import add_safety_headers
from animerec.server.state import STATE_KEY, ServerState
from animerec.server.websocket import close_websockets, handle_websocket

STATIC_DIR = Path(__file__).with_name("static")
NO_STORE = {"Cache-Control": "no-store"}
AUTH_PLACEHOLDER = "{{auth}}"  # where pages link to our own URLs: becomes ?token=... when needed


class StaticFiles:
    """The static folder, read once and looked up by exact file name.

    A request can only ever name one of these entries, so `..`, `%2e%2e`, absolute paths and
    symbolic links have nothing to resolve against: traversal is impossible by construction.
    """

    def __init__(self, folder: Path = STATIC_DIR) -> None:
        self._files: dict[str, tuple[bytes, str]] = {}
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                self._files[path.name] = (path.read_bytes(), kind)

    def get(self, name: str) -> tuple[bytes, str] | None:
        return self._files.get(name)

    def page(self, name: str, request: web.Request) -> web.Response:
        """An HTML page whose links to our scripts and URLs carry the request's token."""
        found = self.get(name)
        if found is None:
            raise web.HTTPNotFound()
        token = request.query.get("token", "")
        auth = html.escape(f"?token={quote(token, safe='')}") if token else ""
        text = found[0].decode().replace(AUTH_PLACEHOLDER, auth)
        return web.Response(text=text, content_type="text/html", charset="utf-8", headers=NO_STORE)


STATIC_KEY: web.AppKey[StaticFiles] = web.AppKey("animerec_static", StaticFiles)


async def index_page(request: web.Request) -> web.StreamResponse:
    return request.app[STATIC_KEY].page("index.html", request)


async def overlay_page(request: web.Request) -> web.StreamResponse:
    return request.app[STATIC_KEY].page("overlay.html", request)


async def static_file(request: web.Request) -> web.StreamResponse:
    found = request.app[STATIC_KEY].get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    body, kind = found
    return web.Response(body=body, content_type=kind, headers={"Cache-Control": "no-cache"})


async def mjpeg_stream(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    response = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
        }
    )
    await response.prepare(request)
    queue = state.streams.subscribe()
    state.encoder.kick()
    try:
        while (part := await queue.get()) is not None:
            await response.write(part.part)  # waits (bounded buffer) when the client reads slowly
    except ConnectionError:
        pass  # the viewer went away; nothing to clean beyond the mailbox
    finally:
        state.streams.unsubscribe(queue)
    return response


async def snapshot(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    found = await _newest_jpeg(state, raw=request.query.get("raw") in ("1", "true", "yes"))
    if found is None:
        raise web.HTTPServiceUnavailable(text="no frame yet\n", headers={"Retry-After": "1"})
    index, jpeg = found
    headers = {**NO_STORE, "X-Frame-Index": str(index)}
    return web.Response(body=jpeg, content_type="image/jpeg", headers=headers)


async def _newest_jpeg(state: ServerState, raw: bool) -> tuple[int, bytes] | None:
    if raw:  # rare (alignment checks): encoded on demand, never cached or streamed
        item = state.encoder.latest
        if item is None:
            return None
        return item.frame.index, await state.encoder.encode(item.frame.image)
    part = await state.encoder.current()
    return None if part is None else (part.index, part.jpeg)


async def stats(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[STATE_KEY].snapshot(), headers=NO_STORE)


async def _encoder_task(app: web.Application) -> AsyncIterator[None]:
    """Run the shared JPEG encoder for the app's lifetime."""
    task = asyncio.create_task(app[STATE_KEY].encoder.run(), name="animerec-jpeg-encoder")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _on_shutdown(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.close_clients()  # MJPEG handlers and WebSocket senders see end-of-stream
    await close_websockets(state)
    # Whoever is still connected is stuck writing to a client that does not read: cut it off now
    # rather than let Ctrl-C wait out the handlers' grace period.
    for transport in state.connections.transports():
        transport.abort()


def build_app(state: ServerState) -> web.Application:
    app = web.Application(
        middlewares=[state.connections.middleware, state.policy.middleware],
        client_max_size=64 * 1024,
    )
    app[STATE_KEY] = state
    app[STATIC_KEY] = StaticFiles()
    app.router.add_get("/", index_page)
    app.router.add_get("/overlay", overlay_page)
    app.router.add_get("/ws", handle_websocket, allow_head=False)
    app.router.add_get("/stream.mjpg", mjpeg_stream, allow_head=False)
    app.router.add_get("/snapshot.jpg", snapshot)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/static/{name}", static_file)
    app.on_response_prepare.append(add_safety_headers)
    app.on_shutdown.append(_on_shutdown)
    app.cleanup_ctx.append(_encoder_task)
    return app
