"""Stylized facts of 1-minute bars: ONE implementation used by calibration, tests and docs.

Returns are close-to-close log returns between consecutive bars of the same session (the first
bar of a session contributes its open-to-close return instead, so no overnight gap enters).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sentio.data.trading_calendar import locate

BUCKET_MIN = 30


def session_returns(frame: pd.DataFrame, interval_s: int = 60) -> pd.DataFrame:
    """Per bar: ``session`` number, ``minute`` since the open, ``ret`` (NaN after a hole).

    ``frame`` holds ONE symbol in time order (canonical columns).
    """
    ts = frame["ts"].to_numpy()
    _, session, open_ns, _ = locate(ts)
    minute = (ts - open_ns) // 60_000_000_000
    close = frame["close"].to_numpy()
    ret = np.full(len(ts), np.nan)
    ret[1:] = np.log(close[1:] / close[:-1])
    step_ok = np.r_[False, (np.diff(ts) == interval_s * 1_000_000_000) & (np.diff(session) == 0)]
    ret[~step_ok] = np.nan
    first = np.r_[True, np.diff(session) != 0]
    opening = first & (minute == 0)
    ret[opening] = np.log(close[opening] / frame["open"].to_numpy()[opening])
    return pd.DataFrame({"session": session, "minute": minute, "ret": ret})


def excess_kurtosis(x: np.ndarray) -> float:
    """Sample excess kurtosis, m4 / m2^2 - 3 (population moments).

    >>> round(excess_kurtosis(np.array([-1.0, 1.0] * 50)), 6)
    -2.0
    """
    x = x[np.isfinite(x)]
    d = x - x.mean()
    m2 = np.mean(d * d)
    return float(np.mean(d**4) / (m2 * m2) - 3.0)


def abs_acf(returns: pd.DataFrame, lags=range(1, 11)) -> float:
    """Mean autocorrelation of |r| over ``lags``, using pairs inside one session only."""
    values = []
    a = np.abs(returns["ret"].to_numpy())
    s = returns["session"].to_numpy()
    mean = np.nanmean(a)
    var = np.nanmean((a - mean) ** 2)
    for lag in lags:
        ok = (s[lag:] == s[:-lag]) & np.isfinite(a[lag:]) & np.isfinite(a[:-lag])
        values.append(np.mean((a[lag:][ok] - mean) * (a[:-lag][ok] - mean)) / var)
    return float(np.mean(values))


def intraday_profile(returns: pd.DataFrame, bucket_min: int = BUCKET_MIN) -> np.ndarray:
    """Relative volatility per ``bucket_min`` bucket of a full session (mean of squares = 1).

    Each session's squared returns are divided by that session's mean square first, so calm and
    wild days weigh the same.
    """
    frame = returns.dropna()
    frame = frame[frame["minute"] < 390]
    day_ms = frame.groupby("session")["ret"].transform(lambda r: np.mean(r * r))
    norm = frame["ret"] ** 2 / day_ms
    buckets = norm.groupby(frame["minute"] // bucket_min).mean()
    prof = np.sqrt(buckets.to_numpy())
    return prof / np.sqrt(np.mean(prof**2))


def beta(y: np.ndarray, x: np.ndarray) -> float:
    """OLS slope of y on x (with intercept), on finite pairs.

    >>> round(beta(np.array([3.0, -3.0, 6.0]), np.array([1.0, -1.0, 2.0])), 12)
    3.0
    """
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    dx = x - x.mean()
    return float(np.sum(dx * (y - y.mean())) / np.sum(dx * dx))


def stylized_facts(frame: pd.DataFrame, interval_s: int = 60) -> dict[str, float | list[float]]:
    """Kurtosis, |r| autocorrelation and the intraday volatility profile of one symbol."""
    r = session_returns(frame, interval_s)
    prof = intraday_profile(r)
    return {
        "excess_kurtosis": excess_kurtosis(r["ret"].to_numpy()),
        "abs_acf_1_10": abs_acf(r),
        "profile_30min": prof.tolist(),
        "open_to_midday_vol": float(prof[0] / np.median(prof[4:9])),
    }
