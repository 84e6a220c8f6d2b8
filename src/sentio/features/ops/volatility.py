"""Dispersion ops: ZWIN, VOLATILITY, BOLLINGER_*, PARKINSON, GARMAN_KLASS, ATR.

Semantics: docs/ops.md; ZWIN's details are proven by the golden files.
"""

from __future__ import annotations

import math

import numpy as np

from sentio.features.ops.base import (
    EPS_DEN,
    F0,
    F1,
    F2,
    Op,
    Warmup,
    cmax,
    kernel,
    ring_index,
    settle,
    window_sma,
)

LN2 = np.float32(math.log(2.0))
FOUR_LN2 = np.float32(4.0) * LN2
GK_C = F2 * LN2 - F1  # 2 ln 2 - 1
HALF = np.float32(0.5)


@kernel
def prefix_sums(total, squares, x):
    """ZWIN, the rolling z-score of x over x_{i-w+1..i} (current bar included, population
    variance; 0 for i < w), keeps prefix sums in double: S_i = sum x_j, Q_i = sum
    float32(x_j * x_j). This is one step: (S_i, Q_i) from (S_{i-1}, Q_{i-1}) and x_i.
    ``program.zwin_rows`` runs it and ``zscore`` over a block."""
    return total + np.float64(x), squares + np.float64(x * x)


@kernel
def zscore(total, squares, old_total, old_squares, x, w):
    """ZWIN's value at row i >= w: mu = (S_i - S_{i-w})/w,
    var = max(0, (Q_i - Q_{i-w})/w - mu^2), sd = float32(sqrt(var)),
    z = float32((x - mu)/sd) if sd > 1e-8 else 0."""
    mu = (total - old_total) / w
    var = (squares - old_squares) / w - mu * mu
    var = var if var > 0.0 else 0.0
    sd = np.float32(math.sqrt(var))
    return np.float32((x - mu) / sd) if sd > EPS_DEN else F0


@kernel
def volatility(s, o, x, w, i):
    """Population std of x_{i-w..i-1} (current bar EXCLUDED) from double running sums, var
    clamped at 0; 0 for i < w. State: [sum, sum of squares, ring(w)]."""
    y = F0
    if i >= w:
        mu = s[o] / w
        var = s[o + 1] / w - mu * mu
        y = np.float32(math.sqrt(var if var > 0.0 else 0.0))
    k = ring_index(o + 2, i, w)
    value = np.float64(x)
    total, squares = s[o] + value, s[o + 1] + value * value
    if i >= w:
        old = s[k]
        total, squares = total - old, squares - old * old
    s[o], s[o + 1], s[k] = total, squares, value
    return y


@kernel
def bollinger(s, o, x, w, k, part, i):
    """mid = SMA_w (current bar included) +/- k * VOLATILITY_w (current bar excluded): the two
    are off by one bar, as in the original. ``part``: 0 upper, 1 middle, 2 lower; 0 for i < w.
    State: SMA (1 + w) then VOLATILITY (2 + w)."""
    mid = window_sma(s, o, x, w, i)
    sd = volatility(s, o + 1 + w, x, w, i)
    if i < w:
        return F0
    if part == 0:
        return mid + k * sd
    if part == 1:
        return mid
    return mid - k * sd


@kernel
def parkinson(s, o, high, low, w, i):
    """sqrt(SMA_w(ln(H/L)^2) / (4 ln 2)); a bar with H or L <= 0 contributes 0."""
    h = F0
    if high > F0 and low > F0:
        r = math.log(high / low)
        h = r * r
    return np.float32(math.sqrt(window_sma(s, o, h, w, i) / FOUR_LN2))


