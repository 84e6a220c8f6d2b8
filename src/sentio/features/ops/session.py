"""Intraday ops of our own (not in the original engine); they read the bar clock.

- MINUTES_SINCE_OPEN: minutes from the session open to the bar start.
- VWAP_DIST: distance of the close from the session-anchored VWAP, in basis points.
- REL_VOLUME: volume over its time-of-day norm (same minute of the session, last D sessions).
- HL_RANGE: high-low range of the last w bars as a fraction of the close.

The clock comes from the engine header: the minute since the open of the bar's session and a
session-start flag (engine.py). Without a clock these ops cannot run (the engine refuses).
"""

from __future__ import annotations

import numpy as np

from sentio.features.ops.base import EPS_DEN, F0, F3, Op, Warmup, kernel
from sentio.features.ops.oscillators import highest_lowest

SESSION_MINUTES = 390  # slots of REL_VOLUME: one per minute of a full 09:30-16:00 session
SCALE_BP = np.float32(1e4)


@kernel
def vwap_dist(s, o, high, low, close, volume, session_start):
    """1e4 (C - VWAP)/VWAP, VWAP = sum(TP V)/sum(V) since the session's first bar, TP =
    (H+L+C)/3; 0 while no volume. State: [sum TP V, sum V] in float64."""
    if session_start:
        s[o], s[o + 1] = 0.0, 0.0
    tp = (high + low + close) / F3
    s[o] += np.float64(tp) * volume
    s[o + 1] += volume
    if not s[o + 1] > 0.0:
        return F0
    vwap = np.float32(s[o] / s[o + 1])
    return SCALE_BP * (close - vwap) / vwap if vwap > EPS_DEN else F0


@kernel
def rel_volume(s, o, volume, minute, sessions, days):
    """V / mean volume at the same minute of the session over the previous ``days`` sessions
    of the segment (a session without that minute is left out, not replaced by an older one);
    0 when none of them had it or the norm is 0.

    ``sessions`` numbers the current session within the segment (engine header). State per
    minute slot: ``days`` volumes and the session number + 1 that wrote each (0: never).
    """
    if not (minute >= 0.0 and minute < SESSION_MINUTES):
        return F0
    base = o + int(minute) * 2 * days
    total, seen = 0.0, 0
    for j in range(days):
        written = s[base + days + j] - 1.0
        if s[base + days + j] > 0.0 and sessions - days <= written < sessions:
            total += s[base + j]
            seen += 1
    y = F0
    if seen > 0:
        norm = np.float32(total / seen)
        if norm > EPS_DEN:
            y = volume / norm
    k = int(sessions) % days
    s[base + k], s[base + days + k] = volume, sessions + 1.0
    return y


@kernel
def hl_range(s, o, high, low, close, w, i):
    """(max H - min L) over the last w bars, divided by C; 0 before row w-1. State: 2w."""
    top, bottom = highest_lowest(s, o, high, low, w, i)
    if i < w - 1 or not close > EPS_DEN:
        return F0
    return (top - bottom) / close


def _w(p: dict) -> int:
    return int(p["window"])


OPS = [
    Op(
        "MINUTES_SINCE_OPEN",
        36,
        "clock",
        {},
        lambda p: 0,
        lambda p, src: Warmup(0),
        "none",
        "Minutes from the session open (exchange calendar) to the bar start.",
        origin="sentio",
        clock=True,
    ),
    Op(
        "VWAP_DIST",
        35,
        "hlcv",
        {},
        lambda p: 2,
        lambda p, src: Warmup(0, sessions=1),
        "none",
        "1e4 (C - VWAP)/VWAP, VWAP of (H+L+C)/3 weighted by V since the session's first bar; "
        "valid once a session start is seen in the segment.",
        origin="sentio",
        clock=True,
    ),
    Op(
        "REL_VOLUME",
        37,
        "v",
        {"window": 10},
        lambda p: SESSION_MINUTES * 2 * _w(p),
        lambda p, src: Warmup(0, sessions=_w(p) + 1),
        "none",
        "V / mean volume at the same minute of the session over the previous `window` "
        "sessions (sessions lacking that minute are left out).",
        origin="sentio",
        clock=True,
    ),
    Op(
        "HL_RANGE",
        34,
        "hlc",
        {"window": 1},
        lambda p: 2 * _w(p),
        lambda p, src: Warmup(_w(p) - 1),
        "rows before w-1",
        "(max H - min L) over the last w bars / C.",
        origin="sentio",
    ),
]

__all__ = ["OPS", "SESSION_MINUTES", "hl_range", "rel_volume", "vwap_dist"]
