"""Volume and bar-shape ops: OBV, VPT, AD_LINE, SPREAD_BP, PRICE_IMPACT, ORDER_FLOW,
MARKET_DEPTH, BID_ASK_RATIO (docs/ops.md).

One difference from the original: the running totals of OBV, VPT and AD_LINE accumulate in
float64 (the output is float32). A float32 total of share volumes stops counting single shares
past 2^24 (16.8 M), which one day of QQQ exceeds.
"""

from __future__ import annotations

import math

import numpy as np

from sentio.features.ops.base import EPS_DEN, F0, F1, F2, Op, Warmup, kernel

SCALE_BP = np.float32(1e4)
SCALE_IMPACT = np.float32(1e6)


@kernel
def obv(s, o, close, volume, i):
    """Running total of +V on an up close, -V on a down close; 0 at row 0.

    State: [prev C, total]."""
    if i > 0:
        prev = np.float32(s[o])
        if close > prev:
            s[o + 1] += volume
        elif close < prev:
            s[o + 1] -= volume
    s[o] = close
    return np.float32(s[o + 1])


@kernel
def vpt(s, o, close, volume, i):
    """Running total of V (C - C_prev)/C_prev (skipped when C_prev <= 1e-8); 0 at row 0."""
    if i > 0:
        prev = np.float32(s[o])
        if prev > EPS_DEN:
            s[o + 1] += volume * ((close - prev) / prev)
    s[o] = close
    return np.float32(s[o + 1])


@kernel
def close_location(high, low, close):
    """((C - L) - (H - C)) / (H - L), or 0 when H - L <= 1e-8."""
    span = high - low
    if not span > EPS_DEN:
        return F0
    return ((close - low) - (high - close)) / span


@kernel
def ad_line(s, o, high, low, close, volume):
    """Running total of close_location * V, from row 0 on. State: [total]."""
    s[o] += close_location(high, low, close) * volume
    return np.float32(s[o])


@kernel
def spread_bp(high, low):
    """1e4 (H - L) / ((H + L)/2)."""
    mid = (high + low) / F2
    return SCALE_BP * (high - low) / mid if mid > EPS_DEN else F0


@kernel
def price_impact(s, o, close, volume, i):
    """1e6 (|C - C_prev| / C_prev) / sqrt(V); 0 at row 0. State: [prev C]."""
    y = F0
    prev = np.float32(s[o])
    if i > 0 and prev > EPS_DEN and volume > EPS_DEN:
        y = SCALE_IMPACT * (abs(close - prev) / prev) / math.sqrt(volume)
    s[o] = close
    return y


@kernel
def market_depth(high, low, volume):
    """(H - L) / ln(V + 1)."""
    depth = math.log(volume + F1)
    return (high - low) / depth if depth > EPS_DEN else F0


@kernel
def bid_ask_ratio(high, low, close):
    """pos / (1 - pos + 1e-8), pos = (C - L)/(H - L)."""
    span = high - low
    if not span > EPS_DEN:
        return F0
    pos = (close - low) / span
    return pos / (F1 - pos + EPS_DEN)


OPS = [
    Op(
        "OBV",
        24,
        "cv",
        {},
        lambda p: 2,
        lambda p, src: Warmup(1, anchored=True),
        "row 0",
        "Running total of +V on an up close and -V on a down close (float64 total).",
    ),
    Op(
        "VPT",
        25,
        "cv",
        {},
        lambda p: 2,
        lambda p, src: Warmup(1, anchored=True),
        "row 0",
        "Running total of V (C - C_prev)/C_prev (float64 total).",
    ),
    Op(
        "AD_LINE",
        26,
        "hlcv",
        {},
        lambda p: 1,
        lambda p, src: Warmup(0, anchored=True),
        "none",
        "Running total of ((C-L) - (H-C))/(H-L) V, bars with H - L <= 1e-8 skipped.",
    ),
    Op(
        "SPREAD_BP",
        28,
        "hl",
        {},
        lambda p: 0,
        lambda p, src: Warmup(0),
        "none",
        "1e4 (H - L) / ((H + L)/2).",
    ),
    Op(
        "PRICE_IMPACT",
        29,
        "cv",
        {},
        lambda p: 1,
        lambda p, src: Warmup(1),
        "row 0",
        "1e6 (|C - C_prev| / C_prev) / sqrt(V).",
    ),
    Op(
        "ORDER_FLOW",
        30,
        "hlcv",
        {},
        lambda p: 0,
        lambda p, src: Warmup(0),
        "none",
        "((C - L) - (H - C)) / (H - L) V.",
    ),
    Op(
        "MARKET_DEPTH",
        31,
        "hlv",
        {},
        lambda p: 0,
        lambda p, src: Warmup(0),
        "none",
        "(H - L) / ln(V + 1).",
    ),
    Op(
        "BID_ASK_RATIO",
        32,
        "hlc",
        {},
        lambda p: 0,
        lambda p, src: Warmup(0),
        "none",
        "pos / (1 - pos + 1e-8) with pos = (C - L)/(H - L).",
    ),
]

__all__ = [
    "OPS",
    "ad_line",
    "bid_ask_ratio",
    "close_location",
    "market_depth",
    "obv",
    "price_impact",
    "spread_bp",
    "vpt",
]
