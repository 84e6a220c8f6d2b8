"""Domain types shared by every stage.

Names follow NautilusTrader, with one difference: our ``Bar.ts`` is the START of the bar's
interval (int64 ns UTC), while Nautilus stamps bars at their close (docs/architecture.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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


class Reason(StrEnum):
    """Why the strategy decided what it did at a bar (shown by the audit)."""

    WARMUP = "warmup"  # no probability yet (before a valid window) or the rule's history
    INSIDE_BAND = "inside_band"  # probability between the short and long thresholds
    LONG = "long"
    STRONG_LONG = "strong_long"
    SHORT = "short"
    STRONG_SHORT = "strong_short"
    HOLD = "hold"  # hysteresis: back inside the band, but not past the exit threshold
    MIN_HOLD = "min_hold"  # the position is younger than the minimum hold
    COOLDOWN = "cooldown"  # too soon after the last change of position
    FLIP_THROUGH_FLAT = "flip_through_flat"  # long <-> short goes flat first
    SESSION_END = "session_end"  # flat for the last minutes of the session
