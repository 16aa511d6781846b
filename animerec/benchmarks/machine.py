"""The machine a benchmark ran on, and the process's own costs: CPU time, resident memory.

No psutil: Linux gives peak and current resident memory in /proc/self/status (VmHWM, VmRSS);
other Unixes have `resource.getrusage` for the peak; Windows answers through
GetProcessMemoryInfo. Where a number cannot be had it is None, never a guess.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def machine_info(provider: str = "") -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python and libraries, for the report's header."""
    import cv2

    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "ram_gb": _total_ram_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "provider": provider,
    }
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["providers_listed"] = ort.get_available_providers()
    except ImportError:
        info["onnxruntime"] = None
    return info


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _total_ram_gb() -> float | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 1024**3, 1)
    except (AttributeError, ValueError, OSError):
        return None


def _proc_status_mb(key: str) -> float | None:
    status = Path("/proc/self/status")
    if not status.is_file():
        return None
    for line in status.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    return None


def _windows_memory_mb(field: str) -> float | None:
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    class Counters(ctypes.Structure):
        _fields_ = [
            ("cb", wintypes.DWORD),
            ("PageFaultCount", wintypes.DWORD),
            ("PeakWorkingSetSize", ctypes.c_size_t),
            ("WorkingSetSize", ctypes.c_size_t),
            ("QuotaPeakPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
            ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
            ("PagefileUsage", ctypes.c_size_t),
            ("PeakPagefileUsage", ctypes.c_size_t),
        ]

    counters = Counters()
    counters.cb = ctypes.sizeof(Counters)
    windll = ctypes.windll  # type: ignore[attr-defined,unused-ignore]
    handle = windll.kernel32.GetCurrentProcess()
    if not windll.psapi.GetProcessMemoryInfo(handle, ctypes.byref(counters), counters.cb):
        return None
    return float(getattr(counters, field)) / MIB


def peak_rss_mb() -> float | None:
    """The most resident memory this process has used so far, in MiB."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # macOS reports bytes, the other Unixes kilobytes.
        return maxrss / MIB if sys.platform == "darwin" else maxrss / 1024
    except ImportError:
        return _windows_memory_mb("PeakWorkingSetSize")


def current_rss_mb() -> float | None:
    """Resident memory now, in MiB; None where the platform gives no psutil-free answer (macOS)."""
    current = _proc_status_mb("VmRSS")
    return current if current is not None else _windows_memory_mb("WorkingSetSize")


@dataclass(frozen=True)
class Usage:
    """Wall and process CPU seconds over a measured span (all threads, decoder threads included)."""

    wall_s: float
    cpu_s: float

    @property
    def cpu_per_wall(self) -> float:
        """Cores kept busy on average: 1.0 is one core fully used."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def to_json(self) -> dict[str, float]:
        cores = os.cpu_count() or 1
        return {
            "wall_s": round(self.wall_s, 4),
            "cpu_s": round(self.cpu_s, 4),
            "cpu_per_wall": round(self.cpu_per_wall, 3),
            "cpu_share": round(self.cpu_per_wall / cores, 3),
        }


class UsageClock:
    """`with UsageClock() as clock: ...` then `clock.usage`: monotonic wall time, process CPU time."""

    def __enter__(self) -> UsageClock:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        self.usage = Usage(0.0, 0.0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.usage = Usage(time.perf_counter() - self._wall, time.process_time() - self._cpu)