@kernel
def garman_klass(s, o, open_, high, low, close, w, i):
    """sqrt(max(0, SMA_w(g))), g_i = 0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2 (all inputs > 0,
    else 0) and g_0 = 0 as in the original."""
    g = F0
    if i > 0 and open_ > F0 and high > F0 and low > F0 and close > F0:
        hl = math.log(high / low)
        co = math.log(close / open_)
        g = HALF * hl * hl - GK_C * co * co
    mean = window_sma(s, o, g, w, i)
    return np.float32(math.sqrt(mean if mean > F0 else F0))


@kernel
def true_range(high, low, prev_close):
    """max(H - L, |H - C_prev|, |L - C_prev|) in float32."""
    return cmax(cmax(high - low, abs(high - prev_close)), abs(low - prev_close))


@kernel
def atr(s, o, high, low, close, p, i):
    """TR_0 = 0; ATR_p = mean(TR_1..p), then Wilder ATR_i = (ATR_{i-1}(p-1) + TR_i)/p; 0 for
    i < p. State: [previous close, running sum / ATR]."""
    y = F0
    if i > 0:
        tr = true_range(high, low, np.float32(s[o]))
        acc = np.float32(s[o + 1])
        if i < p:
            acc = acc + tr
        elif i == p:
            acc = (acc + tr) / np.float32(p)
            y = acc
        else:
            acc = (acc * np.float32(p - 1) + tr) / np.float32(p)
            y = acc
        s[o + 1] = acc
    s[o] = close
    return y


def _w(p: dict) -> int:
    return int(p["window"])


def _bollinger(name: str, code: int, doc: str) -> Op:
    return Op(
        name,
        code,
        "src",
        {"window": 20, "k": 2.0},
        lambda p: 3 + 2 * _w(p),
        lambda p, src: Warmup(src + _w(p)),
        "rows before w",
        doc,
    )


OPS = [
    Op(
        "ZWIN",
        5,
        "src",
        {"window": 20},
        lambda p: 2 + 2 * _w(p),
        lambda p, src: Warmup(max(_w(p), src + _w(p) - 1)),
        "rows before w",
        "Rolling z-score over x_{i-w+1..i} (current bar included), population sd from double "
        "prefix sums; 0 when sd <= 1e-8.",
    ),
    Op(
        "VOLATILITY",
        9,
        "src",
        {"window": 20},
        lambda p: 2 + _w(p),
        lambda p, src: Warmup(src + _w(p)),
        "rows before w",
        "Population std of x_{i-w..i-1} (current bar excluded), double running sums.",
    ),
    Op(
        "PARKINSON",
        10,
        "hl",
        {"window": 14},
        lambda p: 1 + _w(p),
        lambda p, src: Warmup(_w(p) - 1),
        "rows before w-1",
        "sqrt(SMA_w(ln(H/L)^2) / (4 ln 2)).",
    ),
    Op(
        "GARMAN_KLASS",
        11,
        "ohlc",
        {"window": 14},
        lambda p: 1 + _w(p),
        lambda p, src: Warmup(_w(p)),
        "rows before w-1",
        "sqrt(max(0, SMA_w(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2))), with g_0 = 0.",
    ),
    Op(
        "ATR",
        12,
        "hlc",
        {"window": 14},
        lambda p: 2,
        lambda p, src: Warmup(_w(p) + settle(1 - 1 / _w(p))),
        "rows before p",
        "Wilder ATR: mean of TR_1..p at row p, then (ATR(p-1) + TR)/p; TR_0 = 0.",
    ),
    _bollinger("BOLLINGER_UPPER", 13, "SMA_w (current bar in) + k * VOLATILITY_w (current out)."),
    _bollinger("BOLLINGER_MIDDLE", 14, "SMA_w (current bar included), from row w."),
    _bollinger("BOLLINGER_LOWER", 15, "SMA_w (current bar in) - k * VOLATILITY_w (current out)."),
]

__all__ = [
    "OPS",
    "atr",
    "bollinger",
    "garman_klass",
    "parkinson",
    "prefix_sums",
    "true_range",
    "volatility",
    "zscore",
]
