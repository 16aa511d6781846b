"""Shared fixtures: paths to the bundled files, the test fixtures and ../shared/data."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from animerec.paths import SAMPLE_FACES_DIR

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# A shell starts background jobs (`pytest &`, nohup) with SIGINT ignored, and an ignored signal
# stays ignored in every child: the Ctrl-C tests' subprocesses would never see it. A handler
# here is reset to the default on exec, so the commands under test get Python's usual Ctrl-C.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip with the reason when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs ../shared/data ({SHARED_DATA}), absent on this machine")
    return SHARED_DATA


@pytest.fixture(scope="session")
def face_paths() -> list[Path]:
    return sorted(SAMPLE_FACES_DIR.glob("*.jpg"))
