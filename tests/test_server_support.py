"""Builders and fakes for the OBS server tests, plus unit tests of the server's small parts.

`serving()` starts the real server on an ephemeral loopback port and a `FakeProducer` thread that
writes synthetic annotated frames with known faces through the real `ObsSink`, the way the
pipeline's output thread does. Other test modules import from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from animerec.errors import UsageError
from animerec.paths import SAMPLE_FACES_DIR
from animerec.records import AnnotatedFrame, Faces, Frame
from animerec.server import ObsServer, ObsSink, ServerSettings, check_bind, is_loopback
from animerec.server.hub import AckTracker, ClientQueue, Hub, LatencyWindow
from animerec.server.websocket import parse_ack

WIDTH, HEIGHT = 640, 360
FIXTURE_FACES = SAMPLE_FACES_DIR

# The known detections every fake frame carries: (name, box in pixels, confidence, top 3).
KNOWN_FACES: list[tuple[str, tuple[int, int, int, int], float, list[tuple[str, float]]]] = [
    ("gura", (64, 72, 160, 160), 0.93, [("gura", 0.93), ("ame", 0.04), ("ina", 0.01)]),
    ("unknown", (400, 120, 120, 120), 0.31, [("kiara", 0.31), ("calli", 0.22), ("irys", 0.1)]),
]
FAKE_STATS = {
    "fps": 30.0,
    "latency_ms": {"p50": 12.0, "p95": 20.0, "p99": 25.0},
    "dropped": 3,
    "provider": "FakeProvider",
}


def known_faces(extra: int = 0) -> Faces:
    """KNOWN_FACES as a Faces record, plus `extra` small unnamed faces (to make big messages)."""
    filler = [("kiara", 0.1), ("calli", 0.05), ("irys", 0.01)]
    rows = [*KNOWN_FACES, *[("unknown", (i % 600, i % 300, 8, 8), 0.1, filler) for i in range(extra)]]
    return Faces(
        boxes=np.array([row[1] for row in rows], np.int32).reshape(-1, 4),
        top_names=tuple(tuple(name for name, _ in row[3]) for row in rows),
        top_probs=np.array([[p for _, p in row[3]] for row in rows], np.float32),
        names=tuple(row[0] for row in rows),
        confidence=np.array([row[2] for row in rows], np.float32),
    )


def background(width: int = WIDTH, height: int = HEIGHT, *, fixtures: bool = True) -> np.ndarray:
    """A gradient with the fixture face thumbnails pasted where KNOWN_FACES says they are."""
    ramp = np.linspace(40, 160, width, dtype=np.uint8)
    image = np.dstack([np.tile(ramp, (height, 1))] * 3)
    image[..., 0] = 90
    for name, (x, y, w, h), _, top in KNOWN_FACES if fixtures else []:
        face = cv2.imread(str(FIXTURE_FACES / f"{top[0][0] if name == 'unknown' else name}.jpg"))
        if face is not None:
            image[y : y + h, x : x + w] = cv2.resize(face, (w, h))
    return image


def annotated(item: Frame, faces: Faces) -> AnnotatedFrame:
    """Draws plain rectangles: the server never looks inside the annotated picture."""
    picture = item.image.copy()
    for x, y, w, h in faces.boxes[:50]:
        cv2.rectangle(picture, (int(x), int(y)), (int(x + w), int(y + h)), (0, 230, 118), 3)
    cv2.putText(picture, str(item.index), (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    return AnnotatedFrame(item, faces, picture)


class FakeProducer:
    """The pipeline's output thread, faked: writes frames at `fps` and times every write()."""

    def __init__(
        self, sink: ObsSink, fps: float = 30.0, images: list[np.ndarray] | None = None, extra: int = 0
    ) -> None:
        self._sink = sink
        self._period = 1.0 / fps
        self._images = images or [background()]
        self._faces = known_faces(extra)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-producer", daemon=True)
        self.write_seconds: list[float] = []

    def start(self) -> FakeProducer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def written(self) -> int:
        return len(self.write_seconds)

    def _run(self) -> None:
        index = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            image = self._images[index % len(self._images)]
            frame = Frame(image, index, time.monotonic(), index * self._period, "fake")
            item = annotated(frame, self._faces)
            started = time.perf_counter()
            self._sink.write(item)
            self.write_seconds.append(time.perf_counter() - started)
            index += 1
            next_at += self._period
            self._stop.wait(max(0.0, next_at - time.monotonic()))


@contextlib.contextmanager
def serving(
    *, produce: bool = True, stats: Callable[[], dict[str, Any]] = lambda: dict(FAKE_STATS), **kw: Any
) -> Iterator[tuple[ObsServer, FakeProducer | None]]:
    """The real server on 127.0.0.1:<free port>, fed by a FakeProducer unless produce=False.
    Keyword arguments go to ServerSettings, or to FakeProducer when they are fps/images/extra."""
    producer_kw = {k: kw.pop(k) for k in ("fps", "images", "extra") if k in kw}
    server = ObsServer(ServerSettings(**{"port": 0, **kw}), stats)
    server.start()
    producer = FakeProducer(ObsSink(server), **producer_kw).start() if produce else None
    try:
        yield server, producer
    finally:
        if producer is not None:
            producer.stop()
        server.stop()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# ---- unit tests of the small parts -----------------------------------------------------------


def test_client_queue_drops_oldest_and_counts() -> None:
    async def scenario() -> list[int | None]:
        queue: ClientQueue[int] = ClientQueue(3)
        for i in range(10):
            queue.put(i)
        assert len(queue) == 3 and queue.dropped == 7
        got = [await queue.get() for _ in range(3)]
        queue.close()
        return [*got, await queue.get()]

    assert asyncio.run(scenario()) == [7, 8, 9, None]


def test_hub_keeps_drops_of_departed_clients() -> None:
    async def scenario() -> None:
        hub: Hub[int] = Hub(2)
        first, second = hub.subscribe(), hub.subscribe()
        for i in range(5):
            hub.publish(i)
        assert hub.dropped == 6 and hub.queued == 4
        hub.unsubscribe(first)
        assert len(hub) == 1 and hub.dropped == 6 and await first.get() is not None
        hub.close_all()
        assert [await second.get() for _ in range(3)] == [3, 4, None]

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ('{"ack": 5}', 5),
        ('{"ack": 0}', 0),
        ('{"ack": -1}', None),
        ('{"ack": true}', None),
        ('{"ack": "5"}', None),
        ('{"ack": 5, "x": 1}', None),
        ("[5]", None),
        ("not json", None),
        ("", None),
        ("[" * 2000, None),  # json.loads would recurse 2000 deep: RecursionError
        ('{"ack": ' * 2000, None),
    ],
)
def test_parse_ack(text: str, index: int | None) -> None:
    assert parse_ack(text) == index


def test_ack_tracker_measures_and_forgets() -> None:
    window = LatencyWindow()
    acks = AckTracker(window, remember=4)
    for i in range(10):
        acks.sent(i)
    assert not acks.acked(0)  # forgotten: only the last 4 are remembered
    assert acks.acked(9) and not acks.acked(9)
    assert len(window) == 1 and window.percentiles(50, 95)["p95"] is not None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
     ("example.com", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_bind_needs_a_token_beyond_loopback() -> None:
    check_bind("127.0.0.1", "")
    check_bind("0.0.0.0", "secret")
    with pytest.raises(UsageError, match="--token"):
        check_bind("0.0.0.0", "")
