"""The overlay page in real headless Chromium: boxes and names land where the faces are, labels
are laid out as the burnt-in overlay lays them out, and the preview shows the boxes' own frame.

Chromium runs with a fresh profile and is driven over the DevTools protocol (an aiohttp WebSocket),
so the checks read the page's own DOM and a real rendered screenshot. The browser is required: in
CI the test setup installs it, and a missing browser fails with instructions instead of skipping.

    ANIMEREC_CHROMIUM=/path/to/chrome    use another Chromium build
    ANIMEREC_OVERLAY_SCREENSHOT=FILE     also save the overlay over its preview (docs/obs-overlay.png)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
from test_label_layout import FIXTURES, NAGADOMI, named_faces
from test_server_support import HEIGHT, KNOWN_FACES, WIDTH, FakeProducer, background, serving

from animerec.realtime.label_layout import SPOTS, LabelRequest, Rect, place_labels
from animerec.realtime.overlay import FaceAnnotator, label_for, swatch_for
from animerec.records import Faces
from animerec.server import ObsServer, ObsSink

pytestmark = pytest.mark.timeout(60)  # Chromium's first start on a busy 2-core machine is slow

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0",
]
VIEW_W, VIEW_H = 960, 540  # the Browser Source size; frames are 640x360, so everything scales by 1.5
SCALE = VIEW_W / WIDTH


def find_chromium() -> str:
    override = os.environ.get("ANIMEREC_CHROMIUM")
    for name in [override] if override else ["chromium", "chromium-browser", "google-chrome"]:
        if found := shutil.which(name):
            return found
    pytest.fail(
        "headless Chromium is required for the overlay test: install it "
        "(Debian/Ubuntu: apt-get install -y chromium) or set ANIMEREC_CHROMIUM=/path/to/chrome",
        pytrace=False,
    )


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[int]:
    """Start Chromium on about:blank; yields its DevTools port; kills its process group after."""
    process = subprocess.Popen(
        [find_chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit code {process.poll()})", pytrace=False)
            time.sleep(0.1)
        yield int(port_file.read_text().split()[0])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # our own new session: the browser's helpers too
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


class Page:
    """A minimal DevTools protocol client for one tab."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        await self._ws.send_json({"id": self._next_id, "method": method, "params": params})
        while True:  # events arrive in between; we only want our answer
            reply = await self._ws.receive_json(timeout=20)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return dict(reply["result"])

    async def load(self, url: str) -> None:
        """Navigate and return when the page's load event fires: when `chromium --screenshot`
        would take its picture."""
        await self.send("Page.enable")
        self._next_id += 1
        await self._ws.send_json({"id": self._next_id, "method": "Page.navigate", "params": {"url": url}})
        while (await self._ws.receive_json(timeout=20)).get("method") != "Page.loadEventFired":
            pass

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := await self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise AssertionError(f"page never satisfied: {expression}")
            await asyncio.sleep(0.05)
        return value

    async def screenshot(self, scale: float = 1.0) -> np.ndarray:
        clip = {"x": 0, "y": 0, "width": VIEW_W, "height": VIEW_H, "scale": scale}
        data = (await self.send("Page.captureScreenshot", format="png", clip=clip))["data"]
        return cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_UNCHANGED)


@contextlib.asynccontextmanager
async def open_page(devtools_port: int) -> AsyncIterator[Page]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{devtools_port}/json/list") as response:
            targets = await response.json(content_type=None)
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with session.ws_connect(url, max_msg_size=0) as ws:
            page = Page(ws)
            await page.send(
                "Emulation.setDeviceMetricsOverride",
                width=VIEW_W, height=VIEW_H, deviceScaleFactor=1, mobile=False,
            )
            transparent = {"r": 0, "g": 0, "b": 0, "a": 0}  # what OBS composites over the video
            await page.send("Emulation.setDefaultBackgroundColorOverride", color=transparent)
            yield page


FACES_JS = """JSON.stringify({
  stage: document.getElementById('stage').getBoundingClientRect(),
  background: getComputedStyle(document.body).backgroundColor,
  dropped: Number(document.getElementById('stage').dataset.dropped),
  faces: [...document.querySelectorAll('.face')].filter(e => !e.hidden).map(e => {
    const label = e.nextElementSibling;  // each face's label follows its box
    return {name: e.dataset.name, unknown: e.classList.contains('unknown'), rect: e.getBoundingClientRect(),
            label: label.hidden ? null : {text: label.innerText, rect: label.getBoundingClientRect()}};
  }),
})"""


def dom_overlaps(drawn: dict[str, Any]) -> int:
    """Labels covering another face's box or another label in the rendered page (half a pixel of
    rounding is not an overlap)."""
    def rect(r: dict[str, float]) -> Rect:
        return Rect(r["x"] + 0.5, r["y"] + 0.5, r["width"] - 1, r["height"] - 1)

    faces = [rect(face["rect"]) for face in drawn["faces"]]
    labels = [(i, rect(face["label"]["rect"])) for i, face in enumerate(drawn["faces"]) if face["label"]]
    covering = sum(label.overlaps(face) for i, label in labels for j, face in enumerate(faces) if j != i)
    return covering + sum(a.overlaps(b) for k, (_, a) in enumerate(labels) for _, b in labels[k + 1:])


