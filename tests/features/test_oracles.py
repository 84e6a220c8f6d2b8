"""Each op against an independent oracle: TA-Lib where its definition coincides once configured
alike, else pandas/numpy in float64 from the same float32-cast inputs.

Mapping (ours -> oracle) and why each tolerance is needed:
- SMA, MOMENTUM, ROC -> TA-Lib SMA, MOM, ROC: float32 vs double rounding only.
- VOLATILITY(w) -> TA-Lib STDDEV(w, 1) one bar earlier (ours excludes the current bar).
- BOLLINGER_* -> TA-Lib SMA(w) +/- k * STDDEV(w) one bar earlier (the original's off-by-one).
- ATR, RSI (from row p+1), ADX -> TA-Lib ATR, RSI, ADX: identical Wilder seeding.
- STOCHASTIC_K/D(k, d) -> TA-Lib STOCHF(k+1, d, SMA); WILLIAMS_R(p) -> TA-Lib WILLR(p+1): the
  original's range spans k+1 bars.
- CCI -> TA-Lib CCI: the float32 numerator TP - SMA carries ~2 ulp(TP), divided by 0.015 MD.
- MFI -> TA-Lib MFI, on windows without a near-tie of TP: float32 and double TPs can disagree
  on whether TP rose (a 1e-6 difference flips a whole bar's money flow).
- OBV -> TA-Lib OBV - V_0 (TA-Lib starts at the first volume); AD_LINE -> TA-Lib AD: float32
  output of a float64 running total.
- EMA, MACD_* -> pandas ewm(adjust=False): TA-Lib's EMA seeds with an SMA, and its METASTOCK
  compatibility mode still differs from e_0 = x_0 (measured: 1e-3 relative), so it cannot be
  configured alike.
- LOGRET, LOGRET_N, ZWIN, PARKINSON, GARMAN_KLASS, VPT, the bar-shape ops and our intraday ops
  -> numpy/pandas re-derivations of docs/ops.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentio.features import FeatureEngine, parse_spec

talib = pytest.importorskip("talib", reason="TA-Lib (PyPI ta-lib) is a dev dependency")

EPS32 = float(np.finfo(np.float32).eps)


def run(inputs, *features: dict) -> list[np.ndarray]:
    """Our values (as float64) for ``features`` on ``inputs``."""
    _, data = inputs
    engine = FeatureEngine(parse_spec({"features": list(features)}))
    values = engine.batch(data).astype(np.float64)
    return [values[:, j] for j in range(values.shape[1])]


def ohlcv(inputs):
    """Float32-cast fields as float64 (what the engine reads); volume truncated like it."""
    frame, _ = inputs
    o, h, lo, c = (
        frame[k].to_numpy(np.float64).astype(np.float32).astype(np.float64)
        for k in ("open", "high", "low", "close")
    )
    v = np.floor(frame["volume"].to_numpy(np.float64)).astype(np.float32).astype(np.float64)
    return o, h, lo, c, v


def close_to(ours, ref, start, rtol=0.0, atol=0.0):
    """ours[start:] == ref[start:] within tolerance (rows before ``start`` are warm-up)."""
    np.testing.assert_allclose(ours[start:], ref[start:], rtol=rtol, atol=atol)


@pytest.mark.parametrize("p", [5, 20, 200])
def test_ema_equals_pandas_ewm_adjust_false(oracle_bars, p):
    (ours,) = run(oracle_bars, {"op": "EMA", "window": p})
    c = ohlcv(oracle_bars)[3]
    ref = pd.Series(c).ewm(span=p, adjust=False).mean().to_numpy()
    close_to(ours, ref, 0, rtol=(p + 1) * EPS32)  # float32 recursion: ~1 ulp per remembered bar


def test_macd_equals_pandas_ewm(oracle_bars):
    line, signal, hist = run(
        oracle_bars, {"op": "MACD_LINE"}, {"op": "MACD_SIGNAL"}, {"op": "MACD_HISTOGRAM"}
    )
    c = pd.Series(ohlcv(oracle_bars)[3])
    ref_line = c.ewm(span=12, adjust=False).mean() - c.ewm(span=26, adjust=False).mean()
    ref_signal = ref_line.ewm(span=9, adjust=False).mean()
    atol = 64 * EPS32 * float(c.max())  # a difference of two float32 EMAs of the price
    close_to(line, ref_line.to_numpy(), 0, atol=atol)
    close_to(signal, ref_signal.to_numpy(), 0, atol=atol)
    close_to(hist, (ref_line - ref_signal).to_numpy(), 0, atol=2 * atol)


def test_sma_momentum_roc_equal_talib(oracle_bars):
    sma, mom, roc = run(
        oracle_bars,
        {"op": "SMA", "window": 20},
        {"op": "MOMENTUM", "window": 5},
        {"op": "ROC", "window": 10},
    )
    c = ohlcv(oracle_bars)[3]
    close_to(sma, talib.SMA(c, 20), 19, rtol=4 * EPS32)
    close_to(mom, talib.MOM(c, 5), 5, atol=2 * EPS32 * c.max())
    close_to(roc, talib.ROC(c, 10), 10, atol=1e-4)
    assert (sma[:19] == 0).all() and (mom[:5] == 0).all() and (roc[:10] == 0).all()


def test_volatility_and_bollinger_equal_talib_shifted_one_bar(oracle_bars):
    vol, upper, middle, lower = run(
        oracle_bars,
        {"op": "VOLATILITY", "window": 20},
        {"op": "BOLLINGER_UPPER", "window": 20, "k": 2.0},
        {"op": "BOLLINGER_MIDDLE", "window": 20},
        {"op": "BOLLINGER_LOWER", "window": 20, "k": 2.0},
    )
    c = ohlcv(oracle_bars)[3]
    sd_before = np.r_[np.nan, talib.STDDEV(c, 20, 1)[:-1]]  # window i-w..i-1
    mid = talib.SMA(c, 20)
    atol = 64 * EPS32 * c.max()  # one-pass double variance of float32 prices, then float32
    close_to(vol, sd_before, 20, atol=atol)
    close_to(middle, mid, 20, rtol=4 * EPS32)
    close_to(upper, mid + 2 * sd_before, 20, atol=3 * atol)
    close_to(lower, mid - 2 * sd_before, 20, atol=3 * atol)
    assert (upper[:20] == 0).all()


@pytest.mark.parametrize("p", [3, 14])
def test_wilder_ops_equal_talib(oracle_bars, p):
    atr, rsi, adx = run(
        oracle_bars,
        {"op": "ATR", "window": p},
        {"op": "RSI", "window": p},
        {"op": "ADX", "window": p},
    )
    _, h, lo, c, _ = ohlcv(oracle_bars)
    close_to(atr, talib.ATR(h, lo, c, p), p, rtol=1e-5)
    close_to(rsi, talib.RSI(c, p), p + 1, atol=1e-3)  # row p is not emitted (original)
    close_to(adx, talib.ADX(h, lo, c, p), 2 * p - 1, atol=2e-3)
    assert (rsi[: p + 1] == 0).all() and (adx[: 2 * p - 1] == 0).all()


def test_range_oscillators_equal_talib_over_k_plus_one_bars(oracle_bars):
    k, d, wr = run(
        oracle_bars,
        {"op": "STOCHASTIC_K", "window": 14},
        {"op": "STOCHASTIC_D", "window": 14, "d_period": 3},
        {"op": "WILLIAMS_R", "window": 14},
    )
    _, h, lo, c, _ = ohlcv(oracle_bars)
    # STOCHF aligns %K with %D's lookback; with fastd_period 1 it gives %K from row 14
    ref_k = talib.STOCHF(h, lo, c, 15, 1, 0)[0]
    close_to(k, ref_k, 14, atol=1e-3)
    close_to(d, talib.SMA(ref_k, 3), 16, atol=1e-3)
    close_to(d, talib.STOCHF(h, lo, c, 15, 3, 0)[1], 18, atol=1e-3)
    close_to(wr, talib.WILLR(h, lo, c, 15), 14, atol=1e-3)


def test_cci_equals_talib_within_float32_numerator_error(oracle_bars):
    (cci,) = run(oracle_bars, {"op": "CCI", "window": 20})
    _, h, lo, c, _ = ohlcv(oracle_bars)
    tp = (h + lo + c) / 3
    windows = np.lib.stride_tricks.sliding_window_view(tp, 20)
    md = np.abs(windows - windows.mean(axis=1, keepdims=True)).mean(axis=1)
    atol = np.r_[np.full(19, np.inf), 8 * EPS32 * tp[19:] / (0.015 * md)] + 1e-4
    ref = talib.CCI(h, lo, c, 20)
    assert (np.abs(cci - ref)[20:] <= atol[20:]).all()


def test_mfi_equals_talib_away_from_ties(oracle_bars):
    (mfi,) = run(oracle_bars, {"op": "MFI", "window": 14})
    _, h, lo, c, v = ohlcv(oracle_bars)
    tp = (h + lo + c) / 3
    near_tie = np.r_[True, np.abs(np.diff(tp)) <= 1e-6 * tp[1:]]
    clean = ~pd.Series(near_tie).rolling(14, min_periods=1).max().astype(bool).to_numpy()
    ref = talib.MFI(h, lo, c, v, 14)
    rows = clean & (np.arange(len(c)) >= 14) & (ref < 99.99)  # ours is 0 when no outflow
    assert rows.sum() > len(c) // 4
    np.testing.assert_allclose(mfi[rows], ref[rows], atol=1e-3)


def test_running_totals_equal_talib(oracle_bars):
    obv, ad = run(oracle_bars, {"op": "OBV"}, {"op": "AD_LINE"})
    _, h, lo, c, v = ohlcv(oracle_bars)
    ref_obv, ref_ad = talib.OBV(c, v) - v[0], talib.AD(h, lo, c, v)
    close_to(obv, ref_obv, 0, atol=2 * EPS32 * np.abs(ref_obv).max())
    close_to(ad, ref_ad, 0, atol=2 * EPS32 * np.abs(ref_ad).max() + 1e-3)


def test_vpt_and_bar_shape_ops_equal_numpy(oracle_bars):
    vpt, spread, impact, flow, depth, ratio = run(
        oracle_bars,
        {"op": "VPT"},
        {"op": "SPREAD_BP"},
        {"op": "PRICE_IMPACT"},
        {"op": "ORDER_FLOW"},
        {"op": "MARKET_DEPTH"},
        {"op": "BID_ASK_RATIO"},
    )
    _, h, lo, c, v = ohlcv(oracle_bars)
    prev = np.r_[np.nan, c[:-1]]
    step = np.nan_to_num(v * (c - prev) / prev)
    ref_vpt = np.cumsum(step)
    close_to(vpt, ref_vpt, 0, atol=4 * EPS32 * np.abs(ref_vpt).max() + 1e-2)
    span = h - lo
    with np.errstate(all="ignore"):
        loc = np.where(span > 1e-8, ((c - lo) - (h - c)) / span, 0.0)
        pos = np.where(span > 1e-8, (c - lo) / span, 0.0)
        ref_ratio = np.where(span > 1e-8, pos / (1 - pos + 1e-8), 0.0)
        ref_impact = np.nan_to_num(1e6 * (np.abs(c - prev) / prev) / np.sqrt(v))
    close_to(spread, 1e4 * span / ((h + lo) / 2), 0, rtol=1e-5, atol=1e-4)
    close_to(impact, ref_impact, 0, rtol=1e-5, atol=1e-6)
    close_to(flow, loc * v, 0, rtol=1e-5, atol=1e-3)
    close_to(depth, span / np.log(v + 1), 0, rtol=1e-5, atol=1e-7)
    # float32 1 - pos carries ~eps32 absolutely, so the ratio's relative error grows as the
    # close nears the high: eps32 / (1 - pos)
    tol = ref_ratio * 8 * EPS32 / (1 - pos + 1e-8) + 1e-5
    assert (np.abs(ratio - ref_ratio) <= tol).all()


def test_log_returns_and_zscore_equal_numpy(oracle_bars):
    logret, ret5, z20 = run(
        oracle_bars,
        {"op": "LOGRET"},
        {"op": "LOGRET_N", "window": 5},
        {"op": "ZWIN", "source": "logret", "window": 20},
    )
    c = ohlcv(oracle_bars)[3]
    log_c = np.log(c).astype(np.float32).astype(np.float64)  # correctly rounded float32 log
    ulp = np.spacing(np.float32(log_c.max()))  # glibc logf may be 1 ulp off (golden/README)
    close_to(logret, np.r_[0.0, np.diff(log_c)], 0, atol=2 * ulp)
    close_to(ret5, np.r_[np.zeros(5), log_c[5:] - log_c[:-5]], 0, atol=2 * ulp)
    windows = np.lib.stride_tricks.sliding_window_view(logret, 20)[1:]  # rows 1..20 onwards
    mu, sd = windows.mean(axis=1), windows.std(axis=1)  # two-pass, population
    ref = np.r_[np.zeros(20), np.where(sd > 1e-8, (logret[20:] - mu) / sd, 0.0)]
    close_to(z20, ref, 0, atol=1e-4)  # one-pass vs two-pass variance (golden/README)
    assert np.abs(z20).max() <= np.sqrt(19) + 1e-5  # the ddof=0 bound, current bar included


def test_range_estimators_equal_numpy(oracle_bars):
    park, gk, hl1, hl15 = run(
        oracle_bars,
        {"op": "PARKINSON", "window": 14},
        {"op": "GARMAN_KLASS", "window": 14},
        {"op": "HL_RANGE", "window": 1},
        {"op": "HL_RANGE", "window": 15, "name": "hl15"},
    )
    o, h, lo, c, _ = ohlcv(oracle_bars)
    hl2 = np.log(h / lo) ** 2
    ref_park = np.sqrt(pd.Series(hl2).rolling(14).mean().to_numpy() / (4 * np.log(2)))
    g = 0.5 * hl2 - (2 * np.log(2) - 1) * np.log(c / o) ** 2
    g[0] = 0.0
    ref_gk = np.sqrt(np.maximum(pd.Series(g).rolling(14).mean().to_numpy(), 0))
    close_to(park, ref_park, 13, rtol=1e-4, atol=1e-7)
    close_to(gk, ref_gk, 14, rtol=1e-3, atol=1e-6)
    close_to(hl1, (h - lo) / c, 0, rtol=1e-6)
    top = pd.Series(h).rolling(15).max().to_numpy()
    bottom = pd.Series(lo).rolling(15).min().to_numpy()
    close_to(hl15, (top - bottom) / c, 14, rtol=1e-6)


def test_session_ops_equal_pandas(oracle_bars):
    frame, _ = oracle_bars
    minutes, vwap, rel = run(
        oracle_bars,
        {"op": "MINUTES_SINCE_OPEN"},
        {"op": "VWAP_DIST"},
        {"op": "REL_VOLUME", "window": 3},
    )
    _, h, lo, c, v = ohlcv(oracle_bars)
    local = pd.to_datetime(frame["ts"], utc=True).dt.tz_convert("America/New_York")
    day = local.dt.date
    ref_minutes = (local.dt.hour * 60 + local.dt.minute - 570).to_numpy(np.float64)
    assert (minutes == ref_minutes).all()  # every session here opens at 09:30
    tp = (h + lo + c) / 3
    pv = pd.Series(tp * v).groupby(day.to_numpy()).cumsum().to_numpy()
    vol = pd.Series(v).groupby(day.to_numpy()).cumsum().to_numpy()
    ref_vwap = 1e4 * (c - pv / vol) / (pv / vol)
    close_to(vwap, ref_vwap, 0, atol=2e-3)  # float32 VWAP: 1 ulp of price is 6e-4 bp
    slot = pd.Series(v).groupby(ref_minutes)
    norm = slot.transform(lambda s: s.shift(1).rolling(3, min_periods=1).mean()).to_numpy()
    ref_rel = np.where(norm > 0, v / norm, 0.0)
    np.testing.assert_allclose(rel, np.nan_to_num(ref_rel), rtol=1e-5)
