"""Shared fixtures: paths to the bundled files, the test fixtures and ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from animerec.paths import SAMPLE_FACES_DIR

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip with the reason when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs ../shared/data ({SHARED_DATA}), absent on this machine")
    return SHARED_DATA


@pytest.fixture(scope="session")
def face_paths() -> list[Path]:
    return sorted(SAMPLE_FACES_DIR.glob("*.jpg"))
