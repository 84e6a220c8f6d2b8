"""NYSE sessions from ``exchange_calendars`` (XNYS): holidays and half days, never a hand list.

>>> s = sessions_between("2025-07-02", "2025-07-07")
>>> [str(d.date()) for d in s.dates]
['2025-07-02', '2025-07-03', '2025-07-07']
>>> [bool(x) for x in s.early_close]
[False, True, False]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from sentio.core.clock import NEW_YORK
from sentio.core.errors import CalendarError

CALENDAR = "XNYS"
REGULAR_SESSION_MINUTES = 390


@dataclass(frozen=True)
class Sessions:
    """Trading sessions in order: dates (naive midnight), open/close as int64 ns UTC.

    ``index`` numbers the sessions consecutively from the first session of 1995, so two sessions
    are adjacent trading days exactly when their numbers differ by one.
    """

    dates: pd.DatetimeIndex
    open_ns: np.ndarray
    close_ns: np.ndarray
    index: np.ndarray

    @property
    def early_close(self) -> np.ndarray:
        """True for half days (fewer than 390 regular minutes)."""
        minutes = (self.close_ns - self.open_ns) // 60_000_000_000
        return minutes < REGULAR_SESSION_MINUTES

    def __len__(self) -> int:
        return len(self.dates)


FIRST_YEAR = 1995  # the schedule always starts here, so session numbers are comparable


@lru_cache(maxsize=2)
def _schedule_until(last_year: int) -> pd.DataFrame:
    # Imported here, not at the top: the package builds every exchange's calendar class when
    # imported (~0.17 s), which every `sentio` process would pay, a refused command included.
    import exchange_calendars as xcals

    try:
        with warnings.catch_warnings():  # exchange_calendars' own pandas deprecation notices
            warnings.simplefilter("ignore")
            cal = xcals.get_calendar(
                CALENDAR, start=f"{FIRST_YEAR}-01-01", end=f"{last_year}-12-31"
            )
    except Exception as exc:  # exchange_calendars raises several types for bad bounds
        raise CalendarError(
            f"the {CALENDAR} calendar cannot serve up to {last_year}: {exc}"
        ) from exc
    return cal.schedule


def _schedule(first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """The XNYS schedule from 1995 to at least ``last`` (loaded once, cached)."""
    if first.year < FIRST_YEAR:
        raise CalendarError(f"dates before {FIRST_YEAR} are not supported, got {first.date()}")
    return _schedule_until(max(2030, last.year + 1))


def sessions_between(start, end) -> Sessions:
    """All XNYS sessions with dates in ``[start, end]`` (dates, inclusive)."""
    first, last = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if last < first:
        raise CalendarError(f"end {last.date()} is before start {first.date()}")
    schedule = _schedule(first, last)
    pos = np.arange(len(schedule))
    mask = (schedule.index >= first) & (schedule.index <= last)
    return _sessions(schedule, pos[mask])


def sessions_from(start, count: int) -> Sessions:
    """The first ``count`` XNYS sessions on or after ``start``."""
    if count < 1:
        raise CalendarError(f"need at least one session, got {count}")
    first = pd.Timestamp(start).normalize()
    years = count // 240 + 2
    schedule = _schedule(first, first + pd.Timedelta(days=366 * years))
    pos = np.flatnonzero(schedule.index >= first)[:count]
    if len(pos) < count:
        raise CalendarError(f"the calendar has only {len(pos)} sessions from {first.date()}")
    return _sessions(schedule, pos)


def _sessions(schedule: pd.DataFrame, pos: np.ndarray) -> Sessions:
    rows = schedule.iloc[pos]
    return Sessions(
        dates=pd.DatetimeIndex(rows.index),
        open_ns=pd.DatetimeIndex(rows["open"]).as_unit("ns").asi8.copy(),
        close_ns=pd.DatetimeIndex(rows["close"]).as_unit("ns").asi8.copy(),
        index=pos.astype(np.int64),
    )


class SessionCache:
    """:func:`locate` for one bar at a time with one calendar look-up per session (a live
    loop asks for every arriving bar; the look-up costs about 0.1 ms, a cached answer none).

    >>> import pandas as pd
    >>> cache = SessionCache()
    >>> ts = pd.Timestamp("2025-03-03 14:31", tz="UTC").value
    >>> cache(ts)[0], cache(ts + 60 * 10**9)[2] == cache(ts)[2]
    (True, True)
    """

    def __init__(self) -> None:
        self._open = self._close = 0
        self._number = -1

    def __call__(self, ts: int) -> tuple[bool, int, int, int]:
        """(inside a session, session number, open_ns, close_ns) of one bar start."""
        if self._open <= ts < self._close:
            return True, self._number, self._open, self._close
        ok, number, open_ns, close_ns = locate(np.array([ts], dtype=np.int64))
        inside = bool(ok[0]) and int(open_ns[0]) <= ts < int(close_ns[0])
        if inside:
            self._open, self._close, self._number = (
                int(open_ns[0]),
                int(close_ns[0]),
                int(number[0]),
            )
        return inside, int(number[0]), int(open_ns[0]), int(close_ns[0])


def locate(ts_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Map bar starts (int64 ns UTC) to their New York trading day.

    Returns ``(is_session_day, session_number, open_ns, close_ns)``, one entry per bar. On days
    without a session the session number is -1 and open/close are 0.

    Bars inside a session are found by a binary search over session opens; only the rest (extended
    hours, closed days) need the slower conversion to New York dates.
    """
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    if len(ts_ns) == 0:
        return _locate_by_day(ts_ns)
    day = pd.Timedelta(days=1)
    first, last = pd.Timestamp(int(ts_ns.min()), tz="UTC"), pd.Timestamp(int(ts_ns.max()), tz="UTC")
    # A day either side catches bars near midnight UTC; never before the calendar's first day.
    start = max(first - day, pd.Timestamp(f"{FIRST_YEAR}-01-01", tz="UTC"))
    sessions = sessions_between(start.tz_localize(None), (last + day).tz_localize(None))
    if len(sessions) == 0:
        return _locate_by_day(ts_ns)
    i = np.clip(np.searchsorted(sessions.open_ns, ts_ns, side="right") - 1, 0, len(sessions) - 1)
    inside = (ts_ns >= sessions.open_ns[i]) & (ts_ns < sessions.close_ns[i])
    ok = inside.copy()
    number = np.where(inside, sessions.index[i], -1).astype(np.int64)
    open_ns = np.where(inside, sessions.open_ns[i], 0).astype(np.int64)
    close_ns = np.where(inside, sessions.close_ns[i], 0).astype(np.int64)
    rest = np.flatnonzero(~inside)
    if len(rest):
        ok[rest], number[rest], open_ns[rest], close_ns[rest] = _locate_by_day(ts_ns[rest])
    return ok, number, open_ns, close_ns


