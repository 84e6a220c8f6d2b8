"""Allocation properties (hypothesis): never long and short together, never above the cap,
weights are shares of capital, and the exposure is what was asked (after the cap)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentio.strategy import LEVERAGE, MODES, allocate, exposure_of

LONG, SHORT = ("QQQ", "TQQQ"), ("PSQ", "SQQQ")


@given(st.floats(-10, 10), st.sampled_from(MODES), st.floats(0, 3))
def test_allocation_never_mixes_sides_nor_exceeds_the_cap(exposure, mode, cap):
    w = allocate(exposure, mode=mode, cap=cap)
    assert set(w) == set(LEVERAGE) and all(v >= 0 for v in w.values())
    assert not (any(w[k] > 0 for k in LONG) and any(w[k] > 0 for k in SHORT))
    assert sum(w.values()) <= 1 + 1e-12
    held = exposure_of(w)
    limit = min(cap, 1.0) if mode == "unleveraged_only" else cap
    assert abs(held) <= limit + 1e-12
    assert held == pytest.approx(max(-limit, min(limit, exposure)), abs=1e-12)


def test_blends_by_hand():
    assert allocate(3.0) == {"QQQ": 0.0, "TQQQ": 1.0, "PSQ": 0.0, "SQQQ": 0.0}
    assert allocate(-2.0) == {"QQQ": 0.0, "TQQQ": 0.0, "PSQ": 0.5, "SQQQ": 0.5}
    assert allocate(1.5, mode="leveraged_only") == {
        "QQQ": 0.0,
        "TQQQ": 0.5,
        "PSQ": 0.0,
        "SQQQ": 0.0,
    }
    assert allocate(2.5, cap=2.0)["TQQQ"] == 0.5
