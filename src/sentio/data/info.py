"""``sentio data info``: what a canonical table holds, per symbol."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from sentio.core.clock import ny_time
from sentio.data.schema import Bars
from sentio.data.segments import assign_segments
from sentio.data.trading_calendar import locate


@dataclass
class SymbolInfo:
    symbol: str
    simulated: bool
    bars: int
    first_ny: str
    last_ny: str
    sessions: int
    bars_per_session_min: int
    bars_per_session_median: float
    bars_per_session_max: int
    segments: int
    half_days: list[str]
    holes: int
    hole_minutes: int

    def to_dict(self) -> dict:
        return asdict(self)


def describe(bars: Bars) -> list[SymbolInfo]:
    """One :class:`SymbolInfo` per symbol (holes counted as in ``sentio data import``)."""
    out = []
    for symbol in bars.symbols:
        rows = bars.of(symbol)
        ts = rows["ts"].to_numpy()
        _, session, open_ns, close_ns = locate(ts)
        numbers, first_idx, counts = np.unique(session, return_index=True, return_counts=True)
        minutes = (close_ns[first_idx] - open_ns[first_idx]) // 60_000_000_000
        half = [
            f"{d:%Y-%m-%d}"
            for d, m in zip(ny_time(open_ns[first_idx]), minutes, strict=True)
            if m < 390
        ]
        seg = assign_segments(ts, bars.interval_s, int(bars.meta.get("max_gap_min", 5)))
        small = [h for h in seg.holes if not h.breaks_segment]
        when = ny_time(ts[[0, -1]])
        out.append(
            SymbolInfo(
                symbol=symbol,
                simulated=bars.is_simulated(symbol),
                bars=len(ts),
                first_ny=f"{when[0]:%Y-%m-%d %H:%M}",
                last_ny=f"{when[1]:%Y-%m-%d %H:%M}",
                sessions=len(numbers),
                bars_per_session_min=int(counts.min()),
                bars_per_session_median=float(np.median(counts)),
                bars_per_session_max=int(counts.max()),
                segments=int(rows["segment"].nunique()),
                half_days=half,
                holes=len(small),
                hole_minutes=int(sum(h.minutes for h in small)),
            )
        )
    return out