async def check_overlay(server: ObsServer, page: Page, screenshot: Path | None) -> dict[str, Any]:
    await page.send("Page.navigate", url=server.url + "overlay?top3=1&font=18")
    await page.wait_for("document.getElementById('status')?.dataset.state === 'connected'")
    await page.wait_for("Number(document.getElementById('stage')?.dataset.index) > 5")
    drawn = json.loads(await page.evaluate(FACES_JS))
    image = await page.screenshot()
    await asyncio.sleep(3)  # let acks accumulate for the delivery figure
    async with aiohttp.ClientSession() as session, session.get(server.url + "api/stats") as r:
        stats = await r.json()
    if screenshot is not None:  # the docs' picture: the same page with the frame shown beneath
        await page.send("Page.navigate", url=server.url + "overlay?top3=1&font=18&preview=1")
        await page.wait_for("document.getElementById('preview').dataset.index !== undefined")
        await asyncio.sleep(0.3)
        cv2.imwrite(str(screenshot), await page.screenshot(), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return {"drawn": drawn, "image": image, "stats": stats}


def test_overlay_draws_known_faces_where_they_are(tmp_path: Path) -> None:
    target = os.environ.get("ANIMEREC_OVERLAY_SCREENSHOT")

    async def scenario(server: ObsServer, devtools_port: int) -> dict[str, Any]:
        async with open_page(devtools_port) as page:
            return await check_overlay(server, page, Path(target) if target else None)

    with serving(fps=30) as (server, _), chromium(tmp_path / "profile") as devtools_port:
        result = asyncio.run(scenario(server, devtools_port))

    drawn, image, stats = result["drawn"], result["image"], result["stats"]
    assert drawn["background"] == "rgba(0, 0, 0, 0)"
    stage = drawn["stage"]
    assert (stage["x"], stage["y"], stage["width"], stage["height"]) == (0, 0, VIEW_W, VIEW_H)
    assert [face["name"] for face in drawn["faces"]] == [face[0] for face in KNOWN_FACES]
    for face, (name, box, confidence, top) in zip(drawn["faces"], KNOWN_FACES, strict=True):
        label = face["label"]
        rect = face["rect"]
        expected = [v * SCALE for v in box]
        assert [rect["x"], rect["y"], rect["width"], rect["height"]] == pytest.approx(expected, abs=1)
        # The burnt-in overlay's words: a name and its confidence, or unknown with a guess.
        head = label_for(name, confidence, top, top3=False).head
        assert label["text"].startswith(head), (label["text"], head)
        assert top[1][0] in label["text"]  # top3=1 lists the runners-up too
        assert face["unknown"] == (name == "unknown")
    assert drawn["faces"][1]["label"]["text"].startswith("unknown (kiara? 31%)")
    assert dom_overlaps(drawn) == 0 and drawn["dropped"] == 0

    # The rendered pixels: transparent where there is no face, the palette's colour on a box's edge.
    assert image.shape == (VIEW_H, VIEW_W, 4)
    assert image[VIEW_H - 5, 5, 3] == 0 and image[VIEW_H // 2, VIEW_W // 2, 3] == 0
    for name, box, _, _ in KNOWN_FACES:
        x, y, _, h = (int(v * SCALE) for v in box)
        edge = image[y + h // 2, x + 1]
        expected_bgr = swatch_for(name).box  # the same colour as the burnt-in overlay's
        assert edge[3] == 255 and np.abs(edge[:3].astype(int) - expected_bgr).max() <= 12, (name, edge)

    delivery = stats["delivery_ms"]
    print(f"\noverlay delivery on loopback (send -> ack): p50 {delivery['p50']} ms, "
          f"p95 {delivery['p95']} ms over {delivery['samples']} frames")
    assert delivery["samples"] >= 30 and delivery["p95"] is not None
    assert delivery["p95"] < 250  # target 50 ms; generous for a loaded CI machine


# ---- one layout in two languages ---------------------------------------------------------------


class CrowdProducer(FakeProducer):
    """The fake pipeline, with the given faces in every frame instead of KNOWN_FACES."""

    def __init__(self, sink: ObsSink, faces: Faces) -> None:
        super().__init__(sink, fps=10)
        self._faces = faces


def crowd(width: int = WIDTH, height: int = HEIGHT) -> Faces:
    """nagadomi's 17 idols' boxes, scaled into the fake frame, named and tracked."""
    frame_w, frame_h, boxes = NAGADOMI
    scale = min(width / frame_w, height / frame_h)
    return named_faces([tuple(round(v * scale) for v in box) for box in boxes])  # type: ignore[misc]


def layout_cases() -> list[dict[str, Any]]:
    """Requests with the burnt-in overlay's real label sizes, and last frame's spots for some tracks."""
    cases = []
    for top3 in (False, True):
        for width, height, boxes in FIXTURES.values():
            annotator = FaceAnnotator(show_top3=top3, font_size=max(16, height // 45))
            faces = named_faces(boxes)
            _, blocks = annotator.layout(faces, width, height)
            sizes = [[[b.shape[1], b.shape[0]] for b in label_blocks] for label_blocks in blocks]
            previous = {track: SPOTS[track % len(SPOTS)] for track in range(0, len(boxes), 3)}
            requests = [{"box": dict(zip("xywh", map(float, box), strict=True)), "sizes": size, "track": row}
                        for row, (box, size) in enumerate(zip(boxes, sizes, strict=True))]
            cases.append({"width": width, "height": height, "gap": 2, "previous": previous, "requests": requests})
    return cases


def python_layout(case: dict[str, Any]) -> list[Any]:
    requests = [LabelRequest(Rect(**r["box"]), tuple(tuple(size) for size in r["sizes"]), r["track"])
                for r in case["requests"]]
    layout = place_labels(requests, case["width"], case["height"], gap=case["gap"], previous=case["previous"])
    return [None if p is None else [p.rect.x, p.rect.y, p.rect.w, p.rect.h, p.size, p.spot] for p in layout.placements]


JS_LAYOUT = """JSON.stringify(CASES.map(c => LabelLayout.place(
  c.requests, c.width, c.height, c.gap, new Map(Object.entries(c.previous).map(([k, v]) => [Number(k), v]))
).placements.map(p => p === null ? null : [p.rect.x, p.rect.y, p.rect.w, p.rect.h, p.size, p.spot])))"""


def test_the_page_lays_labels_out_like_the_burnt_in_overlay(tmp_path: Path) -> None:
    cases = layout_cases()

    async def scenario(server: ObsServer, devtools_port: int) -> tuple[list[Any], dict[str, Any]]:
        async with open_page(devtools_port) as page:
            await page.send("Page.navigate", url=server.url + "overlay?font=14")
            await page.wait_for("Number(document.getElementById('stage')?.dataset.index) > 3")
            placed = json.loads(await page.evaluate(JS_LAYOUT.replace("CASES", json.dumps(cases))))
            return placed, json.loads(await page.evaluate(FACES_JS))

    with serving(produce=False) as (server, _), chromium(tmp_path / "profile") as devtools_port:
        producer = CrowdProducer(ObsSink(server), crowd()).start()
        try:
            placed, drawn = asyncio.run(scenario(server, devtools_port))
        finally:
            producer.stop()

    assert placed == [python_layout(case) for case in cases]
    # The page's own layout of a crowded frame, measured on the rendered DOM.
    assert len(drawn["faces"]) == len(NAGADOMI[2])
    assert dom_overlaps(drawn) == 0
    assert sum(face["label"] is None for face in drawn["faces"]) == drawn["dropped"]
    print(f"\npage, 17 faces at font 14: {drawn['dropped']} labels dropped")


# ---- the preview shows the frame the boxes belong to -----------------------------------------


def test_preview_shows_the_frame_with_its_boxes_on_every_load(tmp_path: Path) -> None:
    """20 page loads: each shows the frame as soon as the page has loaded, well within the 2 s the
    issue asks (the old page was blank until a message came and its image loaded: 7 of 20 here, 4 of
    6 `chromium --screenshot` pictures in the issue), then the boxes of that very frame, and never
    blinks blank afterwards."""
    preview_index = "document.getElementById('preview').dataset.index"
    in_step = f"{preview_index} !== undefined && {preview_index} === document.getElementById('stage').dataset.index"

    async def scenario(server: ObsServer, devtools_port: int) -> list[list[np.ndarray]]:
        loads = []
        async with open_page(devtools_port) as page:
            for _ in range(20):
                await page.load(server.url + "overlay?preview=1")
                at_load = await page.screenshot(scale=0.25)  # small: quick to encode
                await page.wait_for(in_step, timeout=10)  # the boxes drawn belong to the frame shown
                loads.append([at_load, *[await page.screenshot(scale=0.25) for _ in range(2)]])
        return loads

    with serving(fps=30) as (server, _), chromium(tmp_path / "profile") as devtools_port:
        loads = asyncio.run(scenario(server, devtools_port))

    frame = cv2.resize(background(), (VIEW_W // 4, VIEW_H // 4), interpolation=cv2.INTER_AREA)
    row = frame.shape[0] - 5  # away from the boxes
    for shots in loads:
        for shot in shots:
            # Chromium writes an opaque screenshot without its alpha channel.
            opaque = shot[..., 3] == 255 if shot.shape[2] == 4 else np.ones(shot.shape[:2], bool)
            assert opaque.mean() > 0.99  # the frame fills the page: not blank, not half drawn
            assert np.abs(shot[row, 5:-5, :3].astype(int) - frame[row, 5:-5].astype(int)).mean() < 12
