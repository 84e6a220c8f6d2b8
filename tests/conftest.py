"""Shared test fixtures: where the real data lives, and a skip when it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_GOLDEN = REPO.parent / "shared" / "golden"


def real_file(relative: str) -> Path:
    """Path of a file in ../shared/data, skipping the test (with the reason) when absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (../shared/data is not shipped)")
    return path
