"""Domain types shared by every stage.

Names follow NautilusTrader, with one difference: our ``Bar.ts`` is the START of the bar's
interval (int64 ns UTC), while Nautilus stamps bars at their close (ARCHITECTURE.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of one instrument.

    ``ts`` is the bar start in int64 ns UTC (or None for a bare series with no clock);
    ``segment`` numbers runs of contiguous sessions (a new segment restarts every feature).

    >>> Bar(ts=None, open=1.0, high=2.0, low=0.5, close=1.5, volume=10.0).segment
    0
    """

    ts: int | None
    open: float
    high: float
    low: float
    close: float
    volume: float
    segment: int = 0
