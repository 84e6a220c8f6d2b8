"""Fixtures shared by the backtest tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def ray_calls(monkeypatch) -> list[int]:
    """The number of items of every ``cluster.run_on_ray`` call (the calls still go to Ray): a
    test reads it to know that work went to Ray as tasks."""
    from sentio.backtest import cluster

    calls: list[int] = []
    original = cluster.run_on_ray

    def spy(fn, items, address=None, **kw):
        calls.append(len(items))
        return original(fn, items, address, **kw)

    monkeypatch.setattr(cluster, "run_on_ray", spy)
    return calls
