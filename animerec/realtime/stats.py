"""One thread-safe record of how the pipeline is doing, updated by every stage.

All clocks are `time.monotonic()`. `snapshot()` returns plain JSON-ready numbers; the keys of
CONTRACTS.md (`fps`, `latency_ms`, `dropped`, `provider`) are always there, and the OBS server adds
its own (`delivery_ms`, `clients`) to the dict it serves.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Any

import numpy as np

FPS_WINDOW_S = 2.0  # the fps is measured over the last two seconds: steady, yet quick to follow
LATENCY_SAMPLES = 1000  # percentiles over the last thousand frames


class Stats:
    """Counters, per-stage busy time and latency percentiles, behind one lock.

    Every update is a few additions under the lock, so stages can call it per frame.
    """

    def __init__(self, provider: str = "", policy: str = "") -> None:
        self._lock = threading.Lock()
        self.provider = provider
        self.policy = policy  # the drop policy of the frame queue: "drop_oldest" or "block"
        self._started = time.monotonic()
        self._frames_in = 0
        self._frames_out = 0
        self._faces = 0
        self._reused = 0
        self._late = 0
        self._dropped: dict[str, int] = defaultdict(int)
        self._batches = 0
        self._batched_crops = 0
        self._max_batch = 0
        self._busy_s: dict[str, float] = defaultdict(float)
        self._busy_n: dict[str, int] = defaultdict(int)
        self._out_times: deque[float] = deque()
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def frame_in(self) -> None:
        with self._lock:
            self._frames_in += 1

    def frame_out(self, captured_at: float, faces: int) -> None:
        """A frame reached the caller: count it, its faces and its capture-to-output latency."""
        now = time.monotonic()
        with self._lock:
            self._frames_out += 1
            self._faces += faces
            self._latency_ms.append((now - captured_at) * 1000.0)
            self._out_times.append(now)
            while self._out_times and now - self._out_times[0] > FPS_WINDOW_S:
                self._out_times.popleft()

    def dropped(self, where: str, n: int = 1) -> None:
        """`n` frames were discarded at `where` (a queue's name) by its drop policy."""
        with self._lock:
            self._dropped[where] += n

    def set_dropped(self, where: str, total: int) -> None:
        """For counters kept elsewhere (a live source's own drops): record the running total."""
        with self._lock:
            self._dropped[where] = total

    def reused(self) -> None:
        """A near-duplicate frame reused the previous detections instead of running the cascade."""
        with self._lock:
            self._reused += 1

    def late(self) -> None:
        """A live frame waited too long for a detector and took the newest detections."""
        with self._lock:
            self._late += 1

    def batch(self, size: int) -> None:
        with self._lock:
            self._batches += 1
            self._batched_crops += size
            self._max_batch = max(self._max_batch, size)

    def busy(self, stage: str, seconds: float, items: int = 1) -> None:
        """`stage` spent `seconds` working on `items` items (not waiting on its queue)."""
        with self._lock:
            self._busy_s[stage] += seconds
            self._busy_n[stage] += items

    @property
    def frames_out(self) -> int:
        with self._lock:
            return self._frames_out

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            times = [t for t in self._out_times if now - t <= FPS_WINDOW_S]
            latencies = np.asarray(self._latency_ms, np.float64)
            elapsed = now - self._started
            fps = _rate(times)
            p50, p95, p99 = np.percentile(latencies, (50, 95, 99)) if len(latencies) else (0.0, 0.0, 0.0)
            return {
                "fps": round(fps, 2),
                "latency_ms": {"p50": round(p50, 2), "p95": round(p95, 2), "p99": round(p99, 2)},
                "dropped": sum(self._dropped.values()),
                "dropped_by": dict(self._dropped),
                "policy": self.policy,
                "provider": self.provider,
                "frames_in": self._frames_in,
                "frames_out": self._frames_out,
                "faces": self._faces,
                "reused": self._reused,
                "reuse_rate": round(self._reused / self._frames_in, 4) if self._frames_in else 0.0,
                "late": self._late,
                "batches": self._batches,
                "mean_batch": round(self._batched_crops / self._batches, 2) if self._batches else 0.0,
                "max_batch": self._max_batch,
                "busy_ms": {k: round(v * 1000.0, 1) for k, v in self._busy_s.items()},
                "stages_ms": {
                    k: round(1000.0 * v / self._busy_n[k], 3) for k, v in self._busy_s.items()
                },
                "elapsed": round(elapsed, 3),
                "mean_fps": round(self._frames_out / elapsed, 2) if elapsed > 0 else 0.0,
            }


def _rate(times: list[float]) -> float:
    """Frames per second over the recent window; with few frames, over the span they cover."""
    if len(times) < 2:
        return 0.0
    span = max(times[-1] - times[0], 1e-6)
    return (len(times) - 1) / span
