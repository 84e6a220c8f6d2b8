"""Time: int64 nanoseconds UTC everywhere, New York for sessions, SOURCE_DATE_EPOCH for stamps.

A bar's ``ts`` is the START of its interval (NautilusTrader stamps the close; we do not).

>>> ns = to_ns_utc(["2025-04-01T09:30:00-04:00"])
>>> int(ns[0])
1743514200000000000
>>> str(ny_time(ns)[0])
'2025-04-01 09:30:00-04:00'
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from sentio.core.errors import OptionError, excerpt

NEW_YORK = "America/New_York"
NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND


def to_ns_utc(values) -> np.ndarray:
    """Parse offset-aware timestamps (strings or datetimes) into int64 ns UTC."""
    # pandas >= 3 may pick microseconds; the unit is made explicit so the integers are ns.
    return pd.to_datetime(pd.Series(values), utc=True).dt.as_unit("ns").astype("int64").to_numpy()


def ny_time(ts_ns: np.ndarray) -> pd.DatetimeIndex:
    """int64 ns UTC -> tz-aware New York DatetimeIndex."""
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ts_ns, dtype="int64"), utc=True)).tz_convert(
        NEW_YORK
    )


MAX_EPOCH = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second a datetime holds


def source_date_epoch() -> int | None:
    """``SOURCE_DATE_EPOCH`` as whole seconds since 1970 (reproducible-builds.org), or None when
    unset; a value that is not a whole number in [0, 9999-12-31] is an OptionError naming it.

    Checked when a command starts: numpy and other libraries read the variable themselves
    (numpy.f2py calls ``int()`` on it at import) and would crash on a bad value mid-run.

    >>> os.environ["SOURCE_DATE_EPOCH"] = "nan"
    >>> try:
    ...     source_date_epoch()
    ... except OptionError as exc:
    ...     print(exc)
    SOURCE_DATE_EPOCH: must be whole seconds since 1970-01-01 UTC (0 .. 253402300799), got 'nan'
    >>> del os.environ["SOURCE_DATE_EPOCH"]
    """
    text = os.environ.get("SOURCE_DATE_EPOCH")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit() and int(text) <= MAX_EPOCH):
        raise OptionError(
            f"must be whole seconds since 1970-01-01 UTC (0 .. {MAX_EPOCH}), got {excerpt(text)}",
            flag="SOURCE_DATE_EPOCH",
        )
    return int(text)


def ny_minute(value: str | int) -> str:
    """A time (ISO 8601 with an offset, or int64 ns UTC) as New York wall time to the minute,
    the one time zone of every human-readable table.

    >>> ny_minute("2025-09-12T13:30:00+00:00"), ny_minute(1757683800000000000)
    ('2025-09-12 09:30', '2025-09-12 09:30')
    """
    is_ns = isinstance(value, int | np.integer)
    stamp = pd.Timestamp(int(value), tz="UTC") if is_ns else pd.Timestamp(value)
    return stamp.tz_convert(NEW_YORK).strftime("%Y-%m-%d %H:%M")


def build_time() -> datetime:
    """The time to stamp into artifacts: ``SOURCE_DATE_EPOCH`` when set, else the wall clock.

    >>> os.environ["SOURCE_DATE_EPOCH"] = "0"
    >>> build_time().isoformat()
    '1970-01-01T00:00:00+00:00'
    >>> del os.environ["SOURCE_DATE_EPOCH"]
    """
    epoch = source_date_epoch()
    if epoch is not None:
        return datetime.fromtimestamp(epoch, tz=UTC)
    return datetime.now(tz=UTC).replace(microsecond=0)
