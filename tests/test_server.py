"""The OBS server's routes against the real server on an ephemeral loopback port (CONTRACTS.md)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from test_server_support import FAKE_STATS, HEIGHT, KNOWN_FACES, WIDTH, serving, wait_until

from animerec.server import ObsServer

pytestmark = pytest.mark.timeout(20)

MESSAGE_KEYS = {"index", "time", "captured_at", "width", "height", "faces"}
FACE_KEYS = {"box", "name", "confidence", "top", "track"}


async def read_part(stream: aiohttp.StreamReader) -> tuple[dict[str, str], bytes]:
    """One part of a multipart/x-mixed-replace body: its headers and its bytes."""
    line = b""
    while not line.strip():  # the CRLF that ends the previous part, then the boundary
        line = await stream.readline()
    assert line.strip().startswith(b"--"), line
    headers: dict[str, str] = {}
    while (line := await stream.readline()).strip():
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers, await stream.readexactly(int(headers["content-length"]))


def get_json(server: ObsServer, path: str) -> Any:
    async def fetch() -> Any:
        async with aiohttp.ClientSession() as session, session.get(server.url + path) as r:
            assert r.status == 200
            return await r.json()

    return asyncio.run(fetch())


def test_websocket_messages_carry_normalised_faces_and_acks_are_measured() -> None:
    async def scenario(server: ObsServer) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.ws_connect(server.url + "ws") as ws:
            messages = []
            for _ in range(5):
                message = json.loads((await ws.receive(timeout=5)).data)
                await ws.send_str(json.dumps({"ack": message["index"]}))
                messages.append(message)
            return messages

    with serving() as (server, _):
        messages = asyncio.run(scenario(server))
        wait_until(lambda: get_json(server, "api/stats")["delivery_ms"]["samples"] >= 4, what="acks")
        delivery = get_json(server, "api/stats")["delivery_ms"]
    indices = [m["index"] for m in messages]
    assert indices == sorted(indices) and len(set(indices)) == 5
    for message in messages:
        assert set(message) == MESSAGE_KEYS
        assert (message["width"], message["height"]) == (WIDTH, HEIGHT)
        assert isinstance(message["captured_at"], float) and message["time"] >= 0
        assert [face["name"] for face in message["faces"]] == [f[0] for f in KNOWN_FACES]
        for face, (_, (x, y, w, h), confidence, top) in zip(message["faces"], KNOWN_FACES, strict=True):
            assert set(face) == FACE_KEYS and face["track"] is None
            assert face["box"] == pytest.approx([x / WIDTH, y / HEIGHT, w / WIDTH, h / HEIGHT])
            assert face["confidence"] == pytest.approx(confidence, abs=1e-6)
            assert [name for name, _ in face["top"]] == [name for name, _ in top]
    assert delivery["p50"] is not None and 0 <= delivery["p50"] <= delivery["p95"] < 1000


def test_mjpeg_stream_delivers_decodable_jpegs_in_order() -> None:
    async def scenario(server: ObsServer) -> tuple[str, list[tuple[dict[str, str], bytes]]]:
        async with aiohttp.ClientSession() as session, session.get(server.url + "stream.mjpg") as r:
            assert r.status == 200
            parts = [await asyncio.wait_for(read_part(r.content), 5) for _ in range(3)]
            return r.headers["Content-Type"], parts

    with serving() as (server, _):
        content_type, parts = asyncio.run(scenario(server))
    assert content_type.startswith("multipart/x-mixed-replace; boundary=")
    images = [cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) for _, body in parts]
    assert all(headers["content-type"] == "image/jpeg" for headers, _ in parts)
    assert all(image is not None and image.shape == (HEIGHT, WIDTH, 3) for image in images)
    assert not np.array_equal(images[0], images[2])  # the frame index is drawn: frames move on


def test_snapshot_is_the_newest_frame_annotated_or_raw() -> None:
    async def fetch(server: ObsServer, path: str) -> tuple[int, bytes, dict[str, str]]:
        async with aiohttp.ClientSession() as session, session.get(server.url + path) as r:
            return r.status, await r.read(), dict(r.headers)

    with serving(produce=False) as (server, _):
        status, _, headers = asyncio.run(fetch(server, "snapshot.jpg"))
        assert status == 503 and headers["Retry-After"] == "1"
    with serving() as (server, producer):
        assert producer is not None
        wait_until(lambda: producer.written > 3, what="frames")
        status, body, headers = asyncio.run(fetch(server, "snapshot.jpg"))
        raw_status, raw, _ = asyncio.run(fetch(server, "snapshot.jpg?raw=1"))
    assert status == 200 and raw_status == 200 and headers["Content-Type"] == "image/jpeg"
    assert int(headers["X-Frame-Index"]) >= 3 and headers["Cache-Control"] == "no-store"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    plain = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    x, y, _, _ = KNOWN_FACES[0][1]
    assert image[y, x + 40, 1] > 180 and plain[y, x + 40, 1] < 180  # the box is drawn only on one


def test_stats_have_the_contract_keys_and_count_clients() -> None:
    async def with_client(server: ObsServer) -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(server.url + "ws") as ws:
            await ws.receive(timeout=5)
            async with session.get(server.url + "api/stats") as response:
                assert response.headers["Cache-Control"] == "no-store"
                return dict(await response.json())

    with serving() as (server, _):
        stats = asyncio.run(with_client(server))
        wait_until(lambda: get_json(server, "api/stats")["clients"] == 0, what="client to leave")
    assert {"fps", "latency_ms", "delivery_ms", "dropped", "provider", "clients"} <= set(stats)
    assert set(stats["latency_ms"]) == {"p50", "p95", "p99"}
    assert {"p50", "p95"} <= set(stats["delivery_ms"])
    assert stats["clients"] == 1 and stats["server"]["websocket_clients"] == 1
    assert {k: stats[k] for k in FAKE_STATS} == FAKE_STATS


def test_stats_survive_a_broken_provider() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    with serving(produce=False, stats=broken) as (server, _):
        stats = get_json(server, "api/stats")
    assert stats["fps"] == 0.0 and stats["clients"] == 0


@pytest.mark.parametrize(
    ("path", "kind", "needle"),
    [
        ("", "text/html", b"/static/index.js"),
        ("overlay", "text/html", b"/static/overlay.js"),
        ("static/overlay.js", "javascript", b"WebSocket"),
        ("static/index.js", "javascript", b"/api/stats"),
        ("overlay?token=a%26b", "text/html", b"/static/overlay.js"),
    ],
)
def test_pages_and_static_files(path: str, kind: str, needle: bytes) -> None:
    async def fetch(server: ObsServer) -> tuple[int, str, bytes]:
        async with aiohttp.ClientSession() as session, session.get(server.url + path) as r:
            return r.status, r.headers["Content-Type"], await r.read()

    with serving(produce=False) as (server, _):
        status, content_type, body = asyncio.run(fetch(server))
    assert status == 200 and kind in content_type and needle in body
    assert b"{{auth}}" not in body


def test_port_in_use_is_a_usage_error() -> None:
    from animerec.errors import UsageError
    from animerec.server import ServerSettings

    with serving(produce=False) as (server, _):
        second = ObsServer(ServerSettings(port=server.port), dict)
        with pytest.raises(UsageError, match="cannot listen"):
            second.start()
