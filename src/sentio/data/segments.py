"""Sessions, segments and holes of one symbol's bars (docs/data.md).

A new segment starts after any missing trading day, or after a missing stretch inside a session
longer than ``max_gap_min`` minutes (a late first bar or an early last bar counts too). Shorter
holes are reported, never filled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sentio.core.clock import NS_PER_MINUTE
from sentio.data.trading_calendar import locate

DEFAULT_MAX_GAP_MIN = 5


@dataclass(frozen=True)
class Hole:
    """A missing stretch of ``minutes`` regular-session minutes, starting at ``start_ns``."""

    start_ns: int
    minutes: int
    breaks_segment: bool


@dataclass(frozen=True)
class SegmentInfo:
    segment: np.ndarray  # (N,) int32, 0-based
    session: np.ndarray  # (N,) int64 session number (adjacent trading days differ by 1)
    holes: list[Hole]


def assign_segments(
    ts_ns: np.ndarray, interval_s: int, max_gap_min: int = DEFAULT_MAX_GAP_MIN
) -> SegmentInfo:
    """Number the segments of sorted, in-session bar starts of ONE symbol.

    >>> import pandas as pd
    >>> ts = pd.to_datetime(["2025-07-02 13:30", "2025-07-02 13:31", "2025-07-02 13:40",
    ...                      "2025-07-07 13:30"], utc=True).as_unit("ns").asi8
    >>> info = assign_segments(ts, 60, max_gap_min=5)
    >>> info.segment.tolist()   # 8 missing minutes, then a missing trading day (2025-07-03)
    [0, 0, 1, 2]
    """
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    n = len(ts_ns)
    if n == 0:
        return SegmentInfo(np.zeros(0, np.int32), np.zeros(0, np.int64), [])
    ok, session, open_ns, close_ns = locate(ts_ns)
    if not ok.all():
        raise ValueError("assign_segments needs in-session bars; validate them first")
    step = interval_s * 1_000_000_000
    max_gap_ns = max_gap_min * NS_PER_MINUTE
    holes: list[Hole] = []
    new_segment = np.zeros(n, dtype=bool)
    same = session[1:] == session[:-1]
    # Inside a session: the gap between the end of one bar and the start of the next.
    inner_gap = ts_ns[1:] - ts_ns[:-1] - step
    # Across a session end: the missing tail of the old session plus the missing head of the new.
    tail_gap = close_ns[:-1] - (ts_ns[:-1] + step)
    head_gap = ts_ns[1:] - open_ns[1:]
    adjacent = session[1:] == session[:-1] + 1
    for i in np.flatnonzero(~same | (inner_gap > 0)):
        j = i + 1
        if same[i]:
            gaps = [(ts_ns[i] + step, int(inner_gap[i]))]
        elif adjacent[i]:
            gaps = [(ts_ns[i] + step, int(tail_gap[i])), (int(open_ns[j]), int(head_gap[i]))]
        else:
            new_segment[j] = True  # a missing trading day
            continue
        for start, gap in gaps:
            if gap <= 0:
                continue
            breaks = gap > max_gap_ns
            new_segment[j] |= breaks
            holes.append(Hole(int(start), int(gap // NS_PER_MINUTE), bool(breaks)))
    segment = np.cumsum(new_segment).astype(np.int32)
    return SegmentInfo(segment=segment, session=session, holes=holes)