def _locate_by_day(ts_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`locate` through each bar's New York date (any bar, including closed days)."""
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    n = len(ts_ns)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=bool), empty, empty, empty
    local = pd.DatetimeIndex(pd.to_datetime(ts_ns, utc=True)).tz_convert(NEW_YORK)
    days = local.tz_localize(None).normalize().as_unit("ns")
    uniq, inverse = np.unique(days.asi8, return_inverse=True)
    uniq_days = pd.DatetimeIndex(uniq)
    sessions = sessions_between(uniq_days[0], uniq_days[-1])
    where = np.searchsorted(sessions.dates.asi8, uniq)
    where_clipped = np.minimum(where, max(len(sessions) - 1, 0))
    found = (
        (where < len(sessions)) & (sessions.dates.asi8[where_clipped] == uniq)
        if len(sessions)
        else np.zeros(len(uniq), dtype=bool)
    )
    ok = found[inverse]
    idx = where_clipped[inverse]
    number = np.where(ok, sessions.index[idx] if len(sessions) else -1, -1)
    open_ns = np.where(ok, sessions.open_ns[idx] if len(sessions) else 0, 0)
    close_ns = np.where(ok, sessions.close_ns[idx] if len(sessions) else 0, 0)
    return ok, number.astype(np.int64), open_ns.astype(np.int64), close_ns.astype(np.int64)
