"""Feed faults: the policy for each bar a live loop drops or treats as a gap (docs/live.md).

A feed never reorders, repairs or drops; the loop asks :func:`admit` about every arriving bar
and records each fault once (a count and a ``feed_fault`` audit event naming its source).
"""

from __future__ import annotations

import pandas as pd

from sentio.core.clock import NS_PER_MINUTE
from sentio.data.validate import bar_rule
from sentio.live.types import SYMBOLS, FeedBar

FAULTS = {
    "malformed": "a message the feed could not read, or a bar that breaks a value rule: dropped",
    "duplicate": "a bar of a minute already taken: dropped",
    "late": "a bar older than the last minute decided: dropped",
    "out_of_order": "a bar older than the minute being gathered: dropped",
    "outside_session": "a bar outside the regular session: dropped",
    "unknown_symbol": "a bar of a symbol the run does not trade: dropped",
    "missing_symbol": "a minute decided without a sibling's bar (its orders refused: no_price) "
    "or not decided for want of QQQ's",
    "gap": "missing minutes before a bar: a hole, or a new segment past --max-gap or after a "
    "missing trading day",
    "future": "a bar of a live feed starting more than two minutes after the wall clock: dropped",
}


def admit(
    bar: FeedBar, last_ts: int | None, gathering_ts: int | None, sessions, now: int | None
) -> str:
    """The fault that drops an arriving bar, or "" to take it. ``last_ts``: the last minute
    decided; ``gathering_ts``: the minute being gathered; ``sessions``: a
    ``SessionCache``; ``now``: the wall clock (ns) for a live feed, None for a replay."""
    if bar.symbol not in SYMBOLS:
        return "unknown_symbol"
    if bar_rule(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume):
        return "malformed"
    if now is not None and bar.ts > now + 2 * NS_PER_MINUTE:
        return "future"  # one such bar would hold every later one as out of order
    if last_ts is not None and bar.ts <= last_ts:
        return "duplicate" if bar.ts == last_ts else "late"
    if gathering_ts is not None and bar.ts < gathering_ts:
        return "out_of_order"
    if not sessions(bar.ts)[0]:
        return "outside_session"
    return ""


def fault_detail(kind: str, bar: FeedBar) -> str:
    """One line on what is wrong with ``bar``.

    >>> fault_detail("late", FeedBar("QQQ", 1754659800 * 10**9, 1, 1, 1, 1, 1))
    'QQQ bar at 2025-08-08T13:30:00+00:00: a bar older than the last minute decided: dropped'
    """
    when = pd.Timestamp(bar.ts, tz="UTC").isoformat()
    if kind == "malformed":
        rule, field = bar_rule(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
        return f"{bar.symbol} bar at {when}: {field} breaks {rule}"
    return f"{bar.symbol} bar at {when}: {FAULTS[kind]}"


__all__ = ["FAULTS", "admit", "fault_detail"]
