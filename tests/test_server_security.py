"""Who may use the OBS server: tokens, Origin and Host checks, static paths, hostile messages."""

from __future__ import annotations

import asyncio
import http.client
import json

import aiohttp
import pytest
from test_server_support import serving, wait_until

from animerec.server import ObsServer

pytestmark = pytest.mark.timeout(20)

TOKEN = "s3cret-token"


def status_of(server: ObsServer, path: str, headers: dict[str, str] | None = None) -> int:
    async def fetch() -> int:
        async with aiohttp.ClientSession(headers=headers) as session, session.get(server.url + path) as r:
            return r.status

    return asyncio.run(fetch())


def websocket_status(server: ObsServer, path: str = "ws", headers: dict[str, str] | None = None) -> int:
    """101 when the WebSocket opens (and a message arrives), else the refusal's HTTP status."""

    async def connect() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(server.url + path, headers=headers or {}) as ws:
                    message = await ws.receive(timeout=5)
                    assert message.type == aiohttp.WSMsgType.TEXT
                    return 101
            except aiohttp.WSServerHandshakeError as error:
                return error.status

    return asyncio.run(connect())


def raw_get(server: ObsServer, path: str, host: str | None = None) -> tuple[int, bytes]:
    """A GET with the path exactly as written (no client-side normalisation of .. or %2e)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("api/stats", {}, 401),
        ("api/stats?token=wrong", {}, 401),
        ("api/stats?token=" + TOKEN[:-1], {}, 401),
        ("api/stats", {"Authorization": "Bearer wrong"}, 401),
        ("api/stats?token=" + TOKEN, {}, 200),
        ("api/stats", {"Authorization": "Bearer " + TOKEN}, 200),
        ("api/stats", {"Authorization": "bearer " + TOKEN}, 200),
        ("overlay", {}, 401),
        ("static/overlay.js", {}, 401),
        ("snapshot.jpg", {}, 401),
        ("stream.mjpg", {}, 401),
        ("overlay?token=" + TOKEN, {}, 200),
    ],
)
def test_token_is_required_on_every_http_route(path: str, headers: dict[str, str], expected: int) -> None:
    with serving(produce=False, token=TOKEN) as (server, _):
        assert status_of(server, path, headers) == expected


@pytest.mark.parametrize(
    ("path", "headers", "reason"),
    [
        ("api/stats", {}, "token required"),
        ("api/stats?token=wrong", {}, "wrong token"),
        ("api/stats", {"Authorization": "Bearer wrong"}, "wrong token"),
    ],
)
def test_a_refusal_says_whether_the_token_was_missing_or_wrong(
    path: str, headers: dict[str, str], reason: str
) -> None:
    async def fetch(server: ObsServer) -> tuple[int, str]:
        async with aiohttp.ClientSession(headers=headers) as session, session.get(server.url + path) as r:
            return r.status, await r.text()

    with serving(produce=False, token=TOKEN) as (server, _):
        status, text = asyncio.run(fetch(server))
    assert status == 401 and text.startswith(reason)


def test_token_is_required_on_the_websocket() -> None:
    with serving(token=TOKEN) as (server, _):
        assert websocket_status(server) == 401
        assert websocket_status(server, "ws?token=nope") == 401
        assert websocket_status(server, "ws?token=" + TOKEN) == 101
        assert websocket_status(server, headers={"Authorization": f"Bearer {TOKEN}"}) == 101


def test_pages_pass_the_token_on_to_their_scripts() -> None:
    with serving(produce=False, token=TOKEN) as (server, _):
        status, body = raw_get(server, f"/overlay?token={TOKEN}")
    assert status == 200 and f'src="/static/overlay.js?token={TOKEN}"'.encode() in body


def test_websocket_origin_must_be_this_server() -> None:
    with serving() as (server, _):
        same = f"http://127.0.0.1:{server.port}"
        assert websocket_status(server) == 101  # OBS and scripts send no Origin
        assert websocket_status(server, headers={"Origin": same}) == 101
        for origin in ("http://evil.example", f"http://127.0.0.1:{server.port + 1}", "null"):
            assert websocket_status(server, headers={"Origin": origin}) == 403, origin


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "192.168.0.9:{port}"])
def test_loopback_server_refuses_foreign_host_headers(host: str) -> None:
    """DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example."""
    with serving(produce=False) as (server, _):
        status, _ = raw_get(server, "/api/stats", host=host.format(port=server.port))
        assert status == 403
        assert raw_get(server, "/api/stats", host=f"localhost:{server.port}")[0] == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../../setup.cfg",
        "/static/../app.py",
        "/static/%2e%2e/%2e%2e/setup.cfg",
        "/static/%2e%2e%2f%2e%2e%2fsetup.cfg",
        "/static/..%2f..%2fsetup.cfg",
        "/static/..%5c..%5csetup.cfg",
        "/static/%252e%252e%252fapp.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/.",
        "/static/",
        "/../../setup.cfg",
        "/%2e%2e/%2e%2e/setup.cfg",
    ],
)
def test_static_paths_cannot_leave_the_static_folder(path: str) -> None:
    with serving(produce=False) as (server, _):
        status, body = raw_get(server, path)
    assert status in (400, 403, 404), (path, status)
    assert b"[metadata]" not in body and b"import" not in body and b"root:" not in body


def test_malformed_websocket_messages_are_counted_and_ignored() -> None:
    hostile = [
        "not json", '{"ack": "1"}', "[1, 2]", '{"ack": 1, "x": 2}', '{"ack": 999999}', "{}",
        "[" * 2000, '{"a":' * 2000, "[" * 60, json.dumps({"ack": 1, "pad": "x" * 10_000}),
    ]

    async def scenario(server: ObsServer) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(server.url + "ws") as ws:
                for text in hostile:
                    await ws.send_str(text)
                await ws.send_bytes(b"\x00\xff binary")
                for _ in range(3):  # still served: frames keep coming after all of that
                    assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT
                assert not ws.closed
            async with session.ws_connect(server.url + "ws") as ws:  # too big: closed, counted
                await ws.send_str(json.dumps({"ack": 1, "pad": "x" * 100_000}))
                while (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
                    pass
            async with session.ws_connect(server.url + "ws") as ws:  # the server still works
                assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT

    with serving() as (server, _):
        asyncio.run(scenario(server))
        assert server.state is not None
        state = server.state
        wait_until(lambda: server.call(lambda: state.ignored_messages) >= len(hostile) + 2)
