"""Bars as the engine reads them: one float64 row per bar plus its segment.

Row layout (program.py): open, high, low, close, volume, minute since the session open,
session number. The clock columns come from the exchange calendar when bars carry ``ts``;
a bare series (no ``ts``) has NaN minutes and session -1, and clock ops refuse it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sentio.core.clock import NS_PER_MINUTE
from sentio.core.errors import BarsError
from sentio.data.schema import Bars
from sentio.data.trading_calendar import locate
from sentio.features.program import ROW_WIDTH

FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class BarInput:
    """``rows`` (N, 7) float64, ``segment`` (N,) int64, ``ts`` (N,) int64 or None."""

    rows: np.ndarray
    segment: np.ndarray
    ts: np.ndarray | None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def has_clock(self) -> bool:
        return self.ts is not None

    def slice(self, start: int, stop: int) -> BarInput:
        """Rows ``start:stop`` (used by the prefix and warm-up checks)."""
        ts = None if self.ts is None else self.ts[start:stop]
        return BarInput(self.rows[start:stop], self.segment[start:stop], ts)


def minutes_since_open(ts, open_ns):
    """Minutes from the session open to the bar start (arrays or scalars, float)."""
    return (ts - open_ns) / NS_PER_MINUTE


def clock_columns(ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(minute since the session open, session number) per bar start; NaN/-1 outside sessions.

    >>> import pandas as pd
    >>> ts = pd.to_datetime(["2025-03-03 14:30", "2025-03-03 14:35"], utc=True).as_unit("ns")
    >>> clock_columns(ts.asi8)[0].tolist()
    [0.0, 5.0]
    """
    inside, number, open_ns, _ = locate(ts)
    minute = np.where(inside, minutes_since_open(ts, open_ns), np.nan)
    return minute, np.where(inside, number, -1).astype(np.float64)


def from_arrays(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    *,
    ts: np.ndarray | None = None,
    segment: np.ndarray | None = None,
) -> BarInput:
    """Engine input from plain arrays; without ``ts`` the series has no clock."""
    n = len(close)
    rows = np.empty((n, ROW_WIDTH), dtype=np.float64)
    for j, values in enumerate((open_, high, low, close, volume)):
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n,):
            raise BarsError(f"field {FIELDS[j]!r} has shape {values.shape}, expected ({n},)")
        rows[:, j] = values
    if ts is None:
        rows[:, 5], rows[:, 6] = np.nan, -1.0
    else:
        ts = np.asarray(ts, dtype=np.int64)
        if len(ts) and np.any(np.diff(ts) <= 0):
            raise BarsError("ts must be strictly increasing", field="ts", rule="unsorted_ts")
        rows[:, 5], rows[:, 6] = clock_columns(ts)
    seg = np.zeros(n, dtype=np.int64) if segment is None else np.asarray(segment, np.int64)
    return BarInput(rows, seg, ts)


def from_frame(frame: pd.DataFrame) -> BarInput:
    """Engine input from one symbol's canonical rows (``ts`` and ``segment`` optional)."""
    missing = [name for name in FIELDS if name not in frame.columns]
    if missing:
        raise BarsError(f"bar table lacks column(s) {missing}; need {list(FIELDS)}")
    if "symbol" in frame.columns and frame["symbol"].nunique() > 1:
        raise BarsError(
            f"bar table holds several symbols {sorted(frame['symbol'].unique())}; "
            "compute features one symbol at a time (e.g. --symbol QQQ)"
        )
    ts = frame["ts"].to_numpy(np.int64) if "ts" in frame.columns else None
    segment = frame["segment"].to_numpy(np.int64) if "segment" in frame.columns else None
    return from_arrays(*(frame[name].to_numpy() for name in FIELDS), ts=ts, segment=segment)


def as_input(bars: BarInput | Bars | pd.DataFrame, symbol: str | None = None) -> BarInput:
    """Accept engine input, a canonical table (one symbol, or pick ``symbol``) or a frame."""
    if isinstance(bars, BarInput):
        return bars
    if isinstance(bars, Bars):
        symbols = bars.symbols
        if symbol is None and len(symbols) > 1:
            raise BarsError(f"table holds {symbols}; name the symbol to compute features for")
        return from_frame(bars.of(symbol or symbols[0]))
    if isinstance(bars, pd.DataFrame):
        if symbol is not None:
            bars = bars[bars["symbol"] == symbol]
        return from_frame(bars)
    raise TypeError(f"cannot read bars from {type(bars).__name__}")


__all__ = [
    "BarInput",
    "as_input",
    "clock_columns",
    "from_arrays",
    "from_frame",
    "minutes_since_open",
]
